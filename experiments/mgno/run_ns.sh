#!/bin/sh
# run_ns.sh -- MgNO's Navier-Stokes model (the authors' MgNO_NS: `opl train mgno --preset ns`,
# circular padding, LayerNorms, global skip) beside FNO-2d on the same Navier-Stokes data at
# 64 x 64, both trained on one-step pairs and tested by a 10-step autoregressive rollout.
#
#   B. data: 220 trajectories at 64 x 64, nu = 1e-3 (the reduced Navier-Stokes set of
#      experiments/navier_stokes/reduced/generate.ini: the FNO paper's equation and forcing,
#      CN-Heun at dt = 5e-3, stored every time unit to T = 20);
#   M. MgNO-NS: frames t -> t + 1 (T_in 1), every one of the 10 pairs of frames 1..11 of each of
#      the first 100 trajectories per epoch (1000 pairs, the authors' navier.py with T_in 1,
#      T 10), batch 5 trajectories = 50 pairs, 6 epochs, Adam lr 6e-4, weight decay 1e-5 (navier.py),
#      OneCycleLR per step, pct_start 0.1; tested on the last 20 trajectories by the 10-step rollout
#      from frame 1;
#   F. FNO-2d (modes 12, width 20: fourier_2d_time.py's model) on the same pairs, same batch,
#      epochs and schedule, with fourier_2d_time.py's lr 1e-3 and weight decay 1e-4;
#   R. FNO-2d as F but trained through the 10-step rollout (--task rollout: fourier_2d_time.py's
#      training, predictions fed back), the same trajectories, batch, epochs and schedule;
#   E. `opl eval` of the three: the rollout's relative L2 over all 10 predicted frames and per
#      step.
#
# The budget is the number of epochs (6 x 1000 pairs for both models): MgNO-NS took ~30 min of
# it on 2 shared cores. Every command is echoed (OUT/run.log); trained models are reused.
#
# usage: experiments/mgno/run_ns.sh [B M F R E ...]   (default: all, in this order)
# environment: OPL (default build/release/opl), OUT (default build/experiments/mgno_ns),
#              THREADS (default 2), EPOCHS (default 6), NTRAIN (default 100), SMOKE=1 (tiny
#              sizes, to test the script in a minute: the numbers then mean nothing)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
exp_init mgno_ns
parts=${*:-B M F R E}
has() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
T="--threads $threads"
epochs=${EPOCHS:-6} ntrain=${NTRAIN:-100} ntest=20 gen_x="--n 220" data=ns64.h5
if [ "${SMOKE:-0}" = 1 ]; then
    epochs=1 ntrain=5 ntest=2 gen_x="--n 8 --T 11 --nt 11" data=ns64_smoke.h5
fi
common="--T-in 1 --T 10 --ntrain $ntrain --ntest $ntest --batch 5 --epochs $epochs --schedule onecycle
        --schedule-unit step --pct-start 0.1 --seed 0"
task="--task onestep $common"

if has B; then
    echo "== B. data: 64 x 64 Navier-Stokes trajectories, nu = 1e-3"
    if [ -f "$data" ]; then echo "(reusing $out/$data)"
    else timed gen.log "$opl" generate ns --config "$root/experiments/navier_stokes/reduced/generate.ini" $gen_x $T -o "$data"
    fi
fi
if has M; then
    echo; echo "== M. MgNO-NS (preset ns) on the one-step pairs, $epochs epochs"
    if [ -f ns_mgno.h5 ] && [ "${SMOKE:-0}" != 1 ]; then echo "(reusing $out/ns_mgno.h5)"
    else timed train_mgno.log "$opl" train mgno --preset ns --data "$data" $task --lr 6e-4 --weight-decay 1e-5 $T -o ns_mgno.h5
    fi
fi
if has F; then
    echo; echo "== F. FNO-2d (modes 12, width 20) on the same pairs, $epochs epochs"
    if [ -f ns_fno2d.h5 ] && [ "${SMOKE:-0}" != 1 ]; then echo "(reusing $out/ns_fno2d.h5)"
    else timed train_fno2d.log "$opl" train fno --dim 2 --modes 12 --width 20 --data "$data" $task --lr 1e-3 --weight-decay 1e-4 $T -o ns_fno2d.h5
    fi
fi
if has R; then
    echo; echo "== R. FNO-2d trained through the 10-step rollout, $epochs epochs"
    if [ -f ns_fno2d_roll.h5 ] && [ "${SMOKE:-0}" != 1 ]; then echo "(reusing $out/ns_fno2d_roll.h5)"
    else timed train_fno2d_roll.log "$opl" train fno --dim 2 --modes 12 --width 20 --data "$data" --task rollout $common --lr 1e-3 --weight-decay 1e-4 $T -o ns_fno2d_roll.h5
    fi
fi
if has E; then
    echo; echo "== E. the 10-step rollout on the last $ntest trajectories"
    runlog eval_mgno.log "$opl" eval ns_mgno.h5 "$data" $T
    runlog eval_fno2d.log "$opl" eval ns_fno2d.h5 "$data" $T
    runlog eval_fno2d_roll.log "$opl" eval ns_fno2d_roll.h5 "$data" $T
    {
        echo "| step (frame) | MgNO-NS mean | median | FNO-2d mean | median | FNO-2d (rollout-trained) mean | median |"
        echo "|---|---|---|---|---|---|---|"
        for m in mgno fno2d fno2d_roll; do grep '^rollout step' eval_$m.log > .steps_$m.txt; done
        # "rollout step S (frame F): mean X median Y worst Z", side by side
        paste -d' ' .steps_mgno.txt .steps_fno2d.txt .steps_fno2d_roll.txt |
            awk '{ printf "| %s (%s | %s | %s | %s | %s | %s | %s |\n", $3, $5, $7, $9, $18, $20, $29, $31 }' |
            sed 's/):/)/'
    } > steps.md
    cat steps.md
fi

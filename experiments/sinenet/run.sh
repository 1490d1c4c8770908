#!/bin/sh
# SineNet on Navier-Stokes (nu = 1e-3, 64 x 64, periodic; the reduced data of
# experiments/navier_stokes/reduced/generate.ini: 100 trajectories, frames t = 1..20), small
# budgets. The claims of the paper (Zhang et al., ICLR 2024) checked at this scale:
#   B. K = 1 (preset ns-k1: hidden 16, m 2, 2,115,729 parameters), circular padding
#   C. K = 4 (preset ns-k4: hidden 16, m 1.601, 2,126,877 parameters: equal within 0.6 %), circular
#   D. K = 4 with zero padding (the padding ablation: periodic data)
#   E. FNO-2d beside (fourier_2d_time.py's model, width 20, modes 12), trained by its own recipe:
#      the first 4 frames in, the other 16 rolled out, loss through the rollout
#   G. B, C and D again for each seed of SEEDS (default "1 2 3"; --seed, which sets the initial
#      weights and the windows drawn), and a table of each seed's errors with the mean and the
#      sample standard deviation over seeds (file seeds.md)
# Each SineNet run: 4 history frames -> the next, one-step teacher forcing from a random start
# per batch, 80 training trajectories, AdamW lr 1e-3 (weight decay 1e-5), 1 warmup epoch then
# cosine (`--schedule cosine`: from 0, to 0, the schedule the tables were measured with; opl train
# sinenet's default is now the authors' warmup-cosine), batch 8, EPOCHS epochs (default 12).
# Every model is then evaluated by `opl eval` on the last 20 trajectories (never trained on): the
# rollout relative L2 over the 16 frames after the first 4, and for SineNet the one-step relative
# L2 from every start time.
#
# usage: experiments/sinenet/run.sh [A B C D E F G ...]   (default: A-F; A = data, F = table)
# environment: OPL, OUT (default build/experiments/sinenet), THREADS (2), EPOCHS (12), SEEDS (G),
#              SMOKE=1 (tiny sizes to test the script: the numbers then mean nothing)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
exp_init sinenet
parts=${*:-A B C D E F}
has() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
epochs=${EPOCHS:-12}
gen_x="" split="--ntrain 80 --ntest 10" evaln=20
if [ "${SMOKE:-0}" = 1 ]; then
    gen_x="--n 12 --res 32 --store-res 32 --nt 8 --T 8" split="--ntrain 8 --ntest 2" evaln=4 epochs=1
fi
SN="$opl train sinenet --data ns64.h5 $split --epochs $epochs --schedule cosine --warmup 1 --lr 1e-3 --batch 8"
SN="$SN --hist 4 --threads $threads"

if has A; then
    [ -f ns64.h5 ] || run "$opl" generate ns --config "$root/experiments/navier_stokes/reduced/generate.ini" $gen_x \
        --quiet -o ns64.h5
fi
has B && { [ -f k1_circ.h5 ] || timed k1_circ.log $SN --preset ns-k1 -o k1_circ.h5; }
has C && { [ -f k4_circ.h5 ] || timed k4_circ.log $SN --preset ns-k4 -o k4_circ.h5; }
has D && { [ -f k4_zeros.h5 ] || timed k4_zeros.log $SN --preset ns-k4 --padding zeros -o k4_zeros.h5; }
if has E && [ ! -f fno2d.h5 ]; then
    timed fno2d.log "$opl" train fno --data ns64.h5 --dim 2 --T-in 4 --T $([ "${SMOKE:-0}" = 1 ] && echo 4 || echo 16) \
        $split --epochs "$epochs" --batch 8 --modes 12 --width 20 --lr 1e-3 --step-size 100 --threads "$threads" \
        --every 1 -o fno2d.h5
fi
if has F; then
    {
        echo "| model | parameters | train time | rollout rel. L2 (mean over $evaln) | one-step rel. L2 |"
        echo "|---|---|---|---|---|"
        for m in k1_circ k4_circ k4_zeros fno2d; do
            [ -f $m.h5 ] || continue
            runlog eval_$m.log "$opl" eval $m.h5 ns64.h5 --ntest $evaln --threads "$threads"
            p=$("$opl" summary $m.h5 | tail -n 1 | awk '{print $2}')
            one=$(awk '/^one-step/ {print $5}' eval_$m.log)
            echo "| $m | $p | $(wall_of $m.log) | $(l2_of eval_$m.log | awk '{print $1}') | ${one:-n/a} |"
        done
    } > table.md
    cat table.md
fi
if has G; then
    seeds=${SEEDS:-1 2 3}
    for sd in $seeds; do
        for m in k1_circ k4_circ k4_zeros; do
            case $m in
                k1_circ) a="--preset ns-k1" ;;
                k4_circ) a="--preset ns-k4" ;;
                *) a="--preset ns-k4 --padding zeros" ;;
            esac
            [ -f ${m}_s$sd.h5 ] || timed ${m}_s$sd.log $SN $a --seed "$sd" -o ${m}_s$sd.h5
            [ -f eval_${m}_s$sd.log ] || runlog eval_${m}_s$sd.log "$opl" eval ${m}_s$sd.h5 ns64.h5 --ntest $evaln \
                --threads "$threads"
        done
    done
    {
        echo "| model | seed | rollout rel. L2 (mean over $evaln) | one-step rel. L2 | train time |"
        echo "|---|---|---|---|---|"
        for m in k1_circ k4_circ k4_zeros; do
            for sd in $seeds; do
                echo "| $m | $sd | $(l2_of eval_${m}_s$sd.log | awk '{print $1}') |" \
                    "$(awk '/^one-step/ {print $5}' eval_${m}_s$sd.log) | $(wall_of ${m}_s$sd.log) |"
            done
        done
        echo
        echo "| model | seeds | rollout rel. L2 mean ± sd | one-step rel. L2 mean ± sd |"
        echo "|---|---|---|---|"
        for m in k1_circ k4_circ k4_zeros; do
            for sd in $seeds; do
                echo "$(l2_of eval_${m}_s$sd.log | awk '{print $1}') $(awk '/^one-step/ {print $5}' eval_${m}_s$sd.log)"
            done | awk -v m=$m '{ n++; a += $1; aa += $1 * $1; b += $2; bb += $2 * $2 }
                END { sa = n > 1 ? sqrt((aa - a * a / n) / (n - 1)) : 0; sb = n > 1 ? sqrt((bb - b * b / n) / (n - 1)) : 0
                      printf "| %s | %d | %.4f ± %.4f | %.4f ± %.4f |\n", m, n, a / n, sa, b / n, sb }'
        done
    } > seeds.md
    cat seeds.md
fi

#!/bin/sh
# run_fno.sh -- experiment 2 of experiments/node/results.md: a neural ODE du/dt = F(u) with an
# FNO-1d vector field learns viscous Burgers dynamics (the FNO paper's setting: nu = 0.1, GRF
# initial data, T = 1) from trajectories, with the same seed in every row: vanilla, the global
# error regularizer R_E and the local one (unbiased and biased draws of t1) at several weights.
# Only the command line is used, as a user would: opl generate, opl train node, opl eval.
#
# Prints two markdown tables on stdout: the vanilla run's NFE per training batch over the epochs,
# then one row per variant (test NFE, accepted / rejected steps, test relative L2 and prediction
# time from opl eval; training time and NFE per batch from the metrics CSV). opl steps onto every
# stored snapshot time, so the test trajectories are also evaluated on a second file of the same
# initial conditions with only three snapshots (t = 1/3, 2/3, 1): there the controller's own steps show.
# A training whose model, metrics and wall time are already in --dir is not rerun (delete them to
# retrain), so a rerun only re-evaluates.
#
# Round 2 (--round 2) gives the regularizers room: dense output (--saveat dense: output times
# force no steps), rtol 1e-5 / atol 1e-7, 60 epochs; a pilot (12 epochs on 100 trajectories,
# global lambda 10 and local-biased lambda 100) first, whose CSV column reg_to_loss (lambda R over
# the data loss) is printed, then vanilla and each variant at two weights, and global R_E at
# lambda 1e-6: vanilla up to a negligible term, whose reg_to_loss measures vanilla's own R_E. Its
# table has no 3-snapshot columns (dense output makes them moot) and adds lambda R / loss.
#
# --round 2 --long: the first round's 200 epochs (StepLR every 70), vanilla and global lambda 100
# only, no pilot (default directory build/exp_fno2_long).
#
# usage: experiments/node/run_fno.sh [--smoke] [--round 1|2] [--long] [--dir DIR] [--jobs 1|2]
#   --smoke   a tiny run (12 trajectories, 2 epochs, one weight per variant): checks the pipeline
#   --round   1 (default): the first round; 2: dense output, rtol 1e-5 (see above)
#   --dir     working directory for data, models and logs (default build/exp_fno[2][_smoke])
#   --jobs    trainings run at once, one thread each (default 2)
# environment: OPL (default build/release/opl), NODE_STEPS (round 2's step table of vanilla's
#   solve; default build/release/node_steps)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
node_steps=${NODE_STEPS:-$root/build/release/node_steps}
smoke=0
jobs=2
round=1
long=0
dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --dir) dir=$2; shift ;;
        --jobs) jobs=$2; shift ;;
        --round) round=$2; shift ;;
        --long) long=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run_fno.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$jobs" in 1|2) ;; *) echo "run_fno.sh: --jobs expects 1 or 2, got '$jobs'" >&2; exit 2 ;; esac
case "$round" in 1|2) ;; *) echo "run_fno.sh: --round expects 1 or 2, got '$round'" >&2; exit 2 ;; esac
[ $long = 0 ] || [ $round = 2 ] || { echo "run_fno.sh: --long goes with --round 2" >&2; exit 2; }
[ -x "$opl" ] || { echo "run_fno.sh: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
case "$node_steps" in /*) ;; *) node_steps=$(pwd)/$node_steps ;; esac
r2=""
[ $round = 1 ] || r2=2
[ $long = 0 ] || r2=2_long
if [ $smoke = 1 ]; then
    dir=${dir:-$root/build/exp_fno${r2}_smoke}
    # data: 12 trajectories at 32 points; a tiny field; 2 epochs
    gen="--n 12 --res 64 --store-res 32 --nt 5 --seed 1"
    arch="--modes 4 --width 8 --layers 2 --proj 8"
    fit="--ntrain 8 --ntest 4 --batch 4 --window 3 --epochs 2 --step-size 1 --lr 1e-3 --seed 1"
    gen2="--n 12 --res 64 --store-res 32 --nt 3 --seed 1"
    ntest=4
    variants="vanilla:none:-:0 global:error:global:0.1 local-unbiased:error:local-unbiased:1 local-biased:error:local-biased:1"
else
    dir=${dir:-$root/build/exp_fno$r2}
    # data: 240 trajectories, solved at 512 points (nu = 0.1 keeps < 100 modes above 1e-14),
    # stored at 64 points, 5 snapshots 0.2 apart after t = 0 (see results.md for why so few)
    gen="--n 240 --res 512 --store-res 64 --nt 5 --seed 1"
    gen2="--n 240 --res 512 --store-res 64 --nt 3 --seed 1"
    arch="--modes 12 --width 16 --layers 4 --proj 32"
    fit="--ntrain 200 --ntest 40 --batch 20 --window 3 --epochs 200 --step-size 70 --gamma 0.5 --lr 1e-3 --seed 1"
    ntest=40
    # the weights of experiment 1 (the spiral): global 1, 10, 100; local 10, 100, 1000
    variants="vanilla:none:-:0 global:error:global:1 global:error:global:10 global:error:global:100
              local-unbiased:error:local-unbiased:10 local-unbiased:error:local-unbiased:100
              local-unbiased:error:local-unbiased:1000 local-biased:error:local-biased:10
              local-biased:error:local-biased:100 local-biased:error:local-biased:1000"
fi
# Round 2: dense output at rtol 1e-5 / atol 1e-7; 60 epochs (StepLR every 25) to fit a loaded
# machine; the pilot: 12 epochs on 100 trajectories (smoke: 1 epoch)
pilot=""
if [ $round = 2 ]; then
    fit="$fit --rtol 1e-5 --atol 1e-7 --saveat dense"
    pilot="global:error:global:10 local-biased:error:local-biased:100"
    if [ $smoke = 1 ]; then
        pilot_fit="--epochs 1"
    else
        fit=$(echo "$fit" | sed 's/--epochs 200 --step-size 70/--epochs 60 --step-size 25/')
        pilot_fit="--ntrain 100 --epochs 12"
        variants="vanilla:none:-:0 global:error:global:1e-6 global:error:global:100 global:error:global:1000
                  local-unbiased:error:local-unbiased:1000 local-unbiased:error:local-unbiased:10000
                  local-biased:error:local-biased:1000 local-biased:error:local-biased:10000"
    fi
    if [ $long = 1 ]; then
        [ $smoke = 1 ] || fit=$(echo "$fit" | sed 's/--epochs [0-9]* --step-size [0-9]*/--epochs 200 --step-size 70/')
        pilot=""
        variants="vanilla:none:-:0 global:error:global:100"
    fi
fi
mkdir -p "$dir"
cd "$dir"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
data=burgers.h5
if [ ! -f $data ]; then
    echo "+ opl generate burgers $gen -o $data" >&2
    "$opl" generate burgers $gen -o $data > generate.log 2>&1 || { cat generate.log >&2; exit 1; }
fi
# the same initial conditions (same seed and sample indices), three snapshots: test NFE with less of the cap
data2=burgers_t3.h5
if [ $round = 1 ] && [ ! -f $data2 ]; then
    echo "+ opl generate burgers $gen2 -o $data2" >&2
    "$opl" generate burgers $gen2 -o $data2 > generate2.log 2>&1 || { cat generate2.log >&2; exit 1; }
fi

# train NAME REG MODE LAMBDA [EXTRA]: one run to NAME.h5 / NAME.csv / NAME.log, its wall time in
# NAME.wall; EXTRA options come after the common ones (later options win)
train() {
    set -- "$1" "$2" "$3" "$4" "${5:-}"
    reg=""
    [ "$2" = none ] || reg="--reg $2 --reg-mode $3 --lambda $4"
    if [ -f "$1.h5" ] && [ -f "$1.csv" ] && [ -f "$1.wall" ]; then
        echo "(training $1: done before, kept)" >&2
        return 0
    fi
    echo "+ opl train node --data $data --vf fno $arch $fit $reg $5 --threads 1 -o $1.h5" >&2
    s=$(date +%s.%N)
    if "$opl" train node --data $data --vf fno $arch $fit $reg $5 --threads 1 --every 10 -o "$1.h5" > "$1.log" 2>&1; then
        echo "$s $(date +%s.%N)" | awk '{ printf "%.1f\n", $2 - $1 }' > "$1.wall"
    else
        echo "run_fno.sh: training $1 failed:" >&2
        cat "$1.log" >&2
        return 1
    fi
}

# Round 2's pilot (one after the other): lambda R / data loss per epoch, to choose the weights
if [ -n "$pilot" ]; then
    mkdir -p pilot
    echo "| pilot | lambda | epoch: lambda R / data loss (CSV reg_to_loss) |"
    echo "|---|---|---|"
    for v in $pilot; do
        IFS=: read -r kind reg mode lambda <<EOF
$v
EOF
        train "pilot/$kind-$lambda" "$reg" "$mode" "$lambda" "$pilot_fit" || exit 1
        awk -F, -v k="$kind" -v l="$lambda" 'NR > 1 { r = r sprintf("%s%d: %.3g", NR > 2 ? ", " : "", $1, $14) }
            END { printf "| %s | %s | %s |\n", k, l, r }' "pilot/$kind-$lambda.csv"
    done
    echo
fi

names=""
pids=""
running=0
for v in $variants; do
    IFS=: read -r kind reg mode lambda <<EOF
$v
EOF
    name=$kind
    [ "$reg" = none ] || name=$kind-$lambda
    names="$names $name:$kind:$lambda"
    train "$name" "$reg" "$mode" "$lambda" &
    pids="$pids $!"
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        for p in $pids; do wait "$p" || exit 1; done
        pids=""
        running=0
    fi
done
for p in $pids; do wait "$p" || exit 1; done

# The vanilla run's NFE per training batch (forward solve, starting-step trial included) and the
# test NFE per trajectory, averaged over blocks of epochs.
echo "| epochs | mean NFE per training batch | accepted steps per batch | test NFE per trajectory (batched, at the block's last epoch) |"
echo "|---|---|---|---|"
# blocks of 25 epochs (round 2: 10; smoke: 1)
blk=25
[ $round = 1 ] || [ $long = 1 ] || blk=10
[ $smoke = 0 ] || blk=1
awk -F, -v blk=$blk 'NR > 1 {
        b = int(($1 - 1) / blk); s[b] += $9; a[b] += $10; n[b]++; t[b] = $12; lo[b] = (n[b] == 1 ? $1 : lo[b]); hi[b] = $1; nb = b
    } END { for (b = 0; b <= nb; b++) printf "| %d-%d | %.1f | %.2f | %.0f |\n", lo[b], hi[b], s[b] / n[b], a[b] / n[b], t[b] }' vanilla.csv
echo

# One row per variant. opl eval solves each test trajectory alone from its first snapshot over the
# whole stored time. The local regularizer's extra step costs 8 evaluations per batch (Tsit5:
# f(t1, u(t1)), the starting-step trial and 6 stages; operators/node.h): the CSV's column 13
# (local_reg_nfe_per_batch), added in its column.
if [ $round = 2 ]; then
    # Round 2: dense output, one evaluation file; lambda R / data loss from the CSV (column 14);
    # the CSV means over the last 10 epochs
    echo "| variant | lambda | train time (s, wall) | train NFE / batch: forward + local (mean over training; last 10 epochs) | lambda R / data loss (epoch 1; mean of the last 10 epochs) | train loss (last epoch) | test rel. L2 mean (median) | test NFE mean (min-max) | accepted / rejected steps | prediction time / trajectory (ms) | NFE vs vanilla | L2 vs vanilla | test rel. L2, mean of the last 10 epochs (CSV) | last-10 L2 vs vanilla |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for nv in $names; do
        IFS=: read -r name kind lambda <<EOF
$nv
EOF
        echo "+ opl eval $name.h5 $data --ntest $ntest" >&2
        "$opl" eval "$name.h5" $data --ntest $ntest --threads 1 > "$name.eval" 2> "$name.eval.err" ||
            { cat "$name.eval.err" >&2; exit 1; }
        awk -F, 'NR > 1 { n++; s += $9; x += $13; r[n] = $9; q[n] = $13; g[n] = $14; e[n] = $4; l = $2; if (n == 1) g1 = $14 }
            END { w = n > 10 ? 10 : n; m = mx = mg = me = 0
                  for (i = n - w + 1; i <= n; i++) { m += r[i]; mx += q[i]; mg += g[i]; me += e[i] }
                  printf "%.1f + %.0f; %.1f + %.0f\t%.3g; %.3g\t%.4g\t%.4g\n", s / n, x / n, m / w, mx / w, g1, mg / w, l, me / w }' \
            "$name.csv" > "$name.trainrow"
        if [ "$name" = vanilla ]; then
            ref_nfe=$(awk '/^NFE: mean/ { print $3 }' vanilla.eval)
            ref_l2=$(awk '/^test relative L2:/ { print $5 }' vanilla.eval)
            ref_l2c=$(cut -f4 vanilla.trainrow)
        fi
        awk -v name="$kind" -v lambda="$lambda" -v wall="$(cat "$name.wall")" -v tr="$(cut -f1 "$name.trainrow")" \
            -v rg="$(cut -f2 "$name.trainrow")" -v tl="$(cut -f3 "$name.trainrow")" -v lc="$(cut -f4 "$name.trainrow")" \
            -v rn="$ref_nfe" -v rl="$ref_l2" -v rc="$ref_l2c" '
            /^test relative L2:/ { l2 = $5; med = $7 }
            /^NFE: mean/ { nfe = $3; mn = $7; mx = $9; sub(/,/, "", mn); sub(/\)/, "", mx); mm = mn "-" mx }
            /^steps: accepted mean/ { acc = $4; sub(/,/, "", acc); rej = $7 }
            /^time per trajectory: prediction/ { pt = $5 * 1000 }
            END { printf "| %s | %s | %s | %s | %s | %s | %.4g (%.4g) | %.1f (%s) | %s / %s | %.2f | %.3fx | %.3fx | %.4g | %.3fx |\n",
                  name, lambda, wall, tr, rg, tl, l2, med, nfe, mm, acc, rej, pt, nfe / rn, l2 / rl, lc, lc / rc }' "$name.eval"
    done
    echo
    awk '/^time per trajectory/ { sub(/.*reference solver /, ""); print "reference solver per trajectory: " $0; exit }' vanilla.eval
    # What sets the step size: vanilla's accepted steps on the last test trajectory (node_steps)
    if [ -x "$node_steps" ]; then
        echo
        "$node_steps" vanilla.h5 $data $ntest || exit 1
    else
        echo "run_fno.sh: $node_steps not built: no step table" >&2
    fi
    exit 0
fi
echo "| variant | lambda | train time (s, wall) | train NFE / batch: forward + local (mean over training; last 25 epochs) | train loss (last epoch) | test rel. L2 mean (median) | test NFE mean (min-max) | accepted / rejected steps | prediction time / trajectory (ms) | NFE vs vanilla | L2 vs vanilla | test rel. L2, mean of the last 25 epochs (CSV) | 3 snapshots: test NFE, accepted / rejected, rel. L2 | 3 snapshots: NFE, L2 vs vanilla |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for nv in $names; do
    IFS=: read -r name kind lambda <<EOF
$nv
EOF
    echo "+ opl eval $name.h5 $data --ntest $ntest --solver-samples 2" >&2
    "$opl" eval "$name.h5" $data --ntest $ntest --solver-samples 2 --threads 1 > "$name.eval" 2> "$name.eval.err" ||
        { cat "$name.eval.err" >&2; exit 1; }
    echo "+ opl eval $name.h5 $data2 --ntest $ntest --solver-samples 1" >&2
    "$opl" eval "$name.h5" $data2 --ntest $ntest --solver-samples 1 --threads 1 > "$name.eval2" 2> "$name.eval2.err" ||
        { cat "$name.eval2.err" >&2; exit 1; }
    extra=0
    case "$kind" in local*) extra=8 ;; esac
    # (a metrics log written before the column existed: the 8 of Tsit5)
    extra=$(awk -F, -v x=$extra 'NR == 2 { print ($13 == "" ? x : $13); exit }' "$name.csv")
    awk -F, -v x=$extra 'NR > 1 { s += $9; n++; r[n] = $9; l = $2 } END {
            m = 0; k = 0; for (i = (n > 25 ? n - 24 : 1); i <= n; i++) { m += r[i]; k++ }
            printf "%.1f + %d; %.1f + %d\t%.4g\n", s / n, x, m / k, x, l }' "$name.csv" > "$name.trainrow"
    awk -v name="$kind" -v lambda="$lambda" -v wall="$(cat "$name.wall")" -v tr="$(cut -f1 "$name.trainrow")" \
        -v tl="$(cut -f2 "$name.trainrow")" '
        /^test relative L2:/ { l2 = $5; med = $7 }
        /^NFE: mean/ { nfe = $3; mn = $7; mx = $9; sub(/,/, "", mn); sub(/\)/, "", mx); mm = mn "-" mx }
        /^steps: accepted mean/ { acc = $4; sub(/,/, "", acc); rej = $7 }
        /^time per trajectory: prediction/ { pt = $5 * 1000 }
        END { printf "| %s | %s | %s | %s | %s | %.4g (%.4g) | %.1f (%s) | %s / %s | %.2f |", name, lambda, wall, tr, tl, l2, med, nfe, mm, acc, rej, pt }' \
        "$name.eval" > "$name.row"
    if [ "$name" = vanilla ]; then
        ref_nfe=$(awk '/^NFE: mean/ { print $3 }' vanilla.eval)
        ref_l2=$(awk '/^test relative L2:/ { print $5 }' vanilla.eval)
        ref_nfe2=$(awk '/^NFE: mean/ { print $3 }' vanilla.eval2)
        ref_l22=$(awk '/^test relative L2:/ { print $5 }' vanilla.eval2)
    fi
    awk -v rn="$ref_nfe" -v rl="$ref_l2" '/^NFE: mean/ { n = $3 } /^test relative L2:/ { l = $5 }
        END { printf " %.3fx | %.3fx |", n / rn, l / rl }' "$name.eval" >> "$name.row"
    awk -F, 'NR > 1 { r[++n] = $4 } END { m = 0; k = 0; for (i = (n > 25 ? n - 24 : 1); i <= n; i++) { m += r[i]; k++ }
        printf " %.4g |", m / k }' "$name.csv" >> "$name.row"
    awk -v rn="$ref_nfe2" -v rl="$ref_l22" '/^NFE: mean/ { n = $3 } /^test relative L2:/ { l = $5 }
        /^steps: accepted mean/ { acc = $4; sub(/,/, "", acc); rej = $7 }
        END { printf " %.1f, %s / %s, %.4g | %.3fx, %.3fx |\n", n, acc, rej, l, n / rn, l / rl }' "$name.eval2" >> "$name.row"
    tr -d '\n' < "$name.row"
    echo
done
echo
awk '/^time per trajectory/ { sub(/.*reference solver /, ""); print "reference solver per trajectory: " $0; exit }' vanilla.eval

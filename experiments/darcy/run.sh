#!/bin/sh
# Darcy flow experiments (results.md): FNO-2d against MgNO on the FNO paper's Darcy set at 85^2,
# and MgNO on the rough-coefficient set at 256^2, with opl alone:
#
#   85    generate the `fno` preset (tau 3, alpha 2, 421^2 nodes stored at 85^2), the first
#         N85_TRAIN samples for training and the last N85_TEST for testing; train FNO-2d (Li et
#         al., ICLR 2021: modes 12, width 32, 4 layers, Adam 1e-3, weight decay 1e-4, StepLR x 0.5,
#         batch 20, per-point Gaussian normalization of a and u, grid channels) and MgNO (He, Liu
#         & Xu, ICLR 2024: the authors' Darcy-smooth command, 5 layers of 24 u-channels, 6 levels
#         [[1,0]x5, [2,0]], Adam 5e-4 with OneCycleLR (pct_start 0.2, div_factor 2,
#         final_div_factor 100), weight decay 1e-4,
#         batch 8, per-point Gaussian normalization) on the same samples for the same epochs;
#   rough generate the `rough` preset (tau 5, alpha 2, 511^2 nodes stored at 256^2: every second
#         node), train MgNO darcy-rough (4 layers, 6 levels, 572,661 parameters) with the authors'
#         H1 loss and the authors' normalization: u by one scalar mean and standard deviation,
#         a raw (--normalize scalar-u);
# then `opl eval` each model on its test samples (relative L2; H1 too at 256^2) and print a
# table (summary.md in OUTDIR): model, parameters, samples, epochs, training wall time, test
# errors, and each run's last metrics line.
#
# usage: sh experiments/darcy/run.sh [--quick] [--stage STAGE] OUTDIR
#   --stage   all (default: everything in order), or one of fno85, mgno85, rough (data as needed,
#             one training run and its evaluation: separate stages may run at the same time in
#             one OUTDIR once its data sets exist) and table (the table of the rows present)
#   --quick   the same pipeline on tiny sets (85: 41^2 -> 21^2; rough: 63^2 -> 32^2) for 2
#             epochs: a couple of minutes, checks the commands, measures nothing
# environment: OPL (default build/release/opl), THREADS (default 2), and the budget:
#   N85_GEN (samples generated) N85_TRAIN (the first ones) N85_TEST (the last ones) EPOCHS85
#   STEP85 (FNO StepLR period), NR_GEN NR_TRAIN NR_TEST EPOCHSR; the defaults are the reduced
#   budget of results.md (the papers: 1000 + 100 samples, 500 epochs).
# Existing data sets in OUTDIR are reused (delete them to regenerate); models are retrained.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
quick=0 stage=all out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --stage) shift; stage=${1:?--stage needs all, fno85, mgno85, rough or table} ;;
        -*) echo "run.sh: unknown option '$1' (usage: run.sh [--quick] [--stage STAGE] OUTDIR)" >&2; exit 2 ;;
        *) out=$1 ;;
    esac
    shift
done
case "$stage" in all|fno85|mgno85|rough|table) ;;
    *) echo "run.sh: --stage expects all, fno85, mgno85, rough or table, got '$stage'" >&2; exit 2 ;; esac
[ -n "$out" ] || { echo "usage: run.sh [--quick] [--stage STAGE] OUTDIR" >&2; exit 2; }
opl=${OPL:-$root/build/release/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
[ -x "$opl" ] || { echo "run.sh: '$opl' not found; build it first: sh scripts/build.sh release" >&2; exit 1; }
threads=${THREADS:-2}
# busy machine: OpenMP threads sleep at barriers instead of spinning (experiments/bench/README.md)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [ $quick -eq 1 ]; then
    res85=41 store85=21 resr=63 storer=32
    n85=${N85_GEN:-20} n85tr=${N85_TRAIN:-16} n85te=${N85_TEST:-4} ep85=${EPOCHS85:-2} step85=${STEP85:-1}
    nr=${NR_GEN:-12} nrtr=${NR_TRAIN:-8} nrte=${NR_TEST:-4} epr=${EPOCHSR:-2}
else
    res85=421 store85=85 resr=511 storer=256
    n85=${N85_GEN:-300} n85tr=${N85_TRAIN:-250} n85te=${N85_TEST:-50} ep85=${EPOCHS85:-8} step85=${STEP85:-2}
    nr=${NR_GEN:-24} nrtr=${NR_TRAIN:-16} nrte=${NR_TEST:-8} epr=${EPOCHSR:-10}
fi
mkdir -p "$out"
cd "$out"
summary=summary.md
run() { echo "+ $*"; "$@"; }
params() { "$opl" summary "$1" | sed -n 's/^parameters: //p'; }
# train NAME opl-train-args...: the run's wall time in seconds goes to NAME.seconds
train() {
    name=$1; shift
    t0=$(date +%s)
    echo "# $(uptime)"
    run "$opl" train "$@" --threads "$threads" --every 1 --checkpoint-every 1 -o "$name.h5" | tee "$name.log"
    echo $(( $(date +%s) - t0 )) > "$name.seconds"
    echo "# $(uptime)"
}
# row NAME MODEL SAMPLES EPOCHS EVAL_ARGS...: one table row (NAME.row) from opl eval and opl summary
row() {
    name=$1 model=$2 samples=$3 epochs=$4; shift 4
    run "$opl" eval "$name.h5" "$@" --threads "$threads" > "$name.eval"
    cat "$name.eval"
    l2=$(sed -n 's/^test relative L2: mean \([^ ]*\) .*/\1/p' "$name.eval")
    h1=$(sed -n 's/^test relative H1: mean \([^ ]*\) .*/\1/p' "$name.eval")
    echo "| $model | $(params "$name.h5") | $samples | $epochs | $(cat "$name.seconds") | $l2 | ${h1:--} |" > "$name.row"
}
d85=darcy_fno$store85.h5
data85() {
    echo "== Darcy fno preset: $n85 samples, ${res85}^2 nodes stored at ${store85}^2"
    if [ ! -f "$d85" ]; then
        t0=$(date +%s); echo "# $(uptime)"
        run "$opl" generate darcy --preset fno --n $n85 --res $res85 --store-res $store85 --seed 1 \
            --threads "$threads" -o "$d85"
        echo "generation: $(( $(date +%s) - t0 )) s; # $(uptime)"
    fi
}

if [ "$stage" = all ] || [ "$stage" = fno85 ]; then
    data85
    echo "== FNO-2d at ${store85}^2, $n85tr train / $n85te test, $ep85 epochs"
    train fno$store85 fno --dim 2 --data "$d85" --ntrain $n85tr --ntest $n85te --epochs $ep85 --batch 20 --lr 1e-3 \
        --weight-decay 1e-4 --step-size $step85 --gamma 0.5 --modes 12 --width 32 --layers 4 --normalize gaussian --seed 0
    row fno$store85 "FNO-2d (${store85}^2)" "$n85tr + $n85te" $ep85 "$d85" --ntest $n85te
fi
if [ "$stage" = all ] || [ "$stage" = mgno85 ]; then
    data85
    echo "== MgNO (the authors' Darcy-smooth model) at ${store85}^2, the same samples and epochs"
    train mgno$store85 mgno --preset darcy-smooth --layers 5 --num-iteration "1,0;1,0;1,0;1,0;1,0;2,0" --data "$d85" \
        --ntrain $n85tr --ntest $n85te --epochs $ep85 --batch 8 --lr 5e-4 --weight-decay 1e-4 --schedule onecycle \
        --schedule-unit step --pct-start 0.2 --div-factor 2 --final-div-factor 100 --loss l2 --normalize gaussian --seed 0
    row mgno$store85 "MgNO darcy-smooth (${store85}^2)" "$n85tr + $n85te" $ep85 "$d85" --ntest $n85te
fi

if [ "$stage" = all ] || [ "$stage" = rough ]; then
    dr=darcy_rough$storer.h5
    echo "== Darcy rough preset: $nr samples, ${resr}^2 nodes stored at ${storer}^2"
    if [ ! -f "$dr" ]; then
        t0=$(date +%s); echo "# $(uptime)"
        run "$opl" generate darcy --preset rough --n $nr --res $resr --store-res $storer --seed 2 \
            --threads "$threads" -o "$dr"
        echo "generation: $(( $(date +%s) - t0 )) s; # $(uptime)"
    fi
    echo "== MgNO darcy-rough at ${storer}^2, $nrtr train / $nrte test, $epr epochs, H1 loss"
    train mgnorough mgno --preset darcy-rough --data "$dr" --ntrain $nrtr --ntest $nrte --epochs $epr --batch 8 \
        --lr 5e-4 --weight-decay 1e-4 --schedule onecycle --schedule-unit step --pct-start 0.2 --div-factor 2 \
        --final-div-factor 100 --loss h1 --normalize scalar-u --seed 0
    row mgnorough "MgNO darcy-rough (${storer}^2)" "$nrtr + $nrte" $epr "$dr" --ntest $nrte --h1
fi

if [ "$stage" = all ] || [ "$stage" = table ]; then
    echo "| model | parameters | train + test samples | epochs | training wall (s) | test rel. L2 | test rel. H1 |" > "$summary"
    echo "|---|---|---|---|---|---|---|" >> "$summary"
    : > "$summary.csv_lines"
    for name in fno$store85 mgno$store85 mgnorough; do
        [ -f "$name.row" ] || continue
        cat "$name.row" >> "$summary"
        echo "last metrics line of $name.csv: $(tail -n 1 "$name.csv")" >> "$summary.csv_lines"
    done
    echo "== summary ($out/$summary)"
    cat "$summary" "$summary.csv_lines"
fi

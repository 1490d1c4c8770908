#!/bin/sh
# Operator vs solver on the Burgers chebfun test problem (nu = 1e-3, t = 1): time per sample and
# error of the trained FNO-1d and of the reference solver, both against a 2x finer solve.
#
#   1. 40 fresh trajectories solved at 8192 points (fine.ini; seed 1001, unseen in training),
#      stored at 4096: the reference;
#   2. `opl eval --solver` of the FNO-1d trained at s = 1024 by experiments/burgers/run_reduced.sh
#      (part B) on them at 4096 / 4 = 1024 points and at 4096 points: the FNO's error over all 40
#      samples (batches of 20) and its time per sample; the solver re-run from the stored initial
#      condition at the evaluation resolution (1024: coarser than the data; 4096: the data's own
#      solver, ETDRK4 with dt = 2e-4) on 10 samples, with its time per sample (one thread); and
#      the fine solve itself re-run (8192 points: the "as generated" row, error ~0).
#
# usage: experiments/operator_vs_solver/run.sh
# environment: OPL, OUT (default build/experiments/operator_vs_solver), THREADS (default 2),
#              MODEL (default build/experiments/burgers/cheb_s1024.h5), SMOKE=1 (tiny sizes)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
model_default=$(cd "$here/../.." && pwd)/build/experiments/burgers/cheb_s1024.h5
exp_init operator_vs_solver
model=${MODEL:-$model_default}
case "$model" in /*) ;; *) model=$root/$model ;; esac
if [ ! -f "$model" ]; then
    echo "operator_vs_solver: no model '$model': run experiments/burgers/run_reduced.sh B first (or set MODEL)" >&2
    exit 1
fi
t_start=$(date +%s)
T="--threads $threads"
fine_x="" k=10
if [ "${SMOKE:-0}" = 1 ]; then
    fine_x="--n 6 --res 2048 --store-res 1024 --nt 4" k=2
fi
n=$(awk -F= '$1 ~ /^n / { gsub(/ /, "", $2); print $2 }' "$cfg/fine.ini")
[ -z "$fine_x" ] || n=6

echo "== 1. reference: $n trajectories at 8192 points (dt = 2e-4), stored at 4096"
if [ -f fine8192.h5 ]; then
    echo "(reusing $out/fine8192.h5)"
else
    timed gen_fine.log "$opl" generate burgers --config "$cfg/fine.ini" $T $fine_x
fi
echo
echo "== 2. FNO and solver at 1024 points (the FNO's training resolution)"
runlog eval_1024.log "$opl" eval "$model" fine8192.h5 --ntest "$n" --sub 4 --batch 20 --solver --solver-samples "$k" $T
echo
echo "== 3. FNO (zero-shot) and solver at 4096 points (the data's resolution)"
runlog eval_4096.log "$opl" eval "$model" fine8192.h5 --ntest "$n" --sub 1 --batch 20 --solver --solver-samples "$k" $T

# ---------------------------------------------------------------- summary.md
fno_ms() { sed -n 's/.*(\([0-9.e+-]*\) ms per sample.*/\1/p' "$1" | head -1; }
solver_row() { # log prefix: "seconds rel"
    awk -v p="$2" 'index($0, p) == 3 { print $(NF - 1), $NF }' "$1"
}
{
    echo "## Measured $(date -u '+%Y-%m-%d')"
    echo
    machine_md
    echo "- model: $model"
    echo
    echo "| method | points | time per sample | rel. L2 vs 8192-point solve | mean over |"
    echo "|---|---|---|---|---|"
    for r in 1024 4096; do
        set -- $(l2_of eval_$r.log)
        printf '| FNO-1d (trained at 1024), batch 20, %s threads | %s | %s ms | %s (median %s, worst %s) | %s samples |\n' \
            "$threads" "$r" "$(fno_ms eval_$r.log)" "$(fmt3 "$1")" "$(fmt3 "$2")" "$(fmt3 "$3")" "$4"
    done
    for r in 1024 4096; do
        set -- $(solver_row eval_$r.log "solver etdrk4 at") x x
        printf '| solver ETDRK4, dt = 2e-4, 1 thread | %s | %s ms | %s | %s samples |\n' "$r" \
            "$(awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }')" "$(fmt3 "$2")" "$k"
    done
    set -- $(solver_row eval_4096.log "solver etdrk4 as generated") x x
    printf '| solver ETDRK4 at 8192 points (the reference itself, re-run), 1 thread | 8192 | %s ms | %s | %s samples |\n' \
        "$(awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }')" "$(fmt3 "$2")" "$k"
    echo
    echo "test samples: $(sed -n 's/.*samples \([0-9]*\.\.[0-9]*\);.*/\1/p' eval_4096.log | head -1) of fine8192.h5;" \
         "$( [ -f gen_fine.log.time ] && echo "reference generated in $(wall_of gen_fine.log) ($threads threads)")"
    echo
    echo "total wall time of this script run: $(( $(date +%s) - t_start )) s"
} > summary.md
echo
cat summary.md

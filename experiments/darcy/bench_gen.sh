#!/bin/sh
# Darcy speed at S^2 = 421^2 nodes (the FNO resolution), one thread, per sample:
#   opl solve   build/release/darcy_bench_solve: assembly + CHOLMOD numeric factorization + solves
#               (the symbolic analysis is done once per resolution and reported apart);
#   scipy       experiments/darcy/bench_scipy.py: assembly + scipy.sparse.linalg.spsolve on the same
#               stencil (/usr/bin/python3, python3-scipy);
#   opl gen     `opl generate darcy --threads 1`: all of a sample (random field, coefficient, solve,
#               HDF5 write), samples/s of the run turned into ms;
# each the median over REPS runs (solve, scipy: the median over SAMPLES within a run first), in
# wall time and in process CPU time (on a shared machine wall time is inflated by other load; CPU
# time much less), and the ratios scipy / opl solve. Then the stencil's agreement on run 0's first
# sample (scipy solves opl's coefficient: max |u_opl - u_scipy|) and the 2-thread throughput of
# `opl generate` for reference.
# usage: sh experiments/darcy/bench_gen.sh [BUILD_DIR] [S] [SAMPLES] [REPS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/release}
S=${2:-421}
N=${3:-10}
REPS=${4:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_darcy_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "# start: $(uptime)"
solve="" solvec="" scipy="" scipyc="" gen="" agree=""
r=0
while [ $r -lt "$REPS" ]; do
    dump=""
    [ $r -eq 0 ] && dump="$tmp/sample0.bin"
    out=$("$build/darcy_bench_solve" "$S" "$N" $dump)
    ms=$(echo "$out" | sed -n 's/opl_solve_ms //p'); solve="$solve $ms"
    mc=$(echo "$out" | sed -n 's/opl_solve_cpu_ms //p'); solvec="$solvec $mc"
    an=$(echo "$out" | sed -n 's/analysis_ms //p')
    out=$(/usr/bin/python3 "$here/bench_scipy.py" "$S" "$N" $dump)
    sc=$(echo "$out" | sed -n 's/scipy_ms //p'); scipy="$scipy $sc"
    scc=$(echo "$out" | sed -n 's/scipy_cpu_ms //p'); scipyc="$scipyc $scc"
    [ $r -eq 0 ] && agree=$(echo "$out" | sed -n 's/^max_abs_diff //p')
    "$build/opl" generate darcy --n "$N" --res "$S" --store-res "$S" --seed $r --threads 1 --quiet \
        -o "$tmp/d$r.h5" > "$tmp/out.txt" 2>&1
    rate=$(sed -n 's/.* \([0-9.e+]*\) samples\/s.*/\1/p' "$tmp/out.txt")
    g=$(awk -v r="$rate" 'BEGIN { printf "%.1f", 1000 / r }'); gen="$gen $g"
    echo "# run $r: opl solve $ms ms (cpu $mc ms; analysis $an ms once), scipy $sc ms (cpu $scc ms)," \
         "opl generate $g ms/sample; load $(cut -d' ' -f1 /proc/loadavg)"
    r=$((r + 1))
done
ms=$(echo $solve | median); mc=$(echo $solvec | median)
sc=$(echo $scipy | median); scc=$(echo $scipyc | median); g=$(echo $gen | median)
echo "S = $S, 1 thread, medians of $REPS runs: opl solve $ms ms/sample, scipy spsolve $sc ms/sample," \
     "ratio scipy/opl $(ratio "$sc" "$ms"); in CPU time: opl $mc ms, scipy $scc ms, ratio $(ratio "$scc" "$mc");" \
     "opl generate (all of a sample) $g ms/sample"
echo "stencil agreement (run 0, sample 0, scipy on opl's coefficient): max |u_opl - u_scipy| ${agree% max_abs_u *}," \
     "max |u| ${agree#* max_abs_u }"
OMP_NUM_THREADS=2 "$build/opl" generate darcy --n "$N" --res "$S" --store-res "$S" --seed 9 --threads 2 --quiet \
    -o "$tmp/t2.h5" > "$tmp/out.txt" 2>&1
rate=$(sed -n 's/.* \([0-9.e+]*\) samples\/s.*/\1/p' "$tmp/out.txt")
echo "opl generate, 2 threads: $(awk -v r="$rate" 'BEGIN { printf "%.1f", 1000 / r }') ms/sample (throughput)"
echo "# end: $(uptime)"

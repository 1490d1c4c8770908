#!/bin/sh
# Darcy generation speed at 421^2 nodes (the FNO resolution): opl (`opl generate darcy`, one
# thread: random field, coefficient, assembly, CHOLMOD numeric factorization and solve, HDF5
# write) against scipy's spsolve on the same stencil (assembly + solve only). Prints per-sample
# milliseconds (median of REPS runs for opl, median over samples for scipy) and the ratio.
# usage: sh experiments/darcy/bench_gen.sh [path/to/opl] [S] [SAMPLES] [REPS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
opl=${1:-$here/../../build/release/opl}
S=${2:-421}
N=${3:-20}
REPS=${4:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_darcy_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "# $(uptime)"
ms_list=""
r=0
while [ $r -lt "$REPS" ]; do
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$opl" generate darcy --n "$N" --res "$S" --store-res "$S" --seed $r \
        --threads 1 --quiet -o "$tmp/d$r.h5" > "$tmp/out.txt" 2>&1
    rate=$(sed -n 's/.* \([0-9.e+]*\) samples\/s.*/\1/p' "$tmp/out.txt")
    ms=$(awk -v r="$rate" 'BEGIN { printf "%.3f", 1000 / r }')
    echo "# opl run $r: $N samples, $rate samples/s = $ms ms/sample"
    ms_list="$ms_list $ms"
    r=$((r + 1))
done
opl_ms=$(echo $ms_list | tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
scipy_ms=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$here/bench_scipy.py" "$S" "$N" | sed -n 's/scipy_ms //p')
echo "S = $S: opl $opl_ms ms/sample, scipy spsolve $scipy_ms ms/sample, ratio scipy/opl $(awk -v a="$scipy_ms" -v b="$opl_ms" 'BEGIN { printf "%.2f", a / b }')"
echo "# $(uptime)"

#!/bin/sh
# run_spiral.sh -- the neural-ODE spiral experiment (experiments/node/results.md): the demo's task
# trained with DP5 (rtol 1e-6, atol 1e-8), Adam lr 1e-3, 2000 iterations of 20 windows x 10
# observations, from the same seed in every row: vanilla, the global error regularizer R_E and
# the local one (unbiased and biased sampling) at several weights lambda, then the continuous
# adjoints on two of the rows. Prints a markdown table (one row per run; columns in spiral.c).
#
# usage: experiments/node/run_spiral.sh [--iters N] [--threads T]
# environment: NODE_SPIRAL (default build/release/node_spiral)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${NODE_SPIRAL:-$root/build/release/node_spiral}
iters=2000
threads=1
while [ $# -gt 0 ]; do
    case "$1" in
        --iters) iters=$2; shift ;;
        --threads) threads=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "run_spiral.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$bin" ] || { echo "run_spiral.sh: $bin not built (sh scripts/build.sh release)" >&2; exit 1; }
export OMP_NUM_THREADS=$threads
run() { echo "+ node_spiral train --iters $iters --threads $threads $*" >&2; "$bin" train --iters "$iters" --threads "$threads" "$@"; }
run --variant vanilla --header
for l in 1 10 100; do run --variant global --lambda $l; done
for v in local local-biased; do
    for l in 10 100 1000; do run --variant $v --lambda $l; done
done
for a in backsolve interp; do
    run --variant vanilla --adjoint $a
    run --variant local --lambda 100 --adjoint $a
done

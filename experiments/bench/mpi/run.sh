#!/bin/sh
# FNO-1d training (s = 1024, modes 16, width 64: 549,569 parameters; global batch 20) on this
# machine, four ways, interleaved round by round so that each round's ratios share the machine's
# load:
#   opl-1x2   opl train fno, 1 process x 2 OpenMP threads
#   opl-2x1   mpirun -np 2 opl train fno, 2 ranks x 1 thread (core/dist.h: batch shards, bucketed
#             allreduce during backward); also the fraction of the training time spent in the
#             gradient sums (opl's own count: time inside MPI calls of the sums, waits included)
#             and, of it, in the final wait (MPI_Wait on the buckets after backward)
#   ddp-2x1   PyTorch DistributedDataParallel, gloo, 2 processes x 1 thread (ddp_fno.py)
#   torch-1x2 PyTorch, 1 process x 2 threads (../torch_fno.py)
# usage: experiments/bench/mpi/run.sh [ROUNDS] > results.md
#        (environment: OPL, PYTHON, WORK; EPOCHS, default 20 (5 steps each, 100 steps in all); OMP_WAIT_POLICY, default passive: on a busy machine
#        spinning OpenMP threads are much slower than sleeping ones, see README.md "Threads")
# Samples/s: opl, the median over epochs 2.. of the CSV's samples_per_s (an epoch's samples over
# its training seconds, batch loading included); torch, the global batch over the median step.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
rounds=${1:-3}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/opl_mpi_bench.XXXXXX")}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$work"
ntrain=100
epochs=${EPOCHS:-20}
[ -f d1024.h5 ] || OMP_NUM_THREADS=2 "$opl" generate burgers --preset fno --n $((ntrain + 2)) --res 1024 \
    --store-res 1024 --T 0.05 --seed 1 --quiet -o d1024.h5 >&2
args="--data d1024.h5 --ntrain $ntrain --ntest 2 --batch 20 --epochs $epochs --seed 1"
med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
csv_rate() { awk -F, 'NR > 2 { print $8 }' "$1" | med; }
csv_train_s() { awk -F, 'NR > 1 { s += $7 } END { print s }' "$1"; }
echo "| round | load (1 min) | opl 1x2 samples/s | opl 2x1 samples/s | DDP gloo 2x1 samples/s | torch 1x2 samples/s | opl 2x1 / DDP | opl 2x1 / opl 1x2 | opl 2x1: time in gradient sums | of which waiting |"
echo "|---|---|---|---|---|---|---|---|---|---|"
: > ratios
for r in $(seq 1 "$rounds"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    rm -f a.h5 a.csv b.h5 b.csv
    OMP_NUM_THREADS=2 "$opl" train fno $args -o a.h5 > a.out
    a=$(csv_rate a.csv)
    OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS "$opl" train fno $args -o b.h5 > b.out
    b=$(csv_rate b.csv)
    comm=$(sed -n 's/.* \([0-9.]*\) s of the steps in the sums.*/\1/p' b.out)
    wait=$(sed -n 's/.* s of the steps in the sums (\([0-9.]*\) s waiting).*/\1/p' b.out)
    frac=$(awk -v c="$comm" -v w="$wait" -v t="$(csv_train_s b.csv)" \
        'BEGIN { printf "%.0f%% (%.2f s of %.2f s) | %.0f%% (%.2f s)", 100 * c / t, c, t, 100 * w / t, w }')
    d=$(OMP_NUM_THREADS=1 "$py" "$here/ddp_fno.py" --procs 2 --threads 1 --iters $((epochs * ntrain / 20)) --warmup 3 |
        tail -n 1 | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p')
    t=$(OMP_NUM_THREADS=2 "$py" "$root/experiments/bench/torch_fno.py" --case fno1d --s 1024 --batch 20 --threads 2 \
        --mode train --iters $((epochs * ntrain / 20)) --warmup 3 | tail -n 1 | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p')
    awk -v r="$r" -v l="$load" -v a="$a" -v b="$b" -v d="$d" -v t="$t" -v f="$frac" 'BEGIN {
        printf "| %d | %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx | %s |\n", r, l, a, b, d, t, b / d, b / a, f }'
    awk -v b="$b" -v d="$d" -v a="$a" -v c="$comm" -v t="$(csv_train_s b.csv)" \
        'BEGIN { printf "%g %g %g\n", b / d, b / a, 100 * c / t }' >> ratios
done
echo
echo "Median over the $rounds rounds: opl 2x1 / DDP $(cut -d' ' -f1 ratios | med | awk '{ printf "%.2fx", $1 }')," \
    "opl 2x1 / opl 1x2 $(cut -d' ' -f2 ratios | med | awk '{ printf "%.2fx", $1 }')," \
    "time in gradient sums $(cut -d' ' -f3 ratios | med | awk '{ printf "%.0f%%", $1 }')"
echo
echo "opl: $("$opl" version); $(grep 'ranks; gradients' b.out | sed 's/^opl train: //')"
echo "torch: $("$py" -c 'import torch; print(torch.__version__)'); $(nproc) cores; OMP_WAIT_POLICY=$OMP_WAIT_POLICY"

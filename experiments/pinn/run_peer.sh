#!/bin/sh
# run_peer.sh -- opl's Burgers PINN beside the same PINN in PyTorch (experiments/pinn/peer_burgers.py:
# nested torch.autograd.grad, Debian's python3-torch), Raissi's setting (8 x 20 tanh, 100 initial /
# boundary points, 10,000 Latin-hypercube points), Adam, alternating the two sides --reps times.
# Prints one line per run: "opl adam iterations/s: X" (from the metrics CSV's seconds column, the 10th,
# iterations 10..N, so start-up and the first touch of the arena are excluded) and "torch adam
# iterations/s: X" (the peer's own timing of its Adam loop), each also as 1 / the median time of
# one iteration (robust to other jobs' bursts on a shared machine), with the load average; then
# the median ratios.
#
# usage: experiments/pinn/run_peer.sh [--iters N] [--threads T] [--reps R] [--out DIR]
# environment: OPL (default build/release/opl), PYTHON (default /usr/bin/python3); OPENBLAS_CORETYPE,
# when set, chooses OpenBLAS's kernels for both sides (Debian's torch calls the same libblas); the
# kernels that ran are printed first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
iters=100 threads=1 reps=3 out=$root/build/pinn_peer
while [ $# -gt 0 ]; do
    case "$1" in
        --iters) iters=$2; shift ;;
        --threads) threads=$2; shift ;;
        --reps) reps=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "run_peer.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$iters" -gt 10 ] 2>/dev/null || { echo "run_peer.sh: --iters must be an integer > 10" >&2; exit 2; }
[ -x "$opl" ] || { echo "run_peer.sh: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
mkdir -p "$out"
echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$opl" --version 2>&1 | sed -n 's/^Core: //p') (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive
: > "$out/rates.txt"
r=1
while [ "$r" -le "$reps" ]; do
    rm -f "$out/opl_$r.h5" "$out/opl_$r.csv"
    "$opl" train pinn --pde burgers --arch mlp --layers 8x20 --optimizer adam --iters "$iters" --points 10000 \
        --boundary-points 100 --seed "$r" --threads "$threads" --quiet -o "$out/opl_$r.h5"
    o=$(awk -F, -v n="$iters" 'NR == 11 { a = $10 } NR == n + 1 { b = $10 } END { printf "%.2f", (n - 10) / (b - a) }' \
        "$out/opl_$r.csv")
    om=$(awk -F, -v n="$iters" 'NR >= 11 && NR <= n + 1 { if (p != "") print $10 - p; p = $10 }' "$out/opl_$r.csv" |
        sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", 1 / v[int((NR + 1) / 2)] }')
    "$py" "$here/peer_burgers.py" --adam "$iters" --lbfgs 0 --threads "$threads" --seed "$r" > "$out/torch_$r.txt" 2>/dev/null
    t=$(awk -F': ' '/^adam iterations\/s: / { print $2 }' "$out/torch_$r.txt")
    tm=$(awk -F': ' '/^adam iterations\/s \(median/ { print $2 }' "$out/torch_$r.txt")
    echo "opl adam iterations/s: $o (median step: $om)"
    echo "torch adam iterations/s: $t (median step: $tm)   $(uptime | sed 's/.*load/load/')"
    echo "$o $t $om $tm" >> "$out/rates.txt"
    r=$((r + 1))
done
awk '{ print $1 / $2 }' "$out/rates.txt" | sort -g | awk '{ v[NR] = $1 } END {
    printf "opl/torch iterations/s (median of %d): %.2fx\n", NR, v[int((NR + 1) / 2)] }'
awk '{ print $3 / $4 }' "$out/rates.txt" | sort -g | awk '{ v[NR] = $1 } END {
    printf "opl/torch median-step iterations/s (median of %d): %.2fx\n", NR, v[int((NR + 1) / 2)] }'

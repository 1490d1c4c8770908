#!/bin/sh
# bench.sh -- the MgNO training step of opl (`opl bench mgno`) beside the authors' PyTorch model
# (MgNO_DC from https://github.com/xlliu2017/MgNO, run by experiments/mgno/bench_peer.py on
# Debian's python3-torch): the darcy-rough configuration (572,661 parameters on both sides,
# printed), batch 8 of N(0, 1) fields at s x s (256), the sum of per-sample relative L2 errors,
# Adam (lr 1e-3). For each repetition and thread count each side runs in its own process, the
# order alternating between repetitions; OMP_WAIT_POLICY=passive (spinning threads on a shared
# machine are slow). Prints the JSON lines, then a markdown table of medians over the
# repetitions: samples/s both sides and the opl / torch ratio, median step (ms), peak RSS both
# sides and their ratio, opl's arena high-water mark.
#
# usage: experiments/mgno/bench.sh PEER_DIR [--reps 3] [--threads "1 2"] [--iters 3] [--warmup 1]
#        [--s 256] [--batch 8] [--out FILE.jsonl]
#   PEER_DIR: the authors' code (the directory holding models.py), e.g. extracted from
#   https://github.com/xlliu2017/MgNO; it is only read, never copied into opl.
# environment: OPL (default build/release/opl), PYTHON (default /usr/bin/python3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
[ $# -ge 1 ] || { sed -n '2,17p' "$0"; exit 2; }
peer=$1; shift
reps=3 threads_list="1 2" iters=3 warmup=1 s=256 batch=8 out=
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift ;;
        --threads) threads_list=$2; shift ;;
        --iters) iters=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --s) s=$2; shift ;;
        --batch) batch=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ -f "$peer/models.py" ] || { echo "bench.sh: $peer has no models.py (the authors' MgNO code)" >&2; exit 1; }
[ -x "$opl" ] || { echo "bench.sh: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
[ -n "$out" ] || out=$(mktemp)
: > "$out"
echo "# $(uptime)"
i=0
for r in $(seq "$reps"); do
    for th in $threads_list; do
        sides="opl torch"
        [ $((i % 2)) -eq 1 ] && sides="torch opl"
        for side in $sides; do
            if [ "$side" = opl ]; then
                OMP_NUM_THREADS=$th "$opl" bench mgno --s "$s" --batch "$batch" --threads "$th" --iters "$iters" \
                    --warmup "$warmup"
            else
                OMP_NUM_THREADS=$th "$py" "$here/bench_peer.py" --peer "$peer" --s "$s" --batch "$batch" \
                    --threads "$th" --iters "$iters" --warmup "$warmup"
            fi >> "$out"
            tail -n 1 "$out"
        done
        i=$((i + 1))
    done
done
echo "# $(uptime)"
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda rs, k: statistics.median(r[k] for r in rs)
pick = lambda side, th: [r for r in rows if r['side'] == side and r['threads'] == th]
r0 = rows[0]
params = sorted({(r['side'], r['params']) for r in rows})
print()
print('MgNO darcy-rough, batch %d, %d^2; parameters: %s; medians of %d runs per cell' % (
    r0['batch'], r0['s'], ', '.join('%s %d' % p for p in params), len(pick(r0['side'], r0['threads']))))
print()
print('| threads | opl samples/s | torch samples/s | ratio | opl ms/step | torch ms/step '
      '| opl peak RSS (MiB) | torch peak RSS (MiB) | RSS torch / opl | opl arena (MiB) |')
print('|---|---|---|---|---|---|---|---|---|---|')
for th in sorted({r['threads'] for r in rows}):
    o, t = pick('opl', th), pick('torch', th)
    if not o or not t:
        continue
    print('| %d | %.3f | %.3f | %.2fx | %.0f | %.0f | %.0f | %.0f | %.2fx | %.0f |' % (
        th, med(o, 'samples_per_s'), med(t, 'samples_per_s'), med(o, 'samples_per_s') / med(t, 'samples_per_s'),
        med(o, 'ms_median'), med(t, 'ms_median'), med(o, 'peak_rss_mib'), med(t, 'peak_rss_mib'),
        med(t, 'peak_rss_mib') / med(o, 'peak_rss_mib'), med(o, 'arena_mib')))
PY

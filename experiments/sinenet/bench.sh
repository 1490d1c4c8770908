#!/bin/sh
# bench.sh -- the SineNet training step of opl (`opl bench sinenet`) beside the authors' PyTorch
# model (sinenet_dual.py, run by experiments/sinenet/bench_peer.py on Debian's python3-torch):
# K = 4 waves, hidden 32, multiplier 1.611, zero padding, 4 input frames of one field -> 1 frame
# (the same parameter count on both sides, printed), batch 16 of N(0, 1) fields at 64 x 64, the
# sum of per-sample relative L2 errors, AdamW; then the forward alone (inference; opl's is the
# evaluator's path, the batch cut into one slice per thread, opl_task_infer_team). Each
# repetition runs each side in its own process, the order alternating; OMP_WAIT_POLICY=passive.
# Prints the JSON lines, then a markdown table of medians: samples/s of training and inference
# both sides and their ratios, peak RSS both sides, opl's arena high-water mark; then the CPU
# seconds per training step and per inference pass (every thread of the process; less sensitive
# than wall time to other load on the machine) and their ratios; then the ratio within each
# repetition's back-to-back pair and the median of those. OPENBLAS_CORETYPE, if set, is
# passed to both sides (torch's own convolutions at batch 16 are oneDNN's, not OpenBLAS's).
#
# usage: experiments/sinenet/bench.sh PEER_DIR [--reps 3] [--threads 2] [--iters 3] [--warmup 1]
#   PEER_DIR: holds pdearena_ref/{__init__.py, sinenet_dual.py, activations.py}, the authors' files
#   from OpenPDE/SineNet/pdearena/pdearena/modules of github.com/divelab/AIRS; read, never copied.
# environment: OPL (default build/release/opl), PYTHON (default /usr/bin/python3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
[ $# -ge 1 ] || { sed -n '2,19p' "$0"; exit 2; }
peer=$1; shift
reps=3 threads_list=2 iters=3 warmup=1 out=
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift ;;
        --threads) threads_list=$2; shift ;;
        --iters) iters=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ -f "$peer/pdearena_ref/sinenet_dual.py" ] || { echo "bench.sh: $peer has no pdearena_ref/sinenet_dual.py" >&2; exit 1; }
[ -x "$opl" ] || { echo "bench.sh: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
[ -n "$out" ] || out=$(mktemp)
: > "$out"
echo "# $(uptime)"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: OpenBLAS picks the kernel)}"
i=0
for r in $(seq "$reps"); do
    for th in $threads_list; do
        sides="opl torch"
        [ $((i % 2)) -eq 1 ] && sides="torch opl"
        for side in $sides; do
            if [ "$side" = opl ]; then
                OMP_NUM_THREADS=$th "$opl" bench sinenet --threads "$th" --iters "$iters" --warmup "$warmup"
            else
                OMP_NUM_THREADS=$th "$py" "$here/bench_peer.py" --peer "$peer" --threads "$th" --iters "$iters" \
                    --warmup "$warmup"
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
print('SineNet K %d, hidden %d, batch %d, %d^2; parameters: %s; medians of %d runs per cell' % (
    r0['waves'], r0['hidden'], r0['batch'], r0['s'], ', '.join('%s %d' % p for p in params),
    len(pick(r0['side'], r0['threads']))))
print()
print('| threads | opl train samples/s | torch train samples/s | ratio | opl infer samples/s | torch infer samples/s '
      '| ratio | opl peak RSS (MiB) | torch peak RSS (MiB) | opl arena (MiB) |')
print('|---|---|---|---|---|---|---|---|---|---|')
for th in sorted({r['threads'] for r in rows}):
    o, t = pick('opl', th), pick('torch', th)
    if not o or not t:
        continue
    print('| %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx | %.0f | %.0f | %.0f |' % (
        th, med(o, 'samples_per_s'), med(t, 'samples_per_s'), med(o, 'samples_per_s') / med(t, 'samples_per_s'),
        med(o, 'infer_samples_per_s'), med(t, 'infer_samples_per_s'),
        med(o, 'infer_samples_per_s') / med(t, 'infer_samples_per_s'),
        med(o, 'peak_rss_mib'), med(t, 'peak_rss_mib'), med(o, 'arena_mib')))
if all('cpu_ms_median' in r for r in rows):
    print()
    print('| threads | opl train CPU s/step | torch train CPU s/step | ratio (torch/opl) | opl infer CPU s | torch infer CPU s '
          '| ratio (torch/opl) |')
    print('|---|---|---|---|---|---|---|')
    for th in sorted({r['threads'] for r in rows}):
        o, t = pick('opl', th), pick('torch', th)
        if not o or not t:
            continue
        oc, tc = med(o, 'cpu_ms_median') / 1e3, med(t, 'cpu_ms_median') / 1e3
        oi, ti = med(o, 'infer_cpu_ms_median') / 1e3, med(t, 'infer_cpu_ms_median') / 1e3
        print('| %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |' % (th, oc, tc, tc / oc, oi, ti, ti / oi))
# the two sides of one repetition run back to back, so the ratio within a pair shares the machine's
# state of that moment; the median of those ratios is the steadier figure on a shared machine
pairs = [(rows[i], rows[i + 1]) for i in range(0, len(rows) - 1, 2)
         if rows[i]['threads'] == rows[i + 1]['threads'] and rows[i]['side'] != rows[i + 1]['side']]
if pairs:
    print()
    print('| threads | train ratio per repetition | median | inference ratio per repetition | median |')
    print('|---|---|---|---|---|')
    for th in sorted({a['threads'] for a, b in pairs}):
        tr, ir = [], []
        for a, b in pairs:
            if a['threads'] != th:
                continue
            o, t = (a, b) if a['side'] == 'opl' else (b, a)
            tr.append(o['samples_per_s'] / t['samples_per_s'])
            ir.append(o['infer_samples_per_s'] / t['infer_samples_per_s'])
        print('| %d | %s | %.2fx | %s | %.2fx |' % (th, ' '.join('%.2f' % v for v in tr), statistics.median(tr),
                                                  ' '.join('%.2f' % v for v in ir), statistics.median(ir)))
PY

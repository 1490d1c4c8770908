#!/bin/sh
# run_bench.sh -- `opl bench node` against torchdiffeq in one run (experiments/node/results.md,
# section 5): the training step of a neural ODE du/dt = MLP(u) (dim-hidden-dim tanh, the same
# initial weights, u0, target and batch on both sides: `opl bench node --export`), dopri5 / DP5
# with the same tolerances and a maximum (and first) step of 1 / steps, so that both sides take
# the same `steps` accepted steps. For each thread count and repetition, each of opl's gradients
# (discrete = store-all, checkpoint, backsolve) and torchdiffeq's (odeint = backpropagation
# through the solver, odeint_adjoint = the continuous adjoint) runs in its own process, the order
# alternating between repetitions. Prints the JSON lines, then a markdown table of medians over
# the repetitions: samples/s both sides and the opl / torchdiffeq ratio, opl's arena high-water
# mark and checkpoints, peak RSS both sides, NFE both sides.
#
# usage: experiments/node/run_bench.sh TORCHDIFFEQ_DIR [--reps R] [--threads "1 2"] [--iters N]
#        [--steps S] [--batch B] [--dim D] [--hidden H]
#   TORCHDIFFEQ_DIR: a checkout of https://github.com/rtqichen/torchdiffeq (its top directory)
# environment: OPL (default build/release/opl), PYTHON (default /usr/bin/python3, with Debian's
#   python3-torch). OMP_WAIT_POLICY=passive is set: spinning threads on a shared machine are slow.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
[ $# -ge 1 ] || { sed -n '2,18p' "$0"; exit 2; }
tdq=$1; shift
reps=3 threads_list="1 2" iters=5 steps=200 batch=32 dim=64 hidden=256
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift ;;
        --threads) threads_list=$2; shift ;;
        --iters) iters=$2; shift ;;
        --steps) steps=$2; shift ;;
        --batch) batch=$2; shift ;;
        --dim) dim=$2; shift ;;
        --hidden) hidden=$2; shift ;;
        *) echo "run_bench.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ -d "$tdq/torchdiffeq" ] || { echo "run_bench.sh: $tdq has no torchdiffeq package" >&2; exit 1; }
[ -x "$opl" ] || { echo "run_bench.sh: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
size="--steps $steps --batch $batch --dim $dim --hidden $hidden"
"$opl" bench node $size --mode discrete --iters 1 --warmup 0 --export "$tmp/peer.txt" > /dev/null
out=$tmp/results.jsonl
: > "$out"
i=0
for r in $(seq "$reps"); do
    for th in $threads_list; do
        cmds="opl:discrete opl:checkpoint opl:backsolve tdq:discrete tdq:backsolve"
        [ $((i % 2)) -eq 1 ] && cmds="tdq:backsolve tdq:discrete opl:backsolve opl:checkpoint opl:discrete"
        for c in $cmds; do
            side=${c%%:*} mode=${c#*:}
            if [ "$side" = opl ]; then
                OMP_NUM_THREADS=$th "$opl" bench node $size --mode "$mode" --threads "$th" --iters "$iters" --warmup 2 --json
            else
                OMP_NUM_THREADS=$th "$py" "$here/bench_peer.py" --torchdiffeq "$tdq" --in "$tmp/peer.txt" \
                    --mode "$mode" --threads "$th" --iters "$iters" --warmup 2
            fi >> "$out"
        done
        i=$((i + 1))
    done
done
cat "$out"
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda rs, k: statistics.median(r[k] for r in rs)
def pick(side, mode, th):
    return [r for r in rows if r['side'] == side and r['mode'] == mode and r['threads'] == th]
r0 = rows[0]
print()
print('MLP %d-%d-%d tanh field, batch %d, %d steps; medians of %d runs per cell' % (
    r0['dim'], r0['hidden'], r0['dim'], r0['batch'], r0['steps'], len(pick(r0['side'], r0['mode'], r0['threads']))))
print()
print('| threads | opl gradient | torchdiffeq | opl samples/s | torchdiffeq samples/s | ratio | opl arena + checkpoints (MiB) '
      '| opl peak RSS (MiB) | torchdiffeq peak RSS (MiB) | NFE forward / backward (opl; torchdiffeq) |')
print('|---|---|---|---|---|---|---|---|---|---|')
pairs = [('discrete', 'discrete', 'odeint'), ('checkpoint', 'discrete', 'odeint'), ('backsolve', 'backsolve', 'odeint_adjoint')]
for th in sorted({r['threads'] for r in rows}):
    for om, tm, tname in pairs:
        o, t = pick('opl', om, th), pick('torchdiffeq', tm, th)
        if not o or not t:
            continue
        print('| %d | %s | %s | %.1f | %.1f | %.1fx | %.2f + %.2f | %.1f | %.1f | %.0f / %.0f; %.0f / %.0f |' % (
            th, 'store-all' if om == 'discrete' else om, tname, med(o, 'samples_per_s'), med(t, 'samples_per_s'),
            med(o, 'samples_per_s') / med(t, 'samples_per_s'), med(o, 'arena_mib'), med(o, 'ckpt_mib'),
            med(o, 'peak_rss_mib'), med(t, 'peak_rss_mib'), med(o, 'nfe_forward'), med(o, 'nfe_backward'),
            med(t, 'nfe_forward'), med(t, 'nfe_backward')))
PY

#!/bin/sh
# run_peer.sh -- opl against torchdiffeq on the spiral's training step, side by side in one run
# (experiments/node/results.md). `node_spiral peer-export` writes the initial weights, one batch
# (20 windows x 10 times) and the tolerances (rtol 1e-6, atol 1e-8); then for each thread count
# and each adjoint (discrete: backpropagation through the solver on both sides; backsolve: opl's
# OPL_NDE_ADJ_BACKSOLVE against torchdiffeq's odeint_adjoint) opl (`node_spiral peer`) and
# peer.py each time K training steps (DP5 / dopri5 forward, mean |pred - y|, backward, Adam)
# in their own process, alternating which goes first. opl runs once per --saveat mode: step (it
# steps onto each of the 10 output times) and dense (outputs from the DP5 interpolant, as
# torchdiffeq's). Prints the JSON lines and a markdown table.
#
# usage: experiments/node/run_peer.sh TORCHDIFFEQ_DIR [--steps K] [--threads "1 2"] [--saveat "step dense"]
#   TORCHDIFFEQ_DIR: a checkout of https://github.com/rtqichen/torchdiffeq (its top directory)
# environment: NODE_SPIRAL (default build/release/node_spiral), PYTHON (default /usr/bin/python3,
#   which has Debian's python3-torch and python3-scipy)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${NODE_SPIRAL:-$root/build/release/node_spiral}
py=${PYTHON:-/usr/bin/python3}
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 2; }
tdq=$1; shift
steps=300
threads_list="1 2"
saveat_list="step dense"
while [ $# -gt 0 ]; do
    case "$1" in
        --steps) steps=$2; shift ;;
        --threads) threads_list=$2; shift ;;
        --saveat) saveat_list=$2; shift ;;
        *) echo "run_peer.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ -d "$tdq/torchdiffeq" ] || { echo "run_peer.sh: $tdq has no torchdiffeq package" >&2; exit 1; }
[ -x "$bin" ] || { echo "run_peer.sh: $bin not built (sh scripts/build.sh release)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" peer-export --out "$tmp/peer.txt"
out=$tmp/results.jsonl
: > "$out"
i=0
for th in $threads_list; do
    for adj in discrete backsolve; do
        opl_cmd() {
            for sa in $saveat_list; do
                OMP_NUM_THREADS=$th "$bin" peer --in "$tmp/peer.txt" --threads "$th" --steps "$steps" --adjoint "$adj" --saveat "$sa"
            done
        }
        tdq_cmd() { OMP_NUM_THREADS=$th "$py" "$here/peer.py" --torchdiffeq "$tdq" --in "$tmp/peer.txt" --threads "$th" --steps "$steps" --adjoint "$adj"; }
        if [ $((i % 2)) -eq 0 ]; then opl_cmd >> "$out"; tdq_cmd >> "$out"; else tdq_cmd >> "$out"; opl_cmd >> "$out"; fi
        i=$((i + 1))
    done
done
cat "$out"
"$py" - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r['threads'], r['adjoint'])
by = {}
for r in rows:
    by.setdefault(key(r), {})[r['side'] + ('/' + r['saveat'] if r['side'] == 'opl' else '')] = r
print()
print('| threads | adjoint | opl outputs | opl samples/s | torchdiffeq samples/s | ratio | CPU ms / step (opl / tdq) | opl peak RSS (MiB) | torchdiffeq peak RSS (MiB) '
      '| forward NFE, first step (opl / tdq) | NFE to the window end, to t = 5 (opl / tdq; tdq with opl\'s controller) '
      '| backward NFE per step (opl / tdq) |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
for k in sorted(by):
  for sa in ('step', 'dense'):
    o, t = by[k].get('opl/' + sa), by[k].get('torchdiffeq')
    if not o or not t:
        continue
    print('| %d | %s | %s | %.0f | %.0f | %.1fx | %.2f / %.2f | %.1f | %.1f | %d / %d | %d, %d / %d, %d; %d | %.1f / %.1f |' % (
        k[0], k[1], sa, o['samples_per_s'], t['samples_per_s'], o['samples_per_s'] / t['samples_per_s'],
        o['cpu_ms_per_step'], t['cpu_ms_per_step'],
        o['vmhwm_kb'] / 1024, t['vmhwm_kb'] / 1024, o['nfe_first'], t['nfe_first'],
        o['nfe_span'], o['nfe_t5'], t['nfe_span'], t['nfe_t5'], t['nfe_t5_opl_controller'],
        o['nfe_backward_per_step'], t['nfe_backward_per_step']))
PY

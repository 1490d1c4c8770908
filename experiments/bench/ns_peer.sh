#!/bin/sh
# ns_peer.sh -- time per Navier-Stokes step of opl (bench/bench_ns.c) against FNO's own data
# generator, data_generation/navier_stokes/ns_2d.py + random_fields.py of
# github.com/zongyi-li/fourier_neural_operator at commit fd1fb7a3, on the CPU, in one run.
#
# usage: experiments/bench/ns_peer.sh [FNO_REPO]
#   FNO_REPO   a bare mirror or a checkout of that repository (argument, or environment variable
#              FNO_REPO; required). Get one with
#                git clone --bare https://github.com/zongyi-li/fourier_neural_operator fno.git
#              The two files are extracted at commit fd1fb7a3 into a temporary directory at run
#              time (git show); they are never copied into this repository.
# environment: STEPS (steps per timed solve, default 500), REPEAT (timed solves, median; default 3),
#              THREADS (default "1 2"), BENCH_NS (default build/release/bench_ns; build it with
#              `meson setup build/release && ninja -C build/release bench_ns`), PYTHON (default
#              /usr/bin/python3, Debian's python3-torch), CASES (grid x batch list, default
#              "256x1 256x20": one trajectory, and ns_2d.py's own setting, 20 trajectories of
#              256^2 stepped as one batch), BATCH20=1 (also batch 20 at 64^2),
#              OMP_WAIT_POLICY (default passive for both sides: on a busy 2-core machine spinning
#              OpenMP threads make 2-thread runs many times slower).
#
# Both sides: 256^2, batch 1, nu = 1e-3, FNO forcing, dt = 1e-4, STEPS steps of ns_2d.py's scheme
# (opl: --scheme fno), initial vorticity from the same Gaussian random field law. The torch side
# calls ns_2d.py's own navier_stokes_2d on device cpu: the wrapper below executes only the import
# statements and function definitions of their unmodified file (ns_2d.py's script part selects
# CUDA and generates a data set at import), with torch.set_num_threads(T) and one inter-op
# thread, in a fresh process per thread count. Printed: ms per step of each side, opl's bare
# FFTW time per step (the same plans executed alone, bench_ns), and the ratios
#   torch / opl   (target >= 5)      opl / bare FFTW   (target <= 1.5).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
repo=${1:-${FNO_REPO:-}}
if [ -z "$repo" ]; then
    echo "ns_peer.sh: give the FNO repository (a bare mirror or a checkout) as an argument or FNO_REPO" >&2
    exit 2
fi
commit=fd1fb7a3
steps=${STEPS:-500}
repeat=${REPEAT:-3}
threads=${THREADS:-"1 2"}
bench=${BENCH_NS:-$root/build/release/bench_ns}
py=${PYTHON:-/usr/bin/python3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [ ! -x "$bench" ]; then
    echo "ns_peer.sh: no bench_ns at $bench (build it: meson setup build/release && ninja -C build/release bench_ns, or set BENCH_NS)" >&2
    exit 2
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "ns_peer.sh: $py cannot import torch (Debian: apt-get install python3-torch, or set PYTHON)" >&2
    exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ns_peer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# --- the peer's files, at the pinned commit, into the temporary directory only
for f in ns_2d.py random_fields.py; do
    if git -C "$repo" cat-file -e "$commit:data_generation/navier_stokes/$f" 2>/dev/null; then
        git -C "$repo" show "$commit:data_generation/navier_stokes/$f" > "$tmp/$f" || exit 1
    elif [ -f "$repo/data_generation/navier_stokes/$f" ]; then
        echo "ns_peer.sh: $repo has no commit $commit; using its working copy of $f" >&2
        cp "$repo/data_generation/navier_stokes/$f" "$tmp/$f" || exit 1
    else
        echo "ns_peer.sh: cannot find data_generation/navier_stokes/$f at $commit in '$repo' (pass a mirror or checkout of github.com/zongyi-li/fourier_neural_operator)" >&2
        exit 2
    fi
done

cat > "$tmp/peer.py" <<'EOF'
# ns_2d.py's navier_stokes_2d on the CPU: run only the imports and function definitions of the
# unmodified file (its module body picks CUDA and writes a data set).
import ast, json, math, os, statistics, sys, time
d, threads, steps, repeat, s, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
import torch
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
sys.path.insert(0, d)
src = open(os.path.join(d, "ns_2d.py")).read()
tree = ast.parse(src)
tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
ns = {}
exec(compile(tree, os.path.join(d, "ns_2d.py"), "exec"), ns)
navier_stokes_2d, GaussianRF = ns["navier_stokes_2d"], ns["GaussianRF"]
device = torch.device("cpu")
torch.manual_seed(0)
GRF = GaussianRF(2, s, alpha=2.5, tau=7, device=device)
t = torch.linspace(0, 1, s + 1, device=device)[0:-1]
X, Y = torch.meshgrid(t, t, indexing="ij")
f = 0.1 * (torch.sin(2 * math.pi * (X + Y)) + torch.cos(2 * math.pi * (X + Y)))
w0 = GRF.sample(batch)
dt = 1e-4
navier_stokes_2d(w0, f, 1e-3, 20 * dt, dt, 1)  # warm-up
T = steps * dt
nsteps = math.ceil(T / dt)  # what ns_2d.py will take
walls = []
for _ in range(repeat):
    t0 = time.perf_counter()
    sol, _t = navier_stokes_2d(w0, f, 1e-3, T, dt, 1)
    walls.append(time.perf_counter() - t0)
assert torch.isfinite(sol).all()
print(json.dumps({"impl": "torch", "threads": threads, "n": s, "batch": batch, "steps": nsteps,
                  "ms_step": 1e3 * statistics.median(walls) / nsteps / batch, "torch": torch.__version__}))
EOF

log=$tmp/results.txt
: > "$log"
run_case() { # n batch
    n=$1 b=$2
    for t in $threads; do
        echo "ns_peer.sh: opl bench_ns n=$n batch=$b threads=$t ..." >&2
        OMP_NUM_THREADS=$t "$bench" --n "$n" --batch "$b" --steps "$steps" --repeat "$repeat" --threads "$t" \
            | grep '^RESULT' >> "$log" || echo "ns_peer.sh: bench_ns failed (n=$n batch=$b threads=$t)" >&2
        echo "ns_peer.sh: torch ns_2d.py n=$n batch=$b threads=$t ..." >&2
        OMP_NUM_THREADS=$t "$py" "$tmp/peer.py" "$tmp" "$t" "$steps" "$repeat" "$n" "$b" \
            | grep '^{' | sed 's/^/TORCH /' >> "$log" || echo "ns_peer.sh: torch peer failed (n=$n batch=$b threads=$t)" >&2
    done
}
cases=${CASES:-"256x1 256x20"}
[ "${BATCH20:-0}" = 1 ] && cases="$cases 64x20"
for c in $cases; do
    run_case "${c%x*}" "${c#*x}"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')
echo "## ns_2d.py (torch $("$py" -c 'import torch; print(torch.__version__)'), float32, CPU) vs opl bench_ns (float64, FFTW_MEASURE)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($cpu), load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=$OMP_WAIT_POLICY, $steps steps per solve, median of $repeat solves"
echo
"$py" - "$log" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        key = (int(kv["n"]), int(kv["batch"]), int(kv["threads"]))
        rows.setdefault(key, {})["opl_" + kv["scheme"]] = float(kv["ms_step"])
        if kv["scheme"] == "fno":
            rows[key]["fftw"] = float(kv["fftw_ms_step"])
        else:
            rows[key]["fftw_" + kv["scheme"]] = float(kv["fftw_ms_step"])
    elif line.startswith("TORCH"):
        j = json.loads(line[6:])
        rows.setdefault((j["n"], j["batch"], j["threads"]), {})["torch"] = j["ms_step"]
def f(x, fmt="%.3f"):
    return fmt % x if x is not None else "-"
print("| grid | batch | threads | torch ns_2d.py ms/step | opl fno ms/step | opl cn-heun ms/step | bare FFTW ms/step (fno step) | torch / opl fno (target >= 5) | opl fno / FFTW (target <= 1.5) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (n, b, t), r in sorted(rows.items(), key=lambda kv: (-kv[0][0], kv[0][1], kv[0][2])):
    tor, fno, cnh, fw = r.get("torch"), r.get("opl_fno"), r.get("opl_cn-heun"), r.get("fftw")
    q1 = tor / fno if tor and fno else None
    q2 = fno / fw if fno and fw else None
    print("| %d^2 | %d | %d | %s | %s | %s | %s | %s | %s |" % (n, b, t, f(tor), f(fno), f(cnh), f(fw), f(q1, "%.2f"), f(q2, "%.2f")))
print()
print("ms/step is per trajectory (batch > 1: wall time / steps / batch). opl cn-heun takes 2 evaluations of N per step.")
EOF

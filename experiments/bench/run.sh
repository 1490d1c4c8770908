#!/usr/bin/env bash
# run.sh -- opl against the PyTorch FNO peer, side by side, in one run on the same machine.
#
# For each case (FNO-1d s=1024, FNO-1d s=8192, FNO-2d-time 64^2 with a 10-step rollout; batch 20)
# x mode (train, infer) x threads (1, 2) it runs `opl bench fno` and experiments/bench/torch_fno.py,
# each in its own process (so peak RSS is per process), alternating which goes first, collects
# their one-line JSON results into results.jsonl and prints a markdown table (table.py) with the
# ratios opl/torch for samples/s and torch/opl for peak RSS. Either side is skipped with a note
# if it is not available. See README.md.
#
# usage: experiments/bench/run.sh [--quick] [--keep-memory | --both-allocators] [--threads "1 2"]
#            [--cases "fno1d:1024 fno1d:8192 fno2d_time:64"] [--modes "train infer"]
#            [--iters N] [--warmup W] [--repeat R] [--out FILE] [--no-opl] [--no-torch]
# environment: OPL (default build/release/opl), PYTHON (default /usr/bin/python3),
#              BENCH_TIMEOUT (seconds per process, default 3600); OPENBLAS_CORETYPE and
#              OMP_WAIT_POLICY, if set, reach both sides.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
py=${PYTHON:-/usr/bin/python3}
tmo=${BENCH_TIMEOUT:-3600}
out=$here/results.jsonl
quick=0
alloc=default              # default | warm | both  (the torch peer's allocator behaviour)
threads_list="1 2"
cases="fno1d:1024 fno1d:8192 fno2d_time:64"
modes="train infer"
iters_opt=""
warmup_opt=""
repeat=1
batch=20
rollout=10
want_opl=1
want_torch=1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --keep-memory) alloc=warm ;;
        --both-allocators) alloc=both ;;
        --threads) threads_list=$2; shift ;;
        --cases) cases=$2; shift ;;
        --modes) modes=$2; shift ;;
        --iters) iters_opt=$2; shift ;;
        --warmup) warmup_opt=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --out) out=$2; shift ;;
        --no-opl) want_opl=0 ;;
        --no-torch) want_torch=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# Iterations per case: enough timed steps for a stable median, few where a step takes seconds.
# Warm-up >= 3 lets a kept allocator reach its steady state (the heap stops growing by step 3).
iters_for() {   # $1 = case, $2 = s
    if [ -n "$iters_opt" ]; then echo "$iters_opt"; return; fi
    if [ $quick = 1 ]; then echo 3; return; fi
    if [ "$1" = fno1d ] && [ "$2" -le 2048 ]; then echo 20; else echo 5; fi
}
warmup_for() {
    if [ -n "$warmup_opt" ]; then echo "$warmup_opt"; elif [ $quick = 1 ]; then echo 2; else echo 3; fi
}

# ---- which sides can run --------------------------------------------------------------------
have_opl=0
if [ $want_opl = 1 ]; then
    if [ -x "$opl" ] && "$opl" bench fno --help >/dev/null 2>&1; then
        have_opl=1
    else
        echo "note: opl side skipped: '$opl bench fno' is not available (build it with" \
             "'meson setup build/release && ninja -C build/release' once the bench verb exists)"
    fi
fi
have_torch=0
if [ $want_torch = 1 ]; then
    if "$py" -c 'import torch' >/dev/null 2>&1; then
        have_torch=1
    else
        echo "note: torch peer absent: '$py -c \"import torch\"' fails (Debian: apt-get install python3-torch)"
    fi
fi
if [ $have_opl = 0 ] && [ $have_torch = 0 ]; then
    echo "run.sh: neither side can run; nothing to do" >&2
    exit 1
fi

# ---- the machine ----------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
# The OpenBLAS both peers load (the alternatives link; opl's own link if opl is there) and the
# kernel it selected for this CPU (OPENBLAS_CORETYPE in the environment overrides it for both).
blas_lib=libopenblas.so.0
if [ $have_opl = 1 ]; then
    blas_lib=$(ldd "$opl" 2>/dev/null | awk '/libopenblas/ {print $3; exit}')
    [ -n "$blas_lib" ] || blas_lib=libopenblas.so.0
fi
blas=$("$py" - "$blas_lib" <<'EOF' 2>/dev/null || echo "unknown (could not load $blas_lib)"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.openblas_get_corename.restype = ctypes.c_char_p
lib.openblas_get_config.restype = ctypes.c_char_p
path = sys.argv[1]
with open("/proc/self/maps") as maps:   # the file the dynamic loader actually mapped
    for ln in maps:
        if "libopenblas" in ln:
            path = ln.split()[-1]
            break
print("core %s (%s; %s)" % (lib.openblas_get_corename().decode(),
                            lib.openblas_get_config().decode(), path))
EOF
)
echo "# opl vs PyTorch FNO, $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
echo
echo "- CPU: $cpu, $(nproc) cores online; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- OpenBLAS kernel: $blas"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
    echo "- **warning: load average $load1 on $(nproc) cores before the first run: the machine is busy," \
         "absolute figures are noisy; compare the ratios of this run only**"
fi
echo "- OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: OpenBLAS picks the kernel)}"
echo "- OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset: libgomp spins before sleeping; on a busy machine try OMP_WAIT_POLICY=passive)}"
[ $have_opl = 1 ] && echo "- opl: $("$opl" version 2>&1 | head -n 1) ($opl)"
[ $have_torch = 1 ] && echo "- torch: $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null) ($py), torch peer allocator: $alloc"
echo "- batch $batch; fno2d_time rollout $rollout; $repeat repeat(s); $([ $quick = 1 ] && echo 'QUICK (smoke test, few iterations)' || echo 'full iterations')"
echo

# ---- the runs -------------------------------------------------------------------------------
: > "$out"
logdir=$(mktemp -d "${TMPDIR:-/tmp}/opl-bench.XXXXXX")
failures=0

run_one() {   # $1 = label, $2 = threads, rest = command; appends its JSON line to $out
    local label=$1 t=$2; shift 2
    local log=$logdir/run$((++nrun))
    printf '%-60s ' "$label" >&2
    OMP_NUM_THREADS=$t timeout "$tmo" "$@" > "$log.out" 2> "$log.err"
    local rc=$?
    local line
    line=$(grep '^{.*"impl"' "$log.out" | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "FAILED (exit $rc); stderr tail:" >&2
        tail -n 5 "$log.err" | sed 's/^/    /' >&2
        failures=$((failures + 1))
        return
    fi
    echo "$line" >> "$out"
    echo "$line" | "$py" -c 'import json,sys; r=json.loads(sys.stdin.read()); print("%10.1f ms  %8.2f samples/s  %7.0f MiB" % (r["ms_median"], r["samples_per_s"], r["peak_rss_mib"]))' >&2 \
        || echo "(unparsable JSON line kept)" >&2
}

nrun=0
pair=0
for _ in $(seq 1 "$repeat"); do
for cs in $cases; do
    c=${cs%%:*}; s=${cs#*:}
    it=$(iters_for "$c" "$s"); wu=$(warmup_for)
    for m in $modes; do
        for t in $threads_list; do
            common=(--case "$c" --s "$s" --threads "$t" --mode "$m" --iters "$it" --warmup "$wu")
            extra=(--batch "$batch")
            [ "$c" = fno2d_time ] && extra+=(--rollout "$rollout")
            sides=()
            [ $have_opl = 1 ] && sides+=(opl)
            if [ $have_torch = 1 ]; then
                case $alloc in
                    default) sides+=(torch) ;;
                    warm) sides+=(torch-warm) ;;
                    both) sides+=(torch torch-warm) ;;
                esac
            fi
            # Alternate which peer goes first, so slow drifts of the shared machine hit both.
            if [ $((pair % 2)) = 1 ]; then
                rev=(); for ((k=${#sides[@]}-1; k>=0; k--)); do rev+=("${sides[k]}"); done
                sides=("${rev[@]}")
            fi
            pair=$((pair + 1))
            for side in "${sides[@]}"; do
                label="$side $c s=$s $m threads=$t (iters $it, warmup $wu)"
                case $side in
                    opl) run_one "$label" "$t" "$opl" bench fno "${common[@]}" ;;
                    torch) run_one "$label" "$t" "$py" "$here/torch_fno.py" "${common[@]}" "${extra[@]}" ;;
                    torch-warm) run_one "$label" "$t" "$py" "$here/torch_fno.py" "${common[@]}" "${extra[@]}" --keep-memory ;;
                esac
            done
        done
    done
done
done
rm -rf "$logdir"

echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg); results in ${out#"$root"/}"
echo
"$py" "$here/table.py" "$out"
[ $failures = 0 ] || { echo; echo "$failures run(s) FAILED (see above)"; exit 1; }

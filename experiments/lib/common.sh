# Shared helpers of the experiment scripts (POSIX sh; sourced, not run).
#
# exp_init NAME      sets $root (the repository), $cfg (the experiment's config folder, from the
#                    caller's $here), $opl (OPL, default build/release/opl), $out (OUT, default
#                    build/experiments/NAME), $threads (THREADS, default 2), creates and enters $out,
#                    exports OMP_WAIT_POLICY=passive (unless set) and appends to $out/run.log.
# run CMD...         echoes "+ CMD" and runs it; its output goes to the terminal and to run.log;
#                    a failing CMD stops the script (the scripts run under set -e).
# runlog LOG CMD...  the same, also keeping the output alone in LOG (for parsing).
# timed LOG CMD...   runlog under /usr/bin/time -v: LOG.time gets the wall time and peak RSS.
# wall_of LOG        "h:mm:ss" wall time of a timed command; secs_of LOG: the same in seconds;
#                    rss_of LOG: its peak resident set in MiB.
# l2_of LOG          "mean median worst n" of the `opl eval` summary line in LOG.
# fmt3 X             X with 3 significant digits.
# machine_md         markdown lines: CPU model, cores, memory, threads, date, commit, binary.
#
# Every command is echoed before it runs, so run.log is the exact record of what ran.

exp_init() {
    root=$(cd "$here/../.." && pwd)
    cfg=$here
    opl=${OPL:-$root/build/release/opl}
    case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
    out=${OUT:-$root/build/experiments/$1}
    case "$out" in /*) ;; *) out=$(pwd)/$out ;; esac
    threads=${THREADS:-2}
    # OpenMP threads that spin at barriers are much slower than sleeping ones on a busy machine
    # (experiments/bench/README.md).
    export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
    if [ ! -x "$opl" ]; then
        echo "$1: '$opl' not found; build it first: sh scripts/build.sh release (or set OPL=...)" >&2
        exit 1
    fi
    mkdir -p "$out"
    cd "$out"
    log=$out/run.log
    echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $0 (opl: $opl, threads: $threads, out: $out)" >> "$log"
}

runlog() {
    _l=$1
    shift
    echo "+ $*" | tee -a "$log"
    _rc=0
    "$@" > "$_l" 2>&1 || _rc=$?
    tee -a "$log" < "$_l"
    if [ "$_rc" != 0 ]; then
        echo "command failed with status $_rc: $*" | tee -a "$log" >&2
        return "$_rc"
    fi
}

run() { runlog "$out/.last.log" "$@"; }

timed() {
    _l=$1
    shift
    runlog "$_l" /usr/bin/time -v -o "$_l.time" "$@"
}

wall_of() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1.time"; }
secs_of() {
    wall_of "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.0f\n", s }'
}
rss_of() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1.time" | awk '{ printf "%.0f\n", $1 / 1024 }'; }
l2_of() {
    sed -n 's/^test relative L2: mean \([^ ]*\) median \([^ ]*\) worst \([^ ]*\) (n = \([0-9]*\)).*/\1 \2 \3 \4/p' "$1" |
        tail -1
}
fmt3() {
    awk -v x="$1" 'BEGIN { if (x == "") print "-"; else if (x + 0 >= 1e-3 || x + 0 == 0) printf "%.3g\n", x;
                           else printf "%.2e\n", x }'
}

machine_md() {
    _cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    _n=$(grep -c '^processor' /proc/cpuinfo)
    _mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    _rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
    _dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
    _prec=$(sed -n 's/.* thread[s]*, \([a-z]*\) precision$/\1/p' "$out"/*.log 2>/dev/null | head -1)
    echo "- machine: $_cpu, $_n cores, $_mem RAM, shared with other work (speeds drift 20-40 % between runs)"
    echo "- threads: $threads (--threads $threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY); networks in ${_prec:-single} precision"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); binary $opl (repository at $_rev$_dirty when this was written)"
}

# csv_median CSV COLUMN: the median of a column of a metrics CSV (MODEL.csv) over epochs >= 2
# (epoch 1 includes FFTW planning and first-touch costs).
csv_median() {
    awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 >= 2 && c { v[n++] = $c } END {
        if (!n) { print ""; exit }
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        print (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) }' "$1"
}

# epoch_parts CSV: "TRAIN_S TEST_S" median seconds per epoch of training and of the test pass.
epoch_parts() {
    _tr=$(csv_median "$1" train_seconds)
    _all=$(csv_median "$1" seconds)
    awk -v a="$_tr" -v b="$_all" 'BEGIN { t = b - a; if (t < 0) t = 0; printf "%.3f %.3f\n", a, t }'
}

# estimate_h CSV NTRAIN NTEST NTRAIN_FULL NTEST_FULL EPOCHS_FULL [FACTOR]: hours of a full run,
# from the measured median epoch of CSV scaled by the sample counts (and FACTOR per sample,
# default 1, for a longer rollout or time axis).
estimate_h() {
    set -- "$@" 1
    epoch_parts "$1" | awk -v n="$2" -v m="$3" -v N="$4" -v M="$5" -v E="$6" -v f="$7" \
        '{ printf "%.1f\n", E * f * ($1 * N / n + $2 * M / m) / 3600 }'
}

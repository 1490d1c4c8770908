#!/bin/sh
# `opl bench mgno` (TAP on stdout): --quick prints one well-formed JSON line (every field, numbers
# where numbers belong, the darcy-rough parameter count 572661, a finite first loss), the same
# first loss twice for the same seed and another for another seed, --preset darcy-smooth, and bad
# input for its flags. usage: sh tests/cli/test_cli_bench_mgno.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_bench_mgno.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_bench_mgno.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

num='[0-9][0-9.]*'
line='^\{"side": "opl", "model": "mgno", "preset": "darcy-rough", "params": 572661, "s": 32, "batch": 2, '
line="$line\"threads\": 1, \"samples_per_s\": $num, \"ms_median\": $num, \"ms_min\": $num, \"arena_mib\": $num, \"arena_forward_mib\": $num, \"grad_high_mib\": $num, \"release\": 1, "
line="$line\"peak_rss_mib\": $num, \"loss_first\": $num(e[-+][0-9]+)?, \"iters\": 2, \"warmup\": 1, \"precision\": \"(single|double)\"\\}$"
run "$opl" bench mgno --quick --threads 1
ok $rc "bench mgno --quick (exit $rc)"
[ $rc -eq 0 ] || show_err
cp out.txt a.txt
[ "$(lines a.txt)" -eq 1 ] && grep -Eq "$line" a.txt
ok $? "one well-formed JSON line: the darcy-rough preset's 572661 parameters, s 32, batch 2, 1 thread"
[ $? -eq 0 ] || sed 's/^/#   /' a.txt
awk -v sps="$(field a.txt samples_per_s)" -v med="$(field a.txt ms_median)" -v mn="$(field a.txt ms_min)" \
    -v ar="$(field a.txt arena_mib)" -v af="$(field a.txt arena_forward_mib)" -v rss="$(field a.txt peak_rss_mib)" -v l="$(field a.txt loss_first)" \
    'BEGIN { exit !(sps > 0 && mn > 0 && mn <= med && af > 0 && af < ar && rss >= ar && l > 0 && l < 1e6) }'
ok $? "positive rate, fastest step <= median, the forward arena below the whole step's, within the peak RSS, a positive finite loss"
# the loss of N(0, 1) targets against a near-zero initial output: ~1 per sample, 2 samples
awk -v l="$(field a.txt loss_first)" 'BEGIN { exit !(l > 1 && l < 3) }'
ok $? "first loss ~ batch size: the sum of per-sample relative L2 errors ($(field a.txt loss_first))"
# --memory: the tape by op kind after the JSON line; --no-release keeps every activation: the same
# first loss, a larger forward arena
run "$opl" bench mgno --quick --threads 1 --memory
[ $rc -eq 0 ] && head -n 1 out.txt | grep -Eq "$line" && grep -Eq "^\| conv_transpose \| [0-9]+ \| $num \| 0\.0 \| $num \|" out.txt &&
    grep -q "^| total |" out.txt && grep -q "^arena: high-water" out.txt &&
    [ "$(field out.txt loss_first)" = "$(field a.txt loss_first)" ]
ok $? "--memory: the JSON line, then the tape by op kind (no transposed convolution's output read by backward) and the totals"
[ $? -eq 0 ] || sed 's/^/#   /' out.txt
awk '/^\| total \|/ { split($0, f, "|"); exit !(f[6] + 0 > 0 && f[7] + 0 <= 0.05 * (f[4] + 0)) }' out.txt
ok $? "--memory: outputs are released, and those neither read by backward nor released are the prediction's few bytes"
run "$opl" bench mgno --quick --threads 1 --no-release
[ $rc -eq 0 ] && grep -q '"release": 0' out.txt && [ "$(field out.txt loss_first)" = "$(field a.txt loss_first)" ] &&
    awk -v on="$(field a.txt arena_forward_mib)" -v off="$(field out.txt arena_forward_mib)" 'BEGIN { exit !(off > 1.3 * on) }'
ok $? "--no-release: the same first loss, a forward arena above 1.3x the released one ($(field out.txt arena_forward_mib) vs $(field a.txt arena_forward_mib) MiB)"
run "$opl" bench mgno --quick --threads 1
[ $rc -eq 0 ] && [ "$(field out.txt loss_first)" = "$(field a.txt loss_first)" ]
ok $? "the same seed gives the same first loss"
run "$opl" bench mgno --quick --threads 1 --seed 5
[ $rc -eq 0 ] && [ "$(field out.txt loss_first)" != "$(field a.txt loss_first)" ]
ok $? "another seed gives another first loss"
run "$opl" bench mgno --preset darcy-smooth --s 16 --batch 2 --iters 1 --warmup 0
[ $rc -eq 0 ] && grep -q '"preset": "darcy-smooth", "params": [1-9][0-9]*, "s": 16, ' out.txt &&
    [ "$(field out.txt params)" != 572661 ]
ok $? "--preset darcy-smooth at s 16 (exit $rc)"
run "$opl" bench mgno --help
[ $rc -eq 0 ] && has "--preset" out.txt && has "--batch" out.txt; ok $? "bench mgno --help (exit $rc)"
run "$opl" bench --help
[ $rc -eq 0 ] && has "mgno" out.txt; ok $? "bench --help lists mgno"

# bad input: exit 2, the message names the flag and the value
bad() { # expected-message description args...
    m=$1 d=$2
    shift 2
    usage_error "$m" "$d" "$opl" bench mgno "$@"
}
bad "--s 48: MgNO darcy-rough has 6 levels, so s must be a multiple of 32" "--s 48" --s 48 --iters 1
bad "unknown preset 'fno'" "--preset fno" --preset fno
bad "--batch 1..65536" "--batch 0" --batch 0
bad "--iters >= 1" "--iters 0" --iters 0
bad "unknown" "an unknown option" --quick --frobnicate 1
echo "1..$n"

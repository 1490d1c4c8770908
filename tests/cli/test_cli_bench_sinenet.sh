#!/bin/sh
# `opl bench sinenet` (TAP on stdout): --quick prints one well-formed JSON line (every field,
# numbers where numbers belong, the quick model's 133317 parameters, a finite first loss, inference
# in one slice on one thread and in two on two); the same
# first loss twice for the same seed and another for another seed; --no-release gives the same first
# loss with a larger forward arena (the released intermediates of operators/sinenet.c); --padding
# circular runs; bad input for its flags. usage: sh tests/cli/test_cli_bench_sinenet.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_bench_sinenet.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_bench_sinenet.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

num='[0-9][0-9.]*'
line='^\{"side": "opl", "model": "sinenet", "waves": 1, "hidden": 4, "mult": 2, "padding": "zeros", "params": 133317, '
line="$line\"s\": 16, \"batch\": 2, \"threads\": 1, \"samples_per_s\": $num, \"ms_median\": $num, \"ms_min\": $num, "
line="$line\"arena_mib\": $num, \"arena_forward_mib\": $num, \"release\": 1, \"peak_rss_mib\": $num, "
line="$line\"infer_samples_per_s\": $num, \"loss_first\": $num(e[-+][0-9]+)?, \"cpu_ms_median\": $num, "
line="$line\"infer_cpu_ms_median\": $num, \"iters\": 2, \"warmup\": 1, \"precision\": \"(single|double)\", "
line="$line\"openblas_coretype\": \"[A-Za-z0-9]*\", \"infer_slices\": 1\\}$"
run "$opl" bench sinenet --quick --threads 1
ok $rc "bench sinenet --quick (exit $rc)"
[ $rc -eq 0 ] || show_err
cp out.txt a.txt
[ "$(lines a.txt)" -eq 1 ] && grep -Eq "$line" a.txt
ok $? "one well-formed JSON line: 133317 parameters (K 1, hidden 4), s 16, batch 2, 1 thread"
[ $? -eq 0 ] || sed 's/^/#   /' a.txt
awk -v sps="$(field a.txt samples_per_s)" -v med="$(field a.txt ms_median)" -v mn="$(field a.txt ms_min)" \
    -v inf="$(field a.txt infer_samples_per_s)" -v cpu="$(field a.txt cpu_ms_median)" \
    -v ar="$(field a.txt arena_mib)" -v af="$(field a.txt arena_forward_mib)" -v l="$(field a.txt loss_first)" \
    'BEGIN { exit !(sps > 0 && inf > 0 && cpu > 0 && mn > 0 && mn <= med && af > 0 && af <= ar && l > 1 && l < 3) }'
ok $? "positive rates and CPU time, fastest step <= median, the forward arena within the step's, first loss ~ batch size"
run "$opl" bench sinenet --quick --threads 1
[ $rc -eq 0 ] && [ "$(field out.txt loss_first)" = "$(field a.txt loss_first)" ]
ok $? "the same seed gives the same first loss"
run "$opl" bench sinenet --quick --threads 1 --seed 5
[ $rc -eq 0 ] && [ "$(field out.txt loss_first)" != "$(field a.txt loss_first)" ]
ok $? "another seed gives another first loss"
# a model large enough for the arena's MiB to show the released intermediates
big="--s 64 --batch 2 --waves 1 --hidden 8 --iters 1 --warmup 0 --threads 1"
run "$opl" bench sinenet $big
cp out.txt r.txt
run "$opl" bench sinenet $big --no-release
[ $rc -eq 0 ] && grep -q '"release": 0' out.txt && [ "$(field out.txt loss_first)" = "$(field r.txt loss_first)" ] &&
    awk -v on="$(field r.txt arena_forward_mib)" -v off="$(field out.txt arena_forward_mib)" 'BEGIN { exit !(off > 1.1 * on) }'
ok $? "--no-release: the same first loss, a forward arena above 1.1x the released one ($(field out.txt arena_forward_mib) vs $(field r.txt arena_forward_mib) MiB)"
run "$opl" bench sinenet --quick --threads 2
[ $rc -eq 0 ] && grep -q '"threads": 2, ' out.txt && grep -q '"infer_slices": 2}$' out.txt &&
    [ "$(field out.txt loss_first)" = "$(field a.txt loss_first)" ]
ok $? "--threads 2: inference in 2 slices (the batch of 2 cut over a team of 2), the same first loss"
run "$opl" bench sinenet --quick --threads 1 --padding circular
[ $rc -eq 0 ] && grep -q '"padding": "circular", "params": 133317' out.txt
ok $? "--padding circular (exit $rc)"
run "$opl" bench sinenet --help
[ $rc -eq 0 ] && has "--no-release" out.txt && has "--waves" out.txt; ok $? "bench sinenet --help (exit $rc)"

# bad input: exit 2, the message names the flag and the value
bad() { # expected-message description args...
    m=$1 d=$2
    shift 2
    usage_error "$m" "$d" "$opl" bench sinenet "$@"
}
bad "--s a multiple of 16" "--s 24" --s 24 --iters 1
bad "--padding expects zeros or circular, got 'reflect'" "--padding reflect" --quick --padding reflect
bad "unknown" "an unknown option" --quick --frobnicate 1
echo "1..$n"

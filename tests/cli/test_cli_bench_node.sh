#!/bin/sh
# `opl bench node` (TAP on stdout): --quick prints a header line and one well-formed table row per
# mode (store-all and checkpointed: the same accepted steps and forward evaluations; the backward
# replays s evaluations per step; the store-all arena larger), --json lines, --export's file,
# every mode, and bad input for its flags. usage: sh tests/cli/test_cli_bench_node.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_bench_node.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_bench_node.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

num='[0-9][0-9.]*'
row() { # mode: the table row of that mode, each field a number
    grep -E "^\| $1 \| $num \| $num \| $num \| $num \| $num \| $num \| $num \| $num \| $num \| $num \|$" out.txt
}
run "$opl" bench node --quick
ok $rc "bench node --quick (exit $rc)"
[ $rc -eq 0 ] || show_err
head -n 1 out.txt | grep -q "^opl bench node: du/dt = MLP(u), 8-16-8 tanh, batch 4, dp5, 20 steps on \[0, 1\]"
ok $? "a header line naming the field, batch, solver and steps"
sed -n 2p out.txt | grep -q '^| mode | samples/s | ms/step median | ms/step min | accepted | rejected | NFE forward | NFE backward | arena MiB | checkpoints MiB | peak RSS MiB |$'
ok $? "the table's column names"
[ "$(wc -l < out.txt)" -eq 5 ] && row checkpoint > ck.txt && row discrete > st.txt
ok $? "two well-formed rows: checkpoint, then discrete (store-all)"
# fields of a row split at '|': 2 mode 3 samples/s 4 median 5 min 6 accepted 7 rejected 8 NFE forward
# 9 NFE backward 10 arena 11 checkpoints 12 peak RSS
f() { awk -F'|' -v k="$2" '{print $k + 0}' "$1"; }
[ "$(f ck.txt 6)" = 20 ] && [ "$(f st.txt 6)" = 20 ] && [ "$(f ck.txt 7)" = 0 ] && [ "$(f ck.txt 8)" = 121 ] &&
    [ "$(f st.txt 8)" = 121 ] && [ "$(f ck.txt 9)" = 140 ] && [ "$(f st.txt 9)" = 0 ] &&
    awk -v a="$(f st.txt 10)" -v b="$(f ck.txt 10)" -v s="$(f ck.txt 3)" -v r="$(f st.txt 12)" \
        'BEGIN {exit !(a > b && s > 0 && r > 0)}'
ok $? "20 accepted steps and 121 forward evaluations in both; the replay's 7 x 20 backward evaluations; a larger store-all arena"

run "$opl" bench node --quick --json --mode backsolve --solver tsit5
[ $rc -eq 0 ] && [ "$(wc -l < out.txt)" -eq 1 ] &&
    grep -q '^{"side": "opl", "mode": "backsolve", "solver": "tsit5", "steps": 20, .*"accepted": 20, .*"nfe_backward": [1-9]' out.txt
ok $? "--json --mode backsolve --solver tsit5: one JSON line with backward evaluations (exit $rc)"
for m in discrete checkpoint interp; do
    run "$opl" bench node --quick --mode $m --solver bs3
    [ $rc -eq 0 ] && [ "$(wc -l < out.txt)" -eq 4 ] && row $m > /dev/null
    ok $? "--mode $m --solver bs3: one row (exit $rc)"
done
run "$opl" bench node --quick --mode discrete --export peer.txt
[ $rc -eq 0 ] && head -n 1 peer.txt | grep -q '^opl-bench-node 1$' && grep -q '^u0 32 ' peer.txt &&
    grep -q '^net.0.weight 128 ' peer.txt && grep -q '^net.1.bias 8 ' peer.txt && grep -q '^steps 20$' peer.txt
ok $? "--export writes the settings, u0 and the weights (exit $rc)"
run "$opl" bench node --help
[ $rc -eq 0 ] && has "--steps" out.txt && has "--mode" out.txt; ok $? "bench node --help (exit $rc)"
run "$opl" bench --help
[ $rc -eq 0 ] && has "node" out.txt; ok $? "bench --help lists node"

# bad input: exit 2, the message names the flag and the value
bad() { # expected-message description args...
    m=$1 d=$2
    shift 2
    usage_error "$m" "$d" "$opl" bench node "$@"
}
bad "--mode expects both, discrete, checkpoint, backsolve or interp, got 'all'" "--mode all" --mode all
bad "--solver expects dp5, tsit5 or bs3, got 'rk4'" "--solver rk4" --solver rk4
bad "--steps 1..1000000" "--steps 0" --steps 0 --iters 1
bad "--batch" "--batch 0" --batch 0
bad "--hidden" "--hidden 0" --hidden 0
bad "iters" "--iters 0" --iters 0
bad "steps" "--steps -3" --steps -3
bad "--export: cannot write 'nodir/peer.txt'" "--export into a missing directory" --quick --export nodir/peer.txt
bad "unknown" "an unknown option" --quick --frobnicate 1
echo "1..$n"

#!/bin/sh
# Experiment 2's script (experiments/node/run_fno.sh) runs end to end in its tiny mode (TAP on
# stdout): generate (5 and 3 snapshots), four trainings (vanilla, global, local unbiased, local
# biased), eight evals; it prints the vanilla NFE table (one row per epoch) and one well-formed
# row per variant with finite numbers (test NFE >= that of one step per output time, relative
# L2s, a prediction time, ratios to vanilla; the local rows charge the local step's 8
# evaluations); a rerun keeps the trainings and gives the same evaluations; --round 2 (dense
# output, rtol 1e-5, the pilot's lambda R / loss, vanilla's step table from node_steps beside
# opl); a bad option exits 2 and a missing opl exits 1.
# usage: sh tests/experiments/test_node_fno.sh path/to/run_fno.sh path/to/opl
set -u
script=${1:?usage: test_node_fno.sh path/to/run_fno.sh path/to/opl}
opl=${2:?usage: test_node_fno.sh path/to/run_fno.sh path/to/opl}
case "$script" in /*) ;; *) script=$(pwd)/$script ;; esac
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_node_fno.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

OPL=$opl sh "$script" --smoke --dir "$tmp/run" > out.txt 2> err.txt
rc=$?
ok $rc "run_fno.sh --smoke exits 0 ($(tail -n 3 err.txt | tr '\n' ' '))"

# | epochs | mean NFE per batch | accepted per batch | test NFE |: epochs 1 and 2, NFE >= 2 + 6 x 2
# (two output times in a window of 3 snapshots), test NFE >= 2 + 6 x 5 (five output times)
rows=$(awk -F'|' 'NF == 6 && $2 ~ /^ [0-9]+-[0-9]+ $/ && $3 + 0 >= 14 && $4 + 0 >= 2 && $5 + 0 >= 32 { k++ } END { print k + 0 }' out.txt)
ok $([ "$rows" -eq 2 ] && echo 0 || echo 1) "vanilla NFE table: one well-formed row per epoch (got $rows)"

# | variant | lambda | time | fwd + local; last | loss | L2 (median) | NFE (min-max) | acc / rej | ms | x | x |
#   L2 last 25 | NFE, acc / rej, L2 (3 snapshots) | x, x |
for v in "vanilla 0 0" "global 0.1 0" "local-unbiased 1 8" "local-biased 1 8"; do
    set -- $v
    good=$(awk -F'|' -v v="$1" -v l="$2" -v x="$3" 'NF == 16 && $2 == " " v " " && $3 == " " l " " {
            split($5, a, /[+;]/)
            if ($4 + 0 >= 0 && a[1] + 0 >= 14 && a[2] + 0 == x && $6 + 0 > 0 && $6 !~ /nan|inf/ &&
                $7 + 0 > 0 && $7 !~ /nan|inf/ && $8 + 0 >= 32 && $9 ~ /^ [0-9.]+ \/ [0-9.]+ $/ &&
                $10 + 0 > 0 && $11 ~ /^ [0-9.]+x $/ && $12 ~ /^ [0-9.]+x $/ && $13 + 0 > 0 && $13 !~ /nan|inf/ &&
                $14 ~ /^ [0-9.]+, [0-9.]+ \/ [0-9.]+, [0-9.e+-]+ $/ && $14 + 0 >= 20 && $15 ~ /^ [0-9.]+x, [0-9.]+x $/)
                print "yes" }' out.txt)
    ok $([ "$good" = yes ] && echo 0 || echo 1) "row of $1 (lambda $2): finite numbers, local step charged $3 evaluations"
done
ok $(grep -q '^| vanilla | 0 |.*| 1.000x | 1.000x | [0-9.]* | .* | 1.000x, 1.000x |$' out.txt && echo 0 || echo 1) "vanilla is its own reference (1.000x)"
ok $(grep -q '^reference solver per trajectory: [0-9.e+-]* s (etdrk4' out.txt && echo 0 || echo 1) \
    "the reference solver's time per trajectory is printed"
ok $([ -f run/burgers.h5 ] && [ -f run/burgers_t3.h5 ] && [ -f run/vanilla.csv ] && [ -f run/local-biased-1.eval2 ] &&
     echo 0 || echo 1) "data, metrics and evaluations are kept in --dir"

# A rerun keeps the four trainings and evaluates them again: the same NFE and errors.
OPL=$opl sh "$script" --smoke --dir "$tmp/run" > out3.txt 2> err3.txt
rc=$?
cols() { awk -F'|' 'NF == 16 && $3 ~ /^ [0-9.]+ $/ { print $2, $3, $6, $7, $8, $9, $11, $12, $13, $14, $15 }' "$1"; }
ok $([ $rc -eq 0 ] && [ "$(grep -c 'done before, kept' err3.txt)" -eq 4 ] && [ "$(cols out.txt)" = "$(cols out3.txt)" ] &&
     [ "$(cols out3.txt | wc -l)" -eq 4 ] && echo 0 || echo 1) "a rerun keeps the trainings and gives the same NFE and errors"

# Round 2 (dense output, rtol 1e-5) in its tiny mode: the pilot's lambda R / loss row per
# pilot run, the vanilla table, one row per variant whose NFE needs no step per output time
# (dense output: fewer than 2 + 6 x 5 is possible) and whose local rows charge 8 evaluations
# from the CSV, and lambda R / loss > 0 for the regularized rows, 0 for vanilla.
steps=$(dirname "$opl")/node_steps
OPL=$opl NODE_STEPS=$steps sh "$script" --smoke --round 2 --dir "$tmp/run_r2" > out4.txt 2> err4.txt
rc=$?
ok $rc "run_fno.sh --smoke --round 2 exits 0 ($(tail -n 3 err4.txt | tr '\n' ' '))"
ok $(grep -q -- '--rtol 1e-5 --atol 1e-7 --saveat dense' err4.txt && [ "$(grep -c '^| \(global\|local-biased\) | [0-9]* | 1: [0-9.e+-]* |$' out4.txt)" -eq 2 ] &&
     echo 0 || echo 1) "round 2: dense output at rtol 1e-5 and the pilot's two rows of lambda R / loss"
for v in "vanilla 0 0" "global 0.1 0" "local-unbiased 1 8" "local-biased 1 8"; do
    set -- $v
    good=$(awk -F'|' -v v="$1" -v l="$2" -v x="$3" 'NF == 16 && $2 == " " v " " && $3 == " " l " " {
            split($5, a, /[+;]/); split($6, g, /;/)
            if ($4 + 0 >= 0 && a[1] + 0 >= 8 && a[2] + 0 == x && a[4] + 0 == x &&
                ((l == 0 && g[1] + 0 == 0 && g[2] + 0 == 0) || (l > 0 && g[1] + 0 > 0 && g[2] + 0 > 0)) &&
                $7 + 0 > 0 && $8 + 0 > 0 && $8 !~ /nan|inf/ && $9 + 0 >= 8 && $10 ~ /^ [0-9.]+ \/ [0-9.]+ $/ &&
                $11 + 0 > 0 && $12 ~ /^ [0-9.]+x $/ && $13 ~ /^ [0-9.]+x $/ && $14 + 0 > 0 && $15 ~ /^ [0-9.]+x $/)
                print "yes" }' out4.txt)
    ok $([ "$good" = yes ] && echo 0 || echo 1) "round 2 row of $1 (lambda $2): finite numbers, local step $3 evaluations, lambda R / loss"
done
if [ -x "$steps" ]; then
    ok $(grep -q '^# model vanilla.h5, sample 11: [0-9]* accepted' out4.txt && grep -q '^# EEst: mean' out4.txt && echo 0 || echo 1) \
        "round 2 ends with vanilla's step table (node_steps)"
else
    ok 0 "round 2's step table # SKIP node_steps not built"
fi
ok $([ ! -f run_r2/burgers_t3.h5 ] && [ -f run_r2/pilot/global-10.csv ] && echo 0 || echo 1) "round 2: no 3-snapshot file; the pilot kept in --dir"
sh "$script" --round 3 > out2.txt 2> err2.txt
ok $([ $? -eq 2 ] && grep -q "round expects 1 or 2" err2.txt && echo 0 || echo 1) "--round 3: exit 2 naming the option"

sh "$script" --jobs 3 > out2.txt 2> err2.txt
ok $([ $? -eq 2 ] && grep -q "jobs expects 1 or 2" err2.txt && echo 0 || echo 1) "--jobs 3: exit 2 naming the option"
sh "$script" --bogus > out2.txt 2> err2.txt
ok $([ $? -eq 2 ] && grep -q "unknown option '--bogus'" err2.txt && echo 0 || echo 1) "unknown option: exit 2 naming it"
OPL=$tmp/missing/opl sh "$script" --smoke --dir "$tmp/run2" > out2.txt 2> err2.txt
ok $([ $? -eq 1 ] && grep -q "not built" err2.txt && echo 0 || echo 1) "a missing opl: exit 1"
echo "1..$n"

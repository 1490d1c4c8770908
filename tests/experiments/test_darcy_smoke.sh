#!/bin/sh
# experiments/darcy/run.sh end to end at a tiny size (--quick): it exits 0 and writes a table with
# the three runs (FNO-2d and MgNO on the odd 21^2 grid, MgNO darcy-rough at 32^2), each with its
# parameter count and a finite test relative L2, the rough run a finite H1 as well; the training
# logs end in their metrics CSVs; `opl eval --h1` works on the odd grid (TAP on stdout).
# usage: sh tests/experiments/test_darcy_smoke.sh experiments/darcy/run.sh path/to/opl
set -u
script=${1:?usage: test_darcy_smoke.sh run.sh opl}
opl=${2:?opl}
for v in script opl; do
    eval "p=\$$v"
    case "$p" in /*) ;; *) eval "$v=\$(pwd)/\$p" ;; esac
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_darcy_smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

OPL=$opl THREADS=2 sh "$script" --quick "$tmp/out" > "$tmp/stdout.txt" 2>&1
rc=$?
ok $rc "run.sh --quick exits 0 (exit $rc)"
[ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/stdout.txt" | tail -n 8
t=$tmp/out/summary.md
# | model | parameters | samples | epochs | wall | l2 | h1 |
fin() { awk -F'|' -v m="$1" -v col="$2" '$2 ~ m && $col + 0 > 0 && $col !~ /nan|inf/ { c++ } END { exit !(c == 1) }' "$t"; }
fin "FNO-2d \\(21" 7 && grep -q "| FNO-2d (21^2) | 2368001 |" "$t"
ok $? "FNO-2d row: 2368001 parameters (modes 12, width 32), a finite test L2"
fin "MgNO darcy-smooth \\(21" 7 && grep -q "| MgNO darcy-smooth (21^2) | 738573 |" "$t"
ok $? "MgNO darcy-smooth row on the odd 21^2 grid: 738573 parameters, a finite test L2"
fin "MgNO darcy-rough \\(32" 7 && fin "MgNO darcy-rough \\(32" 8 && grep -q "| MgNO darcy-rough (32^2) | 572661 |" "$t"
ok $? "MgNO darcy-rough row: 572661 parameters, finite test L2 and H1"
[ "$(grep -c '^last metrics line of .*: 2,' "$t.csv_lines" 2>/dev/null)" = 3 ]
ok $? "the three runs' metrics CSVs end at epoch 2"
"$opl" eval "$tmp/out/mgno21.h5" "$tmp/out/darcy_fno21.h5" --ntest 4 --h1 > "$tmp/o.txt" 2> "$tmp/e.txt"
[ $? -eq 0 ] && grep -q "^test relative H1: mean [0-9]" "$tmp/o.txt"; ok $? "eval --h1 on the odd 21^2 grid: a test H1"
sh "$script" --stage nope "$tmp/x" > /dev/null 2>&1
[ $? -eq 2 ]; ok $? "run.sh --stage nope: exit 2"
echo "1..$n"

#!/bin/sh
# experiments/pino/run.sh end to end at a tiny size (SMOKE=1): it exits 0 and writes a table with
# one row per (ntrain, loss) holding finite test errors at both resolutions, the physics runs a
# finite PDE loss, and the residual of the stored data at both resolutions (TAP on stdout).
# usage: sh tests/experiments/test_pino_smoke.sh experiments/pino/run.sh path/to/opl path/to/pino_data_residual
set -u
script=${1:?usage: test_pino_smoke.sh run.sh opl pino_data_residual}
opl=${2:?opl} resid=${3:?pino_data_residual}
for v in script opl resid; do
    eval "p=\$$v"
    case "$p" in /*) ;; *) eval "$v=\$(pwd)/\$p" ;; esac
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_pino_smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

SMOKE=1 OPL=$opl RESID=$resid OUT=$tmp/out sh "$script" > "$tmp/stdout.txt" 2>&1
rc=$?
ok $rc "run.sh SMOKE=1 exits 0 (exit $rc)"
[ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/stdout.txt" | tail -n 8
t=$tmp/out/table.md
# | nu | ntrain | loss | l2 s1 | l2 s4 | pde | wall |
rows=$(awk -F'|' 'NR > 2 && NF == 9 && $5 + 0 > 0 && $6 + 0 > 0 && $5 !~ /nan/ && $6 !~ /nan/ { c++ } END { print c + 0 }' "$t" 2>/dev/null)
[ "$rows" = 4 ]; ok $? "the table has 4 rows with finite test errors at both resolutions (got $rows)"
pde=$(awk -F'|' 'NR > 2 && $4 ~ /PDE/ && $7 + 0 > 0 && $7 !~ /nan/ { c++ } END { print c + 0 }' "$t" 2>/dev/null)
[ "$pde" = 2 ]; ok $? "the two physics runs report a finite PDE loss (got $pde)"
res=$(grep -c "ratio [0-9]" "$tmp/out/residuals.txt" 2>/dev/null)
[ "$res" = 2 ]; ok $? "the residual of the stored data at both resolutions (got $res lines)"
"$resid" "$tmp/nope.h5" > /dev/null 2>&1
[ $? -eq 1 ]; ok $? "pino_data_residual on a missing file: exit 1"
"$resid" > /dev/null 2>&1
[ $? -eq 2 ]; ok $? "pino_data_residual without arguments: exit 2"
echo "1..$n"

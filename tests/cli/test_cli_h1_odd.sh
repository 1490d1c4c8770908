#!/bin/sh
# The H1 relative loss on an odd grid (train/loss.h): `opl train mgno --loss h1` and `opl eval --h1`
# on a tiny 85 x 85 Darcy set (the fno preset's extent after subsampling 421 by 5): both run and
# report finite errors (TAP on stdout).
# usage: sh tests/cli/test_cli_h1_odd.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_h1_odd.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_h1_odd.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

run "$opl" generate darcy --preset fno --n 6 --res 85 --seed 1 --quiet -o d.h5
ok $rc "generate darcy (fno preset, 6 samples at 85 x 85)"
small="--ntrain 4 --ntest 2 --batch 2 --layers 1 --channels-u 4 --num-iteration 1,0;1,0;1,0 --normalize scalar-u --seed 0"
run "$opl" train mgno --data d.h5 $small --loss h1 --epochs 1 -o m.h5
[ $rc -eq 0 ] && has "loss h1" out.txt; ok $? "train mgno --loss h1 on 85 x 85: 1 epoch"
loss=$(awk -F, 'NR == 2 {print $2}' m.csv)
awk -v l="$loss" 'BEGIN {exit !(l + 0 > 0 && l !~ /nan|inf/)}'; ok $? "a finite positive H1 training loss ($loss)"
grep -q "^epoch 1/1  train H1 [0-9.e+-]*  test L2 " out.txt; ok $? "the epoch line names the training loss H1"
run "$opl" eval m.h5 d.h5 --ntest 2 --h1
h1=$(sed -n 's/^test relative H1: mean \([^ ]*\) .*/\1/p' out.txt)
l2=$(sed -n 's/^test relative L2: mean \([^ ]*\) .*/\1/p' out.txt)
[ $rc -eq 0 ] && awk -v h="$h1" -v l="$l2" 'BEGIN {exit !(h + 0 > 0 && l + 0 > 0 && h !~ /nan|inf/)}'
ok $? "eval --h1 on 85 x 85: a finite test H1 ($h1) beside the L2 ($l2)"
echo "1..$n"

#!/bin/sh
# Dense output on the command line: `opl train node --saveat step|dense`, the checkpoint's
# node.saveat, `opl eval` using it or overriding it with --saveat, --resume keeping it, bad input
# (TAP on stdout). usage: sh tests/cli/test_cli_node_dense.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_node_dense.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_dense.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
nfe() { sed -n 's/^NFE: mean \([0-9.]*\) .*/\1/p' "$1"; }

run "$opl" generate burgers --n 8 --res 64 --store-res 32 --nt 8 --seed 1 --quiet -o d.h5
if [ $rc -ne 0 ] || [ ! -f d.h5 ]; then
    show_err
    echo "Bail out! cannot make the data set with opl generate (exit $rc)"
    exit 1
fi
base="--data d.h5 --ntrain 6 --ntest 2 --batch 3 --epochs 2 --seed 1 --quiet --vf mlp --hidden 16 --depth 2 --window 8"

run "$opl" train node $base --saveat dense -o dense.h5
ok $rc "train node --saveat dense (exit $rc)"
[ $rc -eq 0 ] || show_err
"$opl" info dense.h5 2>/dev/null | awk '$1 == "node.saveat" {print $2}' | grep -q '^dense$'
ok $? "the checkpoint records node.saveat = dense"
run "$opl" train node $base -o step.h5
"$opl" info step.h5 2>/dev/null | awk '$1 == "node.saveat" {print $2}' | grep -q '^step$'
ok $? "the default is node.saveat = step"
run "$opl" train node $base --saveat step -o step2.h5
cmp -s step.h5 step2.h5; ok $? "--saveat step is the default (byte-identical checkpoints)"
cmp -s step.h5 dense.h5; [ $? -ne 0 ]; ok $? "--saveat dense trains another model than step"

run "$opl" eval dense.h5 d.h5
cp out.txt e_dense.txt
[ $rc -eq 0 ] && has "dense output" err.txt && grep -q '^NFE: mean' out.txt
ok $? "eval of the dense model says 'dense output' and prints the NFE line (exit $rc)"
run "$opl" eval dense.h5 d.h5 --saveat step
cp out.txt e_step.txt
[ $rc -eq 0 ] && ! has "dense output" err.txt
ok $? "eval --saveat step overrides the model's dense output (exit $rc)"
# Stepping onto the 7 stored times costs at least the evaluations of the dense solve's steps.
a=$(nfe e_dense.txt); b=$(nfe e_step.txt)
[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN {exit !(a > 0 && a <= b)}'
ok $? "eval NFE per trajectory: dense $a <= step $b"
run "$opl" eval step.h5 d.h5 --saveat dense
[ $rc -eq 0 ] && has "dense output" err.txt; ok $? "eval --saveat dense of a step-trained model (exit $rc)"

run "$opl" train node --resume --epochs 3 --quiet -o dense.h5
[ $rc -eq 0 ] && "$opl" info dense.h5 2>/dev/null | awk '$1 == "node.saveat" {print $2}' | grep -q '^dense$'
ok $? "--resume keeps node.saveat = dense (exit $rc)"
run "$opl" train node --resume --epochs 4 --saveat step --quiet -o dense.h5
[ $rc -ne 0 ] && has "node.saveat" err.txt
ok $? "--resume of a dense run with --saveat step is refused, naming node.saveat (exit $rc)"

# bad input
run "$opl" train node $base --saveat sometimes -o bad.h5
[ $rc -eq 2 ] && has "saveat expects step or dense, got 'sometimes'" err.txt && [ ! -f bad.h5 ]
ok $? "train --saveat sometimes: usage error naming the value (exit $rc)"
run "$opl" eval dense.h5 d.h5 --saveat 1
[ $rc -eq 2 ] && has "saveat expects step or dense, got '1'" err.txt
ok $? "eval --saveat 1: usage error naming the value (exit $rc)"
run "$opl" train fno --data d.h5 --ntrain 6 --ntest 2 --epochs 1 --modes 4 --width 8 --quiet -o fno.h5
if [ $rc -eq 0 ]; then
    run "$opl" eval fno.h5 d.h5 --saveat dense
    [ $rc -eq 2 ] && has "applies to neural ODEs" err.txt
    ok $? "eval --saveat on an FNO model is refused (exit $rc)"
else
    ok 1 "train fno for the --saveat refusal (exit $rc)"
    show_err
fi
echo "1..$n"

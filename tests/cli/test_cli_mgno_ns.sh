#!/bin/sh
# MgNO's Navier-Stokes variant and the one-step task on the command line: `opl summary mgno
# --preset ns` (the authors' parameter count), `opl train mgno --preset ns` on the one-step pairs
# of a tiny Navier-Stokes set, resume bit-identical, `opl eval` printing the rollout's error per
# step, FNO-2d on the same task, reflect padding, bad input (TAP on stdout).
# usage: sh tests/cli/test_cli_mgno_ns.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_mgno_ns.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_mgno_ns.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

run "$opl" summary mgno --preset ns
[ $rc -eq 0 ] && [ "$(tail -n 1 out.txt)" = "parameters: 2883300" ] && has "LayerNorms on 64 x 64, global skip" out.txt
ok $? "summary mgno --preset ns: 2883300 parameters, as the authors' MgNO_NS"
run "$opl" summary mgno --preset ns --padding reflect
[ $rc -eq 0 ] && has "reflect padding" out.txt && [ "$(tail -n 1 out.txt)" = "parameters: 2883300" ]
ok $? "summary mgno --preset ns --padding reflect"
run "$opl" bench mgno --preset ns --s 16 --batch 1 --iters 1 --warmup 0
[ $rc -eq 0 ] && has '"params": 1251300' out.txt
ok $? "bench mgno --preset ns --s 16: LayerNorms sized for 16 x 16 (1251300 parameters)"
run "$opl" summary mgno --padding mirror
[ $rc -eq 2 ] && has "reflect" err.txt; ok $? "--padding mirror: exit 2 naming the modes"

# (time step 1e-3, 10x the preset's: Courant number ~0.003)
run "$opl" generate ns --n 6 --res 32 --store-res 16 --nt 5 --T 1 --dt 1e-3 --seed 1 --quiet -o ns.h5
ok $rc "generate a tiny Navier-Stokes set (16 x 16, 5 frames)"
small="--preset ns --layers 2 --channels-u 4 --num-iteration 1,0;1,0;2,0 --T 3 --ntrain 4 --ntest 2 --batch 2"
run "$opl" train mgno --data ns.h5 $small --epochs 3 -o m.h5
[ $rc -eq 0 ] && has "LayerNorms on 16 x 16, global skip" out.txt && has "trained on the 3 one-step pairs" out.txt &&
    has "8290 parameters" out.txt
ok $? "train mgno --preset ns: the one-step task by default, LayerNorms sized for the data's grid"
[ "$(lines m.csv)" -eq 4 ]; ok $? "3 epochs in the metrics"
run "$opl" eval m.h5 ns.h5
[ $rc -eq 0 ] && has "^test relative L2: mean" out.txt && has "^rollout step 1 (frame 1): mean" out.txt &&
    has "^rollout step 3 (frame 3): mean" out.txt && ! has "rollout step 4" out.txt && has "onestep task" err.txt
ok $? "eval: the 3-step rollout's error per step"
s3=$(sed -n 's/^rollout step 3 (frame 3): mean \([^ ]*\) .*/\1/p' out.txt)
full=$(sed -n 's/^test relative L2: mean \([^ ]*\) .*/\1/p' out.txt)
awk -v a="$s3" -v b="$full" 'BEGIN { exit !(a > 0 && b > 0) }'; ok $? "per-step and full errors are positive numbers ($s3, $full)"
run "$opl" train mgno --data ns.h5 $small --epochs 1 -o r.h5
run "$opl" train mgno --resume --epochs 3 -o r.h5
[ $rc -eq 0 ] && cmp -s m.h5 r.h5; ok $? "1 epoch + resume to 3: the same checkpoint, byte for byte"
run "$opl" train mgno --data ns.h5 $small --padding reflect --epochs 1 -o rf.h5
[ $rc -eq 0 ] && has "reflect padding" out.txt; ok $? "train mgno --padding reflect"
run "$opl" summary rf.h5
[ $rc -eq 0 ] && has "reflect padding" out.txt; ok $? "the checkpoint keeps reflect padding"

run "$opl" train fno --data ns.h5 --dim 2 --task onestep --T-in 1 --T 3 --modes 4 --width 8 --ntrain 4 --ntest 2 --batch 2 --epochs 2 -o f.h5
[ $rc -eq 0 ] && has "trained on the 3 one-step pairs" out.txt; ok $? "train fno --dim 2 --task onestep"
run "$opl" eval f.h5 ns.h5
[ $rc -eq 0 ] && has "^rollout step 3 (frame 3): mean" out.txt; ok $? "eval of the FNO: the rollout's error per step"
run "$opl" train fno --data ns.h5 --dim 2 --T-in 2 --T 2 --modes 4 --width 8 --ntrain 4 --ntest 2 --batch 2 --epochs 1 -o fr.h5
[ $rc -eq 0 ] && has "rolled out 2 steps" out.txt; ok $? "train fno --dim 2: the rollout task by default"
run "$opl" eval fr.h5 ns.h5
[ $rc -eq 0 ] && has "^rollout step 2 (frame 3): mean" out.txt; ok $? "eval of a rollout model: rows per step from frame T_in"

run "$opl" train fno --data ns.h5 --dim 2 --T-in 2 --T 2 --modes 4 --width 8 --ntrain 4 --ntest 2 --epochs 1 --normalize scalar-u -o bad.h5
[ $rc -eq 2 ] && has "takes the one-shot task (a -> u), not rollout" err.txt; ok $? "--normalize scalar-u on the rollout task: exit 2"
run "$opl" train mgno --data ns.h5 $small --task sequence --epochs 1 -o bad.h5
[ $rc -eq 2 ] && has "rollout or onestep" err.txt; ok $? "--task sequence: exit 2"
run "$opl" train mgno --data ns.h5 --preset ns --T 5 --epochs 1 -o bad.h5
[ $rc -eq 2 ] && has "T_in + T = 1 + 5" err.txt; ok $? "--T 5 on 5 frames: exit 2 naming the frames needed"
run "$opl" train mgno --data ns.h5 --preset ns --T 3 --sub 2 --epochs 1 -o bad.h5
[ $rc -eq 2 ] && has "LayerNorm grid 8 x 8" err.txt; ok $? "the ns preset on 8 x 8 (sub 2): exit 2, the LayerNorm grid"
[ ! -e bad.h5 ]; ok $? "no output written by refused commands"

echo "1..$n"

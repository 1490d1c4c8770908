#!/bin/sh
# `opl train mgno` on a static 2-D task (a -> u at a later time of a small Navier-Stokes set):
# a tiny run, resume bit-identical, its summary, bad input (TAP on stdout).
# usage: sh tests/cli/test_cli_mgno.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_mgno.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_mgno.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

# (time step 1e-3, 10x the preset's: Courant number ~0.003)
run "$opl" generate ns --n 10 --res 32 --store-res 32 --nt 2 --T 0.5 --dt 1e-3 --seed 1 --quiet -o ns.h5
ok $rc "generate a small 2-D data set (NS, 32 x 32, a -> u(0.5))"
small="--ntrain 8 --ntest 2 --batch 4 --layers 2 --channels-u 8 --num-iteration 1,0;1,1;2,0 --padding circular --target-time 0.5"
run "$opl" train mgno --data ns.h5 $small --epochs 4 -o m.h5
[ $rc -eq 0 ] && has "MgNO (2 layers, 8 u-channels" out.txt && has "13498 parameters" out.txt; ok $? "train mgno: 4 epochs"
l1=$(awk -F, 'NR == 2 {print $3}' m.csv); l4=$(awk -F, 'NR == 5 {print $3}' m.csv)
awk -v a="$l1" -v b="$l4" 'BEGIN {exit !(b < a)}'; ok $? "train L2 falls over 4 epochs ($l1 -> $l4)"
head -n 1 m.csv | grep -q '^epoch,train_loss,train_l2,test_l2,lr,'; ok $? "metrics CSV columns as for fno"
run "$opl" summary m.h5
[ $rc -eq 0 ] && [ "$(tail -n 1 out.txt)" = "parameters: 13498" ]; ok $? "summary of the trained mgno: 13498"
run "$opl" train mgno --data ns.h5 $small --epochs 2 -o r.h5
run "$opl" train mgno --resume --epochs 4 -o r.h5
[ $rc -eq 0 ] && cmp -s m.h5 r.h5; ok $? "2 epochs + resume to 4: the same checkpoint, byte for byte"
cut -d, -f1-5 m.csv > a.txt; cut -d, -f1-5 r.csv > b.txt
cmp -s a.txt b.txt; ok $? "and the same metrics"

run "$opl" train mgno --data ns.h5 --epochs 1 --target-time 0.5 --num-iteration "1,0;1,0;1,0;1,0;1,0;1,0;1,0" -o bad.h5
[ $rc -eq 2 ] && has "at least 33" err.txt && has "ns.h5" err.txt; ok $? "7 levels on 32 x 32: exit 2 saying MgNO needs at least 33 points"
run "$opl" train mgno --data ns.h5 --epochs 1 --target-time 0.5 --num-iteration "1,0;2" -o bad.h5
[ $rc -eq 2 ] && has "pre,post" err.txt; ok $? "malformed --num-iteration: exit 2"
run "$opl" train mgno --data ns.h5 --epochs 1 --target-time 0.5 --preset nope -o bad.h5
[ $rc -eq 2 ] && has "darcy-rough" err.txt; ok $? "unknown preset: exit 2 naming the presets"
run "$opl" train fno --data ns.h5 --epochs 1 --target-time 0.5 --num-iteration "1,0" -o bad.h5
[ $rc -eq 2 ] && has "are mgno's (opl train mgno), not fno's" err.txt; ok $? "MgNO flags on opl train fno: exit 2 naming their model"
run "$opl" train mlp --data ns.h5 --epochs 1 --target-time 0.5 -o bad.h5
[ $rc -eq 2 ] && has "model 'mlp' has no architecture flags" err.txt && has "(opl train builds: fno, mgno, sinenet)" err.txt
ok $? "opl train mlp: exit 2 naming the kinds opl train builds"

# H1 loss, AdamW, OneCycleLR per step: the lr column follows PyTorch's OneCycleLR over 4 x 2 steps
opts="$small --loss h1 --optimizer adamw --schedule onecycle --schedule-unit step --schedule-epochs 4"
run "$opl" train mgno --data ns.h5 $opts --epochs 4 -o h.h5
[ $rc -eq 0 ] && has "optimizer adamw, loss h1, schedule onecycle (per step)" out.txt; ok $? "train mgno --loss h1 --optimizer adamw --schedule onecycle"
[ $rc -eq 0 ] && has "AdamW lr .* (the maximum)" out.txt && ! has "StepLR" out.txt
ok $? "train mgno --schedule onecycle: the header names AdamW and the maximum lr, no StepLR"
[ "$(awk -F, 'NR == 2 {print $5}' h.csv)" = "4e-05" ] && [ "$(awk -F, 'NR == 3 {print $5}' h.csv)" = "0.000971941777" ]
ok $? "onecycle lr at steps 0 and 2 of 8: max_lr / 25 and the first phase's cosine ($(awk -F, 'NR == 3 {print $5}' h.csv))"
run "$opl" train mgno --data ns.h5 $opts --epochs 2 -o hr.h5
run "$opl" train mgno --resume --epochs 4 -o hr.h5
[ $rc -eq 0 ] && cmp -s h.h5 hr.h5; ok $? "onecycle run resumed: the same checkpoint, byte for byte"
cut -d, -f1-5 h.csv > a.txt; cut -d, -f1-5 hr.csv > b.txt
cmp -s a.txt b.txt; ok $? "and the same metrics"
# the authors' OneCycle factors (MgNO's darcy.py: div_factor 2, final_div_factor 100)
opts2="$opts --div-factor 2 --final-div-factor 100"
run "$opl" train mgno --data ns.h5 $opts2 --epochs 4 -o d.h5
[ $rc -eq 0 ] && has "schedule onecycle (per step), pct_start 0.3, div_factor 2, final_div_factor 100" out.txt
ok $? "--div-factor 2 --final-div-factor 100: named in the header"
[ "$(awk -F, 'NR == 2 {print $5}' d.csv)" = "0.0005" ] && [ "$(awk -F, 'NR == 5 {print $5}' d.csv)" = "8.12547109e-05" ]
ok $? "onecycle lr at steps 0 and 6 of 8: max_lr / 2 and the second phase's cosine towards max_lr / 200 ($(awk -F, 'NR == 5 {print $5}' d.csv))"
run "$opl" train mgno --data ns.h5 $opts2 --epochs 2 -o dr.h5
run "$opl" train mgno --resume --epochs 4 -o dr.h5
[ $rc -eq 0 ] && cmp -s d.h5 dr.h5; ok $? "resumed with the stored factors: the same checkpoint, byte for byte"
run "$opl" train mgno --resume --epochs 4 --div-factor 3 -o dr.h5
[ $rc -ne 0 ] && has "train.sched.div_factor = 2 there, 3 in this run" err.txt; ok $? "resume with another --div-factor: refused naming it"
run "$opl" train mgno --data ns.h5 $small --epochs 1 --schedule onecycle --div-factor 0 -o bad.h5
[ $rc -eq 2 ] && has "div-factor" err.txt; ok $? "--div-factor 0: exit 2"
run "$opl" train mgno --data ns.h5 $small --epochs 1 --schedule onecycle --final-div-factor nan -o bad.h5
[ $rc -eq 2 ] && has "final-div-factor" err.txt; ok $? "--final-div-factor nan: exit 2"
run "$opl" train fno --data ns.h5 --ntrain 8 --ntest 2 --batch 4 --target-time 0.5 --epochs 3 --modes 4 --width 8 --schedule cosine --warmup 1 -o f.h5
[ $rc -eq 0 ] && [ "$(cut -d, -f5 f.csv | tr '\n' ' ')" = "lr 0 0.001 0.0005 " ]; ok $? "train fno --schedule cosine --warmup 1 over 3 epochs: lr 0, 0.001, 0.0005"
run "$opl" train mgno --data ns.h5 $small --epochs 1 --loss h2 -o bad.h5
[ $rc -eq 2 ] && has "l2|h1" err.txt; ok $? "--loss h2: exit 2"
run "$opl" train mgno --data ns.h5 $small --epochs 1 --schedule linear -o bad.h5
[ $rc -eq 2 ] && has "onecycle" err.txt; ok $? "--schedule linear: exit 2"
[ ! -e bad.h5 ]; ok $? "no output written by refused commands"

echo "1..$n"

#!/bin/sh
# `opl train sinenet` (one-step teacher forcing from random start times, per-field normalization,
# AdamW with the authors' linear warmup from 1e-7 then cosine to 1e-7) and `opl eval` of the step
# task (rollout over the whole stored trajectory, one-step error, error per step, a figure of chosen
# steps); bad input (TAP on stdout).
# usage: sh tests/cli/test_cli_sinenet.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_sinenet.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_sinenet.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

# (time step 1e-3, 10x the preset's: Courant number ~0.003)
run "$opl" generate ns --n 6 --res 32 --store-res 32 --nt 8 --T 1 --dt 1e-3 --seed 1 --quiet -o ns.h5
ok $rc "generate a small trajectory set (NS, 32 x 32, 8 frames)"
small="--hidden 4 --hist 2 --batch 2 --ntest 2 --warmup 1 --lr 1e-3"
# (the same command a second time, for the determinism case below, runs beside the first)
"$opl" train sinenet --data ns.h5 $small --epochs 4 -o m2.h5 > m2_out.txt 2>&1 &
m2pid=$!
run "$opl" train sinenet --data ns.h5 $small --epochs 4 -o m.h5
cp out.txt m_out.txt
[ $rc -eq 0 ] && has "SineNet (1 waves, hidden 4, multiplier 2: widths 4-8-16-32-64, 2 -> 1 channels, circular padding)" out.txt &&
    has "133245 parameters" out.txt && has "per-field normalization" out.txt && has "rollout over 6 frames" out.txt
ok $? "train sinenet: 4 epochs of ns-k1 at hidden 4 (133245 parameters), 2 frames -> the next, test rollout over 6"
[ $rc -eq 0 ] || show_err
l1=$(awk -F, 'NR == 2 {print $2}' m.csv); l4=$(awk -F, 'NR == 5 {print $2}' m.csv)
awk -v a="$l1" -v b="$l4" 'BEGIN {exit !(b < a)}'; ok $? "the one-step training loss falls over 4 epochs ($l1 -> $l4)"
lr1=$(awk -F, 'NR == 2 {print $5}' m.csv); lr2=$(awk -F, 'NR == 3 {print $5}' m.csv); lr4=$(awk -F, 'NR == 5 {print $5}' m.csv)
awk -v a="$lr1" -v b="$lr2" -v c="$lr4" 'BEGIN {exit !(a < b && c < b && b == 0.001)}'
ok $? "warmup then cosine: lr $lr1, $lr2 (the peak), ..., $lr4"
# the authors' schedule by default (LinearWarmupCosineAnnealingLR from 1e-7 to 1e-7): over 3 epochs
# with 1 warmup epoch the rates their scheduler prints (tests/train/test_schedule.c):
# 1e-07, 0.001, 0.0005000499999999999
run "$opl" train sinenet --data ns.h5 $small --epochs 3 -o w.h5
[ $rc -eq 0 ] && has "1 warmup epochs from 1e-07 then cosine to 1e-07" out.txt &&
    has "schedule warmup-cosine (per epoch), warmup_start_lr 1e-07, eta_min 1e-07" out.txt
ok $? "train sinenet: the default schedule is warmup-cosine from 1e-07 to 1e-07, named with both rates"
[ "$(cut -d, -f5 w.csv | tr '\n' ' ')" = "lr 1e-07 0.001 0.00050005 " ]
ok $? "train sinenet over 3 epochs, 1 warmup: lr $(cut -d, -f5 w.csv | tail -n +2 | tr '\n' ' ')(the authors' scheduler's)"
run "$opl" train sinenet --data ns.h5 $small --epochs 3 --schedule cosine -o c.h5
[ $rc -eq 0 ] && has "schedule cosine (per epoch)" out.txt && ! has "eta_min" out.txt &&
    [ "$(cut -d, -f5 c.csv | tr '\n' ' ')" = "lr 0 0.001 0.0005 " ]
ok $? "train sinenet --schedule cosine: the former schedule from 0 to 0 (lr $(cut -d, -f5 c.csv | tail -n +2 | tr '\n' ' '))"
run "$opl" train sinenet --data ns.h5 $small --epochs 3 --warmup-start-lr 1e-5 --eta-min 0 --quiet -o w2.h5
[ $rc -eq 0 ] && [ "$(cut -d, -f5 w2.csv | tr '\n' ' ')" = "lr 1e-05 0.001 0.0005 " ]
ok $? "--warmup-start-lr 1e-5 --eta-min 0: lr $(cut -d, -f5 w2.csv | tail -n +2 | tr '\n' ' ')"
wait $m2pid
rc=$?
cut -d, -f1-5 m.csv > a.txt; cut -d, -f1-5 m2.csv > b.txt
[ $rc -eq 0 ] && cmp -s a.txt b.txt; ok $? "the same command twice: the same losses and test errors (deterministic start times)"
run "$opl" summary m.h5
[ $rc -eq 0 ] && [ "$(tail -n 1 out.txt)" = "parameters: 133245" ]; ok $? "summary of the trained SineNet: 133245"

run "$opl" eval m.h5 ns.h5 --ntest 2
[ $rc -eq 0 ] && has "^test relative L2: mean" out.txt && has "^one-step relative L2: mean" out.txt &&
    has "n = 2 x 6" out.txt; ok $? "eval: rollout line and one-step line (2 samples x 6 start times)"
steps=$(awk '/^rollout relative L2 per step:/ {print NF - 5 - 6}' out.txt)
[ "$steps" = 6 ]; ok $? "eval: the rollout error of each of the 6 steps ($steps)"
test_csv=$(awk -F, 'NR == 5 {printf "%.4e", $4}' m.csv); mean=$(awk '/^test relative L2/ {print $5}' out.txt)
[ "$test_csv" = "$mean" ]; ok $? "eval's rollout L2 equals the trainer's last test L2 ($mean, $test_csv)"
one=$(awk '/^one-step/ {print $5}' out.txt); first=$(awk '/^rollout relative L2 per step:/ {print $6}' out.txt)
last=$(awk '/^rollout relative L2 per step:/ {print $11}' out.txt)
awk -v a="$one" -v f="$first" -v l="$last" 'BEGIN {exit !(a > 0 && f > 0 && l > f)}'
ok $? "one-step error $one; rollout error grows from step 1 ($first) to step 6 ($last)"
# the per-sample rows of every step-by-step task: step S predicts frame hist + S - 1; their means
# are the compact line's values
m1=$(sed -n 's/^rollout step 1 (frame 2): mean \([^ ]*\) median .* worst .*/\1/p' out.txt)
m6=$(sed -n 's/^rollout step 6 (frame 7): mean \([^ ]*\) median .* worst .*/\1/p' out.txt)
[ "$(grep -c '^rollout step [0-9]* (frame' out.txt)" = 6 ] && [ "$m1" = "$first" ] && [ "$m6" = "$last" ]
ok $? "eval: a mean / median / worst row per rollout step, means equal to the per-step line ($m1 $m6)"
run "$opl" eval m.h5 ns.h5 --ntest 2 --plot steps.png --plot-steps 1,3,6
if [ $rc -eq 0 ]; then
    [ -s steps.png ] && has "plot of 3 rollout steps" err.txt; ok $? "eval --plot --plot-steps 1,3,6: a PNG of 3 steps"
elif has "not built" err.txt; then
    skip "plotting not built in" "eval --plot of rollout steps"
else
    ok 1 "eval --plot --plot-steps 1,3,6"; show_err
fi
run "$opl" eval m.h5 ns.h5 --ntest 2 --plot bad.png --plot-steps 0,7
[ $rc -ne 0 ] && has "plot-steps" err.txt; ok $? "eval --plot-steps 0,7 (outside 1..6): refused naming the option"

# zero padding and K = 2 train too (the multiplier then is the paper's for K = 2)
run "$opl" train sinenet --data ns.h5 $small --epochs 1 --waves 2 --padding zeros --quiet -o z.h5
[ $rc -eq 0 ] && "$opl" summary z.h5 > s.txt && has "2 waves" s.txt && has "multiplier 1.8075" s.txt && has "zeros padding" s.txt
ok $? "train sinenet --waves 2 --padding zeros: the paper's multiplier 1.8075"

# --resume (the common trainer's checkpoints: model, AdamW moments, schedule position, the start
# times drawn from (seed, epoch, batch)): 3 epochs straight == 1 epoch (the warmup) + 2 resumed
# (the cosine), byte for byte (the straight run beside the interrupted one)
"$opl" train sinenet --data ns.h5 $small --epochs 3 --schedule-epochs 3 --quiet -o s2.h5 > /dev/null 2>&1 &
s2pid=$!
run "$opl" train sinenet --data ns.h5 $small --epochs 1 --schedule-epochs 3 --quiet -o r2.h5
run "$opl" train sinenet --data ns.h5 --resume --epochs 3 -o r2.h5
wait $s2pid
[ $rc -eq 0 ] && has "resuming 'r2.h5' after epoch 1" out.txt && has "^epoch 3/3  train one-step L2" out.txt &&
    has "schedule warmup-cosine (per epoch), warmup_start_lr 1e-07, eta_min 1e-07" out.txt
ok $? "train sinenet --resume: continues after epoch 1 with the stored settings (the schedule's rates too)"
[ $rc -eq 0 ] && cmp -s s2.h5 r2.h5; ok $? "3 epochs == 1 warmup epoch + resume 2 across the warmup's end: the same checkpoint, byte for byte"
cut -d, -f1-5 s2.csv > a.txt; cut -d, -f1-5 r2.csv > b.txt
cmp -s a.txt b.txt && [ "$(cut -d, -f5 r2.csv | tr '\n' ' ')" = "lr 1e-07 0.001 0.00050005 " ]
ok $? "and the same losses, test errors and learning rates in the metrics"
run "$opl" train sinenet --data ns.h5 --resume --epochs 4 --eta-min 2e-7 -o r2.h5
[ $rc -ne 0 ] && has "train.sched.eta_min = 9.9999999999999995e-08 there, 1.9999999999999999e-07 in this run" err.txt
ok $? "--resume with another --eta-min: refused naming train.sched.eta_min"
run "$opl" train sinenet --data ns.h5 $small --resume --epochs 3 --hist 3 -o r2.h5
[ $rc -ne 0 ] && has "in_channels" err.txt; ok $? "--resume with another --hist: refused naming the model's input channels"

# the paper's loss is the default; the common options and the FNO's task flags
# (the first run above names no --loss)
has "loss l2-field" m_out.txt; ok $? "sinenet trains with the per-field relative L2 (the paper's scaled L2) by default"
run "$opl" train fno --data ns.h5 --ntrain 4 --ntest 2 --T-in 2 --T 2 --modes 2 --width 4 --loss l2-field -o bad.h5
[ $rc -eq 2 ] && has "l2-field loss takes" err.txt && has "rollout" err.txt
ok $? "--loss l2-field on the rollout task (a sum over steps): exit 2 naming the task"
run "$opl" train sinenet --data ns.h5 $small --dim 2 -o bad.h5
[ $rc -eq 2 ] && has "one-step task" err.txt; ok $? "--dim on sinenet: exit 2 (it trains on the one-step task)"
run "$opl" train sinenet --data ns.h5 $small --channels-u 4 -o bad.h5
[ $rc -eq 2 ] && has "are mgno's (opl train mgno), not sinenet's" err.txt; ok $? "mgno's --channels-u on sinenet: exit 2"
run "$opl" train fno --data ns.h5 --waves 2 -o bad.h5
[ $rc -eq 2 ] && has "are sinenet's (opl train sinenet), not fno's" err.txt; ok $? "sinenet's --waves on fno: exit 2"

# bad input
run "$opl" train sinenet --data ns.h5 $small --padding reflect -o bad.h5
[ $rc -eq 2 ] && has "circular or zeros" err.txt; ok $? "--padding reflect: exit 2"
run "$opl" train sinenet --data ns.h5 $small --waves 3 -o bad.h5
[ $rc -eq 2 ] && has "mult" err.txt; ok $? "--waves 3 without --mult: exit 2 asking for --mult"
run "$opl" train sinenet --data ns.h5 $small --hist 8 -o bad.h5
[ $rc -eq 2 ] && has "8 frames" err.txt; ok $? "--hist 8 on 8 frames: exit 2 naming the frame count"
run "$opl" train sinenet --data ns.h5 $small --warmup-start-lr -1e-7 -o bad.h5
[ $rc -eq 2 ] && has "warmup-start-lr" err.txt; ok $? "--warmup-start-lr -1e-7: exit 2 naming the flag"
run "$opl" train sinenet --data ns.h5 $small --eta-min nan -o bad.h5
[ $rc -eq 2 ] && has "eta-min" err.txt; ok $? "--eta-min nan: exit 2 naming the flag"
run "$opl" train sinenet --data ns.h5 $small --eta-min inf -o bad.h5
[ $rc -eq 2 ] && has "eta-min" err.txt; ok $? "--eta-min inf: exit 2 naming the flag"
run "$opl" train sinenet --data ns.h5 $small --normalize pointwise -o bad.h5
[ $rc -eq 2 ] && has "field or none" err.txt; ok $? "--normalize pointwise: exit 2"
run "$opl" train sinenet $small -o bad.h5
[ $rc -eq 2 ] && has "data" err.txt; ok $? "no --data: exit 2"
run "$opl" train sinenet --data ns.h5 $small --preset nope -o bad.h5
[ $rc -eq 2 ] && has "ns-k1" err.txt; ok $? "unknown preset: exit 2 naming the presets"
run "$opl" generate ns --n 4 --res 24 --store-res 24 --nt 4 --T 0.5 --dt 1e-3 --seed 1 --quiet -o ns24.h5
run "$opl" train sinenet --data ns24.h5 $small -o bad.h5
[ $rc -eq 2 ] && has "multiple of 16" err.txt && has "ns24.h5" err.txt; ok $? "24 x 24 frames: exit 2 naming the file and the multiple of 16"
run "$opl" generate burgers --n 4 --res 64 --nt 4 --seed 1 --quiet -o b.h5
run "$opl" train sinenet --data b.h5 $small -o bad.h5
[ $rc -eq 2 ] && has "2-D" err.txt; ok $? "1-D data: exit 2 saying SineNet steps 2-D frames"
[ ! -e bad.h5 ]; ok $? "no model file written by a refused run"

echo "1..$n"

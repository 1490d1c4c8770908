#!/bin/sh
# `opl train fno --pde-weight W [--ic-weight V]` (TAP on stdout): the space-time task over (x, t)
# on 1-D data (--dim 2) with the PDE and initial-condition losses, the metrics CSV's physics
# columns (and their absence without the flags), the weights kept in the checkpoint, --resume
# giving the same checkpoint bytes as an uninterrupted run, evaluation at twice the resolution and
# next to the solver,
# KdV (fixed domain) and Navier-Stokes (--dim 3 --T-in 0) runs, and refusals: negative / NaN
# weights, tasks without a time axis, --ic-weight without t = 0, a KdV set whose domain varies
# per sample.
# usage: sh tests/cli/test_cli_pino.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_pino.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_pino.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

run "$opl" generate burgers --preset chebfun --n 12 --res 128 --store-res 32 --nt 8 --T 0.2 --seed 4 --quiet -o b.h5
if [ $rc -ne 0 ]; then
    show_err
    echo "Bail out! cannot make the data set with opl generate (exit $rc)"
    exit 1
fi
ok 0 "a Burgers set with 8 frames after t = 0 (12 samples, s = 32)"
run "$opl" generate burgers --preset chebfun --n 12 --res 128 --store-res 64 --nt 8 --T 0.2 --seed 4 --quiet -o b64.h5
ok $rc "the same samples stored at s = 64"

common="--data b.h5 --dim 2 --ntrain 8 --ntest 4 --batch 4 --modes 4 --width 8 --layers 2 --proj 8 --seed 2"

# --------------------------------------------------------------- data + PDE + IC losses
run "$opl" train fno $common --epochs 2 --pde-weight 0.5 --ic-weight 2 -o m.h5
ok $rc "train 2 epochs with --pde-weight 0.5 --ic-weight 2 (exit $rc)"
[ $rc -eq 0 ] || show_err
has "a -> u(t = 0 and 8 frames after)" out.txt; ok $? "the task line names the space-time task from a"
head -n 1 m.csv | grep -q "^epoch,train_loss,train_l2,test_l2,lr,seconds,train_seconds,samples_per_s,pde_loss,ic_loss$"
ok $? "the CSV adds pde_loss and ic_loss after the existing columns"
awk -F, 'NR > 1 { if (!($9 > 0) || !($10 > 0) || $9 == "nan" || $10 == "nan") bad = 1; rows++ }
         END { exit !(rows == 2 && !bad) }' m.csv
ok $? "two rows with positive finite physics losses"
run "$opl" info m.h5
has "train.pde_weight *0.5" out.txt && has "train.ic_weight *2" out.txt
ok $? "the weights are saved in the checkpoint"

# --------------------------------------------------------------- resume
run "$opl" train fno $common --epochs 1 --pde-weight 0.5 --ic-weight 2 -o r.h5
ok $rc "one epoch of the same run (exit $rc)"
run "$opl" train fno --resume --epochs 2 -o r.h5
ok $rc "--resume to 2 epochs, the weights taken from the checkpoint (exit $rc)"
[ $rc -eq 0 ] || show_err
cmp -s m.h5 r.h5; ok $? "the resumed checkpoint equals the uninterrupted one, byte for byte"
cut -d, -f1-5,9,10 m.csv > a.txt; cut -d, -f1-5,9,10 r.csv > b.txt
cmp -s a.txt b.txt; ok $? "and so do the metrics (epoch, losses, test L2, lr, physics losses)"
run "$opl" train fno --resume --epochs 3 --pde-weight 0.25 -o r.h5
[ $rc -ne 0 ] && has "train.pde_weight" err.txt; ok $? "resuming with another --pde-weight is refused naming it"

# --------------------------------------------------------------- without the flags; evaluation
run "$opl" train fno $common --epochs 1 -o d.h5
ok $rc "the same space-time task without physics losses (exit $rc)"
head -n 1 d.csv | grep -q "^epoch,train_loss,train_l2,test_l2,lr,seconds,train_seconds,samples_per_s$"
ok $? "its CSV has the usual columns only"
run "$opl" eval m.h5 b64.h5 --ntest 4
ok $rc "evaluate the model on the same samples at s = 64 (exit $rc)"
has "relative L2" out.txt; ok $? "eval prints the relative L2 at the new resolution"
run "$opl" eval m.h5 b.h5 --ntest 2 --solver
awk '/solver .* as generated/ { found = 1; if ($NF + 0 < 1e-5) good = 1 } END { exit !(found && good) }' out.txt
ok $? "eval --solver compares the solver with the frames after t = 0 (its error against the data < 1e-5)"

# --------------------------------------------------------------- KdV and Navier-Stokes
run "$opl" generate kdv --n 6 --res 64 --nt 6 --T 2 --L 40 --seed 1 --quiet -o k.h5
ok $rc "a KdV set with a fixed domain (exit $rc)"
run "$opl" train fno --data k.h5 --dim 2 --ntrain 4 --ntest 2 --batch 2 --modes 4 --width 8 --layers 2 --proj 8 \
    --epochs 1 --pde-weight 1 -o k_m.h5
ok $rc "KdV: one epoch with --pde-weight (exit $rc)"
[ $rc -eq 0 ] || show_err
# (time step 1e-3, 10x the preset's: Courant number ~0.003)
run "$opl" generate ns --n 6 --res 32 --store-res 16 --nt 4 --T 0.4 --dt 1e-3 --seed 1 --quiet -o ns.h5
ok $rc "a Navier-Stokes set (exit $rc)"
run "$opl" train fno --data ns.h5 --dim 3 --T-in 0 --T 4 --ntrain 4 --ntest 2 --batch 2 --modes 4 --width 8 \
    --layers 2 --proj 8 --epochs 1 --pde-weight 1 --ic-weight 1 -o n_m.h5
ok $rc "Navier-Stokes: FNO-3d from w0 with --pde-weight and --ic-weight (exit $rc)"
[ $rc -eq 0 ] || show_err
awk -F, 'NR == 2 { exit !($9 > 0 && $10 > 0) }' n_m.csv; ok $? "its physics losses are logged"

# --------------------------------------------------------------- refusals
run "$opl" train fno $common --epochs 1 --pde-weight -1 -o x.h5
[ $rc -eq 2 ] && has "pde-weight" err.txt; ok $? "--pde-weight -1: exit 2"
run "$opl" train fno $common --epochs 1 --pde-weight nan -o x.h5
[ $rc -eq 2 ] && has "pde-weight" err.txt; ok $? "--pde-weight nan: exit 2"
run "$opl" train fno --data b.h5 --dim 1 --ntrain 8 --ntest 4 --epochs 1 --pde-weight 1 -o x.h5
[ $rc -eq 2 ] && has "space-time task" err.txt; ok $? "--pde-weight with a one-shot FNO-1d: exit 2"
run "$opl" train fno $common --T-in 1 --epochs 1 --ic-weight 1 -o x.h5
[ $rc -eq 2 ] && has "t = 0" err.txt; ok $? "--ic-weight without the frame t = 0 (--T-in 1): exit 2"
run "$opl" generate kdv --n 2 --res 64 --nt 4 --dt 0.05 --seed 1 --quiet -o kp.h5
run "$opl" train fno --data kp.h5 --dim 2 --ntrain 1 --ntest 1 --batch 1 --modes 2 --width 4 --layers 1 --proj 4 \
    --epochs 1 --pde-weight 1 --normalize none -o x.h5
[ $rc -eq 2 ] && has "per-sample" err.txt; ok $? "a KdV set whose domain varies per sample: exit 2 naming why"
[ ! -f x.h5 ]; ok $? "no model file written by the refused runs"

echo "1..$n"

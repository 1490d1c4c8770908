#!/bin/sh
# Neural ODEs on the command line: `opl train node` and `opl eval` / `opl summary` of its models
# (TAP on stdout). usage: sh tests/cli/test_cli_node.sh path/to/opl
# A tiny Burgers set with 8 stored snapshots (opl generate); FNO and MLP vector fields, every
# regularizer in every mode, the four adjoints, the time channel; the epoch lines and the CSV's NFE
# columns; determinism (two runs, byte-identical checkpoints), --resume equal to the straight
# run and after SIGKILL; the eval contract lines; the summary rows; bad input.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_node.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_node.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
san=${OPL_SANITIZED:-0}

# --------------------------------------------------------------- data
run "$opl" generate burgers --n 12 --res 64 --store-res 32 --nt 8 --seed 1 --quiet -o d.h5
if [ $rc -ne 0 ] || [ ! -f d.h5 ]; then
    show_err
    echo "Bail out! cannot make the data set with opl generate (exit $rc)"
    exit 1
fi
ok 0 "a tiny Burgers set: 12 trajectories of 8 snapshots at 32 points"

base="--data d.h5 --ntrain 8 --ntest 4 --batch 4 --epochs 2 --seed 1 --quiet"
fno="--vf fno --modes 4 --width 8 --layers 1 --proj 8"
mlp="--vf mlp --hidden 16 --depth 2"

# --------------------------------------------------------------- train, FNO and MLP fields
run "$opl" train node $base $fno --window 4 --every 1 -o f.h5
ok $rc "train node --vf fno, 2 epochs (exit $rc)"
[ $rc -eq 0 ] || show_err
run "$opl" train node --data d.h5 --ntrain 8 --ntest 4 --batch 4 --epochs 2 $fno --window 4 -o f2.h5
prec=single; has "double precision" out.txt && prec=double
grep -q "^epoch 1/2  train L2 [0-9.e+-]*  test L2 [0-9.e+-]*  NFE/batch [0-9.]* (accepted [0-9.]*, rejected [0-9.]*)" out.txt
ok $? "the epoch line shows the NFE per batch next to the loss"
head -n 1 f.csv | grep -q '^epoch,train_loss,train_l2,test_l2,lr,seconds,train_seconds,samples_per_s,nfe_per_batch,accepted_per_batch,rejected_per_batch,test_nfe_per_trajectory,local_reg_nfe_per_batch,reg_to_loss$'
ok $? "the metrics CSV of a node run has the NFE columns, the local regularizer's evaluations and lambda R / loss"
[ "$(lines f.csv)" -eq 3 ] && awk -F, 'NR > 1 && !($9 > 0 && $10 > 0 && $12 > 0) {bad = 1} END {exit bad}' f.csv
ok $? "two CSV rows, each with NFE and accepted steps > 0"
run "$opl" train node $base $mlp --window 3 -o m.h5
ok $rc "train node --vf mlp, 2 epochs (exit $rc)"
[ $rc -eq 0 ] || show_err
for vf in fno mlp; do
    if [ $vf = fno ]; then a=$fno; else a=$mlp; fi
    run "$opl" train node $base $a --time-channel --window 5 -o tc_$vf.h5
    ok $rc "train node --vf $vf --time-channel (exit $rc)"
    [ $rc -eq 0 ] || show_err
done

# --------------------------------------------------------------- regularizers
for vf in mlp fno; do
    if [ $vf = fno ]; then a=$fno; else a=$mlp; fi
    for reg in error stiff error+stiff; do
        for mode in global local-unbiased local-biased; do
            run "$opl" train node $base $a --window 4 --reg $reg --reg-mode $mode --lambda 0.1:0.01 -o r.h5
            [ $rc -eq 0 ] && awk -F, 'NR == 3 && $2 + 0 == $2 {found = 1} END {exit !found}' r.csv
            ok $? "--vf $vf --reg $reg --reg-mode $mode trains 2 epochs (exit $rc)"
            [ $rc -eq 0 ] || show_err
            # the local step's evaluations (Tsit5: f(t1), the starting-step trial, 6 stages) in their
            # own column, 0 for a global regularizer; the regularizer's share of the objective > 0
            case $mode in local*) want=8 ;; *) want=0 ;; esac
            awk -F, -v w=$want 'NR > 1 && !($13 == w && $14 > 0) {bad = 1} END {exit bad || NR != 3}' r.csv
            ok $? "--vf $vf --reg $reg --reg-mode $mode: CSV local_reg_nfe_per_batch = $want, reg_to_loss > 0"
        done
    done
done
# The weight matters: lambda 0 is the unregularized run, lambda > 0 another one.
run "$opl" train node $base $mlp --window 4 -o n0.h5
run "$opl" train node $base $mlp --window 4 --reg error --lambda 0 -o l0.h5
cut -d, -f2-5 n0.csv > a.cut; cut -d, -f2-5 l0.csv > b.cut
cmp -s a.cut b.cut; ok $? "--reg error --lambda 0: the losses of the unregularized run"
awk -F, 'NR > 1 && !($13 == 0 && $14 == 0) {bad = 1} END {exit bad || NR != 3}' n0.csv
ok $? "no regularizer: the CSV's local_reg_nfe_per_batch and reg_to_loss are 0"
run "$opl" train node $base $mlp --window 4 --reg error --lambda 10 -o l1.h5
cut -d, -f2-5 l1.csv > b.cut
sed -n 1p a.cut > a1; sed -n 1p b.cut > b1; sed -n 2p a.cut > a2; sed -n 2p b.cut > b2
cmp -s a1 b1 && ! cmp -s a2 b2; ok $? "--reg error --lambda 10: epoch 1's loss is the same, epoch 2's differs (the gradient has the term)"
# lambda R / loss scales with lambda: 10 against 0.1 at the same parameters (epoch 1's batches)
# (one batch of 8: epoch 1's row is the initial parameters')
run "$opl" train node --data d.h5 --ntrain 8 --ntest 4 --batch 8 --epochs 1 --seed 1 $mlp --window 4 --reg error \
    --lambda 10 -o l3.h5
grep -q "^  regularizer error (global), lambda 10$" out.txt; ok $? "the header line shows a constant lambda once"
run "$opl" train node --data d.h5 --ntrain 8 --ntest 4 --batch 8 --epochs 1 --seed 1 --quiet $mlp --window 4 --reg error \
    --lambda 0.1 -o l4.h5
awk -F, 'NR == FNR {if (FNR == 2) a = $14; next} FNR == 2 {q = a / $14; exit !(a > 0 && q > 99.99 && q < 100.01)}' l3.csv l4.csv
ok $? "reg_to_loss of lambda 10 is 100x that of lambda 0.1 at the same parameters"

# --------------------------------------------------------------- adjoints
run "$opl" train node $base $fno --window 4 --adjoint checkpoint -o ck.h5
ok $rc "--adjoint checkpoint trains (exit $rc)"
[ $rc -eq 0 ] || show_err
run "$opl" train node $base $fno --window 4 --adjoint discrete -o dc.h5
# the forward is the same; the gradients agree to rounding
awk -F, 'NR == FNR {a[FNR] = $2; next} FNR == 2 && $2 != a[2] {bad = 1}
         FNR == 3 {d = $2 - a[3]; if (d < 0) d = -d; if (d > 1e-4 * a[3]) bad = 1} END {exit bad}' dc.csv ck.csv
ok $? "discrete and checkpointed adjoints: the same epoch-1 loss, epoch-2 losses within 1e-4"
for mode in global local-unbiased local-biased; do
    run "$opl" train node $base $fno --window 4 --adjoint checkpoint --reg error+stiff --reg-mode $mode -o ckr.h5
    ok $rc "--adjoint checkpoint with --reg error+stiff --reg-mode $mode (exit $rc)"
    [ $rc -eq 0 ] || show_err
done
for adj in backsolve interp; do
    run "$opl" train node $base $fno --window 4 --adjoint $adj -o ca_$adj.h5
    ok $rc "--adjoint $adj (continuous adjoint) trains (exit $rc)"
    [ $rc -eq 0 ] || show_err
    # the same forward up to rounding; the gradient agrees to O(tolerance)
    awk -F, 'NR == FNR {a[FNR] = $2; next}
             FNR == 2 {d = $2 - a[2]; if (d < 0) d = -d; if (d > 1e-5 * a[2]) bad = 1}
             FNR == 3 {d = $2 - a[3]; if (d < 0) d = -d; if (d > 1e-2 * a[3]) bad = 1} END {exit bad}' dc.csv ca_$adj.csv
    ok $? "--adjoint $adj: the discrete adjoint's epoch-1 loss within 1e-5, epoch-2 loss within 1e-2"
    run "$opl" train node $base $fno --window 4 --adjoint $adj --reg error --reg-mode local-unbiased -o ca_$adj.h5
    ok $rc "--adjoint $adj with the local regularizer (exit $rc)"
    [ $rc -eq 0 ] || show_err
    run "$opl" train node $base $fno --window 4 --adjoint $adj --reg stiff -o bs.h5
    [ $rc -eq 2 ] && has "no continuous adjoint" err.txt && [ ! -f bs.h5 ]
    ok $? "--adjoint $adj with a global regularizer is refused, naming why"
done

# --------------------------------------------------------------- determinism and resume
com="--data d.h5 --ntrain 8 --ntest 4 --batch 4 --seed 2 --quiet --vf fno --modes 8 --width 16 --layers 2 --proj 16 --rtol 1e-6 --atol 1e-8 --window 5 --reg error+stiff --reg-mode local-biased --lambda 0.01:0.001 --threads 2"
run "$opl" train node $com --epochs 4 -o s1.h5
r1=$rc
sleep 1
run "$opl" train node $com --epochs 4 -o s2.h5
[ $r1 -eq 0 ] && [ $rc -eq 0 ] && cmp -s s1.h5 s2.h5 && cut -d, -f1-5,9- s1.csv > a.cut && cut -d, -f1-5,9- s2.csv > b.cut && cmp -s a.cut b.cut
ok $? "two identical train node runs: byte-identical checkpoints, identical losses and NFE columns"
# (a constant weight: a decaying one spans --epochs, so a run to 2 epochs has another schedule)
run "$opl" train node $com --lambda 0.01 --epochs 4 -o s4.h5
run "$opl" train node $com --lambda 0.01 --epochs 2 -o s3.h5
run "$opl" train node --resume --epochs 4 --quiet -o s3.h5
[ $rc -eq 0 ] && cmp -s s4.h5 s3.h5 && cut -d, -f1-5,9- s4.csv > a.cut && cut -d, -f1-5,9- s3.csv > b.cut && cmp -s a.cut b.cut
ok $? "2 epochs + --resume to 4 == 4 epochs (constant lambda): byte-identical checkpoint, same CSV metrics"
[ $rc -eq 0 ] || show_err
run "$opl" train node --resume --rtol 1e-4 -o s3.h5
[ $rc -ne 0 ] && has "node.rtol" err.txt; ok $? "resume with another --rtol is refused, naming node.rtol"
if [ "$san" = 1 ]; then de=12; else de=40; fi
# (the uninterrupted run beside the one killed, each in its own files)
"$opl" train node $com --epochs $de -o u.h5 > u_out.txt 2>&1 &
upid=$!
rm -f k.h5 k.csv
"$opl" train node $com --epochs $de --checkpoint-every 1 -o k.h5 > /dev/null 2>&1 &
kpid=$!
i=0
while [ ! -f k.h5 ] && [ $i -lt 3000 ] && kill -0 $kpid 2> /dev/null; do sleep 0.01; i=$((i + 1)); done
kill -9 $kpid 2> /dev/null
wait $kpid 2> /dev/null
wait $upid
rc=$?
ok $rc "an uninterrupted run of $de epochs (exit $rc)"
kdone=$("$opl" info k.h5 2>/dev/null | awk '$1 == "train.epoch" {print $2}')
diag "killed after epoch ${kdone:-none} of $de"
if [ -z "$kdone" ] || [ "$kdone" -ge $de ]; then
    skip "the run was not killed mid-way (epoch '${kdone:-none}' of $de)" "a SIGKILLed and resumed node run equals the uninterrupted one"
else
    run "$opl" train node --resume --epochs $de --quiet -o k.h5
    cut -d, -f1-5,9- u.csv > a.cut; cut -d, -f1-5,9- k.csv > b.cut
    [ $rc -eq 0 ] && cmp -s u.h5 k.h5 && cmp -s a.cut b.cut
    ok $? "SIGKILL in epoch $((kdone + 1)), --resume to $de: checkpoint byte-identical to the uninterrupted run's, same CSV metrics"
fi

# --------------------------------------------------------------- divergence guard
# (single precision: at lr 10 a gradient turns NaN in epoch 2 under a finite loss; in double
# precision the run goes on. The weights are then ~20 and the field's tanh saturated, and the
# adjoint of a few hundred steps grows past the float range (in double it reaches ~1e118): an
# overflow in linear's backward, whose Inf times a saturated tanh's zero derivative is the NaN.
# The guard reruns the step with the tape's fault finding and says so.)
if [ $prec = single ]; then
    run "$opl" train node $base $mlp --epochs 30 --lr 10 --checkpoint-every 1 -o dv.h5
    [ $rc -eq 1 ] && has "divergence at epoch" err.txt && has "last good checkpoint 'dv.h5'" err.txt &&
        [ "$("$opl" info dv.h5 2>/dev/null | awk '$1 == "train.epoch" {print $2}')" -ge 1 ]
    ok $? "lr 10 diverges: exit 1, the message names the epoch, the last good checkpoint is kept"
    [ $rc -eq 1 ] || show_err
    has "the gradient overflowed single precision in the backward pass of op 'linear'" err.txt &&
        has "clipping cannot help" err.txt
    ok $? "lr 10: the NaN gradient is explained as an overflow in linear's backward ($(tr '\n' ' ' < err.txt))"
else
    skip "double precision: lr 10 does not diverge" "lr 10 diverges: exit 1, the last good checkpoint is kept"
    skip "double precision: lr 10 does not diverge" "lr 10: the NaN gradient is explained as an overflow"
fi

# --------------------------------------------------------------- eval
run "$opl" eval f.h5 d.h5
ok $rc "eval of a node model (exit $rc)"
[ "$(lines out.txt)" -eq 4 ] &&
    sed -n 1p out.txt | grep -q '^test relative L2: mean [0-9][0-9.e+-]* median [0-9][0-9.e+-]* worst [0-9][0-9.e+-]* (n = 4)$' &&
    sed -n 2p out.txt | grep -q '^NFE: mean [0-9][0-9.]* (per trajectory; min [0-9]*, max [0-9]*)$' &&
    sed -n 3p out.txt | grep -q '^steps: accepted mean [0-9][0-9.]*, rejected mean [0-9][0-9.]* (per trajectory)$' &&
    sed -n 4p out.txt | grep -q '^time per trajectory: prediction [0-9][0-9.e+-]* s, reference solver [0-9][0-9.e+-]* s (etdrk4 at 64 points, 4 trajectories re-solved)$'
ok $? "eval prints the contract lines: test relative L2, NFE, steps, time per trajectory next to the reference solver's"
sed 's/^/#   /' out.txt
# the eval's error of the whole trajectory is the trainer's last test error (same model, same solves)
awk -v e="$(sed -n 1p out.txt | awk '{print $5}')" -F, 'END {d = $4 - e; if (d < 0) d = -d; exit !(d <= 1e-4 * $4)}' f.csv
ok $? "eval's mean equals the test error in the CSV's last row (to the printed digits)"
# --solver: the table compares the whole trajectory (the solver re-run as generated reproduces the
# stored data), not the training window, and names the model a neural ODE
run "$opl" eval f.h5 d.h5 --solver --solver-samples 2
[ $rc -eq 0 ] && has "^operator vs solver on 2 test samples" out.txt &&
    grep -q "^  neural ODE (one solve per trajectory, [0-9]* threads*) *32 " out.txt &&
    awk '/^  solver .* as generated/ {f = 1; exit !($NF + 0 < 1e-5)} END {if (!f) exit 1}' out.txt &&
    awk '/^  solver .* from a\[::1\]/ {f = 1; exit !($NF + 0 < 0.1)} END {if (!f) exit 1}' out.txt
ok $? "eval --solver of a node model: solver as generated rel. L2 < 1e-5, at 32 points < 0.1, the row named neural ODE"
sed 's/^/#   /' out.txt
# a trajectory solved from an explicit initial condition cannot be re-solved from provenance
run "$opl" solve burgers --ic d.h5 --ic-index 0 --nt 8 --res 32 -o s.h5
run "$opl" eval f.h5 s.h5 --ntest 1
[ $rc -eq 0 ] && [ "$(lines out.txt)" -eq 4 ] &&
    grep -q "^time per trajectory: prediction [0-9][0-9.e+-]* s, reference solver n/a (.*explicit initial condition" out.txt
ok $? "eval on a file the solver cannot regenerate: 'reference solver n/a (reason)'"
run "$opl" eval m.h5 d.h5 --ntest 2
[ $rc -eq 0 ] && has "(n = 2)" out.txt && [ "$(lines out.txt)" -eq 4 ]; ok $? "eval --ntest 2 of the MLP model"
run "$opl" eval f.h5 d.h5 --plot p.png
if [ $rc -ne 0 ] && has "without cairo" err.txt; then
    skip "built without cairo" "eval --plot draws truth, prediction and error over (t, x)"
else
    [ $rc -eq 0 ] && [ "$(head -c 8 p.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
    ok $? "eval --plot draws truth, prediction and error over (t, x) (a PNG)"
fi

# --------------------------------------------------------------- KdV: per-sample domains and times
# (time step 0.02, 4x the preset's: the cases need per-sample domains and times, not accuracy; the
# re-solve passes the same --dt)
run "$opl" generate kdv --n 6 --res 32 --nt 6 --seed 2 --dtype float64 --dt 0.02 --quiet -o k.h5
ok $rc "a tiny KdV set (per-sample L and T draws): 6 trajectories of 6 snapshots at 32 points (exit $rc)"
run "$opl" info k.h5
[ $rc -eq 0 ] && grep -q "^  t        per sample \[6, 6\]: first time [0-9.]* \.\. [0-9.]*, last time [0-9.]* \.\. [0-9.]*$" out.txt &&
    grep -q "^  L        per sample \[6\]: domain length [0-9.]* \.\. [0-9.]*" out.txt
ok $? "info shows that t and L vary per sample, with their ranges"
grep -E "^  (t|L) +per sample" out.txt | sed 's/^/#   /'
run "$opl" solve kdv --ic k.h5 --ic-index 3 --res 32 --dtype float64 --dt 0.02 --quiet -o ks.h5
ok $rc "solve --ic re-solves sample 3 on its stored L and T (exit $rc)"
if command -v h5dump > /dev/null 2>&1; then
    flat() { tr -d ' \n' < "$1"; }
    h5dump -m "%.17g" -y -w 0 -d /u -s "3,0,0" -c "1,6,32" -o u3.txt k.h5 > /dev/null 2>&1
    h5dump -m "%.17g" -y -w 0 -d /u -o us.txt ks.h5 > /dev/null 2>&1
    h5dump -m "%.17g" -y -w 0 -d /t -s "3,0" -c "1,6" -o t3.txt k.h5 > /dev/null 2>&1
    h5dump -m "%.17g" -y -w 0 -d /t -o ts.txt ks.h5 > /dev/null 2>&1
    [ -s u3.txt ] && [ "$(flat u3.txt)" = "$(flat us.txt)" ] && [ -s t3.txt ] && [ "$(flat t3.txt)" = "$(flat ts.txt)" ]
    ok $? "the re-solved trajectory and its times equal the stored sample 3, bit for bit"
else
    skip "no h5dump" "the re-solved trajectory and its times equal the stored sample 3, bit for bit"
fi
run "$opl" train node --data k.h5 --ntrain 4 --ntest 2 --batch 2 --epochs 1 --seed 1 $mlp --time-channel --window 3 -o kn.h5
[ $rc -eq 0 ] && has "each sample has its own times" out.txt
ok $? "train node on per-sample times, with the time channel (exit $rc)"
[ $rc -eq 0 ] || show_err
run "$opl" eval kn.h5 k.h5
[ $rc -eq 0 ] && [ "$(lines out.txt)" -eq 4 ] && has "(n = 2)" out.txt &&
    grep -q '^time per trajectory: prediction [0-9][0-9.e+-]* s, reference solver [0-9][0-9.e+-]* s (etdrk4 at 32 points' out.txt
ok $? "eval integrates each KdV test trajectory over its own times and re-solves it (exit $rc)"
sed 's/^/#   /' out.txt
run "$opl" train fno --data k.h5 --ntrain 4 --ntest 2 --batch 2 --epochs 1 --modes 4 --width 8 --target-time 50 -o kf.h5
[ $rc -eq 2 ] && has "differ per sample" err.txt
ok $? "train fno --target-time on per-sample times: a usage error saying why"

# --------------------------------------------------------------- 2-D fields (an FNO-2d field)
# (time step 1e-3, 10x the preset's: Courant number ~0.003)
run "$opl" generate ns --n 6 --res 32 --store-res 16 --nt 5 --T 2 --dt 1e-3 --seed 1 --quiet -o ns.h5
if [ $rc -ne 0 ]; then
    ok 1 "a tiny Navier-Stokes set (exit $rc)"
    show_err
else
    run "$opl" train node --data ns.h5 --vf fno --modes 4 --width 8 --layers 1 --proj 8 --ntrain 4 --ntest 2 \
        --batch 2 --epochs 2 --window 3 --time-channel --quiet -o ns_m.h5
    ok $rc "train node --vf fno on 2-D vorticity fields with the time channel (exit $rc)"
    run "$opl" eval ns_m.h5 ns.h5
    [ $rc -eq 0 ] && [ "$(lines out.txt)" -eq 4 ] && grep -q "^NFE: mean" out.txt && has "FNO-2d" err.txt
    ok $? "eval of the 2-D node model prints the four lines"
fi

# --------------------------------------------------------------- summary
run "$opl" summary f.h5
[ $rc -eq 0 ] && has "neural ODE" out.txt && has "vf.fc0 (lifting" out.txt && has "vf.fourier0" out.txt && has "vf.fc2" out.txt
ok $? "opl summary of a node checkpoint shows the vector field's rows"
run "$opl" summary m.h5
[ $rc -eq 0 ] && has "vf.linear0" out.txt && has "vf.linear1" out.txt; ok $? "opl summary of the MLP field's rows"

# --------------------------------------------------------------- bad input
bad() { # expected-message description args...
    msg=$1 desc=$2
    shift 2
    run "$opl" train node "$@" -o bad.h5
    [ $rc -eq 2 ] && has "$msg" err.txt && [ ! -f bad.h5 ]
    ok $? "$desc: exit 2, '$msg'"
    [ $rc -eq 2 ] || show_err
}
bad "--vf expects fno or mlp, got 'cnn'" "unknown --vf" $base --vf cnn
bad "needs >= 2 snapshots" "--window 1" $base $mlp --window 1
bad "--window 9: 'd.h5' stores 8 snapshots" "--window beyond the stored frames" $base $mlp --window 9
bad "--lambda expects L0 or L0:L1" "--lambda garbage" $base $mlp --reg error --lambda abc
bad "--lambda expects L0 or L0:L1" "--lambda 1:x" $base $mlp --reg error --lambda 1:x
bad "needs both weights > 0" "--lambda 0:1 (no exponential decay to or from 0)" $base $mlp --reg error --lambda 0:1
bad "--rtol and --atol expect finite values > 0" "--rtol 0" $base $mlp --rtol 0
bad "--reg-mode local-biased without a regularizer" "--reg-mode without --reg" $base $mlp --reg-mode local-biased
bad "--reg expects none, error, stiff or error+stiff" "unknown --reg" $base $mlp --reg big
bad "--solver expects tsit5, dp5 or bs3" "unknown --solver" $base $mlp --solver euler
bad "--vf fno|mlp is required" "no --vf" $base

echo "1..$n"

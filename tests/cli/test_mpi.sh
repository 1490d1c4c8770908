#!/bin/sh
# opl under mpirun -np 2 (TAP on stdout): data-parallel training and distributed generation.
# usage: sh tests/cli/test_mpi.sh path/to/opl path/to/core_test_dist path/to/operators_test_node_dist
#   - the MPI layer's own cases (core/test_dist under mpirun: agreement, gathers, bucketed sums);
#   - distributed neural-ODE solves (operators/test_node_dist under mpirun: one step sequence, rows,
#     regularizers and summed gradients against the whole batch on one process, for every adjoint;
#     a field failing on one rank);
#   - generate: 2 ranks give the serial file byte for byte (cmp); a rank failing in its last round
#     stops both with one message, leaves only the partial file, which one process resumes into the
#     serial file;
#   - train: 2 ranks vs 1 on an uneven split (batch 5 = 2 + 3 rows) with several gradient buckets:
#     the same loss column and weights up to reassociation (max differences printed and bounded),
#     one CSV writer; resume at P = 1 from a P = 2 checkpoint equals a P = 1 run; a failing rank stops
#     both with one message and no file; more ranks than a batch is refused;
#   - generate darcy: the same as the time-dependent equations (cmp, failure, resume at P = 2);
#   - train sinenet: 2 ranks vs 1 (the trainer's batch shards);
#   - train pinn: 2 ranks vs 1 with causal weights on resampled points (Adam), and with L-BFGS
#     after Adam (losses and weights printed and bounded); resume at P = 1 from a P = 2
#     checkpoint; with 2 time windows (losses and weights bounded); a failing rank; more ranks
#     than points refused;
#   - train node: the batch's one adaptive solve distributed (norms summed, decisions agreed): 2 ranks
#     vs 1 with the checkpointed adjoint and the global regularizers (the same steps, losses and
#     weights up to reassociation); the interpolating adjoint with the local regularizer on 2 ranks
#     resumed at P = 1; a failing rank (after the forward, and in its batch read before the
#     forward, which holds sums over ranks: no hang); per-sample times refused;
#   - every train verb (fno, node, pinn) prints one communication summary line on 2 ranks.
# Registered only when MPI is built in. Root CI: OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM); 2 cores:
# --oversubscribe. Under ASan (OPL_SANITIZED=1) LeakSanitizer is off for these processes: Open MPI
# keeps allocations until exit by design, which LSan reports as leaks.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_mpi.sh path/to/opl path/to/core_test_dist path/to/operators_test_node_dist}
tdist=${2:?usage: test_mpi.sh path/to/opl path/to/core_test_dist path/to/operators_test_node_dist}
tnode=${3:?usage: test_mpi.sh path/to/opl path/to/core_test_dist path/to/operators_test_node_dist}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
case "$tdist" in /*) ;; *) tdist=$(pwd)/$tdist ;; esac
case "$tnode" in /*) ;; *) tnode=$(pwd)/$tnode ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_mpi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
if [ "${OPL_SANITIZED:-0}" = 1 ]; then
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
fi
mpi2() { mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS -x ASAN_OPTIONS -x UBSAN_OPTIONS "$@"; }
# lines of err.txt written by opl (mpirun adds its own banner about the non-zero exit)
opl_lines() { grep -c '^opl' err.txt; }

if ! have mpirun; then
    echo "1..0 # SKIP mpirun not found"
    exit 0
fi

# --------------------------------------------------------------- the layer itself
mpi2 "$tdist" > dist.out 2> dist.err
rc=$?
[ $rc -eq 0 ] && grep -q '^1\.\.' dist.out && ! grep -q '^not ok' dist.out
ok $? "core/test_dist under mpirun -np 2: $(grep -c '^ok' dist.out) cases pass (exit $rc)"
[ $rc -eq 0 ] || { sed 's/^/#   /' dist.out | grep -v '^#   ok' | head -n 10; sed 's/^/#   /' dist.err | head -n 5; }
mpi2 "$tnode" > node.out 2> node.err
rc=$?
[ $rc -eq 0 ] && grep -q '^1\.\.' node.out && ! grep -q '^not ok' node.out
ok $? "operators/test_node_dist under mpirun -np 2: $(grep -c '^ok' node.out) cases pass (exit $rc)"
grep '^# [a-z]' node.out | sed -n '2,6p' | while read -r l; do diag "${l#\# }"; done
[ $rc -eq 0 ] || { sed 's/^/#   /' node.out | grep -v '^#   ok' | head -n 10; sed 's/^/#   /' node.err | head -n 5; }

# --------------------------------------------------------------- generate
gen="burgers --preset fno --n 10 --res 128 --store-res 64 --seed 7 --quiet"
run "$opl" generate $gen -o serial.h5
ok $rc "serial generate (exit $rc)"
run mpi2 "$opl" generate $gen -o two.h5
[ $rc -eq 0 ] && [ -f two.h5 ] && [ ! -e two.h5.partial ]; ok $? "mpirun -np 2 generate writes two.h5, no partial left"
[ $rc -eq 0 ] || show_err
[ "$(grep -c 'wrote two.h5' out.txt)" -eq 1 ]; ok $? "one rank reports (one 'wrote' line)"
cmp -s serial.h5 two.h5; ok $? "2 ranks give the serial file byte for byte (cmp)"

export OPL_DIST_FAULT=generate:1; run mpi2 -x OPL_DIST_FAULT "$opl" generate $gen -o bad.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ ! -e bad.h5 ] && [ -e bad.h5.partial ]
ok $? "rank 1 failing: exit $rc, no bad.h5, only bad.h5.partial"
[ "$(opl_lines)" -eq 1 ] && has "^opl rank 1: generate: sample [0-9]*: failure injected" err.txt
ok $? "one message, naming rank 1 and its sample"
run "$opl" generate $gen -o bad.h5
resumed=$(sed -n 's/.*solved now, \([0-9]*\) resumed.*/\1/p' out.txt)
[ $rc -eq 0 ] && [ -n "$resumed" ] && [ "$resumed" -gt 0 ] && cmp -s serial.h5 bad.h5
ok $? "one process resumes the partial file of 2 ranks ($resumed samples kept) into the serial file"

# Darcy: the same rounds (datasets/gen_dist.h)
dgen="darcy --preset fno --n 9 --res 29 --store-res 15 --seed 1 --quiet"
run "$opl" generate $dgen -o dserial.h5
ok $rc "serial generate darcy (exit $rc)"
run mpi2 "$opl" generate $dgen -o dtwo.h5
[ $rc -eq 0 ] && [ "$(grep -c 'wrote dtwo.h5' out.txt)" -eq 1 ] && [ ! -e dtwo.h5.partial ] && cmp -s dserial.h5 dtwo.h5
ok $? "mpirun -np 2 generate darcy: one 'wrote' line, the serial file byte for byte (cmp)"
[ $rc -eq 0 ] || show_err
export OPL_DIST_FAULT=generate:1; run mpi2 -x OPL_DIST_FAULT "$opl" generate $dgen -o dbad.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ ! -e dbad.h5 ] && [ -e dbad.h5.partial ] && [ "$(opl_lines)" -eq 1 ] &&
    has "^opl rank 1: generate: sample [0-9]*: failure injected" err.txt
ok $? "generate darcy, rank 1 failing: exit $rc, one message naming rank 1, only dbad.h5.partial"
run mpi2 "$opl" generate $dgen -o dbad.h5
resumed=$(sed -n 's/.*solved now, \([0-9]*\) resumed.*/\1/p' out.txt)
[ $rc -eq 0 ] && [ -n "$resumed" ] && [ "$resumed" -gt 0 ] && cmp -s dserial.h5 dbad.h5
ok $? "2 ranks resume it ($resumed samples kept) into the serial file"

# --------------------------------------------------------------- train
run "$opl" generate burgers --preset fno --n 24 --res 128 --store-res 64 --seed 5 --quiet -o tiny.h5
ok $rc "a tiny Burgers data set"
common="--data tiny.h5 --ntrain 15 --ntest 8 --sub 2 --modes 8 --width 16 --layers 2 --proj 16 --batch 5 --lr 3e-3 --seed 1"
run "$opl" train fno $common --epochs 4 -o p1.h5
ok $rc "1 process: 4 epochs (exit $rc)"
export OPL_DIST_BUCKET_KB=8; run mpi2 -x OPL_DIST_BUCKET_KB "$opl" train fno $common --epochs 4 -o p2.h5; unset OPL_DIST_BUCKET_KB
ok $rc "2 ranks (rows 2 + 3 of each batch of 5, 8 KiB buckets): 4 epochs (exit $rc)"
[ $rc -eq 0 ] || show_err
[ "$(grep -c '^epoch ' out.txt)" -eq 4 ] && [ "$(lines p2.csv)" -eq 5 ]
ok $? "one rank reports and writes: 4 epoch lines, CSV header + 4 rows"
nb=$(sed -n 's/.*summed in \([0-9]*\) buckets.*/\1/p' out.txt)
[ -n "$nb" ] && [ "$nb" -gt 1 ]; ok $? "the gradients went in ${nb:-?} buckets"
diag "$(grep 'ranks; gradients' out.txt)"

# max |a - b| / max(|a|, 1e-30) over the train_loss column, and over all weights (h5dump)
colmax() { paste -d, "$1" "$2" | awk -F, -v n=$(( $(head -n 1 "$1" | tr ',' '\n' | wc -l) )) \
    'NR > 1 { a = $2; b = $(n + 2); d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; r = d / (s > 1e-30 ? s : 1e-30); if (r > m) m = r }
     END { printf "%.3g\n", m + 0 }'; }
weights() { h5dump -m '%.9g' -y -w 0 -g /model "$1" |
    awk '/DATA \{/ { d = 1; next } /^ *\}/ { d = 0 } d { gsub(/[(),]/, " "); for (i = 1; i <= NF; i++) if ($i ~ /^[-0-9.]/) print $i }'; }
wmax() { weights "$1" > wa.txt; weights "$2" > wb.txt
    [ "$(lines wa.txt)" -gt 100 ] && [ "$(lines wa.txt)" -eq "$(lines wb.txt)" ] || { echo 1e30; return; }
    paste wa.txt wb.txt | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g\n", m + 0 }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

if have h5dump; then
    lrel=$(colmax p1.csv p2.csv)
    wd=$(wmax p1.h5 p2.h5)
    diag "P = 2 vs P = 1 after 12 steps: train_loss max relative difference $lrel, weights max abs difference $wd"
    lt "$lrel" 1e-4; ok $? "the same losses up to reassociation (max relative difference $lrel < 1e-4)"
    lt "$wd" 1e-4; ok $? "the same weights up to reassociation (max abs difference $wd < 1e-4)"
else
    lrel=$(colmax p1.csv p2.csv)
    lt "$lrel" 1e-4; ok $? "the same losses up to reassociation (max relative difference $lrel < 1e-4)"
    skip "no h5dump" "the same weights"
fi

# resume at P = 1 from a P = 2 checkpoint
run mpi2 "$opl" train fno $common --epochs 2 -o r.h5
ok $rc "2 ranks: 2 epochs, checkpoint r.h5 (exit $rc)"
run "$opl" train fno $common --epochs 4 --resume -o r.h5
[ $rc -eq 0 ] && has "resuming" out.txt; ok $? "1 process resumes it to epoch 4 (exit $rc)"
lrel=$(colmax p1.csv r.csv)
diag "resumed at P = 1 vs P = 1 throughout: train_loss max relative difference $lrel"
[ "$(lines r.csv)" -eq 5 ] && lt "$lrel" 1e-4; ok $? "its 4 rows equal the 1-process run's up to reassociation ($lrel)"
if have h5dump; then
    wd=$(wmax p1.h5 r.h5); lt "$wd" 1e-4; ok $? "and its weights (max abs difference $wd)"
else
    skip "no h5dump" "weights of the resumed run"
fi
# and at P = 2 from a P = 1 checkpoint
run "$opl" train fno $common --epochs 2 -o q.h5
run mpi2 "$opl" train fno $common --epochs 4 --resume -o q.h5
lrel=$(colmax p1.csv q.csv)
[ $rc -eq 0 ] && [ "$(lines q.csv)" -eq 5 ] && lt "$lrel" 1e-4
ok $? "2 ranks resume a 1-process checkpoint to epoch 4, rows equal up to reassociation ($lrel)"

# a failing rank
export OPL_DIST_FAULT=train:1; run mpi2 -x OPL_DIST_FAULT "$opl" train fno $common --epochs 2 --checkpoint-every 1 -o f.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ ! -e f.h5 ] && [ -z "$(ls | grep '^f\.h5.')" ]
ok $? "rank 1 failing: exit $rc, no f.h5 and no temporary file"
[ "$(opl_lines)" -eq 1 ] && [ "$(grep -c 'rank 1: train: epoch 1, batch 1: failure injected' err.txt)" -eq 1 ]
ok $? "one message for the job, naming rank 1, the epoch and the batch"
diag "$(grep '^opl' err.txt | head -n 2)"

# more ranks than samples in a batch
run mpi2 "$opl" train fno --data tiny.h5 --ntrain 15 --ntest 8 --sub 2 --modes 8 --width 16 --layers 2 --proj 16 \
    --batch 1 --epochs 1 -o big.h5
[ $rc -ne 0 ] && [ ! -e big.h5 ] && [ "$(opl_lines)" -eq 1 ] && has "2 ranks but a batch (--batch) holds 1 samples" err.txt
ok $? "2 ranks on batches of 1 sample: refused with one message, no file"
run mpi2 "$opl" train fno $common --ntrain 16 --epochs 1 -o big.h5
[ $rc -ne 0 ] && [ ! -e big.h5 ] && has "the last batch of an epoch holds 1 samples" err.txt
ok $? "2 ranks when the last batch holds 1 sample (ntrain 16, batch 5): refused"
# --------------------------------------------------------------- train sinenet (the trainer)
run "$opl" generate ns --n 5 --res 16 --store-res 16 --nt 5 --T 0.5 --seed 1 --quiet -o ns.h5
ok $rc "a tiny Navier-Stokes set"
sn="--data ns.h5 --hidden 4 --hist 2 --batch 2 --ntrain 4 --ntest 1 --warmup 1 --lr 1e-3 --epochs 3 --seed 2"
run "$opl" train sinenet $sn -o sn1.h5
ok $rc "train sinenet, 1 process (exit $rc)"
run mpi2 "$opl" train sinenet $sn -o sn2.h5
[ $rc -eq 0 ] && [ "$(lines sn2.csv)" -eq 4 ]; ok $? "train sinenet, 2 ranks: one CSV of 3 rows (exit $rc)"
[ $rc -eq 0 ] || show_err
lrel=$(colmax sn1.csv sn2.csv)
if have h5dump; then wd=$(wmax sn1.h5 sn2.h5); else wd=0; fi
diag "sinenet P = 2 vs P = 1 after 6 steps: train_loss max relative difference $lrel, weights max abs difference $wd"
lt "$lrel" 1e-4 && lt "$wd" 1e-4; ok $? "sinenet: the same losses ($lrel) and weights ($wd) up to reassociation"

# --------------------------------------------------------------- train pinn (its own trainer)
# the loss column of the PINN CSV is the third
pcol() { paste -d, "$1" "$2" | awk -F, -v n=$(( $(head -n 1 "$1" | tr ',' '\n' | wc -l) )) \
    'NR > 1 { a = $3; b = $(n + 3); d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; r = d / (s > 1e-30 ? s : 1e-30); if (r > m) m = r }
     END { printf "%.3g\n", m + 0 }'; }
pa0="--pde allen-cahn --layers 2x16 --embed none --points 300 --boundary-points 40 --seed 3"
pa="$pa0 --quiet"
adam="$pa --optimizer adam --iters 40 --collocation resample --causal --chunks 7 --eps 1e-2,1,1e2"
run "$opl" train pinn $adam -o pa1.h5
ok $rc "train pinn, causal, resampled points, 1 process: 40 Adam iterations (exit $rc)"
run mpi2 "$opl" train pinn $adam -o pa2.h5
[ $rc -eq 0 ] && [ "$(lines pa2.csv)" -eq 41 ]; ok $? "2 ranks (150 points each, chunks across both): one CSV of 40 rows (exit $rc)"
[ $rc -eq 0 ] || show_err
lrel=$(pcol pa1.csv pa2.csv)
wcol=$(paste -d, pa1.csv pa2.csv | awk -F, -v n=$(( $(head -n 1 pa1.csv | tr ',' '\n' | wc -l) )) \
    'NR > 1 { d = $7 - $(n + 7); if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g\n", m + 0 }')
if have h5dump; then wd=$(wmax pa1.h5 pa2.h5); else wd=0; fi
diag "pinn Adam P = 2 vs P = 1 after 40 iterations: loss max relative difference $lrel, min causal weight max difference $wcol, weights max abs difference $wd"
lt "$lrel" 1e-4 && lt "$wcol" 1e-4 && lt "$wd" 1e-4
ok $? "pinn Adam: the same losses ($lrel), causal weights ($wcol) and network ($wd) up to reassociation"
[ "$(cut -d, -f8 pa1.csv | sort -u | wc -l)" -gt 2 ] && [ "$(cut -d, -f8 pa1.csv | md5sum)" = "$(cut -d, -f8 pa2.csv | md5sum)" ]
ok $? "pinn Adam: eps moves through its list at the same iterations"
lb="$pa0 --print-every 1000 --optimizer adam+lbfgs --iters 10 --lbfgs-iters 20 --collocation lhs --causal --chunks 5 --checkpoint-every 10"
run "$opl" train pinn $lb -o pl1.h5
run mpi2 "$opl" train pinn $lb -o pl2.h5
[ $rc -eq 0 ] && [ "$(grep -c ',lbfgs,' pl2.csv)" -gt 5 ]; ok $? "pinn L-BFGS after Adam on 2 ranks (exit $rc)"
[ $rc -eq 0 ] || show_err
nb=$(sed -n 's/^opl train pinn: 2 ranks; gradients summed in \([0-9]*\) buckets .* \([0-9.]*\) ms per step$/\1/p' out.txt)
[ "$(grep -c 'ranks; gradients' out.txt)" -eq 1 ] && [ -n "$nb" ] && [ "$nb" -ge 1 ]
ok $? "train pinn on 2 ranks: one communication summary line (${nb:-?} buckets)"
diag "$(grep 'ranks; gradients' out.txt)"
lrel=$(pcol pl1.csv pl2.csv)
if have h5dump; then wd=$(wmax pl1.h5 pl2.h5); else wd=0; fi
diag "pinn adam+lbfgs P = 2 vs P = 1 after $(($(lines pl1.csv) - 1)) iterations: loss max relative difference $lrel, weights max abs difference $wd"
[ "$(lines pl1.csv)" -eq "$(lines pl2.csv)" ] && lt "$lrel" 1e-4 && lt "$wd" 1e-3
ok $? "pinn L-BFGS: the same iterations, losses ($lrel) and weights ($wd) up to reassociation"
# time windows: each window's points shared, the gradient sums over that window's parameters
wl="$pa --optimizer adam+lbfgs --iters 10 --lbfgs-iters 10 --windows 2 --collocation lhs --causal --chunks 5 --checkpoint-every 10"
run "$opl" train pinn $wl -o pw1.h5
run mpi2 "$opl" train pinn $wl -o pw2.h5
wins=$(awk -F, 'NR > 1 { print $NF }' pw2.csv | sort -u | tr '\n' ' ')
[ $rc -eq 0 ] && [ "$wins" = "0 1 " ] && [ "$(awk -F, 'NR > 1 && $NF == 1 && $2 == "lbfgs"' pw2.csv | wc -l)" -gt 3 ]
ok $? "pinn --windows 2 (Adam, then L-BFGS, in each) on 2 ranks: both windows in the CSV (windows '$wins', exit $rc)"
[ $rc -eq 0 ] || show_err
lrel=$(pcol pw1.csv pw2.csv)
if have h5dump; then wd=$(wmax pw1.h5 pw2.h5); else wd=0; fi
diag "pinn --windows 2 P = 2 vs P = 1 after $(($(lines pw1.csv) - 1)) iterations: loss max relative difference $lrel, weights max abs difference $wd"
[ "$(lines pw1.csv)" -eq "$(lines pw2.csv)" ] && [ "$(cut -d, -f1,2,11 pw1.csv | md5sum)" = "$(cut -d, -f1,2,11 pw2.csv | md5sum)" ] &&
    lt "$lrel" 1e-4 && lt "$wd" 1e-3
ok $? "pinn --windows 2: the same iterations and windows, losses ($lrel) and weights ($wd) up to reassociation"
# resume at P = 1 from a P = 2 checkpoint
ra="$pa --optimizer adam --collocation resample --causal --chunks 7 --eps 1e-2,1,1e2"
run mpi2 "$opl" train pinn $ra --iters 20 -o pr.h5
run "$opl" train pinn $ra --iters 40 --resume -o pr.h5
lrel=$(pcol pa1.csv pr.csv)
diag "pinn resumed at P = 1 after 20 iterations on 2 ranks vs P = 1 throughout: loss max relative difference $lrel"
[ $rc -eq 0 ] && [ "$(lines pr.csv)" -eq 41 ] && lt "$lrel" 1e-4
ok $? "pinn: 1 process resumes a 2-rank checkpoint; its 40 rows equal the 1-process run's up to reassociation"
run "$opl" train pinn $ra --iters 20 -o pq.h5
run mpi2 "$opl" train pinn $ra --iters 40 --resume -o pq.h5
lrel=$(pcol pa1.csv pq.csv)
[ $rc -eq 0 ] && [ "$(lines pq.csv)" -eq 41 ] && lt "$lrel" 1e-4
ok $? "pinn: 2 ranks resume a 1-process checkpoint; rows equal up to reassociation ($lrel)"
export OPL_DIST_FAULT=train:1; run mpi2 -x OPL_DIST_FAULT "$opl" train pinn $adam -o pf.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ -z "$(ls | grep '^pf\.')" ] && [ "$(opl_lines)" -eq 1 ] &&
    has "^opl train pinn: rank 1: pinn: iteration 1: failure injected" err.txt
ok $? "pinn, rank 1 failing: exit $rc, one message naming rank 1, no file"
run mpi2 "$opl" train pinn $pa --points 1 --iters 2 -o pbig.h5
[ $rc -ne 0 ] && [ ! -e pbig.h5 ] && [ "$(opl_lines)" -eq 1 ] && has "2 ranks but 1 collocation points" err.txt
ok $? "pinn: 2 ranks on 1 collocation point: refused with one message, no file"

# --------------------------------------------------------------- train node: one solve per batch
# The batch (3 = 1 + 2 rows) takes one adaptive step sequence: norms summed, decisions agreed over
# the ranks. P = 2 vs P = 1: the same solver columns (nfe, accepted, rejected, local-regularizer
# nfe: 9-11, 13) row for row, losses and weights up to reassociation.
run "$opl" generate burgers --n 6 --res 64 --store-res 32 --nt 5 --seed 1 --quiet -o traj.h5
nd="--data traj.h5 --ntrain 3 --ntest 2 --batch 3 --vf mlp --hidden 8 --depth 1 --window 3 --seed 4 --quiet"
node_pair() { # name what options...: one process, then 2 ranks, compared
    name=$1 what=$2; shift 2
    run "$opl" train node $nd "$@" -o ${name}1.h5
    r1=$rc
    run mpi2 "$opl" train node $nd "$@" -o ${name}2.h5
    [ $rc -eq 0 ] || show_err
    lrel=$(colmax ${name}1.csv ${name}2.csv)
    if have h5dump; then wd=$(wmax ${name}1.h5 ${name}2.h5); else wd=0; fi
    diag "node $what: P = 2 vs P = 1 after 3 steps: train_loss max relative difference $lrel, weights max abs difference $wd"
    [ $r1 -eq 0 ] && [ $rc -eq 0 ] && [ "$(lines ${name}2.csv)" -eq 4 ] &&
        [ "$(cut -d, -f9-11,13 ${name}1.csv | md5sum)" = "$(cut -d, -f9-11,13 ${name}2.csv | md5sum)" ] &&
        lt "$lrel" 1e-4 && lt "$wd" 1e-4
    ok $? "train node, $what, 2 ranks: the same steps, evaluations and rejections ($(sed -n 2p ${name}2.csv | cut -d, -f9-11)), losses ($lrel) and weights ($wd)"
}
node_pair nc "checkpointed adjoint, global error+stiff regularizers" --epochs 3 --adjoint checkpoint \
    --reg error+stiff --lambda 0.1
[ "$(grep -c 'ranks; gradients' out.txt)" -eq 1 ]; ok $? "train node on 2 ranks: one communication summary line"
# the interpolating continuous adjoint with the local regularizer's error term (its stiffness ratio
# of one tiny step is float32 rounding noise): 2 epochs on 2 ranks, resumed to 3 by one process,
# against one process throughout
ni="--adjoint interp --reg error --reg-mode local-unbiased --lambda 0.1"
run "$opl" train node $nd $ni --epochs 3 -o ni1.h5
run mpi2 "$opl" train node $nd $ni --epochs 2 -o nr.h5
r2=$rc
[ $rc -eq 0 ] || show_err
run "$opl" train node $nd $ni --epochs 3 --resume -o nr.h5
lrel=$(colmax ni1.csv nr.csv)
if have h5dump; then wd=$(wmax ni1.h5 nr.h5); else wd=0; fi
diag "node interpolating adjoint, local regularizer, 2 epochs on 2 ranks + 1 resumed on 1 vs 3 on 1: train_loss max relative difference $lrel, weights max abs difference $wd"
[ $r2 -eq 0 ] && [ $rc -eq 0 ] && [ "$(lines nr.csv)" -eq 4 ] && lt "$lrel" 1e-4 && lt "$wd" 1e-4 &&
    [ "$(cut -d, -f9-11,13 ni1.csv | md5sum)" = "$(cut -d, -f9-11,13 nr.csv | md5sum)" ]
ok $? "train node, interpolating adjoint and local regularizer: 2 ranks, then 1 process resumes; the same steps, losses ($lrel) and weights ($wd) as 1 process"
export OPL_DIST_FAULT=train:1; run mpi2 -x OPL_DIST_FAULT "$opl" train node $nd --epochs 2 --checkpoint-every 1 -o nf.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ -z "$(ls | grep '^nf\.')" ] && [ "$(opl_lines)" -eq 1 ] &&
    has "rank 1: train: epoch 1, batch 1: failure injected" err.txt
ok $? "train node, rank 1 failing: exit $rc, one message naming rank 1, no file"
# rank 1's batch read fails before the forward, whose solve holds sums over ranks: rank 0 must not
# wait there (a hang ends at the timeout, exit 124)
export OPL_DIST_FAULT=read:1; run timeout 120 mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS -x ASAN_OPTIONS \
    -x UBSAN_OPTIONS -x OPL_DIST_FAULT "$opl" train node $nd --epochs 1 -o nq.h5
unset OPL_DIST_FAULT
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -z "$(ls | grep '^nq\.')" ] && [ "$(opl_lines)" -eq 1 ] &&
    has "rank 1: train: epoch 1, batch 1: read failure injected" err.txt
ok $? "train node, rank 1's batch read failing: exit $rc (not a hang), one message naming rank 1, no file"
run "$opl" generate kdv --n 4 --res 32 --nt 4 --seed 2 --quiet -o kdv.h5
run mpi2 "$opl" train node --data kdv.h5 --ntrain 2 --ntest 1 --batch 2 --epochs 1 --vf mlp --hidden 8 --depth 1 \
    --window 3 --quiet -o nk.h5
[ $rc -ne 0 ] && [ ! -e nk.h5 ] && [ "$(opl_lines)" -eq 1 ] && has "per-sample times" err.txt
ok $? "train node on per-sample times under mpirun: refused with one message, no file"

run mpi2 "$opl" info tiny.h5
[ $rc -ne 0 ] && has "runs on one process" err.txt; ok $? "a verb that does not run on ranks is refused under mpirun"

echo "1..$n"
[ "$failed" -eq 0 ]

#!/bin/sh
# opl under mpirun -np 2 (TAP on stdout): data-parallel training and distributed generation.
# usage: sh tests/cli/test_mpi.sh path/to/opl path/to/core_test_dist
#   - the MPI layer's own cases (core/test_dist under mpirun: agreement, gathers, bucketed sums);
#   - generate: 2 ranks give the serial file byte for byte (cmp); a rank failing in its last round
#     stops both with one message, leaves only the partial file, which one process resumes into the
#     serial file;
#   - train: 2 ranks vs 1 on an uneven split (batch 5 = 2 + 3 rows) with several gradient buckets:
#     the same loss column and weights up to reassociation (max differences printed and bounded),
#     one CSV writer; resume at P = 1 from a P = 2 checkpoint equals a P = 1 run; a failing rank stops
#     both with one message and no file; more ranks than a batch is refused.
# Registered only when MPI is built in. Root CI: OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM); 2 cores:
# --oversubscribe. Under ASan (OPL_SANITIZED=1) LeakSanitizer is off for these processes: Open MPI
# keeps allocations until exit by design, which LSan reports as leaks.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_mpi.sh path/to/opl path/to/core_test_dist}
tdist=${2:?usage: test_mpi.sh path/to/opl path/to/core_test_dist}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
case "$tdist" in /*) ;; *) tdist=$(pwd)/$tdist ;; esac
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

run mpi2 "$opl" generate darcy --preset fno --n 2 --res 29 --store-res 15 --seed 1 --quiet -o dd.h5
[ $rc -ne 0 ] && has "runs on one process" err.txt && [ -z "$(ls | grep '^dd\.h5')" ]
ok $? "generate darcy under mpirun: refused, no file"

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
run mpi2 "$opl" info tiny.h5
[ $rc -ne 0 ] && has "runs on one process" err.txt; ok $? "a verb that does not run on ranks is refused under mpirun"

echo "1..$n"
[ "$failed" -eq 0 ]

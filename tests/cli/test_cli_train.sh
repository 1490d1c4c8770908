#!/bin/sh
# The training verbs of the opl command: `opl train`, `opl eval`, `opl bench fno` (TAP on stdout).
# usage: sh tests/cli/test_cli_train.sh path/to/opl
# A tiny FNO trained on a tiny Burgers set (made with `opl generate`), the per-epoch lines and
# the metrics CSV, the exact eval line at the training and at a finer resolution, --out, --plot
# (a valid PNG: the 8-byte signature), --resume, divergence, bad flags / missing data set /
# modes beyond half the resolution (clear errors, non-zero exit), and one tiny `opl bench fno`.
# Smaller sizes when OPL_SANITIZED=1.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_train.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_train.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

san=${OPL_SANITIZED:-0}
if [ "$san" = 1 ]; then epochs=2; else epochs=3; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# --------------------------------------------------------------- help
for verb in train eval; do
    run "$opl" $verb --help
    ok $(( rc != 0 )) "$verb --help exits 0"
done
run "$opl" train --help
has "--step-size" out.txt && has "--T-in" out.txt && has "--resume" out.txt && has "--normalize" out.txt
ok $? "train --help lists the recipe flags"
run "$opl" bench fno --help
ok $(( rc != 0 )) "bench fno --help exits 0 (the benchmark harness checks this)"
run "$opl" --help
has "train" out.txt && has "eval" out.txt && has "bench" out.txt; ok $? "opl --help lists train, eval, bench"

# --------------------------------------------------------------- a tiny data set
run "$opl" generate burgers --preset fno --n 24 --res 128 --store-res 64 --seed 5 --quiet -o tiny.h5
if [ $rc -ne 0 ] || [ ! -f tiny.h5 ]; then
    show_err
    echo "Bail out! cannot make the data set with opl generate (exit $rc)"
    exit 1
fi
ok 0 "a tiny Burgers data set (24 samples, s = 64)"

# --------------------------------------------------------------- train
run "$opl" train fno --data tiny.h5 --ntrain 16 --ntest 8 --sub 2 --modes 8 --width 16 --layers 2 --proj 16 \
    --epochs $epochs --batch 5 --lr 3e-3 --seed 1 --checkpoint-every 1 -o m.h5
ok $rc "train a tiny FNO-1d (exit $rc)"
[ $rc -eq 0 ] || show_err
[ -f m.h5 ]; ok $? "the model file m.h5 is written"
[ "$(grep -c '^epoch ' out.txt)" -eq $epochs ]; ok $? "one line per epoch ($epochs)"
grep -q "^epoch *1/$epochs  train L2 [0-9.e+-]*  test L2 [0-9.e+-]*  lr " out.txt; ok $? "epoch line format"
has "549569\|parameters" out.txt && has "16 train + 8 test samples at s = 32 (sub 2)" out.txt
ok $? "the header names the model and the split"
[ -f m.csv ] && [ "$(lines m.csv)" -eq $((epochs + 1)) ] && head -n 1 m.csv | grep -q '^epoch,train_loss,train_l2,test_l2,lr'
ok $? "metrics CSV m.csv beside the model: header + $epochs rows"

# --------------------------------------------------------------- eval
re='^test relative L2: mean [0-9][0-9.e+-]* median [0-9][0-9.e+-]* worst [0-9][0-9.e+-]* (n = 8)$'
run "$opl" eval m.h5 tiny.h5 --sub 2
ok $rc "eval at the training resolution (exit $rc)"
[ "$(lines out.txt)" -eq 1 ] && grep -q "$re" out.txt; ok $? "eval prints exactly the line 'test relative L2: mean X median Y worst Z (n = 8)'"
diag "$(cat out.txt)"
run "$opl" eval m.h5 tiny.h5
[ $rc -eq 0 ] && [ "$(lines out.txt)" -eq 1 ] && grep -q "$re" out.txt && has "at s = 64" err.txt
ok $? "eval at the file's finer resolution s = 64 (zero-shot)"
run "$opl" eval m.h5 tiny.h5 --ntest 5 --out pred.h5
[ $rc -eq 0 ] && [ -f pred.h5 ] && grep -q "(n = 5)" out.txt; ok $? "eval --ntest 5 --out pred.h5"
run "$opl" eval m.h5 tiny.h5 --plot p.png --plot-samples 2
if [ $rc -ne 0 ] && has "without cairo" err.txt; then
    skip "opl built without cairo" "eval --plot writes a PNG"
    ok $(( rc == 0 )) "without cairo --plot fails with a clear message"
else
    sig=$(od -An -tx1 -N8 p.png 2>/dev/null | tr -d ' \n')
    [ $rc -eq 0 ] && [ "$sig" = "89504e470d0a1a0a" ]; ok $? "eval --plot writes a valid PNG (signature $sig)"
    [ "$(lines out.txt)" -eq 1 ]; ok $? "with --plot stdout is still the one line"
fi

# --------------------------------------------------------------- resume
more=$((epochs + 2))
run "$opl" train fno --resume --epochs $more -o m.h5
ok $rc "train --resume continues the stored run (exit $rc)"
[ $rc -eq 0 ] || show_err
has "resuming 'm.h5' after epoch $epochs" out.txt && [ "$(grep -c '^epoch ' out.txt)" -eq 2 ]
ok $? "resume runs epochs $((epochs + 1))..$more only"
[ "$(lines m.csv)" -eq $((more + 1)) ]; ok $? "the CSV continues: $more rows"
# bit for bit across processes: 4 epochs straight == 2 epochs, then --resume to 4 (the checkpoint
# carries the optimizer, the scheduler and the FFTW wisdom of the run)
common="--data tiny.h5 --ntrain 16 --ntest 8 --sub 2 --modes 8 --width 16 --layers 2 --proj 16 --batch 5 --lr 3e-3 --step-size 1 --seed 3 --threads 1 --quiet"
run "$opl" train fno $common --epochs 4 -o s4.h5
rs=$rc
run "$opl" train fno $common --epochs 2 -o r4.h5
run "$opl" train fno --resume --epochs 4 --threads 1 --quiet -o r4.h5
if [ $rs -ne 0 ] || [ $rc -ne 0 ]; then
    ok 1 "straight and resumed runs ran (exit $rs, $rc)"
    show_err
elif command -v h5diff > /dev/null 2>&1; then
    h5diff s4.h5 r4.h5 /model /model > /dev/null && h5diff s4.h5 r4.h5 /optim /optim > /dev/null
    ok $? "4 epochs == 2 epochs + resume 2: parameters and optimizer state identical (h5diff)"
else
    skip "h5diff not installed" "4 epochs == 2 epochs + resume 2, bit for bit"
fi
cut -d, -f1-5 s4.csv > a.csv; cut -d, -f1-5 r4.csv > b.csv
cmp -s a.csv b.csv; ok $? "the resumed metrics log has the straight run's losses for epochs 1..4"
run "$opl" train fno --resume --batch 4 -o m.h5
[ $rc -ne 0 ] && has "train.batch = 5 there, 4" err.txt; ok $? "resume with another batch size is refused, naming it"
run "$opl" train fno --resume --data tiny.h5 -o nothing.h5
[ $rc -ne 0 ] && has "nothing.h5" err.txt; ok $? "resume without a checkpoint: error naming the file"

# --------------------------------------------------------------- determinism (2 threads)
# A training run is a function of (command, data, thread count): FFT plans are chosen without
# timing (FFTW_ESTIMATE), sums are added in a fixed order, and a resumed run re-imports the
# run's FFTW wisdom. Sizes: work per loop above the parallel threshold (10 x 32 x 128 values),
# and modes 24 >= 2 log2(128), so the spectral layers use threaded FFTW plans, not the GEMM.
# The checkpoints must be the same bytes (HDF5 stores no object times in opl's files); of the
# CSV the first five columns (epoch, losses, test error, learning rate) must agree, the others
# are wall times.
if [ "$san" = 1 ]; then de=8; else de=30; fi
run "$opl" generate burgers --preset fno --n 12 --res 256 --store-res 128 --seed 5 --quiet -o b128.h5
ok $rc "a Burgers set at 128 points (exit $rc)"
dcom="--data b128.h5 --ntrain 10 --ntest 2 --modes 24 --width 32 --layers 1 --proj 32 --batch 10 --lr 3e-3 --step-size 1 --seed 3 --threads 2 --quiet --epochs $de"
same_run() { # a.h5 b.h5: 0 if the checkpoints are byte-identical and the CSVs' metrics agree
    cmp -s "$1" "$2" && cut -d, -f1-5 "${1%.h5}.csv" > a.cut && cut -d, -f1-5 "${2%.h5}.csv" > b.cut &&
        cmp -s a.cut b.cut
}
run "$opl" train fno $dcom -o d1.h5
r1=$rc
sleep 1 # a second apart: no time stamp may reach the files
run "$opl" train fno $dcom -o d2.h5
if [ $r1 -ne 0 ] || [ $rc -ne 0 ]; then
    ok 1 "two identical runs ran (exit $r1, $rc)"
    show_err
else
    same_run d1.h5 d2.h5
    ok $? "two identical train commands at 2 threads: byte-identical checkpoints, identical CSV metrics"
fi
# SIGKILL after the first checkpoint (the run is then inside epoch 2), resume, compare.
rm -f k.h5 k.csv
"$opl" train fno $dcom --checkpoint-every 1 -o k.h5 > /dev/null 2>&1 &
kpid=$!
i=0
while [ ! -f k.h5 ] && [ $i -lt 3000 ] && kill -0 $kpid 2> /dev/null; do sleep 0.01; i=$((i + 1)); done
kill -9 $kpid 2> /dev/null
wait $kpid 2> /dev/null
kdone=$("$opl" info k.h5 2>/dev/null | awk '$1 == "train.epoch" {print $2}')
diag "killed after epoch ${kdone:-none} of $de"
if [ -z "$kdone" ] || [ "$kdone" -ge $de ]; then
    skip "the run was not killed mid-way (epoch '${kdone:-none}' of $de)" "a SIGKILLed and resumed run equals the uninterrupted one"
else
    run "$opl" train fno --resume --epochs $de --threads 2 --quiet -o k.h5
    if [ $rc -ne 0 ]; then
        ok 1 "resume after SIGKILL ran (exit $rc)"
        show_err
    else
        same_run d1.h5 k.h5
        ok $? "SIGKILL in epoch $((kdone + 1)), --resume to $de: checkpoint byte-identical to the uninterrupted run's, same CSV metrics"
    fi
fi

# --------------------------------------------------------------- bad input
run "$opl" train fno --data tiny.h5 --bogus 1 -o x.h5
[ $rc -eq 2 ] && has "bogus" err.txt; ok $? "unknown flag: exit 2 naming it"
run "$opl" train fno --data missing.h5 -o x.h5
[ $rc -eq 1 ] && has "missing.h5" err.txt; ok $? "missing data set: exit 1 naming the file"
run "$opl" train fno --data tiny.h5 --sub 2 --modes 40 --epochs 1 -o x.h5
[ $rc -eq 2 ] && has "modes 40" err.txt && has "at most 16" err.txt && [ ! -f x.h5 ]
ok $? "modes > res/2: exit 2, 'modes 40 ... at most 16', nothing written"
show_err
run "$opl" train fno --data tiny.h5 --sub 3 -o x.h5
[ $rc -eq 2 ] && has "sub = 3" err.txt; ok $? "sub not dividing the resolution: exit 2"
run "$opl" train fno --data tiny.h5 --ntrain 20 --ntest 8 -o x.h5
[ $rc -eq 2 ] && has "ntrain 20 + ntest 8" err.txt; ok $? "ntrain + ntest > N: exit 2"
run "$opl" train fno --data tiny.h5 --normalize sometimes -o x.h5
[ $rc -eq 2 ] && has "none or gaussian" err.txt; ok $? "bad --normalize: exit 2"
run "$opl" train fno --data tiny.h5 --lr abc -o x.h5
[ $rc -eq 2 ] && has "lr" err.txt; ok $? "non-numeric --lr: exit 2"
run "$opl" train fno --data tiny.h5
[ $rc -eq 2 ] && has "MODEL.h5 is required" err.txt; ok $? "missing -o: exit 2"
run "$opl" train --data tiny.h5 -o x.h5
[ $rc -eq 2 ] && has "fno" err.txt; ok $? "missing model name: exit 2"
run "$opl" train fno --data tiny.h5 --dim 2 -o x.h5
[ $rc -eq 2 ] && has "1-D" err.txt; ok $? "--dim 2 on 1-D data: exit 2"
run "$opl" train fno --data tiny.h5 --target-time 0.5 -o x.h5
[ $rc -eq 2 ] && has "no snapshot" err.txt; ok $? "--target-time without such a snapshot: exit 2"
# --target-time picks the snapshot by its time: 4 snapshots at t = 0.25, 0.5, 0.75, 1
run "$opl" generate burgers --preset fno --n 8 --res 64 --store-res 32 --nt 4 --seed 3 --quiet -o nt4.h5
ok $rc "a Burgers set with 4 snapshots (exit $rc)"
for tf in "0.5 1" "0.75 2" "1 3" "- 3"; do
    t=${tf% *} want=${tf#* }
    if [ "$t" = - ]; then targ=""; desc="no --target-time"; else targ="--target-time $t"; desc=$targ; fi
    run "$opl" train fno --data nt4.h5 --ntrain 6 --ntest 2 --modes 4 --width 4 --layers 1 --proj 4 --epochs 1 \
        --batch 3 $targ -o tt.h5
    got=$("$opl" info tt.h5 2>/dev/null | awk '$1 == "train.target_frame" {print $2}')
    [ $rc -eq 0 ] && [ "$got" = "$want" ]; ok $? "$desc trains on snapshot $want (got '$got')"
done
run "$opl" train fno --data nt4.h5 --ntrain 6 --ntest 2 --epochs 1 --target-time 0.6 -o tt.h5
[ $rc -eq 2 ] && has "t = 0.25 .. 1" err.txt; ok $? "--target-time 0.6 between snapshots: exit 2 naming the stored times"
run "$opl" train fno --data tiny.h5 --ntrain 8 --ntest 4 --sub 2 --modes 4 --width 8 --layers 1 --epochs 3 \
    --batch 4 --lr 1e300 --weight-decay 0 -o div.h5
[ $rc -eq 1 ] && has "divergence" err.txt; ok $? "a blown-up learning rate: divergence reported, exit 1"
show_err
run "$opl" summary m.h5
[ $rc -eq 0 ] && [ "$(tail -n 1 out.txt)" = "parameters: $("$opl" info m.h5 2>/dev/null | awk '$1 == "fno.param_count" {print $2}')" ] &&
    has "FNO-1d (modes 8, width 16, 2 layers, projection 16)" out.txt
ok $? "summary of the trained m.h5: its stored configuration and parameter count"
run "$opl" eval missing.h5 tiny.h5
[ $rc -eq 1 ] && has "missing.h5" err.txt; ok $? "eval of a missing model: exit 1 naming it"
run "$opl" eval m.h5
[ $rc -eq 2 ]; ok $? "eval with one file: exit 2"
run "$opl" eval m.h5 tiny.h5 --sub 3
[ $rc -eq 2 ] && has "sub = 3" err.txt; ok $? "eval --sub not dividing: exit 2"
run "$opl" eval m.h5 tiny.h5 --sub 16
[ $rc -eq 2 ] && has "modes" err.txt; ok $? "eval at a resolution below 2 modes: exit 2, naming the modes"
show_err

# --------------------------------------------------------------- bench
run "$opl" bench fno --case fno1d --s 64 --modes 8 --width 8 --batch 4 --iters 2 --warmup 1 --threads 1 --mode train
[ $rc -eq 0 ] && grep -q '^{"impl": "opl", "case": "fno1d", "s": 64, "threads": 1, "mode": "train", "ms_median": [0-9.]*, "samples_per_s": [0-9.]*, "peak_rss_mib": [0-9.]*, "params": [0-9]*' out.txt
ok $? "bench fno prints the JSON line of the harness"
diag "$(cut -c1-200 out.txt)"
# peak RSS is the process's own: started by a process holding 300 MiB (perl's exec keeps the
# getrusage high-water mark of the process it replaces), a tiny bench reports far less.
if command -v perl > /dev/null 2>&1; then
    run perl -e '$x = "x" x (300 << 20); exec @ARGV or exit 9' "$opl" bench fno --case fno1d --s 64 --modes 8 --width 8 \
        --batch 4 --iters 2 --warmup 1 --threads 1 --mode train
    rss=$(sed -n 's/.*"peak_rss_mib": \([0-9.]*\).*/\1/p' out.txt)
    [ $rc -eq 0 ] && [ -n "$rss" ] && awk -v r="$rss" 'BEGIN { exit !(r < 150) }'
    ok $? "bench fno's peak_rss_mib is its own ($rss MiB), not its parent's 300 MiB"
else
    skip "perl not installed" "bench fno's peak_rss_mib is its own"
fi
run "$opl" bench fno --case fno1d --s 64 --modes 8 --width 8 --batch 4 --iters 1 --warmup 0 --threads 1 --fft-planner fastest
[ $rc -eq 2 ] && has "estimate or measure" err.txt; ok $? "bench fno with an unknown --fft-planner: exit 2"
run "$opl" bench fno --case fno2d_time --s 16 --modes 4 --width 4 --batch 2 --rollout 2 --iters 1 --warmup 0 --threads 1 --mode infer
[ $rc -eq 0 ] && has '"rollout": 2' out.txt; ok $? "bench fno fno2d_time infer"
# inference over a team of 2 threads (the batch of 3 in slices of 1 and 2): runs, finite
run "$opl" bench fno --case fno2d_time --s 16 --modes 4 --width 4 --batch 3 --rollout 2 --iters 1 --warmup 1 --threads 2 --mode infer
[ $rc -eq 0 ] && has '"threads": 2, "mode": "infer"' out.txt && has '"finite": true' out.txt
ok $? "bench fno fno2d_time infer on 2 threads (slices of 1 and 2 samples): finite"
run "$opl" bench fno --case fno1d --s 64 --modes 8 --width 8 --batch 4 --iters 1 --warmup 1 --threads 2 --mode infer
[ $rc -eq 0 ] && has '"threads": 2, "mode": "infer"' out.txt && has '"finite": true' out.txt
ok $? "bench fno fno1d infer on 2 threads: finite"
run "$opl" bench fno --case fno4d
[ $rc -eq 2 ] && has "fno1d or fno2d_time" err.txt; ok $? "bench fno with an unknown case: exit 2"
run "$opl" bench
[ $rc -eq 2 ]; ok $? "bench without a benchmark: exit 2"

echo "1..$n"

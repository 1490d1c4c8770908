#!/bin/sh
# Outputs never destroy inputs, and bad flags and config files are refused (TAP on stdout).
# usage: sh tests/cli/test_cli_outputs.sh path/to/opl
# Each case is named after the defect it guards against: an output that is the same file as an
# input (same name, hard link, symbolic link, another spelling) for train, eval, solve and
# generate; a PNG written in place; stale <output>.tmp.<pid> files of dead processes; the metrics
# log of a run that wrote no checkpoint; a data set larger than the disk; --config lines over
# 1023 characters, devices, directories and pipes; negative counts taken as "default".
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_outputs.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_outputs.XXXXXX") || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
# a pid that no longer runs: a shell that has exited (and been reaped)
dead_pid() { sh -c 'echo $$'; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
tiny="--modes 4 --width 4 --layers 1 --proj 4 --batch 4 --quiet"

# --------------------------------------------------------------- inputs
run "$opl" generate burgers --preset fno --n 12 --res 64 --store-res 32 --seed 1 --quiet -o d.h5
if [ $rc -ne 0 ] || [ ! -f d.h5 ]; then
    show_err
    echo "Bail out! cannot make the data set with opl generate (exit $rc)"
    exit 1
fi
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o m.h5
if [ $rc -ne 0 ] || [ ! -f m.h5 ]; then
    show_err
    echo "Bail out! cannot train the model with opl train (exit $rc)"
    exit 1
fi
cp d.h5 d.orig; cp m.h5 m.orig
mkdir sub
intact() { cmp -s d.h5 d.orig && cmp -s m.h5 m.orig; }
# the inputs and their links as they were (a failing case must not break the ones after it)
restore() {
    rm -f d.h5 m.h5 d_hard.h5 d_soft.h5 m_hard.h5 p.h5
    cp d.orig d.h5; cp m.orig m.h5
    ln d.h5 d_hard.h5; ln -s d.h5 d_soft.h5; ln m.h5 m_hard.h5
}
restore
# refused CMD...: exit 2 with "same file" on stderr and both inputs untouched
refused() {
    run "$@"
    [ $rc -eq 2 ] && has "same file" err.txt && intact
    set -- $?
    restore
    return "$1"
}

# --------------------------------------------------------------- an output that is an input
refused "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o d.h5
ok $? "train -o d.h5 --data d.h5 overwrote its data set: now exit 2, data untouched"
show_err
refused "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o d_hard.h5
ok $? "train -o a hard link of the data set: exit 2"
refused "$opl" train fno --data d_soft.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o sub/../d.h5
ok $? "train -o another spelling of a symbolic link's target: exit 2"
refused "$opl" eval m.h5 d.h5 --out d.h5
ok $? "eval --out the data set overwrote it: now exit 2"
refused "$opl" eval m.h5 d.h5 --out m_hard.h5
ok $? "eval --out a hard link of the model: exit 2"
refused "$opl" eval m.h5 d.h5 --plot m.h5
ok $? "eval --plot the model overwrote it with a PNG: now exit 2"
run "$opl" eval m.h5 d.h5 --out p.h5 --plot ./p.h5
[ $rc -eq 2 ] && has "same file" err.txt && [ ! -e p.h5 ]
ok $? "eval --out p.h5 --plot ./p.h5 (one output over the other, not existing yet): exit 2, nothing written"
restore
refused "$opl" solve burgers --ic d.h5 --res 64 --store-res 32 --quiet -o d.h5
ok $? "solve --ic d.h5 -o d.h5 overwrote its initial condition's file: now exit 2"
refused "$opl" solve burgers --ic d_soft.h5 --res 64 --store-res 32 --quiet -o d_hard.h5
ok $? "solve -o a hard link of --ic (given as a symbolic link): exit 2"
refused "$opl" solve burgers --ic d.h5.partial --res 64 --store-res 32 --quiet --restart -o d.h5
rc1=$rc
ln d.h5 d.h5.partial
refused "$opl" solve burgers --ic d.h5.partial --res 64 --store-res 32 --quiet --restart -o d.h5
ok $? "solve --ic FILE.partial --restart -o FILE removed its input (the partial file): now exit 2"
rm -f d.h5.partial
[ $rc1 -ne 2 ]; ok $? "an --ic that does not exist is not reported as a clash (exit $rc1)"
cp d.h5 g.h5
ln g.h5 g.h5.partial
run "$opl" generate burgers --preset fno --n 2 --res 64 --store-res 32 --seed 1 --quiet -o g.h5
[ $rc -eq 2 ] && has "same file" err.txt && cmp -s g.h5 d.orig
ok $? "generate -o FILE whose partial file is FILE itself (a hard link): exit 2"
rm -f g.h5 g.h5.partial
restore
run "$opl" solve burgers --ic d.h5 --res 64 --store-res 32 --quiet -o s.h5
[ $rc -eq 0 ] && [ -f s.h5 ] && intact
ok $? "solve --ic d.h5 -o s.h5 (distinct files) still works"

# --------------------------------------------------------------- the PNG is written atomically
run "$opl" eval m.h5 d.h5 --plot p.png --plot-samples 2
if [ $rc -eq 2 ] && has "without cairo" err.txt; then
    skip "opl built without cairo" "eval --plot into a directory that cannot hold it: error, no file"
    skip "opl built without cairo" "eval --plot under a file-size limit: the old PNG is kept whole"
else
    ls p.png.tmp.* > /dev/null 2>&1; left=$?
    [ $rc -eq 0 ] && [ -s p.png ] && [ $left -ne 0 ]
    ok $? "eval --plot p.png: the PNG and no temporary file"
    echo "not a directory" > file.txt
    run "$opl" eval m.h5 d.h5 --plot file.txt/p.png --plot-samples 2
    [ $rc -eq 1 ] && has "file.txt/p.png" err.txt && [ ! -e file.txt/p.png ]
    ok $? "eval --plot into a directory that cannot hold it: error naming it, no file"
    echo "the previous plot" > q.png
    # a full disk in miniature: writes beyond 8 blocks fail with EFBIG (SIGXFSZ ignored)
    ( ulimit -f 8 && trap '' XFSZ && exec "$opl" eval m.h5 d.h5 --plot q.png --plot-samples 4 ) > out.txt 2> err.txt
    rc=$?
    ls q.png.tmp.* > /dev/null 2>&1; left=$?
    [ $rc -eq 1 ] && [ "$(cat q.png)" = "the previous plot" ] && [ $left -ne 0 ]
    ok $? "eval --plot wrote the PNG in place (truncated when the disk fills): now the old file is kept whole, no temporary left"
    show_err
fi

# --------------------------------------------------------------- stale temporaries
dead=$(dead_pid)
live=$$
touch "m2.h5.tmp.$dead" "m2.csv.tmp.$dead" "m2.h5.tmp.$live" "d.h5.tmp.$dead" "m2.h5.tmp.${dead}x"
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o m2.h5
[ $rc -eq 0 ] && [ ! -e "m2.h5.tmp.$dead" ] && [ ! -e "m2.csv.tmp.$dead" ] && has "stale temporary" err.txt
ok $? "stale m2.h5.tmp.<pid> and m2.csv.tmp.<pid> of a dead process were left forever: now removed by the next run"
[ -e "m2.h5.tmp.$live" ] && [ -e "d.h5.tmp.$dead" ] && [ -e "m2.h5.tmp.${dead}x" ]
ok $? "temporaries of a running process, of another file, and other names are kept"
rm -f "m2.h5.tmp.$live" "d.h5.tmp.$dead" "m2.h5.tmp.${dead}x"
touch "e.h5.tmp.$dead" "e.png.tmp.$dead"
run "$opl" eval m.h5 d.h5 --out e.h5
[ $rc -eq 0 ] && [ ! -e "e.h5.tmp.$dead" ] && [ -e "e.png.tmp.$dead" ]
ok $? "eval --out e.h5 removes only e.h5's stale temporaries"
rm -f "e.png.tmp.$dead"
touch "gen.h5.tmp.$dead"
run "$opl" generate burgers --preset fno --n 2 --res 64 --store-res 32 --seed 1 --quiet -o gen.h5
[ $rc -eq 0 ] && [ ! -e "gen.h5.tmp.$dead" ]; ok $? "generate -o gen.h5 removes gen.h5's stale temporaries"

# --------------------------------------------------------------- the metrics log of a run without a checkpoint
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 3 $tiny --lr 1e300 --weight-decay 0 -o div.h5
[ $rc -eq 1 ] && has "divergence" err.txt && [ ! -e div.h5 ] && [ ! -e div.csv ]
ok $? "a diverged run with no checkpoint left div.csv behind: now neither div.h5 nor div.csv"
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 3 $tiny --lr 1e300 --weight-decay 0 \
    --batch 8 --checkpoint-every 1 -o div.h5
[ $rc -eq 1 ] && has "divergence at epoch 2" err.txt && [ -e div.h5 ] && [ -e div.csv ]
ok $? "a diverged run that wrote a checkpoint keeps it and its metrics log"
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 1 $tiny -o km.h5
cp km.h5 km.orig; cp km.csv km.csv.orig
run "$opl" train fno --data d.h5 --ntrain 8 --ntest 4 --epochs 3 $tiny --lr 1e300 --weight-decay 0 -o km.h5
[ $rc -eq 1 ] && has "divergence" err.txt && cmp -s km.h5 km.orig && cmp -s km.csv km.csv.orig &&
    [ -z "$(ls km.csv.tmp.* 2>/dev/null)" ]
ok $? "a fresh run over an existing model that fails before its first checkpoint keeps that model's metrics log"

# --------------------------------------------------------------- a data set larger than the disk
# Under a 1 MB file-size limit, so that a regression cannot fill the disk.
( ulimit -f 2048 && trap '' XFSZ && exec "$opl" generate burgers --n 2147483648 --seed 1 --quiet -o big.h5 ) \
    > out.txt 2> err.txt
rc=$?
[ $rc -eq 1 ] && has "GB free" err.txt && has "2147483648 samples" err.txt && [ ! -e big.h5.partial ] && [ ! -e big.h5 ]
ok $? "generate --n 2147483648 preallocated the partial file: now refused with the sizes, nothing created"
show_err

# --------------------------------------------------------------- --config files
{
    echo "ntrain = 8"
    printf '# a comment of 5000 characters: '; i=0; while [ $i -lt 100 ]; do printf '%s' 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx='; i=$((i + 1)); done; echo
    printf 'data = '; i=0; while [ $i -lt 60 ]; do printf '%s' 'sub/../'; i=$((i + 1)); done; echo 'd.h5'
    echo "ntest = 4"
} > long.ini
run "$opl" train fno --config long.ini --epochs 1 $tiny -o long.h5
[ $rc -eq 0 ] && [ -f long.h5 ]; ok $? "--config with lines over 1023 characters was split and rejected: now read whole"
show_err
run timeout 60 "$opl" train fno --config /dev/zero --data d.h5 -o z.h5
[ $rc -eq 2 ] && has "device" err.txt; ok $? "--config /dev/zero never returned: now exit 2, 'a device'"
run "$opl" train fno --config sub --data d.h5 -o z.h5
[ $rc -eq 2 ] && has "directory" err.txt; ok $? "--config DIR was accepted silently: now exit 2, 'a directory'"
mkfifo fifo.ini 2> /dev/null
if [ -p fifo.ini ]; then
    run timeout 60 "$opl" train fno --config fifo.ini --data d.h5 -o z.h5
    [ $rc -eq 2 ] && has "pipe" err.txt; ok $? "--config FIFO (would block): exit 2, 'a pipe'"
else
    skip "mkfifo failed" "--config FIFO: exit 2"
fi

# --------------------------------------------------------------- negative counts
run "$opl" train fno --data d.h5 --ntrain -5 --ntest 4 --epochs 1 $tiny -o neg.h5
[ $rc -eq 2 ] && has "ntrain" err.txt && [ ! -e neg.h5 ]; ok $? "train --ntrain -5 was taken as 'all': now exit 2"
run "$opl" train fno --data d.h5 --ntrain 8 --ntest -5 --epochs 1 $tiny -o neg.h5
[ $rc -eq 2 ] && has "ntest" err.txt && [ ! -e neg.h5 ]; ok $? "train --ntest -5 was taken as the default: now exit 2"
printf 'ntest = -5\n' > neg.ini
run "$opl" train fno --config neg.ini --data d.h5 --ntrain 8 --epochs 1 $tiny -o neg.h5
[ $rc -eq 2 ] && has "neg.ini:1" err.txt; ok $? "ntest = -5 in a --config file: exit 2 naming the file and line"
run "$opl" bench fno --case fno1d --s -5 --iters 1 --warmup 0 --batch 2 --modes 4 --width 4
[ $rc -eq 2 ] && has "--s is -5" err.txt; ok $? "bench --s -5 was taken as the default resolution: now exit 2"
run "$opl" solve burgers --ic d.h5 --ic-index -5 --res 64 --store-res 32 --quiet -o neg.h5
[ $rc -eq 2 ] && has "ic-index" err.txt && [ ! -e neg.h5 ]; ok $? "solve --ic-index -5 was taken as sample 0: now exit 2"
run "$opl" generate burgers --n 2 --seed 1 --kmax -5 --res 64 --store-res 32 --quiet -o neg.h5
[ $rc -eq 2 ] && has "kmax" err.txt; ok $? "generate --kmax -5: exit 2 (only -1 means all shells)"
run "$opl" train fno --data d.h5 --ntrain -1 --ntest -1 --epochs 1 $tiny -o all.h5
[ $rc -eq 0 ]; ok $? "train --ntrain -1 --ntest -1 (the documented sentinels) still work"
show_err
# every option that accepts -1 says in its help what -1 means
run "$opl" bench fno --help
has "--s N .*(-1: " out.txt && has "--modes N .*(-1: " out.txt; ok $? "bench --help says what -1 means for --s and --modes"
run "$opl" train --help
has "--ntrain N .*(-1: " out.txt && has "--ntest N .*(-1: " out.txt; ok $? "train --help says what -1 means for --ntrain and --ntest"
run "$opl" generate --help
has "--kmax N .*(-1: " out.txt && has "--refine N .*(-1: " out.txt; ok $? "generate --help says what -1 means for --kmax and --refine"

# a file-size limit (ulimit -f) makes a write fail with EFBIG: opl reports it and exits 1 instead of
# being killed by SIGXFSZ in the middle of a write (the shell does not ignore the signal here)
( ulimit -f 1024 && exec "$opl" generate burgers --preset fno --n 100000 --res 256 --store-res 64 --seed 1 \
    --quiet -o fsz.h5 ) > out.txt 2> err.txt
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] && [ ! -e fsz.h5 ]
ok $? "a write past ulimit -f: exit 1 with one line (was killed by SIGXFSZ, exit 153), no output (exit $rc)"
show_err

echo "1..$n"

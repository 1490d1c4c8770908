#!/bin/sh
# experiments/node/steps.c (node_steps): the accepted steps of a trained neural ODE's solve of one
# test trajectory (TAP on stdout). A tiny Burgers set and a 2-epoch model (opl generate, opl train
# node); one line per accepted step, as many as the header counts, every EEst <= 1 (accepted),
# every growth h_j / h_{j-1} <= 10 (the controller's factor limit, solvers/rk.h), the steps
# tile the span (t_{j+1} = t_j + h_j to the printed 6 digits) and end at the last stored time (1 for these files); the
# summary line; bad input.
# usage: sh tests/experiments/test_node_steps.sh path/to/node_steps path/to/opl
set -u
steps=${1:?usage: test_node_steps.sh path/to/node_steps path/to/opl}
opl=${2:?usage: test_node_steps.sh path/to/node_steps path/to/opl}
case "$steps" in /*) ;; *) steps=$(pwd)/$steps ;; esac
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_node_steps.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
export OMP_NUM_THREADS=1

"$opl" generate burgers --n 12 --res 64 --store-res 32 --nt 5 --seed 1 --quiet -o d.h5 > /dev/null 2>&1 &&
    "$opl" train node --data d.h5 --ntrain 8 --ntest 4 --batch 4 --epochs 2 --seed 1 --quiet --vf fno --modes 4 \
        --width 8 --layers 1 --proj 8 --window 3 --rtol 1e-5 --atol 1e-7 --saveat dense -o m.h5 > /dev/null 2>&1
ok $? "a tiny data set and a 2-epoch neural ODE"
"$steps" m.h5 d.h5 2 > out.txt 2> err.txt
ok $? "node_steps m.h5 d.h5 2 exits 0"
sed 's/^/#   /' out.txt
acc=$(sed -n 1p out.txt | sed -n 's/^# model m.h5, sample 11: \([0-9]*\) accepted, [0-9]* rejected, NFE [0-9]*; relative L2 [0-9.e+-]*$/\1/p')
ok $([ -n "$acc" ] && [ "$acc" -ge 1 ] && echo 0 || echo 1) "header: the last test sample (11), its accepted steps ($acc), NFE and error"
awk -v acc="${acc:-0}" 'NR > 2 && $1 ~ /^[0-9]+$/ {
        k++; if ($1 != k - 1 || !($4 >= 0 && $4 <= 1)) bad = 1
        if (k > 1 && ($5 + 0 > 10.000001 || (t + h - $2 > 1e-5 || $2 - t - h > 1e-5))) bad = 1
        t = $2; h = $3 }
     END { end = t + h - 1; if (end < 0) end = -end; exit bad || k != acc || end > 1e-5 }' out.txt
ok $? "one line per accepted step: EEst in [0, 1], growth <= 10, t_j + h_j = t_{j+1}, the last step ends at t = 1"
grep -q '^# EEst: mean [0-9.e+-]* (h-weighted [0-9.e+-]*), max [0-9.e+-]*; steps with EEst < 0.1: [0-9]* of '"${acc:-x}"'$' out.txt
ok $? "the summary line"
"$steps" m.h5 > out.txt 2> err.txt
ok $([ $? -eq 2 ] && grep -q "^usage: node_steps" err.txt && echo 0 || echo 1) "a missing argument: exit 2, usage"
"$steps" d.h5 d.h5 > out.txt 2> err.txt
ok $([ $? -eq 1 ] && grep -q "^node_steps: " err.txt && echo 0 || echo 1) "a data file as the model: exit 1 with a message"
echo "1..$n"

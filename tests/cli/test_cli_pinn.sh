#!/bin/sh
# opl train pinn, opl predict and opl eval of a PINN model (TAP on stdout).
# usage: sh tests/cli/test_cli_pinn.sh path/to/opl
# A few iterations of each problem and optimizer, the progress lines and the metrics CSV, the same
# bits twice, a SIGKILLed run resumed to the uninterrupted run's bytes, the metrics log of a run that
# fails before its first checkpoint, predict's x / t / u shapes, eval's line and --plot (three
# panels), time windows (CSV window column, predict / eval of the piecewise network, a SIGKILLed
# windowed run resumed to the same bytes), and bad input (clear errors, exit 2, nothing written).
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_pinn.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_pinn.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
attr() { "$opl" info "$2" 2>/dev/null | awk -v k="$1" '$1 == k {print $2}'; }

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export OMP_WAIT_POLICY=passive
small="--layers 2x8 --points 200 --boundary-points 20 --threads 2"

# --------------------------------------------------------------- help
run "$opl" train pinn --help
[ $rc -eq 0 ] && has "--causal" out.txt && has "--optimizer" out.txt && has "--layers" out.txt && has "--eps" out.txt
ok $? "train pinn --help lists the flags"
[ "$(head -n 1 out.txt)" = "usage: opl train pinn --pde burgers|allen-cahn|kdv [options] -o MODEL.h5" ]; ok $? "train pinn --help: the usage line names the verb once"
run "$opl" predict --help
[ $rc -eq 0 ] && has "--nx" out.txt; ok $? "predict --help"

# --------------------------------------------------------------- training, each problem
for pde in burgers allen-cahn kdv; do
    run "$opl" train pinn --pde $pde $small --iters 6 --print-every 3 -o $pde.h5
    [ $rc -eq 0 ] && has "iter 3/12 adam" out.txt && has "iter 12/12 lbfgs" out.txt && [ -f $pde.h5 ] &&
        [ "$(wc -l < $pde.csv | tr -d ' ')" = 13 ] && head -n 1 $pde.csv | grep -q "^iteration,optimizer,loss,residual,ic,bc,min_w,eps,lr,seconds,window$"
    ok $? "$pde: adam+lbfgs, 6 + 6 iterations, progress lines, 12 CSV rows"
    [ $rc -eq 0 ] || show_err
done
run "$opl" train pinn --pde kdv $small --arch modified-mlp --causal --eps 1e-2,1 --chunks 4 --optimizer adam --iters 4 --print-every 1 -o c.h5
[ $rc -eq 0 ] && has "min w" out.txt && has "eps 0.01" out.txt && [ "$(attr pinn.arch c.h5)" = modified-mlp ] &&
    awk -F, 'NR > 1 && ($7 == "" || $8 == "") {bad = 1} END {exit bad}' c.csv
ok $? "kdv, modified MLP, causal: min w and eps on the progress lines and in every CSV row"
run "$opl" train pinn --pde burgers $small --hard --optimizer lbfgs --iters 5 --collocation grid -o h.h5
[ $rc -eq 0 ] && [ "$(attr pinn.hard h.h5)" = 1 ] && awk -F, 'NR > 1 && ($5 != 0 || $6 != 0) {bad = 1} END {exit bad}' h.csv
ok $? "burgers, hard conditions, L-BFGS on a grid: no initial or boundary loss"

# --------------------------------------------------------------- determinism and resume
com="train pinn --pde allen-cahn --layers 3x16 --points 2000 --boundary-points 40 --iters 40 --checkpoint-every 10 --quiet --threads 2"
# (the two runs at the same time, each in its own files)
"$opl" $com -o d1.h5 > /dev/null 2>&1 &
dpid=$!
"$opl" $com -o d2.h5 > /dev/null 2>&1
wait $dpid
same_run() { cmp -s "$1.h5" "$2.h5" && cut -d, -f1-9 "$1.csv" > a.cut && cut -d, -f1-9 "$2.csv" > b.cut && cmp -s a.cut b.cut; }
same_run d1 d2
ok $? "two identical commands: byte-identical checkpoints, identical CSV metrics"
rm -f k.h5 k.csv
"$opl" $com -o k.h5 > /dev/null 2>&1 &
kpid=$!
i=0
while [ ! -f k.h5 ] && [ $i -lt 3000 ] && kill -0 $kpid 2> /dev/null; do sleep 0.01; i=$((i + 1)); done
kill -9 $kpid 2> /dev/null
wait $kpid 2> /dev/null
kdone=$(attr pinn_train.iteration k.h5)
diag "killed after iteration ${kdone:-none} of 80"
if [ -z "$kdone" ] || [ "$kdone" -ge 80 ]; then
    skip "the run was not killed mid-way (iteration '${kdone:-none}')" "a SIGKILLed and resumed run equals the uninterrupted one"
else
    run "$opl" train pinn --resume --quiet -o k.h5
    [ $rc -eq 0 ] && same_run d1 k
    ok $? "SIGKILL after iteration $kdone, --resume: checkpoint and CSV metrics identical to the uninterrupted run's"
    [ $rc -eq 0 ] || show_err
fi
run "$opl" train pinn --resume --seed 3 -o k.h5
[ $rc -eq 1 ] && has "seed" err.txt; ok $? "--resume with another seed: exit 1 naming it"

# --------------------------------------------------------------- the metrics log of a failing run
# (Adam with lr 1e300 sends the parameters to +-1e300 or inf in its first step: the loss of the
# second iteration overflows in either precision, exit 1 before the first checkpoint)
fail="--optimizer adam --iters 3 --lr 1e300"
run "$opl" train pinn --pde burgers $small $fail -o nf.h5
[ $rc -eq 1 ] && has "loss is" err.txt && [ ! -e nf.h5 ] && [ ! -e nf.csv ] && [ -z "$(ls nf.csv.tmp.* 2>/dev/null)" ]
ok $? "a run that fails before its first checkpoint left a partial nf.csv: now neither nf.h5 nor nf.csv"
cp burgers.h5 burgers.orig; cp burgers.csv burgers.csv.orig
run "$opl" train pinn --pde burgers $small $fail -o burgers.h5
[ $rc -eq 1 ] && cmp -s burgers.h5 burgers.orig && cmp -s burgers.csv burgers.csv.orig &&
    [ -z "$(ls burgers.csv.tmp.* 2>/dev/null)" ]
ok $? "a fresh run over an existing model that fails before its first checkpoint keeps that model's metrics log"
[ $rc -eq 1 ] || show_err

# --------------------------------------------------------------- predict and eval
run "$opl" predict burgers.h5 --nx 33 --nt 11 -o p.h5
[ $rc -eq 0 ] && [ -f p.h5 ]; ok $? "predict writes OUT.h5"
if command -v h5dump > /dev/null 2>&1; then
    h5dump -H p.h5 > hd.txt 2>&1
    grep -A2 'DATASET "u"' hd.txt | grep -q "( 11, 33 )" && grep -A2 'DATASET "x"' hd.txt | grep -q "( 33 )" &&
        grep -A2 'DATASET "t"' hd.txt | grep -q "( 11 )"
    ok $? "predict: u [11, 33], x [33], t [11]"
    h5dump -d x -d t p.h5 > hv.txt 2>&1
    grep -q "(0): -1," hv.txt && grep -q "(0): 0, 0.1," hv.txt && [ "$(grep -c ', 1$' hv.txt)" = 2 ]
    ok $? "predict: x from -1 to 1 and t from 0 to 1, ends included"
else
    skip "no h5dump" "predict: u [11, 33], x [33], t [11]"
    skip "no h5dump" "predict: x from -1 to 1 and t from 0 to 1, ends included"
fi
run "$opl" eval burgers.h5 --nx 64 --nt 21
[ $rc -eq 0 ] && grep -Eq "^relative L2: [0-9.]+e[-+][0-9]+$" out.txt && [ "$(wc -l < out.txt | tr -d ' ')" = 1 ]
ok $? "eval MODEL.h5 prints exactly 'relative L2: X'"
run "$opl" eval kdv.h5 --nx 32 --nt 5
[ $rc -eq 0 ] && grep -Eq "^relative L2: [0-9.]+e[-+][0-9]+$" out.txt; ok $? "eval of a KdV model against its ETDRK4 reference"
if "$opl" eval burgers.h5 --plot x.png > /dev/null 2> perr.txt; then
    head -c 8 x.png | od -An -c | grep -q "P   N   G"; ok $? "eval --plot writes a PNG"
    # IHDR: width and height (big-endian) at bytes 16..23; three panels (reference, prediction,
    # error) of 300 pixels after a 150-pixel label column, one row of 262 under a 60-pixel title
    [ "$(od -An -tu1 -j16 -N8 x.png | tr -s ' ' | sed 's/^ //')" = "0 0 4 26 0 0 1 66" ]
    ok $? "eval --plot: 1050 x 322 pixels, three panels (reference, prediction, error), no input panel"
elif grep -q "plotting" perr.txt; then
    skip "built without cairo" "eval --plot writes a PNG"
    skip "built without cairo" "eval --plot: 1050 x 322 pixels, three panels"
else
    ok 1 "eval --plot writes a PNG"
    ok 1 "eval --plot: 1050 x 322 pixels, three panels"
fi

# --------------------------------------------------------------- time windows
wcom="train pinn --pde allen-cahn --layers 2x8 --points 256 --boundary-points 32 --iters 10 --windows 3 --checkpoint-every 5 --threads 2"
run "$opl" $wcom --print-every 10 -o w1.h5
[ $rc -eq 0 ] && has "iter 20/60 lbfgs window 1/3" out.txt && has "iter 60/60 lbfgs window 3/3" out.txt &&
    has "in each of 3 time windows" out.txt && [ "$(attr pinn.windows w1.h5)" = 3 ] &&
    awk -F, 'NR > 1 { w = int(($1 - 1) / 20); if ($11 != w) bad = 1; n++ } END { exit bad || n != 60 }' w1.csv
ok $? "--windows 3: 3 x (10 + 10) iterations, the window on the progress lines and in the CSV's window column"
[ $rc -eq 0 ] || show_err
run "$opl" predict w1.h5 --nx 17 --nt 31 -o wp.h5
[ $rc -eq 0 ] && [ -f wp.h5 ]; ok $? "predict of a 3-window model"
run "$opl" eval w1.h5 --nx 32 --nt 31
[ $rc -eq 0 ] && grep -Eq "^relative L2: [0-9.]+e[-+][0-9]+$" out.txt && has "3 time windows" err.txt
ok $? "eval of a 3-window model (the piecewise network)"
# killed inside the second window (after its checkpoint at iteration 40 or later), resumed
kcom="train pinn --pde allen-cahn --layers 3x32 --points 4000 --boundary-points 40 --iters 20 --windows 3 --checkpoint-every 10 --quiet --threads 2"
# (the uninterrupted run beside the one killed, each in its own files)
"$opl" $kcom -o w2.h5 > /dev/null 2>&1 &
w2pid=$!
rm -f wk.h5 wk.csv
"$opl" $kcom -o wk.h5 > /dev/null 2>&1 &
kpid=$!
i=0
while { [ ! -f wk.h5 ] || [ "$(attr pinn_train.iteration wk.h5)" -lt 40 ] 2>/dev/null; } && [ $i -lt 6000 ] &&
    kill -0 $kpid 2> /dev/null; do sleep 0.01; i=$((i + 1)); done
kill -9 $kpid 2> /dev/null
wait $kpid 2> /dev/null
wait $w2pid
kdone=$(attr pinn_train.iteration wk.h5)
diag "3 windows: killed after iteration ${kdone:-none} of 120"
if [ -z "$kdone" ] || [ "$kdone" -ge 120 ]; then
    skip "the run was not killed mid-way (iteration '${kdone:-none}')" "3 windows: a SIGKILLed and resumed run equals the uninterrupted one"
else
    run "$opl" train pinn --resume --quiet -o wk.h5
    [ $rc -eq 0 ] && cmp -s w2.h5 wk.h5 && cut -d, -f1-9,11 w2.csv > a.cut && cut -d, -f1-9,11 wk.csv > b.cut && cmp -s a.cut b.cut
    ok $? "3 windows: SIGKILL after iteration $kdone, --resume: checkpoint and CSV identical to the uninterrupted run's"
    [ $rc -eq 0 ] || show_err
fi
run "$opl" train pinn --resume --windows 2 -o w1.h5
[ $rc -eq 2 ] && has "windows 2" err.txt; ok $? "--resume with another --windows: exit 2 naming it"
run "$opl" predict missing.h5 -o q.h5
[ $rc -eq 1 ] && has "missing.h5" err.txt && [ ! -f q.h5 ]; ok $? "predict of a missing model: exit 1 naming it"
run "$opl" predict burgers.h5 --nx 1 -o q.h5
[ $rc -eq 2 ] && has "nx 1" err.txt && [ ! -f q.h5 ]; ok $? "predict --nx 1: exit 2"

# --------------------------------------------------------------- bad input
bad() { # description expected-text args...
    d=$1 want=$2
    shift 2
    run "$opl" train pinn "$@" -o bad.h5
    [ $rc -eq 2 ] && has "$want" err.txt && [ ! -f bad.h5 ]
    ok $? "$d: exit 2 naming '$want', nothing written"
    [ $rc -eq 2 ] || show_err
}
bad "unknown --pde" "heat" --pde heat
bad "missing --pde" "--pde" --iters 3
bad "unknown --arch" "resnet" --pde burgers --arch resnet
bad "unknown --optimizer" "sgd" --pde burgers --optimizer sgd
bad "--layers garbage" "8by20" --pde burgers --layers 8by20
bad "--layers 0x20" "0x20" --pde burgers --layers 0x20
bad "--points 0" "--points 0" --pde burgers --points 0
bad "--eps garbage" "1e-2,x" --pde kdv --causal --eps 1e-2,x
bad "--eps negative" "-1" --pde kdv --causal --eps=-1
bad "--chunks without --causal" "needs --causal" --pde kdv --chunks 8
bad "--eps without --causal" "needs --causal" --pde kdv --eps 1
bad "more chunks than points" "chunks" --pde kdv --causal --chunks 500 --points 100
bad "--embed periodic on burgers" "not periodic" --pde burgers --embed periodic
bad "unknown --collocation" "sobol" --pde burgers --collocation sobol
bad "unknown flag" "bogus" --pde burgers --bogus 1
bad "--windows 0" "--windows 0" --pde burgers --windows 0
bad "--windows 65" "--windows 65" --pde burgers --windows 65
bad "--windows with --hard" "--hard" --pde allen-cahn --windows 2 --hard
run "$opl" train pinn --pde burgers --iters 2 $small
[ $rc -eq 2 ] && has "-o MODEL.h5" err.txt; ok $? "no -o: exit 2"

echo "1..$n"

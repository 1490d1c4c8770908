#!/bin/sh
# opl quick start: the whole pipeline on a small Burgers problem, in a few minutes on 2 cores.
#
#   1. generate 240 trajectories of Burgers' equation (the FNO paper's setting: nu = 0.1, T = 1,
#      random initial conditions from a Gaussian random field), solved at 2048 points and stored
#      at 1024 (`opl generate`);
#   2. train an FNO-1d (Li et al., ICLR 2021) on the first 200 samples at s = 256 (every 4th
#      point), testing on the last 40 (`opl train`);
#   3. evaluate it at the training resolution s = 256 and, zero-shot, at s = 1024 (`opl eval`),
#      both times next to the reference solver (time per sample and error), and plot four test
#      samples (quickstart.png);
#   4. print a small table.
# Every command is echoed before it runs. Outputs go to build/quickstart/ (OUT=dir to change);
# an existing data set there is reused (delete it to regenerate).
#
# usage: experiments/quickstart/run.sh        environment: OPL (default build/release/opl), OUT,
#        EPOCHS (default 60), THREADS (default: all cores)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
out=${OUT:-$root/build/quickstart}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
epochs=${EPOCHS:-60}
threads=${THREADS:-0}
# On a machine whose cores are busy, OpenMP threads that spin at barriers are much slower than
# threads that sleep (experiments/bench/README.md): let them sleep unless told otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [ ! -x "$opl" ]; then
    echo "quickstart: '$opl' not found; build it first: sh scripts/build.sh release" >&2
    exit 1
fi
mkdir -p "$out"
cd "$out"
run() { echo "+ $*"; "$@"; }
t0=$(date +%s)

echo "== 1. data: 240 Burgers trajectories (FNO preset), solved at 2048 points, stored at 1024"
if [ -f burgers.h5 ]; then
    echo "(reusing $out/burgers.h5; delete it to regenerate)"
else
    run "$opl" generate burgers --preset fno --n 240 --res 2048 --store-res 1024 --seed 1 --threads "$threads" \
        -o burgers.h5
fi

echo
echo "== 2. train FNO-1d: 200 samples at s = 256 (--sub 4), 40 test samples, $epochs epochs"
# At nu = 0.1 the solution at T = 1 has decayed to about 1% of the initial condition, so the
# targets are normalized per point (fourier_2d.py's UnitGaussianNormalizer; fourier_1d.py does
# not normalize): the network then predicts O(1) values, and training is much steadier (test
# error ~5e-3 instead of ~4e-2 after 60 epochs). Smaller batches than the paper's 20 give
# more steps in a short run.
run "$opl" train fno --data burgers.h5 --ntrain 200 --ntest 40 --sub 4 --epochs "$epochs" --batch 10 \
    --lr 1e-3 --step-size 15 --gamma 0.5 --normalize gaussian --seed 0 --every 5 --threads "$threads" -o model.h5

echo
echo "== 3. evaluate at s = 256 (the training resolution), against the solver, with a plot"
run "$opl" eval model.h5 burgers.h5 --sub 4 --solver --plot quickstart.png --threads "$threads" | tee eval256.txt
echo
echo "== 4. evaluate zero-shot at s = 1024 (4x finer than training), against the solver"
run "$opl" eval model.h5 burgers.h5 --sub 1 --solver --threads "$threads" | tee eval1024.txt

# ---- the table, from the lines printed above
field() { # file pattern: the mean relative L2 of the summary line
    sed -n 's/^test relative L2: mean \([^ ]*\) median \([^ ]*\) worst \([^ ]*\).*/\1 \2 \3/p' "$1"
}
row() { # file row-prefix: "seconds-per-sample rel-L2" of that row of the solver table
    awk -v p="$2" 'index($0, p) == 3 { print $(NF-1), $NF }' "$1"
}
s256=$(field eval256.txt); s1024=$(field eval1024.txt)
fno256=$(row eval256.txt "FNO"); fno1024=$(row eval1024.txt "FNO")
sol256=$(row eval256.txt "solver etdrk4 at"); sol1024=$(row eval1024.txt "solver etdrk4 at")
ref=$(row eval256.txt "solver etdrk4 as generated")
echo
echo "== quick start summary: FNO-1d trained on 200 Burgers samples at s = 256, tested on 40"
echo
printf '%-34s %10s %12s %12s %12s\n' "" "rel. L2" "median" "worst" "s/sample"
set -- $s256; printf '%-34s %10s %12s %12s' "FNO at s = 256 (training res.)" "$1" "$2" "$3"
set -- $fno256 x x; printf ' %12s\n' "$1"
set -- $s1024; printf '%-34s %10s %12s %12s' "FNO at s = 1024 (zero-shot)" "$1" "$2" "$3"
set -- $fno1024 x x; printf ' %12s\n' "$1"
set -- $sol256 x x; printf '%-34s %10s %12s %12s %12s\n' "solver (ETDRK4) at s = 256" "$2" "" "" "$1"
set -- $sol1024 x x; printf '%-34s %10s %12s %12s %12s\n' "solver (ETDRK4) at s = 1024" "$2" "" "" "$1"
set -- $ref x x; printf '%-34s %10s %12s %12s %12s\n' "solver as generated (s = 2048)" "$2" "" "" "$1"
echo
echo "(solver rows: 4 test samples re-solved from their initial condition on one thread; FNO rows:"
echo " all 40 test samples, batched. Errors are relative L2 against the stored data.)"
echo "plot: $out/quickstart.png   model: $out/model.h5   metrics: $out/model.csv"
echo "total time: $(( $(date +%s) - t0 )) s"

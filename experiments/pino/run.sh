#!/bin/sh
# The physics-informed neural operator on Burgers (Li et al., "Physics-Informed Neural Operator for
# Learning Partial Differential Equations", 2021): few training samples, data loss only against
# data + PDE + initial-condition losses (`opl train fno --dim 2 --pde-weight W --ic-weight V`),
# test relative L2 at the training resolution and, zero-shot, at 4x the resolution.
#
# For each viscosity in NUS (default "0.001 0.01": the chebfun preset's own and PINO's Burgers
# viscosity, the preset's initial conditions and T = 1 both times):
#   1. data: N = 150 trajectories solved at 1024 points with NT = 50 frames after t = 0, stored
#      at s = 128 (train + test) and, the same samples (same seed), at s = 512 (the 4x test);
#      the residual of the stored data themselves at both resolutions (pino_data_residual:
#      what the PDE loss of a perfect prediction would be);
#   2. for ntrain in 25 and 100 (the first samples; the test set is the last 50): an FNO-2d over
#      (x, t) from a to u(x, t = 0 .. 1), trained on the data loss alone and with the physics
#      losses, the two runs side by side (one thread each);
#   3. opl eval of every model on the 50 test samples at s = 128 and at s = 512.
# A table goes to $OUT/table.md (results.md beside this script holds the measured one).
#
# usage: experiments/pino/run.sh     environment: OPL (default build/release/opl), RESID (default
#        build/release/pino_data_residual), OUT (default build/experiments/pino), NUS, W (PDE
#        weight, default 10), V (IC weight, default 10), SMOKE=1 (a tiny run for the tests)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
resid=${RESID:-$root/build/release/pino_data_residual}
out=${OUT:-$root/build/experiments/pino}
for v in opl resid out; do
    eval "p=\$$v"
    case "$p" in /*) ;; *) eval "$v=\$(pwd)/\$p" ;; esac
done
[ -x "$opl" ] && [ -x "$resid" ] || { echo "pino: build first: sh scripts/build.sh release" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
W=${W:-10}
V=${V:-10}
if [ "${SMOKE:-0}" = 1 ]; then
    nus=${NUS:-0.01}; N=12; ntest=4; res=128; s1=32; s4=128; nt=6; T=0.2; ntrains="4 8"
    arch="--modes 4 --width 8 --layers 2 --proj 8"; e25=2; e100=2; b25=2; b100=4
else
    nus=${NUS:-"0.001 0.01"}; N=150; ntest=50; res=1024; s1=128; s4=512; nt=50; T=1; ntrains="25 100"
    arch="--modes 8 --width 16 --layers 4 --proj 32"; e25=300; e100=100; b25=5; b100=10
fi
mkdir -p "$out"
cd "$out"
log=$out/run.log
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $0" >> "$log"
run() { echo "+ $*" | tee -a "$log"; "$@" >> "$log" 2>&1; }
l2_of() { sed -n 's/^test relative L2: mean \([^ ]*\) median.*/\1/p' "$1" | tail -1; }
t0=$(date +%s)

table=$out/table.md
{
    echo "| nu | ntrain | loss | test rel. L2, s = $s1 | test rel. L2, s = $s4 (zero-shot) | train PDE loss (last epoch) | train wall |"
    echo "|---|---|---|---|---|---|---|"
} > "$table"
resid_lines=$out/residuals.txt
: > "$resid_lines"

for nu in $nus; do
    d1=burgers_nu${nu}_s$s1.h5 d4=burgers_nu${nu}_s$s4.h5
    for pair in "$s1 $d1" "$s4 $d4"; do
        set -- $pair
        [ -f "$2" ] || run "$opl" generate burgers --preset chebfun --nu "$nu" --n $N --res $res --store-res "$1" \
            --nt $nt --T $T --seed 1 --threads 2 --quiet -o "$2"
        echo "nu $nu $("$resid" "$2" 20)" | tee -a "$resid_lines"
    done
    for ntr in $ntrains; do
        if [ "$ntr" = "$(echo $ntrains | cut -d' ' -f1)" ]; then ep=$e25 b=$b25; else ep=$e100 b=$b100; fi
        common="--data $d1 --dim 2 --ntrain $ntr --ntest 1 --batch $b --epochs $ep --lr 3e-3 --step-size $((ep / 4 + 1))
                --gamma 0.5 --seed 1 --threads 1 --quiet $arch"
        for mode in data pde; do
            m=m_nu${nu}_n${ntr}_$mode
            extra=""
            [ $mode = pde ] && extra="--pde-weight $W --ic-weight $V"
            echo "+ $opl train fno $common $extra -o $m.h5" | tr -s ' \n' ' ' | tee -a "$log"
            echo | tee -a "$log"
            ( s=$(date +%s); "$opl" train fno $common $extra -o $m.h5 > $m.train.log 2>&1; echo $? > $m.rc;
              echo $(( $(date +%s) - s )) > $m.secs ) &
        done
        wait
        for mode in data pde; do
            m=m_nu${nu}_n${ntr}_$mode
            cat $m.train.log >> "$log"
            if [ "$(cat $m.rc)" != 0 ]; then echo "pino: training $m failed:" >&2; cat $m.train.log >&2; exit 1; fi
            for k in 1 4; do
                [ $k = 1 ] && d=$d1 || d=$d4
                echo "+ $opl eval $m.h5 $d --ntest $ntest --threads 2" | tee -a "$log"
                "$opl" eval $m.h5 $d --ntest $ntest --threads 2 > $m.eval$k.txt 2>&1
                cat $m.eval$k.txt >> "$log"
            done
            pde=$(awk -F, 'NR > 1 { v = $9 } END { print v }' $m.csv)
            [ $mode = data ] && label="data" || label="data + PDE (W = $W) + IC (V = $V)"
            [ $mode = data ] && pde="-"
            echo "| $nu | $ntr | $label | $(l2_of $m.eval1.txt) | $(l2_of $m.eval4.txt) | $pde | $(cat $m.secs) s |" >> "$table"
        done
    done
done
echo
cat "$table"
echo
echo "residual of the stored data (mean square, and RMS relative to u_t):"
cat "$resid_lines"
echo "pino: done in $(( $(date +%s) - t0 )) s; table in $table"

#!/bin/sh
# The REDUCED Navier-Stokes experiments of opl (the FNO paper's nu = 1e-3 rows, Li et al.,
# ICLR 2021, section 5.3, on far fewer samples, a shorter horizon and fewer epochs):
#
#   A. solver check on sample 0: the reduced solve (64 x 64, dt = 5e-3; max Courant number
#      printed) against a finer one (128 x 128, dt = 1e-3), and the time of 1000 steps of the
#      full setting's solve (256 x 256, dt = 1e-4) for the estimate of a full generation;
#   B. data: 100 trajectories at 64 x 64 to T = 20 (reduced/generate.ini);
#   C. FNO-2D (fourier_2d_time.py's model), t = 1..10 -> 11..20 by a 10-step rollout, 80 train /
#      20 test, 30 epochs (reduced/train_fno2d.ini), peak memory measured;
#   D. FNO-3D (fourier_3d.py's model), t = 1..10 -> 11..20 at once, same split, 30 epochs
#      (reduced/train_fno3d.ini).
#
# Every command is echoed before it runs (and logged to OUT/run.log). Data and models that exist
# are reused. At the end OUT/summary.md holds the tables of experiments/results/navier_stokes.md.
#
# usage: experiments/navier_stokes/run_reduced.sh [A B C D ...]   (default: all, in this order)
# environment: OPL (default build/release/opl), OUT (default build/experiments/navier_stokes),
#              THREADS (default 2), OMP_WAIT_POLICY (default passive), SMOKE=1 (tiny sizes, to
#              test the script in seconds: the numbers then mean nothing)
# Measured on 2 cores: 12 minutes (results/navier_stokes.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
exp_init navier_stokes
parts=${*:-A B C D}
has() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
t_start=$(date +%s)
T="--threads $threads"
chk_T=20 probe_T=0.1 gen_x="" train_x=""
if [ "${SMOKE:-0}" = 1 ]; then
    chk_T=2 probe_T=0.005 gen_x="--n 12" train_x="--ntrain 8 --ntest 4 --epochs 2 --every 1"
fi
NS="$opl solve ns --preset fno-1e-3 --seed 1 --quiet"

if has A; then
    echo "== A. solver check (sample 0): 64 x 64, dt = 5e-3 vs 128 x 128, dt = 1e-3, T = $chk_T"
    [ -f check64.h5 ] || runlog check64.log $NS --res 64 --store-res 64 --dt 5e-3 --T "$chk_T" --nt "$chk_T" -o check64.h5
    [ -f check128.h5 ] || runlog check128.log $NS --res 128 --store-res 64 --dt 1e-3 --T "$chk_T" --nt "$chk_T" -o check128.h5
    echo "+ compare the stored frames t = 1..$chk_T (64 x 64)"
    cmp_u=$("$root/experiments/lib/h5relerr.sh" check64.h5 "" check128.h5 "" u)
    echo "u: $cmp_u" | tee -a "$log"
    echo "$cmp_u" > check_solver.txt
    echo "== A'. the full setting's solve: 256 x 256, dt = 1e-4, T = $probe_T (for the time estimate)"
    [ -f probe256.h5 ] || timed probe256.log $NS --res 256 --store-res 64 --dt 1e-4 --T "$probe_T" --nt 1 -o probe256.h5
fi

if has B; then
    echo
    echo "== B. data: 100 trajectories at 64 x 64, dt = 5e-3, T = 20"
    if [ -f ns64.h5 ]; then
        echo "(reusing $out/ns64.h5)"
    else
        timed gen_ns64.log "$opl" generate ns --config "$cfg/reduced/generate.ini" $T $gen_x
    fi
fi

if has C; then
    echo
    echo "== C. FNO-2D: 10 frames in, 10-step rollout, 80 train / 20 test, 30 epochs"
    if [ -f ns_fno2d.h5 ]; then
        echo "(reusing $out/ns_fno2d.h5)"
    else
        timed train_fno2d.log "$opl" train fno --config "$cfg/reduced/train_fno2d.ini" $T $train_x
    fi
    runlog eval_fno2d.log "$opl" eval ns_fno2d.h5 ns64.h5 --solver $T --plot ns_fno2d.png
fi

if has D; then
    echo
    echo "== D. FNO-3D: 10 frames in, the next 10 at once, 80 train / 20 test, 30 epochs"
    if [ -f ns_fno3d.h5 ]; then
        echo "(reusing $out/ns_fno3d.h5)"
    else
        timed train_fno3d.log "$opl" train fno --config "$cfg/reduced/train_fno3d.ini" $T $train_x
    fi
    runlog eval_fno3d.log "$opl" eval ns_fno3d.h5 ns64.h5 --solver $T --plot ns_fno3d.png
fi

# ---------------------------------------------------------------- summary.md
row() { # label evallog trainlog csv
    set -- "$1" "$2" "$3" "$4" $(l2_of "$2" 2>/dev/null || true)
    _e=$(sed -n 's/^epoch *\([0-9]*\)\/.*/\1/p' "$3" 2>/dev/null | tail -1)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s MiB | %s s |\n' "$1" "$(fmt3 "${5:-}")" "$(fmt3 "${6:-}")" \
        "$(fmt3 "${7:-}")" "${8:--}" "${_e:--}" "$(wall_of "$3" 2>/dev/null)" "$(rss_of "$3" 2>/dev/null)" \
        "$(csv_median "$4" seconds 2>/dev/null)"
}
solver_rows() {
    awk '/^  method/ { on = 1; next } on && NF >= 4 && /^  / {
        n = NF; name = $1; for (i = 2; i <= n - 3; i++) name = name " " $i
        printf "| %s | %s | %s | %s |\n", name, $(n - 2), $(n - 1), $n }' "$1"
}
{
    echo "## Measured $(date -u '+%Y-%m-%d') (REDUCED setting)"
    echo
    machine_md
    echo
    if [ -f check64.log ]; then
        echo "solver check (sample 0, frames t = 1..$chk_T): $(sed -n 's/.*\(max Courant number [0-9.e+-]*\).*/\1/p' check64.log)" \
             "at 64 x 64 with dt = 5e-3; against 128 x 128 with dt = 1e-3: $(cat check_solver.txt 2>/dev/null)"
        echo
    fi
    [ -f gen_ns64.log.time ] && echo "data: 100 trajectories in $(wall_of gen_ns64.log) ($threads threads)" && echo
    echo "| model (reduced) | mean rel. L2 (frames 11..20) | median | worst | n | epochs | train wall | peak RSS | median epoch |"
    echo "|---|---|---|---|---|---|---|---|---|"
    [ -f eval_fno2d.log ] && row "FNO-2D, 10-step rollout, batch 10" eval_fno2d.log train_fno2d.log ns_fno2d.csv
    [ -f eval_fno3d.log ] && row "FNO-3D, batch 10" eval_fno3d.log train_fno3d.log ns_fno3d.csv
    echo
    for m in fno2d fno3d; do
        [ -f eval_$m.log ] || continue
        echo "| $m: method (4 test samples) | resolution | s / sample | rel. L2 vs stored data |"
        echo "|---|---|---|---|"
        solver_rows eval_$m.log
        echo
    done
    echo "estimates of the full setting (../full/*.ini) from the measured times:"
    if [ -f probe256.log.time ]; then
        echo "- data: 1200 trajectories at 256 x 256, dt = 1e-4, T = 50: $(secs_of probe256.log | awk -v T="$probe_T" -v th="$threads" \
             '{ printf "%.0f h", $1 * (50 / T) * 1200 / th / 3600 }') with $threads samples in parallel" \
             "(one 256 x 256 solve to t = $probe_T took $(wall_of probe256.log))"
    fi
    if [ -f ns_fno2d.csv ]; then
        echo "- FNO-2D, 1000 / 200 samples, 40-step rollout, 500 epochs: $(estimate_h ns_fno2d.csv 80 20 1000 200 500 4) h" \
             "(4x the per-sample time of the 10-step rollout); memory ~$(rss_of train_fno2d.log 2>/dev/null | awk '{ printf "%.0f", $1 * 8 / 1024 }') GB" \
             "at batch 20 (8x this run's peak: twice the batch, four times the rollout)"
    fi
    if [ -f ns_fno3d.csv ]; then
        echo "- FNO-3D, 1000 / 200 samples, 40 frames, 500 epochs: $(estimate_h ns_fno3d.csv 80 20 1000 200 500 2.875) h" \
             "(time axis 40 + 6 padding instead of 10 + 6: 2.875x per sample)"
    fi
    echo
    echo "total wall time of this script run: $(( $(date +%s) - t_start )) s"
} > summary.md
echo
cat summary.md

#!/bin/sh
# The reduced Burgers experiments of opl (the FNO paper's Burgers row, Li et al., ICLR 2021,
# section 5.1, on fewer samples and epochs), one after the other:
#
#   A. chebfun preset (nu = 1e-3): 300 trajectories solved and stored at 4096 points (chebfun/
#      generate.ini); the stored 1024-point data are checked to be what the preset itself stores;
#   B. FNO-1d trained at s = 1024 on 250 samples, 60 epochs (chebfun/train_s1024.ini: the exact
#      reduced setting of the PyTorch reference figure), tested on the last 50 samples at 1024
#      and zero-shot at 4096;
#   C. the same FNO-1d trained at s = 256 (chebfun/train_s256.ini), tested at 256 and zero-shot
#      at 1024 and 4096;
#   D. fno preset (nu = 0.1, the paper's data): 300 trajectories at 8192 points stored at 1024
#      (fno/generate.ini), FNO-1d trained on 250 for 100 epochs with per-point normalization
#      (fno/train.ini), tested on the last 50 at s = 1024, next to the reference solver.
#
# Every command is echoed before it runs (and logged to OUT/run.log); each writes its own log in
# OUT. Data sets and models that exist are reused (delete OUT or a file to redo that step). At
# the end OUT/summary.md holds the tables of experiments/results/burgers.md.
#
# usage: experiments/burgers/run_reduced.sh [A B C D ...]   (default: all parts, in this order)
# environment: OPL (default build/release/opl), OUT (default build/experiments/burgers),
#              THREADS (default 2), OMP_WAIT_POLICY (default passive), SMOKE=1 (tiny sizes, to
#              test the script in seconds: the numbers then mean nothing)
# Measured on 2 cores: 11 minutes (results/burgers.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
exp_init burgers
parts=${*:-A B C D}
has() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
t_start=$(date +%s)
T="--threads $threads"
# S: stored points of the chebfun file; NT: its snapshots; *_x: overrides of the configs
S=4096 NT=200 gen_x="" chk_x="" train_x="" fno_x=""
if [ "${SMOKE:-0}" = 1 ]; then
    S=1024 NT=4 gen_x="--n 24 --res 1024 --store-res 1024 --nt 4 --refine 1" chk_x="--res 1024 --store-res 256 --nt 4"
    train_x="--ntrain 16 --ntest 8 --epochs 2 --every 1" fno_x="--n 24 --res 1024 --store-res 256"
fi

if has A; then
    echo "== A. chebfun data: 300 trajectories, solved and stored at 4096 points, 200 snapshots"
    if [ -f chebfun4096.h5 ]; then
        echo "(reusing $out/chebfun4096.h5)"
    else
        timed gen_chebfun.log "$opl" generate burgers --config "$cfg/chebfun/generate.ini" $T $gen_x
    fi
    # The 1024-point data the preset itself stores (store-res 1024) for samples 0 and 1: they must
    # be every 4th point of the 4096-point file, bit for bit (input a and the last frame).
    if [ ! -f check_preset1024.h5 ]; then
        run "$opl" generate burgers --preset chebfun --n 2 --seed 1 --refine 0 --quiet $T $chk_x -o check_preset1024.h5
    fi
    echo "+ compare: a and u(t = 1) of samples 0, 1 at 1024 points (preset storage) vs chebfun4096.h5[::4]"
    q=$((S / 4)) l=$((NT - 1))
    ca=$("$root/experiments/lib/h5relerr.sh" chebfun4096.h5 "-s 0,0 -S 1,4 -c 2,$q" check_preset1024.h5 "" a)
    cu=$("$root/experiments/lib/h5relerr.sh" chebfun4096.h5 "-s 0,$l,0 -S 1,1,4 -c 2,1,$q" \
        check_preset1024.h5 "-s 0,$l,0 -c 2,1,$q" u)
    echo "a: $ca" | tee -a "$log"
    echo "u(t = 1): $cu" | tee -a "$log"
    echo "a: $ca; u(t = 1): $cu" > check_storage.txt
fi

# eval_at MODEL SUB TAG [extra...]: evaluate MODEL on chebfun4096.h5 at 4096 / SUB points
eval_at() {
    _m=$1 _s=$2 _t=$3
    shift 3
    runlog "eval_$_t.log" "$opl" eval "$_m" chebfun4096.h5 --sub "$_s" $T "$@"
}

if has B; then
    echo
    echo "== B. FNO-1d trained at s = 1024 (250 train / 50 test, 60 epochs, no normalization)"
    if [ -f cheb_s1024.h5 ]; then
        echo "(reusing $out/cheb_s1024.h5)"
    else
        timed train_cheb_s1024.log "$opl" train fno --config "$cfg/chebfun/train_s1024.ini" $T $train_x
    fi
    eval_at cheb_s1024.h5 4 cheb_s1024_at1024 --solver --plot cheb_s1024_at1024.png
    eval_at cheb_s1024.h5 1 cheb_s1024_at4096
fi

if has C; then
    echo
    echo "== C. FNO-1d trained at s = 256 (same samples and recipe), tested at 256, 1024, 4096"
    if [ -f cheb_s256.h5 ]; then
        echo "(reusing $out/cheb_s256.h5)"
    else
        timed train_cheb_s256.log "$opl" train fno --config "$cfg/chebfun/train_s256.ini" $T $train_x
    fi
    eval_at cheb_s256.h5 16 cheb_s256_at256
    eval_at cheb_s256.h5 4 cheb_s256_at1024
    eval_at cheb_s256.h5 1 cheb_s256_at4096
fi

if has D; then
    echo
    echo "== D. fno preset (nu = 0.1): 300 trajectories at 8192 points stored at 1024; FNO-1d, 100 epochs"
    if [ -f fno1024.h5 ]; then
        echo "(reusing $out/fno1024.h5)"
    else
        timed gen_fno.log "$opl" generate burgers --config "$cfg/fno/generate.ini" $T $fno_x
    fi
    if [ -f fno_s1024.h5 ]; then
        echo "(reusing $out/fno_s1024.h5)"
    else
        timed train_fno_s1024.log "$opl" train fno --config "$cfg/fno/train.ini" $T $train_x
    fi
    runlog eval_fno_s1024.log "$opl" eval fno_s1024.h5 fno1024.h5 --solver $T --plot fno_s1024.png
fi

# ---------------------------------------------------------------- summary.md
row() { # label evallog [trainlog-for-wall]: "| label | mean | median | worst | n |"
    set -- "$1" "$2" $(l2_of "$2" 2>/dev/null || true)
    printf '| %s | %s | %s | %s | %s |' "$1" "$(fmt3 "${3:-}")" "$(fmt3 "${4:-}")" "$(fmt3 "${5:-}")" "${6:--}"
}
samples_of() { sed -n 's/.*samples \([0-9]*\.\.[0-9]*\);.*/\1/p' "$1" | head -1; }
train_info() { # trainlog csv: "epochs E, wall W, peak RSS R MiB, median epoch S s (P samples/s)"
    [ -f "$1" ] || { echo "-"; return; }
    _e=$(sed -n 's/^epoch *\([0-9]*\)\/.*/\1/p' "$1" | tail -1)
    echo "$_e epochs, wall $(wall_of "$1"), peak RSS $(rss_of "$1") MiB, median epoch $(csv_median "$2" seconds) s" \
         "($(csv_median "$2" samples_per_s) train samples/s)"
}
solver_rows() { # evallog: the operator-vs-solver table as markdown rows
    awk '/^  method/ { on = 1; next } on && NF >= 4 && /^  / {
        n = NF; name = $1; for (i = 2; i <= n - 3; i++) name = name " " $i
        printf "| %s | %s | %s | %s |\n", name, $(n - 2), $(n - 1), $n }' "$1"
}
{
    echo "## Measured $(date -u '+%Y-%m-%d')"
    echo
    machine_md
    echo
    if [ -f eval_cheb_s1024_at1024.log ]; then
        echo "### chebfun preset (nu = 1e-3), FNO-1d trained at s = 1024: 250 train / 50 test, 60 epochs"
        echo
        echo "test samples: $(samples_of eval_cheb_s1024_at1024.log) at 1024 and $(samples_of eval_cheb_s1024_at4096.log) at 4096"
        echo "(the last 50 of chebfun4096.h5); storage check: $(cat check_storage.txt 2>/dev/null || echo -)"
        echo
        echo "| evaluated at | mean rel. L2 | median | worst | n |"
        echo "|---|---|---|---|---|"
        row "opl, s = 1024 (training resolution)" eval_cheb_s1024_at1024.log; echo
        row "opl, s = 4096 (zero-shot)" eval_cheb_s1024_at4096.log; echo
        echo "| PyTorch reference FNO-1d (fourier_1d.py model, same setting), s = 1024 | 0.10 | 0.08 | - | 50 |"
        echo "| PyTorch reference, s = 4096 (zero-shot) | 0.10 | 0.08 | - | 50 |"
        echo
        echo "training: $(train_info train_cheb_s1024.log cheb_s1024.csv)"
        echo
        echo "| method (4 test samples) | resolution | s / sample | rel. L2 vs stored data |"
        echo "|---|---|---|---|"
        solver_rows eval_cheb_s1024_at1024.log
        echo
    fi
    if [ -f eval_cheb_s256_at256.log ]; then
        echo "### chebfun preset, FNO-1d trained at s = 256 (same 250 / 50 samples, 60 epochs): zero-shot super-resolution"
        echo
        echo "| evaluated at | mean rel. L2 | median | worst | n |"
        echo "|---|---|---|---|---|"
        row "s = 256 (training resolution)" eval_cheb_s256_at256.log; echo
        row "s = 1024 (zero-shot)" eval_cheb_s256_at1024.log; echo
        row "s = 4096 (zero-shot)" eval_cheb_s256_at4096.log; echo
        echo
        echo "training: $(train_info train_cheb_s256.log cheb_s256.csv)"
        echo
    fi
    if [ -f eval_fno_s1024.log ]; then
        echo "### fno preset (nu = 0.1, the paper's data), FNO-1d at s = 1024: 250 train / 50 test, 100 epochs, --normalize gaussian"
        echo
        echo "| evaluated at | mean rel. L2 | median | worst | n |"
        echo "|---|---|---|---|---|"
        row "opl, s = 1024 (reduced: 250 / 50, 100 epochs)" eval_fno_s1024.log; echo
        echo
        echo "training: $(train_info train_fno_s1024.log fno_s1024.csv)"
        echo
        echo "| method (4 test samples) | resolution | s / sample | rel. L2 vs stored data |"
        echo "|---|---|---|---|"
        solver_rows eval_fno_s1024.log
        echo
        if [ -f fno_s1024.csv ]; then
            echo "full run (fno_full/, 1000 / 100 samples, 500 epochs) estimated from this run's median epoch:" \
                 "$(estimate_h fno_s1024.csv 250 50 1000 100 500) h of training"
        fi
        if [ -f gen_fno.log.time ]; then
            echo "and $(secs_of gen_fno.log | awk '{ printf "%.0f", $1 * 1100 / 300 }') s of data generation" \
                 "(1100 samples; this run: 300 in $(wall_of gen_fno.log))."
        fi
        echo
    fi
    [ -f gen_chebfun.log.time ] && echo "chebfun generation: 300 samples in $(wall_of gen_chebfun.log) (peak RSS $(rss_of gen_chebfun.log) MiB)."
    echo
    echo "total wall time of this script run: $(( $(date +%s) - t_start )) s"
} > summary.md
echo
cat summary.md

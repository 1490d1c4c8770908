# args.sh -- sourced by run_burgers.sh, run_kdv.sh and run_allen_cahn.sh: their common options,
# the check that opl is built, the output folder and the thread settings.
# Before sourcing, the script sets name (its file name, for messages), help (the sed range of its
# header that --help prints), iters (its default iteration count) and, when it has options of its
# own, a function extra_opt OPTION VALUE that takes one (setting its variable) and returns 0, or
# returns 1 for an option it does not know. Reads the script's positional parameters.
# Sets: here, root, opl (OPL, default build/release/opl), out (--out, default build/pinn), iters
# (--iters), threads (--threads, default 2), seed (--seed, default 0); makes $out and exports
# OMP_NUM_THREADS=$threads and OMP_WAIT_POLICY=passive. An unknown option exits 2, an opl that is
# not built exits 1.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
opl=${OPL:-$root/build/release/opl}
out=$root/build/pinn
threads=2
seed=0
command -v extra_opt > /dev/null 2>&1 || extra_opt() { return 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift ;;
        --iters) iters=$2; shift ;;
        --threads) threads=$2; shift ;;
        --seed) seed=$2; shift ;;
        -h|--help) sed -n "$help" "$0"; exit 0 ;;
        *) if extra_opt "$1" "${2-}"; then shift
           else echo "$name: unknown option '$1' (try --help)" >&2; exit 2; fi ;;
    esac
    shift
done
[ -x "$opl" ] || { echo "$name: $opl not built (sh scripts/build.sh release)" >&2; exit 1; }
mkdir -p "$out"
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive

#!/bin/sh
# The FNO paper's Burgers row at its stated setting (Li et al., ICLR 2021, section 5.1;
# fourier_1d.py): 1100 trajectories of the fno preset at 8192 points stored at 1024
# (generate.ini), FNO-1d trained on the first 1000 at s = 1024 for 500 epochs and tested on the
# last 100 (train.ini), evaluated next to the reference solver.
#
# Measured in experiments/results/burgers.md, section 4: on 2 cores, 6 min of data generation and
# 31 min of training. Pass extra options to override the configs, e.g. --normalize gaussian (what
# the reduced run uses).
#
# usage: experiments/burgers/fno_full/run.sh [extra train options...]
# environment: OPL, OUT (default build/experiments/burgers_full), THREADS (default 2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/common.sh"
here=$(cd "$here/.." && pwd) # exp_init takes the repository root from $here/../..
exp_init burgers_full
cfg=$cfg/fno_full
T="--threads $threads"
[ -f fno_full.h5 ] || timed gen.log "$opl" generate burgers --config "$cfg/generate.ini" $T ${GEN_X:-}
[ -f fno_full_s1024.h5 ] || timed train.log "$opl" train fno --config "$cfg/train.ini" $T "$@"
runlog eval.log "$opl" eval fno_full_s1024.h5 fno_full.h5 --solver $T
echo "test relative L2 (mean median worst n): $(l2_of eval.log)"

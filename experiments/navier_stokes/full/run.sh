#!/bin/sh
# The FNO paper's Navier-Stokes rows at nu = 1e-3 (Li et al., ICLR 2021, section 5.3), full
# setting: 1200 trajectories solved at 256 x 256 with dt = 1e-4 to T = 50, stored at 64 x 64
# (generate.ini); FNO-2D (fourier_2d_time.py: 10 frames in, 40-step rollout; train_fno2d.ini) and
# FNO-3D (fourier_3d.py: 10 frames in, 40 out; train_fno3d.ini) on 1000 train / 200 test, 500
# epochs each.
#
# NOT RUN for experiments/results/navier_stokes.md: on 2 cores the data alone take ~10-14 days
# (256 x 256 with dt = 1e-4: 500000 steps of ~3 ms per trajectory) and each training days more
# (estimates there, from the reduced run's measured times); the FNO-2D rollout at batch 20 needs
# ~20 GB (use --batch 5 on a 16 GB machine: TRAIN_X="--batch 5").
#
# usage: experiments/navier_stokes/full/run.sh [2d] [3d]   (default: both)
# environment: OPL, OUT (default build/experiments/navier_stokes_full), THREADS (default 2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/common.sh"
here=$(cd "$here/.." && pwd) # exp_init takes the repository root from $here/../..
exp_init navier_stokes_full
cfg=$cfg/full
T="--threads $threads"
which=${*:-2d 3d}
[ -f ns_full.h5 ] || timed gen.log "$opl" generate ns --config "$cfg/generate.ini" $T ${GEN_X:-}
for d in $which; do
    [ -f ns_full_fno$d.h5 ] || timed train_fno$d.log "$opl" train fno --config "$cfg/train_fno$d.ini" $T ${TRAIN_X:-}
    runlog eval_fno$d.log "$opl" eval ns_full_fno$d.h5 ns_full.h5 $T
    echo "FNO-$d: test relative L2 (mean median worst n): $(l2_of eval_fno$d.log)"
done

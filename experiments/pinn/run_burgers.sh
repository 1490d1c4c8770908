#!/bin/sh
# run_burgers.sh -- Burgers' equation in the setting of Raissi, Perdikaris & Karniadakis (J. Comput.
# Phys. 378 (2019) 686, section 3.1: nu = 0.01/pi on [-1, 1], u0 = -sin(pi x), u(t, +-1) = 0,
# t in [0, 1]; an 8 x 20 tanh network, 100 initial/boundary points, 10,000 Latin-hypercube
# collocation points, L-BFGS with HISTORY correction pairs, 50 by default as Raissi's maxcor).
# Trains with `opl train pinn`, evaluates against the Cole-Hopf solution on 256 x 101 points
# (t, x) with `opl eval`, and draws the plot. The paper reports a relative L2 error of 6.7e-4.
# Resumable: run it again to continue an interrupted run (with the same --history).
#
# usage: experiments/pinn/run_burgers.sh [--out DIR] [--iters N] [--threads T] [--seed K] [--history M]
# environment: OPL (default build/release/opl)
set -eu
name=run_burgers.sh help=2,11p iters=30000 history=50
extra_opt() { case "$1" in --history) history=$2 ;; *) return 1 ;; esac; }
. "$(dirname "$0")/args.sh"
model=$out/burgers_raissi_h${history}_s$seed.h5
resume=
[ -f "$model" ] && resume=--resume
set -x
"$opl" train pinn --pde burgers --arch mlp --layers 8x20 --optimizer lbfgs --iters "$iters" \
    --lbfgs-history "$history" --points 10000 \
    --boundary-points 100 --collocation lhs --seed "$seed" --print-every 500 --checkpoint-every 1000 \
    --threads "$threads" $resume -o "$model"
"$opl" eval "$model" --nx 256 --nt 101 --plot "$out/burgers_raissi_h${history}_s$seed.png"

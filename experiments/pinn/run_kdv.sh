#!/bin/sh
# run_kdv.sh -- the Korteweg-de Vries equation with causal training, in the setting of jaxpi
# (S. Wang, S. Sankaran, H. Wang, P. Perdikaris, "An expert's guide to training physics-informed
# neural networks", 2023): u_t + u u_x + 0.022^2 u_xxx = 0 on x in [-1, 1] periodic, t in [0, 1],
# u0 = cos(pi x) (Zabusky & Kruskal 1965); jaxpi reports a relative L2 error of 1.96e-3 at full
# scale. Causal weighting is jaxpi's chunked variant: the points sorted in time, 32 chunks, a
# fixed eps = 1 (Wang, Sankaran & Perdikaris, "Respecting causality is all you need for training
# physics-informed neural networks", 2022; implemented from the paper's equations; the authors
# state that the algorithm is patented by the University of Pennsylvania for commercial use).
# At a reduced budget: a 4 x 64 tanh network on the exactly periodic Fourier embedding of x
# (10 modes), the initial condition imposed exactly (u = u0(x) + t N(t, x), --hard), ITERS Adam
# iterations (lr 1e-3 x 0.9 every 5000) on 2048 Latin-hypercube points drawn anew every
# iteration. Evaluated with `opl eval` against opl's KdV solver (ETDRK4) on 101 x 256 points
# (t, x); prints the table row (relative L2, final loss, training wall time) and the min-w / eps
# trajectory (causal_summary.sh). Resumable: run it again to continue.
#
# usage: experiments/pinn/run_kdv.sh [--out DIR] [--iters N] [--threads T] [--seed K]
# environment: OPL (default build/release/opl)
set -eu
name=run_kdv.sh help=2,19p iters=8000
. "$(dirname "$0")/args.sh"
model=$out/kdv_causal_s$seed.h5
resume=
[ -f "$model" ] && resume=--resume
start=$(date +%s)
set -x
"$opl" train pinn --pde kdv --arch mlp --layers 4x64 --nfreq 10 --hard --optimizer adam --iters "$iters" \
    --points 2048 --collocation resample --causal --chunks 32 --eps 1 --seed "$seed" --print-every 500 \
    --checkpoint-every 1000 --threads "$threads" $resume -o "$model"
set +x
wall=$(( $(date +%s) - start ))
err=$("$opl" eval "$model" --nx 256 --nt 101 --plot "$out/kdv_causal_s$seed.png" | sed -n 's/^relative L2: //p')
loss=$(tail -n 1 "${model%.h5}.csv" | cut -d, -f3)
echo "kdv causal: relative L2 $err, loss $loss, wall $wall s (this invocation), load: $(uptime | sed 's/.*load average: //')"
sh "$here/causal_summary.sh" "${model%.h5}.csv" 1000
echo "| run | Adam iterations | loss | relative L2 | wall |"
echo "|---|---|---|---|---|"
echo "| causal (eps 1, 32 chunks) | $iters | $loss | $err | $wall s |"

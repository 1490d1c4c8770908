#!/usr/bin/env python3
"""bench_peer.py -- the torchdiffeq side of `opl bench node` (experiments/node/run_bench.sh).

Reads the file written by `opl bench node --export FILE` (solver, steps, tolerances, batch, the
state u0, the target y and the initial weights of the dim-hidden-dim tanh MLP field), builds the
same model in PyTorch with exactly those weights and times training steps as opl bench node does:
    pred = odeint(func, u0, [0, 1], rtol, atol, method, options=dict(max_step=1/steps,
                  first_step=1/steps));  loss = mean (pred[-1] - y)^2;  loss.backward();  Adam (lr 1e-3)
so that both sides take the same number of accepted steps (the maximum step is the binding
limit: the tolerances are loose). --mode discrete backpropagates through the solver's operations
(torchdiffeq's odeint, as opl's store-all); backsolve uses odeint_adjoint (the continuous adjoint,
as opl's OPL_NDE_ADJ_BACKSOLVE). Prints one JSON line: samples/s (batch / median step time),
median and fastest step (ms), forward and backward NFE per step, the peak resident memory of this
process (VmHWM), the first loss.

usage: bench_peer.py --torchdiffeq DIR --in FILE [--mode discrete|backsolve] [--threads T]
                     [--iters N] [--warmup W]
DIR is a checkout of https://github.com/rtqichen/torchdiffeq (the directory holding the
torchdiffeq package); it is put first on sys.path.
"""
import argparse
import json
import statistics
import sys
import time

METHODS = {'dp5': 'dopri5', 'tsit5': 'tsit5', 'bs3': 'bosh3'}


def vmhwm_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


def read_spec(path):
    spec = {}
    with open(path) as f:
        if f.readline().split() != ['opl-bench-node', '1']:
            sys.exit('bench_peer.py: %s is not an opl-bench-node 1 file' % path)
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                spec[parts[0]] = parts[1]
            else:
                n = int(parts[1])
                vals = [float(v) for v in parts[2:]]
                if len(vals) != n:
                    sys.exit('bench_peer.py: %s: %d values, expected %d' % (parts[0], len(vals), n))
                spec[parts[0]] = vals
    return spec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--torchdiffeq', required=True)
    ap.add_argument('--in', dest='inp', required=True)
    ap.add_argument('--mode', choices=['discrete', 'backsolve'], default='discrete')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--iters', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, args.torchdiffeq)
    import torch
    import torch.nn as nn
    from torchdiffeq import odeint, odeint_adjoint

    torch.set_num_threads(args.threads)
    s = read_spec(args.inp)
    B, D, H, steps = int(s['batch']), int(s['dim']), int(s['hidden']), int(s['steps'])
    T, rtol, atol = float(s['T']), float(s['rtol']), float(s['atol'])
    method = METHODS[s['solver']]
    u0 = torch.tensor(s['u0'], dtype=torch.float32).reshape(B, D)
    y = torch.tensor(s['y'], dtype=torch.float32).reshape(B, D)

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, D))
            self.nfe = 0

        def forward(self, t, u):
            self.nfe += 1
            return self.net(u)

    func = Field()
    with torch.no_grad():
        # opl names its layers net.0 and net.1; nn.Sequential's are net.0 and net.2
        for i, li in ((0, 0), (1, 2)):
            for kind in ('weight', 'bias'):
                p = getattr(func.net[li], kind)
                p.copy_(torch.tensor(s['net.%d.%s' % (i, kind)], dtype=torch.float32).reshape(p.shape))
    opt = torch.optim.Adam(func.parameters(), lr=1e-3)
    solve = odeint_adjoint if args.mode == 'backsolve' else odeint
    h = T / steps
    tt = torch.tensor([0.0, T])
    times, nfe_f, nfe_b, loss_first = [], [], [], None
    for it in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        opt.zero_grad()
        func.nfe = 0
        pred = solve(func, u0, tt, rtol=rtol, atol=atol, method=method,
                     options=dict(max_step=h, first_step=h))
        nf = func.nfe
        loss = torch.mean((pred[-1] - y) ** 2)
        loss.backward()
        nb = func.nfe - nf
        opt.step()
        dt = time.perf_counter() - t0
        if it == 0:
            loss_first = loss.item()
        if it >= args.warmup:
            times.append(dt)
            nfe_f.append(nf)
            nfe_b.append(nb)
    med = statistics.median(times)
    print(json.dumps({'side': 'torchdiffeq', 'mode': args.mode, 'solver': s['solver'], 'method': method,
                      'steps': steps, 'batch': B, 'dim': D, 'hidden': H, 'threads': torch.get_num_threads(),
                      'samples_per_s': round(B / med, 2), 'ms_median': round(1e3 * med, 3),
                      'ms_min': round(1e3 * min(times), 3), 'nfe_forward': statistics.mean(nfe_f),
                      'nfe_backward': statistics.mean(nfe_b), 'peak_rss_mib': round(vmhwm_mib(), 1),
                      'loss_first': loss_first, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()

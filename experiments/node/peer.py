#!/usr/bin/env python3
"""peer.py -- the torchdiffeq side of the neural-ODE spiral comparison (experiments/node).

Reads the peer file written by `node_spiral peer-export` (the tolerances, one training batch of
20 windows x 10 observation times of the spiral dz/dt = z^3 A, and the initial weights of the
2-50-2 tanh MLP applied to z^3), builds the same model in PyTorch with exactly those weights and
times training steps as in torchdiffeq's examples/ode_demo.py with Adam:
    pred = odeint(func, y0, t, rtol, atol, method='dopri5');  loss = mean |pred - y|;
    loss.backward();  Adam step (lr 1e-3)
(backpropagation through the solver's operations: the discrete adjoint, as opl's default).
Prints one JSON line: samples/s over the timed steps (wall), CPU ms per step (all threads), peak RSS of this process (VmHWM), the
forward NFE and accepted steps of the first step (same weights as opl's first step), the mean
NFE per timed step, and the first and last losses.

usage: peer.py --torchdiffeq DIR --in FILE [--threads T] [--steps K] [--warmup W]
               [--adjoint discrete|backsolve]
DIR is a checkout of https://github.com/rtqichen/torchdiffeq (its top directory, the one that
holds the torchdiffeq package); it is put first on sys.path.
"""
import argparse
import json
import sys
import time


def vmhwm_kb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def read_peer(path):
    vec = {}
    with open(path) as f:
        head = f.readline().split()
        if head != ['opl-node-spiral-peer', '1']:
            sys.exit('peer.py: %s is not an opl-node-spiral-peer 1 file' % path)
        for line in f:
            parts = line.split()
            if parts[0] in ('rtol', 'atol'):
                vec[parts[0]] = float(parts[1])
            elif parts[0] == 'batch':
                vec['batch'] = (int(parts[1]), int(parts[2]))
            else:
                n = int(parts[1])
                vals = [float(v) for v in parts[2:]]
                if len(vals) != n:
                    sys.exit('peer.py: %s: %d values, expected %d' % (parts[0], len(vals), n))
                vec[parts[0]] = vals
    return vec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--torchdiffeq', required=True)
    ap.add_argument('--in', dest='inp', required=True)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=200)
    ap.add_argument('--warmup', type=int, default=10)
    ap.add_argument('--adjoint', choices=['discrete', 'backsolve'], default='discrete',
                    help='discrete: backpropagate through odeint; backsolve: odeint_adjoint')
    args = ap.parse_args()
    sys.path.insert(0, args.torchdiffeq)
    import torch
    import torch.nn as nn
    from torchdiffeq import odeint

    torch.set_num_threads(args.threads)
    spec = read_peer(args.inp)
    B, T = spec['batch']
    t = torch.tensor(spec['t'], dtype=torch.float32)
    y0 = torch.tensor(spec['y0'], dtype=torch.float32).reshape(B, 2)
    y = torch.tensor(spec['y'], dtype=torch.float32).reshape(T, B, 2)

    class ODEFunc(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
            self.nfe = 0

        def forward(self, t, z):
            self.nfe += 1
            return self.net(z ** 3)

    func = ODEFunc()
    with torch.no_grad():
        sd = func.state_dict()
        for name in sd:
            sd[name].copy_(torch.tensor(spec[name], dtype=torch.float32).reshape(sd[name].shape))
    opt = torch.optim.Adam(func.parameters(), lr=1e-3)
    # NFE of solves with the initial weights and only an end time (the window's end, t = 5)
    nfe_span = []
    with torch.no_grad():
        for tend in (t[-1].item(), 5.0):
            func.nfe = 0
            odeint(func, y0, torch.tensor([0.0, tend]), rtol=spec['rtol'], atol=spec['atol'], method='dopri5')
            nfe_span.append(func.nfe)
        # The same t = 5 solve with opl's step-size controller (solvers/rk.h: PI, exponents 0.7/5
        # and 0.4/5, previous error floored at 1e-4, no growth right after a rejection) in place of
        # torchdiffeq's integral controller: isolates the controller's share of an NFE difference.
        import torchdiffeq._impl.rk_common as rkc
        state = {'prev': 1.0, 'rejected': False}

        def pi_step(last_step, error_ratio, safety, ifactor, dfactor, order):
            e = float(error_ratio)
            if e <= 1:
                f = 10.0 if e == 0 else min(10.0, max(0.2, 0.9 * e ** (-0.7 / 5) * state['prev'] ** (0.4 / 5)))
                if state['rejected']:
                    f = min(f, 1.0)
                state['prev'], state['rejected'] = max(e, 1e-4), False
            else:
                f, state['rejected'] = max(0.2, 0.9 * e ** (-1 / 5)), True
            return last_step * f

        plain = rkc._optimal_step_size
        rkc._optimal_step_size = pi_step
        func.nfe = 0
        odeint(func, y0, torch.tensor([0.0, 5.0]), rtol=spec['rtol'], atol=spec['atol'], method='dopri5')
        nfe_span.append(func.nfe)
        rkc._optimal_step_size = plain
    solve = odeint
    if args.adjoint == 'backsolve':
        from torchdiffeq import odeint_adjoint
        solve = odeint_adjoint

    nfe_first = None
    loss_first = loss_last = None
    t_run = c_run = 0.0
    nfe_total = nfe_bwd_total = 0
    for it in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        func.nfe = 0
        pred = solve(func, y0, t, rtol=spec['rtol'], atol=spec['atol'], method='dopri5')
        nfe = func.nfe
        loss = torch.mean(torch.abs(pred - y))
        loss.backward()
        nfe_bwd = func.nfe - nfe
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if it == 0:
            nfe_first, loss_first = nfe, loss.item()
        loss_last = loss.item()
        if it >= args.warmup:
            t_run += dt
            c_run += dc
            nfe_total += nfe
            nfe_bwd_total += nfe_bwd
    print(json.dumps({'side': 'torchdiffeq', 'threads': torch.get_num_threads(), 'adjoint': args.adjoint,
                      'steps': args.steps, 'samples_per_s': round(B * args.steps / t_run, 1),
                      'ms_per_step': round(1e3 * t_run / args.steps, 4),
                      'cpu_ms_per_step': round(1e3 * c_run / args.steps, 4), 'vmhwm_kb': vmhwm_kb(),
                      'nfe_first': nfe_first, 'nfe_per_step': nfe_total / args.steps,
                      'nfe_backward_per_step': nfe_bwd_total / args.steps, 'nfe_span': nfe_span[0],
                      'nfe_t5': nfe_span[1], 'nfe_t5_opl_controller': nfe_span[2],
                      'loss_first': loss_first, 'loss_last': loss_last}))


if __name__ == '__main__':
    main()

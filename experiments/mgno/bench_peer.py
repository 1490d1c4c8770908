#!/usr/bin/env python3
"""bench_peer.py -- the PyTorch side of `opl bench mgno` (experiments/mgno/bench.sh).

Imports MgNO_DC, the authors' Darcy model, from their models.py (https://github.com/xlliu2017/MgNO,
a directory given by --peer; never copied into opl), builds the darcy-rough configuration
(4 layers, 24 u-channels, 1 f-channel, num_iteration [[1,0]]*5 + [[2,0]], zero padding: the
paper's rough-coefficient Darcy model, 572,661 parameters) and times training steps on a fixed
batch of N(0, 1) inputs and targets [batch, 1, s, s]:
    opt.zero_grad(); loss = sum over the batch of |out - y|_2 / |y|_2 (the authors'
    LpLoss(size_average=False)); loss.backward(); Adam (lr 1e-3)
as `opl bench mgno` does. Prints one JSON line: samples/s (batch / median step time), median and
fastest step (ms), the parameter count, the peak resident memory of this process (VmHWM), the
first loss.

models.py imports torchinfo and the authors' utilities3 (h5py, scipy, matplotlib) at the top for
its __main__ demo and count_params only; where those are missing, stand-ins for exactly those two
names (torchinfo.summary, utilities3.count_params) are registered before the import.

usage: bench_peer.py --peer DIR [--s 256] [--batch 8] [--threads T] [--iters N] [--warmup W] [--seed S]
"""
import argparse
import json
import statistics
import sys
import time
import types


def vmhwm_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--peer', required=True, help="directory of the authors' code (models.py)")
    ap.add_argument('--s', type=int, default=256)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    import torch
    sys.path.insert(0, args.peer)
    for name, attr in (('torchinfo', 'summary'), ('utilities3', 'count_params')):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            setattr(mod, attr, lambda *a, **k: None)
            sys.modules[name] = mod
    from models import MgNO_DC

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = MgNO_DC(num_layer=4, num_channel_u=24, num_channel_f=1, num_classes=1,
                    num_iteration=[[1, 0], [1, 0], [1, 0], [1, 0], [1, 0], [2, 0]], padding_mode='zeros')
    nparams = sum(p.numel() for p in model.parameters())
    x = torch.randn(args.batch, 1, args.s, args.s)
    y = torch.randn(args.batch, 1, args.s, args.s)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def rel_l2(out, y):
        n = out.shape[0]
        return torch.sum(torch.norm(out.reshape(n, -1) - y.reshape(n, -1), 2, 1) / torch.norm(y.reshape(n, -1), 2, 1))

    times, loss_first = [], None
    for it in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = rel_l2(model(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if it == 0:
            loss_first = loss.item()
        if it >= args.warmup:
            times.append(dt)
    med = statistics.median(times)
    print(json.dumps({'side': 'torch', 'model': 'MgNO_DC', 'preset': 'darcy-rough', 'params': nparams,
                      's': args.s, 'batch': args.batch, 'threads': torch.get_num_threads(),
                      'samples_per_s': round(args.batch / med, 3), 'ms_median': round(1e3 * med, 3),
                      'ms_min': round(1e3 * min(times), 3), 'peak_rss_mib': round(vmhwm_mib(), 1),
                      'loss_first': loss_first, 'torch': torch.__version__}), flush=True)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""ddp_fno.py -- the PyTorch DistributedDataParallel peer of `mpirun -np P opl train fno`.

The FNO-1d of experiments/bench/torch_fno.py (modes 16, width 64: 549,569 parameters, the
reference fourier_1d.py's count) trained with torch.nn.parallel.DistributedDataParallel on the
gloo backend: P processes on this machine, each with `--threads` intra-op threads, each taking
its share (global batch / P) of every global batch, gradients allreduced by DDP's buckets during
backward (Li et al., "PyTorch Distributed", VLDB 2020). Adam, lr 1e-3, weight decay 1e-4 and the
summed relative L2 loss, as in opl train fno. Synthetic smooth data (torch_fno.make_data).

Usage:  ddp_fno.py --procs 2 --threads 1 --s 1024 --batch 20 --iters 30 --warmup 5
Prints one JSON line: samples_per_s (global samples per second over the timed steps, the median
step of rank 0), ms_median, procs, threads, params.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
_argv, sys.argv = sys.argv, sys.argv[:1]   # torch_fno parses the command line when imported
import torch_fno  # noqa: E402  (experiments/bench/torch_fno.py)
sys.argv = _argv


def worker(rank, a, port, out):
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.procs)
    torch.manual_seed(a.seed)                       # the same initial weights on every rank
    model = torch_fno.make_model("fno1d", a.modes, a.width)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x, y = torch_fno.make_data("fno1d", a.s, a.batch, 0, a.seed + 1)
    lo, hi = a.batch * rank // a.procs, a.batch * (rank + 1) // a.procs
    x, y = x[lo:hi].contiguous(), y[lo:hi].contiguous()
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        loss = torch_fno.rel_l2(ddp(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        dist.barrier()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        med = statistics.median(times)
        out.put({"impl": "torch-ddp-gloo", "procs": a.procs, "threads": a.threads, "s": a.s,
                 "batch": a.batch, "ms_median": round(med * 1e3, 3),
                 "samples_per_s": round(a.batch / med, 3), "iters": a.iters,
                 "params": torch_fno.count_params(model), "version": torch.__version__})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--s", type=int, default=1024)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--modes", type=int, default=16)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=29517)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(worker, args=(a, a.port, out), nprocs=a.procs, start_method="spawn")
    print(json.dumps(out.get()))


if __name__ == "__main__":
    main()

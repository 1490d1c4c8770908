"""The authors' SineNet (sinenet_dual.py of OpenPDE/SineNet, github.com/divelab/AIRS) timed on the
training step opl bench sinenet times: hist input frames of one field, one output frame, batch of
N(0, 1) fields at s x s, the sum of per-sample relative L2 errors, AdamW (lr 2e-4, weight decay
1e-5); then a forward pass under torch.no_grad (inference). Prints one JSON line as opl does.

    python3 bench_peer.py --peer DIR [--waves 4] [--hidden 32] [--mult M] [--padding zeros]
                          [--hist 4] [--s 64] [--batch 16] [--threads 2] [--iters 5] [--warmup 2]

DIR holds the authors' sinenet_dual.py and activations.py in a package folder pdearena_ref (with
an empty __init__.py); the code is read from there, never copied into opl."""
import argparse
import contextlib
import io
import json
import resource
import statistics
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--peer", required=True)
ap.add_argument("--waves", type=int, default=4)
ap.add_argument("--hidden", type=int, default=32)
ap.add_argument("--mult", type=float, default=-1)
ap.add_argument("--padding", default="zeros")
ap.add_argument("--hist", type=int, default=4)
ap.add_argument("--s", type=int, default=64)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
mult = a.mult if a.mult > 0 else {1: 2.0, 2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}[a.waves]
sys.path.insert(0, a.peer)
from pdearena_ref.sinenet_dual import sinenet  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
with contextlib.redirect_stdout(io.StringIO()):  # the class prints its parameter count
    net = sinenet(1, 0, 1, 0, time_history=a.hist, time_future=1, hidden_channels=a.hidden,
                  padding_mode=a.padding, num_waves=a.waves, mult=mult)
params = sum(p.numel() for p in net.parameters())
x = torch.randn(a.batch, a.hist, 1, a.s, a.s)
y = torch.randn(a.batch, 1, 1, a.s, a.s)
opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=1e-5)


def rel_l2_sum(p, t):
    p, t = p.flatten(1), t.flatten(1)
    return (torch.norm(p - t, dim=1) / torch.norm(t, dim=1)).sum()


times, cpus, loss_first = [], [], None
for it in range(a.warmup + a.iters):
    t0, c0 = time.perf_counter(), time.process_time()
    opt.zero_grad(set_to_none=True)
    loss = rel_l2_sum(net(x), y)
    loss.backward()
    opt.step()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if it == 0:
        loss_first = loss.item()
    if it >= a.warmup:
        times.append(dt)
        cpus.append(dc)
inf, icpu = [], []
with torch.no_grad():
    for it in range(a.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        net(x)
        inf.append(time.perf_counter() - t0)
        icpu.append(time.process_time() - c0)
med, imed = statistics.median(times), statistics.median(inf)
print(json.dumps({"side": "torch", "model": "sinenet", "waves": a.waves, "hidden": a.hidden, "mult": mult,
                  "padding": a.padding, "params": params, "s": a.s, "batch": a.batch, "threads": a.threads,
                  "samples_per_s": a.batch / med, "ms_median": 1e3 * med, "ms_min": 1e3 * min(times),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                  "infer_samples_per_s": a.batch / imed, "loss_first": loss_first,
                  "cpu_ms_median": 1e3 * statistics.median(cpus), "infer_cpu_ms_median": 1e3 * statistics.median(icpu),
                  "iters": a.iters,
                  "warmup": a.warmup, "torch": torch.__version__}))

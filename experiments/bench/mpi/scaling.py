#!/usr/bin/python3
"""scaling.py -- a data-parallel scaling model for opl train on 1 ... 64 nodes (see scaling.md).

Per training step of a global batch B on P nodes (each node one rank, B/P samples):
  compute    T_c(P) = B/P * t_s                   t_s = measured seconds per sample on one node
  allreduce  T_ar(P) = 2 (P-1)/P * S / W + 2 (P-1) * k * a
             ring allreduce (Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for
             clusters of workstations", JPDC 2009): each rank sends and receives 2 (P-1)/P of
             the S gradient bytes, in 2 (P-1) messages per bucket; W the link bandwidth, a the
             per-message latency, k buckets
  step       no overlap: T_c + T_ar;  with overlap (buckets summed during backward, which takes
             a fraction f of the compute): max(T_c, (1 - f) T_c + T_ar)
Communication dominates where T_ar > T_c. Weak scaling (B/P fixed) gives the same T_ar and a
constant T_c.  Prints markdown tables. Standard library only.
"""
import math

# measured on this machine (one "node" = the shared 2-core AMD EPYC, 2 threads), see scaling.md
MODELS = [
    # name, parameters (float32 gradients: 4 bytes each), seconds per sample (2 threads), source
    ("FNO-1d s=1024 (fourier_1d.py)", 549_569, 0.0884 / 20, "experiments/bench/results.md: 88.4 ms / step of 20"),
    ("FNO-2d 64x64, rollout 10 (fourier_2d_time.py)", 926_517, 1.4769 / 20,
     "experiments/bench/results.md: 1476.9 ms / step of 20"),
    ("MgNO 256x256 Darcy (darcy-rough)", 572_661, 3.936 / 8, "experiments/mgno/results.md: 3936 ms / step of 8"),
]
LINKS = [("10 Gbit/s", 10e9 / 8, 20e-6), ("100 Gbit/s", 100e9 / 8, 5e-6)]
BUCKET = 1 << 20          # opl's default bucket (core/dist.h)
BACKWARD = 2.0 / 3.0      # share of the step compute in backward (the overlap window)
NODES = [1, 2, 4, 8, 16, 32, 64]
B = 64                    # global batch of the strong-scaling table (>= 64: a sample per node)


def t_ar(P, S, W, a):
    if P == 1:
        return 0.0
    k = max(1, math.ceil(S / BUCKET))
    return 2 * (P - 1) / P * S / W + 2 * (P - 1) * k * a


def main():
    for name, params, ts, src in MODELS:
        S = 4 * params
        print(f"### {name}: {params:,} parameters, {S / 1e6:.2f} MB of gradients per step, "
              f"{ts * 1e3:.1f} ms per sample per node\n")
        print(f"(compute: {src})\n")
        print("| nodes | compute per step (global batch 64) | " +
              " | ".join(f"allreduce {l} | step {l} no overlap / overlap | speed-up {l}" for l, _, _ in LINKS) + " |")
        print("|---:|---:|" + "---:|---:|---:|" * len(LINKS))
        cross = {}
        for P in NODES:
            tc = B / P * ts
            row = [f"{P}", f"{tc * 1e3:.1f} ms"]
            for l, W, a in LINKS:
                ta = t_ar(P, S, W, a)
                no = tc + ta
                ov = max(tc, (1 - BACKWARD) * tc + ta)
                row += [f"{ta * 1e3:.2f} ms", f"{no * 1e3:.1f} / {ov * 1e3:.1f} ms", f"{B * ts / ov:.1f}x"]
                if ta > tc and l not in cross:
                    cross[l] = P
            print("| " + " | ".join(row) + " |")
        print()
        for l, W, a in LINKS:
            # the per-node batch b where T_ar(64) = b t_s: below it communication dominates
            b = t_ar(64, S, W, a) / ts
            where = (f"from {cross[l]} nodes on" if l in cross else "not within 64 nodes")
            print(f"- {l}: communication dominates {where} at global batch {B}; at 64 nodes it equals the "
                  f"compute of {b:.2g} samples per node (a node {1 / b if b < 1 else 0:.0f}x faster "
                  f"than this one moves the crossing to 64 nodes at one sample per node)." if b < 1 else
                  f"- {l}: communication dominates {where} at global batch {B}; at 64 nodes it equals the "
                  f"compute of {b:.2g} samples per node.")
        print()


if __name__ == "__main__":
    main()

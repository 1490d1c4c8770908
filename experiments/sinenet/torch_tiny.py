"""Outputs of the authors' SineNet (sinenet_dual.py of OpenPDE/SineNet, github.com/divelab/AIRS)
on a tiny configuration with deterministic weights, for tests/operators/test_sinenet.c.

    python3 torch_tiny.py AUTHORS_MODULES_DIR

AUTHORS_MODULES_DIR holds the authors' sinenet_dual.py and activations.py in a package folder
named pdearena_ref (with an empty __init__.py); the code is fetched beside opl, never committed.
Every parameter is filled by a rule of its own shape only, as the test's fill_rule does:
element j of a tensor of n elements is 0.2 sin(1.3 j + 0.7 n) / sqrt(n / shape[0]) (1 for
rank 1), plus 1 for the GroupNorm weights. The input x[i] = sin(0.37 i) + 0.01 i over the flat
(1, 2, 32, 32) array. Prints, for zero and circular padding, out[0, 0, 0, 0..3],
out[0, 1, 7, 4..7] and the sum of the outputs (float64)."""
import math
import sys

import torch

sys.path.insert(0, sys.argv[1])
from pdearena_ref.sinenet_dual import sinenet  # noqa: E402

torch.set_default_dtype(torch.float64)
for pad in ("zeros", "circular"):
    net = sinenet(1, 0, 2, 0, time_history=2, time_future=1, hidden_channels=3, padding_mode=pad,
                  num_waves=2, mult=1.5)
    with torch.no_grad():
        for name, p in net.named_parameters():
            n = p.numel()
            fan = n / p.shape[0] if p.dim() > 1 else 1.0
            j = torch.arange(n, dtype=torch.float64)
            v = 0.2 * torch.sin(1.3 * j + 0.7 * n) / math.sqrt(fan)
            if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
                v = v + 1
            p.copy_(v.reshape(p.shape))
        i = torch.arange(2 * 32 * 32, dtype=torch.float64)
        x = (torch.sin(0.37 * i) + 0.01 * i).reshape(1, 1, 2, 32, 32)
        y = net(x).reshape(1, 2, 32, 32)
    vals = y[0, 0, 0, 0:4].tolist() + y[0, 1, 7, 4:8].tolist() + [y.sum().item()]
    print(pad, ", ".join("%.17g" % v for v in vals))

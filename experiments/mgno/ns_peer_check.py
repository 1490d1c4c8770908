#!/usr/bin/env python3
"""ns_peer_check.py -- the MgNO Navier-Stokes variant of opl against the authors' MgNO_NS.

Loads the weights of an opl checkpoint of `opl train mgno --preset ns` into the authors' MgNO_NS
class (models.py of https://github.com/xlliu2017/MgNO, imported from PEER_DIR, never copied),
rolls it out from the input frame that `opl eval --out PRED.h5` stored, and prints the largest
difference between the two rollouts, step by step, relative to the size of the frames. The
authors' LayerNorms are sized for 64 x 64 (nn.LayerNorm([Cu, 64 // 2**j, 64 // 2**j])), so the
model must have been trained at 64 x 64; the number of levels must be 5 (navier.py's
num_iteration, used below).

usage: ns_peer_check.py PEER_DIR MODEL.h5 PRED.h5
  PEER_DIR holds the authors' models.py (it imports torchinfo and utilities3: stand-ins are put
  on the path when they are missing). Arrays are read with h5dump (no h5py needed).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch


def h5_array(path, name, shape):
    """Dataset `name` of `path` as float32 of `shape`, through `h5dump -b LE`."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        subprocess.run(["h5dump", "-d", name, "-b", "LE", "-o", f.name, path], check=True,
                       stdout=subprocess.DEVNULL)
        raw = open(f.name, "rb").read()
    n = int(np.prod(shape))
    for dt in (np.float32, np.float64):
        if len(raw) == n * np.dtype(dt).itemsize:
            return np.frombuffer(raw, dtype=dt).astype(np.float32).reshape(shape)
    raise ValueError(f"{path}:{name}: {len(raw)} bytes for shape {shape}")


def h5_attr_int(path, name):
    out = subprocess.run(["h5dump", "-a", name, path], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("(0):"):
            return int(line.split(":")[1].strip().strip('"'))
    raise ValueError(f"{path}: attribute {name} not found")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    peer, model_path, pred_path = sys.argv[1:]
    stubs = tempfile.mkdtemp()
    os.makedirs(os.path.join(stubs, "torchinfo"))
    open(os.path.join(stubs, "torchinfo", "__init__.py"), "w").write("def summary(*a, **k):\n    pass\n")
    open(os.path.join(stubs, "utilities3.py"), "w").write(
        "def count_params(m):\n    return sum(p.numel() for p in m.parameters())\n")
    sys.path.insert(0, peer)
    sys.path.append(stubs)
    from models import MgNO_NS

    layers = h5_attr_int(model_path, "/mgno.layers")
    cu = h5_attr_int(model_path, "/mgno.channels_u")
    cin = h5_attr_int(model_path, "/mgno.in_channels")
    iters = [[1, 0], [1, 0], [1, 0], [2, 0], [2, 0]]
    torch.manual_seed(0)
    m = MgNO_NS(num_layer=layers, num_channel_u=cu, num_channel_f=cin, num_classes=1, num_iteration=iters,
                in_chans=cin, mlp_hidden_dim=0, output_dim=1, padding_mode="circular", bias=False)
    state = m.state_dict()
    L = len(iters)
    names = {}
    for i in range(layers):
        t, o = f"conv_list.{i}.", f"/model/mgno.{i}."
        names[t + "layer0.0.S.weight"] = o + "Sinit"
        k = 0
        for lev in range(L):  # pre-smoothing pairs in forward order (num_iteration has no post steps)
            first = 1 if lev == 0 else 0
            for j in range(first, iters[lev][0]):
                idx = j if lev == 0 else j + 1  # index 0 of levels >= 1 is the Restrict module
                names[t + f"layer{lev}.{idx}.A.weight"] = o + f"A{k}"
                names[t + f"layer{lev}.{idx}.S.weight"] = o + f"S{k}"
                k += 1
        for lev in range(1, L):
            names[t + f"layer{lev}.0.Pi.weight"] = o + f"Pi{lev}"
            names[t + f"layer{lev}.0.R.weight"] = o + f"R{lev}"
        for lev in range(L - 1):
            names[t + f"RTlayers.{lev}.weight"] = o + f"RT{lev}"
            names[t + f"norm_layer_list.{lev}.weight"] = o + f"ln{lev}.w"
            names[t + f"norm_layer_list.{lev}.bias"] = o + f"ln{lev}.b"
    names["last_layer.weight"] = "/model/mgno.proj"
    missing = set(state) - set(names)
    if missing:
        sys.exit(f"torch parameters without an opl counterpart: {sorted(missing)}")
    for tn, on in names.items():
        state[tn] = torch.from_numpy(h5_array(model_path, on, tuple(state[tn].shape)).copy())
    m.load_state_dict(state)
    print(f"parameters: torch {sum(p.numel() for p in m.parameters())} (all {len(names)} tensors from {model_path})")

    dims = subprocess.run(["h5ls", pred_path + "/pred"], check=True, capture_output=True, text=True).stdout
    shape = tuple(int(v) for v in dims.split("{")[1].split("}")[0].split(","))
    pred = h5_array(pred_path, "/pred", shape)
    inp = h5_array(pred_path, "/input", shape)  # onestep: frames 0 .. T-1 (T_in + T - 1 of them)
    x = torch.from_numpy(inp[:, :cin].copy())
    worst = 0.0
    with torch.no_grad():
        for s in range(shape[1]):
            y = m(x)
            d = np.abs(y.numpy()[:, 0] - pred[:, s]).max() / np.abs(pred[:, s]).max()
            worst = max(worst, d)
            print(f"step {s + 1}: max |torch - opl| / max |opl| = {d:.2e}")
            x = torch.cat((x[:, 1:], y), dim=1)
    print(f"worst over {shape[1]} steps: {worst:.2e}")


if __name__ == "__main__":
    main()

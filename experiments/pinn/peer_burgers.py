#!/usr/bin/python3
"""The peer for opl's Burgers PINN: the same problem, network, points and optimizers written the
way a PyTorch user writes a PINN (input derivatives by nested torch.autograd.grad).

Problem (Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378, 2019, "continuous inference"):
    u_t + u u_x - nu u_xx = 0,  nu = 0.01/pi,  x in [-1, 1],  t in [0, 1],
    u(0, x) = -sin(pi x),  u(t, -1) = u(t, 1) = 0.
Network: 2 -> 8 hidden tanh layers of 20 -> 1, Glorot-normal weights, zero biases, inputs scaled
to [-1, 1]. Loss: mean square misfit at n_u initial/boundary points + mean square residual at
n_f Latin-hypercube collocation points. Optimizers: Adam, then L-BFGS with a strong Wolfe line
search (torch.optim.LBFGS).

Reference solution: the Cole-Hopf transformation u = -2 nu phi_x / phi turns the problem into
heat flow; with the odd initial datum the solution is (Basdevant et al., Computers & Fluids 14,
1986, eq. for the exact solution)
    u(t, x) = - int sin(pi (x - eta)) f(x - eta) exp(-eta^2 / (4 nu t)) d eta
              / int f(x - eta) exp(-eta^2 / (4 nu t)) d eta,
    f(y) = exp(-cos(pi y) / (2 pi nu)),
evaluated by Gauss-Hermite quadrature with eta = sqrt(4 nu t) z. The factor exp(-cos/(2 pi nu))
spans e^{+-16}; it is scaled by its maximum over the nodes at each point.

Prints (one line each, read by run scripts):
    adam iterations/s: X
    adam iterations/s (median step, 11..N): X    (1 / the median wall time of one Adam iteration)
    lbfgs iterations/s: X        (accepted L-BFGS iterations per second)
    lbfgs evaluations/s: X       (loss+gradient evaluations per second)
    relative L2: X               (on the uniform 256 x 101 grid, x incl. both ends, t in [0, 1])
"""
import argparse
import math
import sys
import time

import numpy as np
import torch


def burgers_exact(x, t, nu, nq=200):
    """Cole-Hopf solution on arrays x [NX], t [NT] -> u [NT, NX] (float64)."""
    z, w = np.polynomial.hermite.hermgauss(nq)
    u = np.zeros((len(t), len(x)))
    for i, ti in enumerate(t):
        if ti == 0.0:
            u[i] = -np.sin(np.pi * x)
            continue
        eta = math.sqrt(4.0 * nu * ti) * z                       # [nq]
        y = x[:, None] - eta[None, :]                            # [NX, nq]
        lf = -np.cos(np.pi * y) / (2.0 * np.pi * nu)
        lf -= lf.max(axis=1, keepdims=True)
        f = np.exp(lf) * w[None, :]
        u[i] = -(np.sin(np.pi * y) * f).sum(axis=1) / f.sum(axis=1)
    return u


def lhs(n, rng):
    """Latin hypercube in [0, 1]^2: one point per stratum of each axis, strata paired at random."""
    out = np.empty((n, 2))
    for d in range(2):
        out[:, d] = (rng.permutation(n) + rng.random(n)) / n
    return out


class MLP(torch.nn.Module):
    def __init__(self, depth, width):
        super().__init__()
        sizes = [2] + [width] * depth + [1]
        self.layers = torch.nn.ModuleList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            lin = torch.nn.Linear(a, b)
            torch.nn.init.xavier_normal_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
            self.layers.append(lin)

    def forward(self, t, x):
        h = torch.cat([2.0 * t - 1.0, x], dim=1)                # t in [0, 1] -> [-1, 1]
        for lin in self.layers[:-1]:
            h = torch.tanh(lin(h))
        return self.layers[-1](h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument("--n-u", type=int, default=100)
    ap.add_argument("--n-f", type=int, default=10000)
    ap.add_argument("--adam", type=int, default=0, help="Adam iterations before L-BFGS")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lbfgs", type=int, default=5000, help="L-BFGS iterations")
    ap.add_argument("--history", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--double", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    dt = torch.float64 if a.double else torch.float32
    torch.set_default_dtype(dt)
    nu = 0.01 / math.pi

    # initial and boundary points: n_u drawn from 256 initial + 2 x 100 boundary candidates
    xi = np.linspace(-1, 1, 256)
    tb = np.linspace(0, 1, 100)
    cand = np.concatenate([
        np.stack([np.zeros_like(xi), xi, -np.sin(np.pi * xi)], 1),
        np.stack([tb, -np.ones_like(tb), np.zeros_like(tb)], 1),
        np.stack([tb, np.ones_like(tb), np.zeros_like(tb)], 1)])
    pick = cand[rng.choice(len(cand), a.n_u, replace=False)]
    tu = torch.tensor(pick[:, 0:1], dtype=dt)
    xu = torch.tensor(pick[:, 1:2], dtype=dt)
    uu = torch.tensor(pick[:, 2:3], dtype=dt)
    col = lhs(a.n_f, rng)
    tf = torch.tensor(col[:, 0:1], dtype=dt, requires_grad=True)
    xf = torch.tensor(2 * col[:, 1:2] - 1, dtype=dt, requires_grad=True)

    net = MLP(a.depth, a.width)

    def loss_fn():
        u = net(tf, xf)
        ut, ux = torch.autograd.grad(u.sum(), (tf, xf), create_graph=True)
        uxx, = torch.autograd.grad(ux.sum(), xf, create_graph=True)
        r = ut + u * ux - nu * uxx
        return ((net(tu, xu) - uu) ** 2).mean() + (r ** 2).mean()

    if a.adam > 0:
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        t0 = time.perf_counter()
        stamps = []
        for _ in range(a.adam):
            opt.zero_grad()
            L = loss_fn()
            L.backward()
            opt.step()
            stamps.append(time.perf_counter())
        el = time.perf_counter() - t0
        print(f"adam iterations/s: {a.adam / el:.2f}")
        if a.adam > 10:  # iterations 11..N, as run_peer.sh reads opl's: the median step, robust to load spikes
            steps = np.diff(np.array(stamps[9:]))
            print(f"adam iterations/s (median step, 11..N): {1.0 / np.median(steps):.2f}")
        print(f"adam final loss: {L.item():.6e}")

    if a.lbfgs > 0:
        opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=a.lbfgs, max_eval=None,
                                history_size=a.history, tolerance_grad=1e-9,
                                tolerance_change=0.0, line_search_fn="strong_wolfe")
        nev = [0]

        def closure():
            nev[0] += 1
            opt.zero_grad()
            L = loss_fn()
            L.backward()
            return L

        t0 = time.perf_counter()
        opt.step(closure)
        el = time.perf_counter() - t0
        nit = opt.state[opt._params[0]]["n_iter"]
        print(f"lbfgs iterations: {nit}")
        print(f"lbfgs evaluations: {nev[0]}")
        print(f"lbfgs iterations/s: {nit / el:.2f}")
        print(f"lbfgs evaluations/s: {nev[0] / el:.2f}")
        print(f"lbfgs final loss: {closure().item():.6e}")

    x = np.linspace(-1, 1, 256)
    t = np.linspace(0, 1, 101)
    ref = burgers_exact(x, t, nu)
    T, X = np.meshgrid(t, x, indexing="ij")
    with torch.no_grad():
        up = net(torch.tensor(T.reshape(-1, 1), dtype=dt),
                 torch.tensor(X.reshape(-1, 1), dtype=dt)).numpy().reshape(T.shape)
    print(f"relative L2: {np.linalg.norm(up - ref) / np.linalg.norm(ref):.4e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""torch_fno.py -- the PyTorch peer of `opl bench fno`.

A minimal Fourier Neural Operator written from the paper's equations, used only to time
PyTorch on the same machine, thread count and shapes as opl:

    Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
    A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
    ICLR 2021, arXiv:2010.08895 -- Section 4 (eqs. 2-5) and Appendix A.

  v_0(x)     = P(a(x), x)                              lifting, a pointwise Linear(in + d, width)
  v_{t+1}(x) = sigma( W v_t(x) + (K v_t)(x) ),         t = 0..3, no sigma after the last layer
  (K v)(x)   = F^{-1}( R . (F v) )(x)                  R acts only on the kept low modes
  u(x)       = Q(v_4(x))                               Linear(width, 128) -> GELU -> Linear(128, out)

F is the real FFT over the d spatial axes. On the last axis only the non-negative modes
0..m-1 exist (rfft); on every other axis the lowest m modes of both signs are kept (indices
0..m-1 and n-m..n-1), so a d-dimensional layer has 2^(d-1) corner blocks of modes, each with
its own complex weight R[i, o, k] mixing the channels (an einsum). W is a 1x1 convolution.

This is NOT the reference code (zongyi-li/fourier_neural_operator); it is an independent
implementation whose parameter count and per-step work equal the reference scripts
fourier_1d.py (FNO1d, modes 16, width 64: 549,569 parameters) and fourier_2d_time.py
(FNO2d, modes 12x12, width 20, 10 input frames + 2 grid channels: 926,517 parameters; the
reference also defines four BatchNorm2d(20) layers that its forward never calls -- they are
included here, also unused, so that the count matches). Complex spectral weights are stored as
real tensors with a trailing (re, im) axis, so numel() counts a complex weight as 2, exactly
like the reference's count_params().

Data are synthetic (seeded smooth random fields of the right shapes); see README.md.

Usage:
  torch_fno.py --case fno1d --s 1024 --batch 20 --threads 1 --mode train --iters 20 --warmup 3
  torch_fno.py --case fno2d_time --s 64 --rollout 10 --mode infer
  torch_fno.py --selftest
The last line printed on stdout is one JSON object (see README.md for the fields).
"""

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import time

# The glibc knobs that keep freed memory inside the process (see --keep-memory). They are read
# by glibc when the process starts, so the script re-executes itself with them set.
KEEP_MEMORY_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 40),   # never serve a large block by a fresh mmap
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),   # never give the top of the heap back to the OS
    "MALLOC_TOP_PAD_": str(64 << 20),         # grow the heap in large steps
}


def peak_rss_mib():
    """This process's own peak resident set: VmHWM of /proc/self/status (getrusage's ru_maxrss
    can start from the memory of the process that started this one); ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_args(argv):
    """Parse the command line; returns the argparse namespace (defaults filled per case)."""
    p = argparse.ArgumentParser(description="PyTorch FNO peer benchmark for opl "
                                "(prints one JSON line at the end)")
    p.add_argument("--case", choices=["fno1d", "fno2d_time"], default="fno1d")
    p.add_argument("--s", type=int, default=None,
                   help="grid size per axis (default 1024 for fno1d, 64 for fno2d_time)")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (inter-op is 1)")
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--iters", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--rollout", type=int, default=10,
                   help="fno2d_time: predicted frames per step (T); input is 10 frames")
    p.add_argument("--modes", type=int, default=None, help="default 16 (1d) / 12 (2d)")
    p.add_argument("--width", type=int, default=None, help="default 64 (1d) / 20 (2d)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-memory", action="store_true",
                   help="keep freed memory in the process (glibc env, re-exec): the "
                   "warm-allocator figure instead of PyTorch's default behaviour")
    p.add_argument("--selftest", action="store_true",
                   help="check parameter counts and the spectral conv against a direct DFT")
    a = p.parse_args(argv)
    if a.s is None:
        a.s = 1024 if a.case == "fno1d" else 64
    if a.modes is None:
        a.modes = 16 if a.case == "fno1d" else 12
    if a.width is None:
        a.width = 64 if a.case == "fno1d" else 20
    for name in ("s", "batch", "threads", "iters", "rollout", "modes", "width"):
        if getattr(a, name) < 1:
            p.error("--%s must be >= 1, got %d" % (name, getattr(a, name)))
    if a.warmup < 0:
        p.error("--warmup must be >= 0, got %d" % a.warmup)
    if a.modes > a.s // 2 + 1 or (a.case == "fno2d_time" and 2 * a.modes > a.s):
        p.error("--modes %d is too many for --s %d (%s keeps %s)" % (
            a.modes, a.s, a.case, "modes <= s/2+1" if a.case == "fno1d"
            else "modes of both signs on the first axis: 2*modes <= s"))
    return a


def reexec_with_kept_memory():
    """If the glibc keep-memory variables are not yet in the environment, set them and replace
    this process by a fresh copy of itself (they only take effect at process start)."""
    if all(os.environ.get(k) == v for k, v in KEEP_MEMORY_ENV.items()):
        return
    env = dict(os.environ)
    env.update(KEEP_MEMORY_ENV)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


args = parse_args(sys.argv[1:])
if args.keep_memory:
    reexec_with_kept_memory()

import torch                      # noqa: E402  (after the possible re-exec, on purpose)
import torch.nn as nn             # noqa: E402
import torch.nn.functional as F   # noqa: E402


class SpectralConv(nn.Module):
    """Fourier integral operator K of arXiv:2010.08895 eq. (4)-(5) on d spatial axes.

    forward(x): x is (batch, cin, n_1, ..., n_d) real; returns (batch, cout, n_1, ..., n_d).
    Keeps modes[j] lowest modes of both signs on axes j < d-1 (requires 2*modes[j] <= n_j)
    and modes 0..modes[-1]-1 on the last axis (requires modes[-1] <= n_d//2 + 1); all other
    modes of the output spectrum are zero.
    """

    def __init__(self, cin, cout, modes, dtype=torch.float32):
        super().__init__()
        self.cin, self.cout, self.modes = cin, cout, tuple(modes)
        self.d = len(self.modes)
        self.ncorner = 2 ** (self.d - 1)
        # weight: (cin, cout, ncorner, m_1, ..., m_d, 2) real = complex (re, im) pairs.
        # Same init law as the paper's code: uniform [0, 1) / (cin * cout) in re and im.
        scale = 1.0 / (cin * cout)
        self.weight = nn.Parameter(
            scale * torch.rand(cin, cout, self.ncorner, *self.modes, 2, dtype=dtype))
        ax = "xyzw"[:self.d]
        self.eq = "bik%s,iok%s->bok%s" % (ax, ax, ax)

    def corners(self, shape):
        """Index tuples (over the d spatial axes) of the 2^(d-1) kept corner blocks of an
        rfft spectrum whose spatial part is `shape` (n_1, ..., n_{d-1}, n_d//2 + 1)."""
        per_axis = []
        for j in range(self.d - 1):
            m, n = self.modes[j], shape[j]
            per_axis.append((slice(0, m), slice(n - m, n)))
        last = (slice(0, self.modes[-1]),)
        return [c + last for c in itertools.product(*per_axis)]

    def forward(self, x):
        n = x.shape[-self.d:]
        dims = tuple(range(-self.d, 0))
        for j in range(self.d - 1):
            assert 2 * self.modes[j] <= n[j], "modes %d too many for n %d" % (self.modes[j], n[j])
        assert self.modes[-1] <= n[-1] // 2 + 1
        xf = torch.fft.rfftn(x, dim=dims)                      # (b, cin, n_1.., n_d//2+1)
        cs = self.corners(xf.shape[-self.d:])
        xk = torch.stack([xf[(Ellipsis,) + c] for c in cs], dim=2)   # (b, cin, K, m_1..m_d)
        w = torch.view_as_complex(self.weight)                 # (cin, cout, K, m_1..m_d)
        yk = torch.einsum(self.eq, xk, w)                      # (b, cout, K, m_1..m_d)
        out = torch.zeros((x.shape[0], self.cout) + tuple(xf.shape[-self.d:]),
                          dtype=xf.dtype, device=x.device)
        for j, c in enumerate(cs):
            out[(Ellipsis,) + c] = yk[:, :, j]
        return torch.fft.irfftn(out, s=n, dim=dims)


class FNO(nn.Module):
    """FNO of arXiv:2010.08895 on d = 1 or 2 spatial axes, channels-last input as in the
    paper's scripts.

    forward(a): a is (batch, n_1, ..., n_d, cin) real; the grid coordinates
    linspace(0, 1, n_j) (endpoint included) are appended as d more channels; returns
    (batch, n_1, ..., n_d, cout).
    """

    def __init__(self, d, modes, width, cin, cout=1, n_unused_bn=0, dtype=torch.float32):
        super().__init__()
        self.d, self.width = d, width
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[d]
        kw = dict(dtype=dtype)
        self.lift = nn.Linear(cin + d, width, **kw)
        self.spectral = nn.ModuleList(SpectralConv(width, width, [modes] * d, dtype)
                                      for _ in range(4))
        self.pointwise = nn.ModuleList(conv(width, width, 1, **kw) for _ in range(4))
        # The reference FNO2d (fourier_2d_time.py) constructs four BatchNorm2d(width) that
        # its forward never calls (4 x 2 x width parameters). They are kept here, unused,
        # only so that the parameter count (and optimizer state size) matches the reference.
        self.unused_bn = nn.ModuleList(nn.BatchNorm2d(width, **kw) for _ in range(n_unused_bn))
        self.proj1 = nn.Linear(width, 128, **kw)
        self.proj2 = nn.Linear(128, cout, **kw)

    def grid(self, a):
        """(batch, n_1..n_d, d) coordinates linspace(0, 1, n_j) for a of shape (batch, n.., c)."""
        b, n = a.shape[0], a.shape[1:1 + self.d]
        axes = [torch.linspace(0, 1, nj, dtype=a.dtype, device=a.device) for nj in n]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack(mesh, dim=-1).unsqueeze(0).expand(b, *n, self.d)

    def forward(self, a):
        x = self.lift(torch.cat((a, self.grid(a)), dim=-1))   # (b, n.., width)
        x = x.permute(0, self.d + 1, *range(1, self.d + 1))  # (b, width, n..)
        for layer in range(4):
            x = self.spectral[layer](x) + self.pointwise[layer](x)
            if layer < 3:
                x = F.gelu(x)
        x = x.permute(0, *range(2, self.d + 2), 1)            # (b, n.., width)
        return self.proj2(F.gelu(self.proj1(x)))


def rel_l2(pred, target):
    """Relative L2 error summed over the batch: sum_b ||pred_b - y_b||_2 / ||y_b||_2
    (the reference scripts' LpLoss(size_average=False))."""
    b = pred.shape[0]
    diff = torch.linalg.vector_norm((pred - target).reshape(b, -1), dim=1)
    return (diff / torch.linalg.vector_norm(target.reshape(b, -1), dim=1)).sum()


def make_model(case, modes, width, dtype=torch.float32):
    """The benchmark model of a case: 'fno1d' -> FNO1d(modes, width), input a(x) + x;
    'fno2d_time' -> FNO2d(modes, modes, width), input 10 frames + (x, y)."""
    if case == "fno1d":
        return FNO(1, modes, width, cin=1, dtype=dtype)
    return FNO(2, modes, width, cin=10, n_unused_bn=4, dtype=dtype)


def count_params(model):
    """Number of real parameters (a complex weight counts as 2, as in the reference)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def smooth_field(gen, shape, nk=8):
    """Seeded smooth random periodic fields, returned channels-last with the given shape
    (batch, n_1, ..., n_d, frames): the nk lowest non-negative Fourier modes per axis with
    coefficients ~ N(0, 1) / (1 + |k|^2), normalized to unit RMS per sample."""
    b, n, c = shape[0], shape[1:-1], shape[-1]
    d = len(n)
    spec_shape = (b, c) + tuple(n[:-1]) + (n[-1] // 2 + 1,)
    re = torch.zeros(spec_shape)
    im = torch.zeros(spec_shape)
    idx = tuple(slice(0, min(nk, nj)) for nj in n[:-1]) + (slice(0, min(nk, n[-1] // 2 + 1)),)
    sub = re[(Ellipsis,) + idx].shape
    k2 = torch.zeros(sub[2:])
    for j, m in enumerate(sub[2:]):
        shp = [1] * len(sub[2:])
        shp[j] = m
        k2 = k2 + (torch.arange(m, dtype=torch.float32) ** 2).reshape(shp)
    damp = 1.0 / (1.0 + k2)
    re[(Ellipsis,) + idx] = torch.randn(sub, generator=gen) * damp
    im[(Ellipsis,) + idx] = torch.randn(sub, generator=gen) * damp
    f = torch.fft.irfftn(torch.complex(re, im), s=n, dim=tuple(range(2, 2 + d)))
    f = f / f.reshape(b, -1).pow(2).mean(dim=1).sqrt().reshape((b,) + (1,) * (d + 1))
    return f.permute(0, *range(2, 2 + d), 1).contiguous()   # (b, n.., frames)


def make_data(case, s, batch, rollout, seed):
    """Synthetic input/target pair: fno1d -> a (b, s, 1), u (b, s, 1);
    fno2d_time -> 10 input frames (b, s, s, 10), rollout target frames (b, s, s, T)."""
    gen = torch.Generator().manual_seed(seed)
    if case == "fno1d":
        return smooth_field(gen, (batch, s, 1)), smooth_field(gen, (batch, s, 1))
    u = smooth_field(gen, (batch, s, s, 10 + rollout))
    return u[..., :10].contiguous(), u[..., 10:].contiguous()


def rollout(model, xx, yy, T):
    """fourier_2d_time.py's recurrence: predict the next frame from the last 10, step 1,
    append the prediction and drop the oldest frame; the loss is the sum over the T steps
    of the batch-summed relative L2 error of each predicted frame."""
    loss = 0.0
    for t in range(T):
        im = model(xx)                                     # (b, s, s, 1)
        loss = loss + rel_l2(im, yy[..., t:t + 1])
        xx = torch.cat((xx[..., 1:], im), dim=-1)
    return loss


def openblas_core():
    """Name of the OpenBLAS kernel selected in this process ('Zen', 'Haswell', 'SkylakeX', ...),
    or None if no OpenBLAS is mapped (torch loads it through libblas.so.3)."""
    import ctypes
    try:
        with open("/proc/self/maps") as maps:
            path = next((ln.split()[-1] for ln in maps if "libopenblas" in ln), None)
        if path is None:
            return None
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def bench(a):
    """Run the benchmark of the parsed arguments; returns the result dict."""
    torch.manual_seed(a.seed)
    model = make_model(a.case, a.modes, a.width)
    x, y = make_data(a.case, a.s, a.batch, a.rollout, a.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        if a.mode == "train":
            opt.zero_grad()
            if a.case == "fno1d":
                loss = rel_l2(model(x), y)
            else:
                loss = rollout(model, x, y, a.rollout)
            loss.backward()
            opt.step()
            return loss.item()
        with torch.no_grad():
            if a.case == "fno1d":
                return float(model(x)[0, 0, 0])
            return float(rollout(model, x, y, a.rollout))

    for _ in range(a.warmup):
        step()
    times = []
    flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    flt1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    med = statistics.median(times)
    return {
        "impl": "torch", "case": a.case, "s": a.s, "threads": a.threads, "mode": a.mode,
        "ms_median": round(med * 1e3, 3),
        "samples_per_s": round(a.batch / med, 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "params": count_params(model),
        "batch": a.batch, "iters": a.iters, "warmup": a.warmup,
        "rollout": a.rollout if a.case == "fno2d_time" else 0,
        "ms_min": round(min(times) * 1e3, 3),
        "minflt_per_step": round((flt1 - flt0) / a.iters),
        "keep_memory": bool(a.keep_memory),
        "version": torch.__version__,
        "blas_core": openblas_core(),
    }


# ---------------------------------------------------------------------------------------
# --selftest
# ---------------------------------------------------------------------------------------

def direct_spectral_conv(x, w, modes):
    """Independent float64 reference for SpectralConv on 1 or 2 axes, by explicit DFT sums
    (numpy-free, no FFT): X(k) = sum_x v(x) e^{-2 pi i k.x/n}; Y_o(k) = sum_i R[i,o,k] X_i(k)
    on the kept modes; u(x) = (1/N) sum_k c_k Re(Y(k) e^{+2 pi i k.x/n}), with c_k = 1 on the
    last axis' mode 0 (and its Nyquist mode) and 2 on the other kept last-axis modes -- the
    real inverse of a half spectrum whose remaining modes are zero.
    x: (b, cin, n_1[, n_2]) float64; w: (cin, cout, K, m_1[, m_2]) complex128."""
    d = len(modes)
    n = x.shape[2:]
    xc = x.to(torch.complex128)

    def dft_matrix(nj, ks, sign):              # (len(ks), nj): e^{sign 2 pi i k x / nj}
        kk = torch.tensor(ks, dtype=torch.float64).reshape(-1, 1)
        xx = torch.arange(nj, dtype=torch.float64).reshape(1, -1)
        return torch.exp(sign * 2j * torch.pi * kk * xx / nj)

    out = torch.zeros((x.shape[0], w.shape[1]) + tuple(n), dtype=torch.float64)
    last_ks = list(range(modes[-1]))
    c_last = torch.tensor([1.0 if (k == 0 or 2 * k == n[-1]) else 2.0 for k in last_ks],
                          dtype=torch.float64)
    if d == 1:
        Fm = dft_matrix(n[0], last_ks, -1.0)                   # (m, n)
        X = torch.einsum("bix,kx->bik", xc, Fm)
        Y = torch.einsum("bik,iok->bok", X, w[:, :, 0])
        G = dft_matrix(n[0], last_ks, +1.0)                    # (m, n)
        out = torch.einsum("bok,kx->box", Y * c_last, G).real / n[0]
        return out
    m1 = modes[0]
    blocks = [list(range(m1)), list(range(n[0] - m1, n[0]))]
    for j, ks1 in enumerate(blocks):
        F1, F2 = dft_matrix(n[0], ks1, -1.0), dft_matrix(n[1], last_ks, -1.0)
        X = torch.einsum("bixy,kx,ly->bikl", xc, F1, F2)
        Y = torch.einsum("bikl,iokl->bokl", X, w[:, :, j])
        G1, G2 = dft_matrix(n[0], ks1, +1.0), dft_matrix(n[1], last_ks, +1.0)
        out = out + torch.einsum("bokl,kx,ly->boxy", Y * c_last, G1, G2).real
    return out / (n[0] * n[1])


def selftest():
    """Assert parameter counts and check SpectralConv against direct DFT sums and its gradient
    by finite differences, in float64. Prints TAP-like lines; returns the number of failures."""
    fails = 0
    num = 0

    def check(cond, msg):
        nonlocal fails, num
        num += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", num, msg))
        if not cond:
            fails += 1

    expect = {"fno1d": 549569, "fno2d_time": 926517}
    for case, (m, wd) in (("fno1d", (16, 64)), ("fno2d_time", (12, 20))):
        got = count_params(make_model(case, m, wd))
        check(got == expect[case], "%s parameters %d (reference %d)" % (case, got, expect[case]))

    gen = torch.Generator().manual_seed(7)
    # (cin, cout, modes, grid): 1-D even/odd sizes, a last-axis Nyquist mode, 2-D non-square.
    configs = [(3, 2, [5], (16,)), (2, 3, [4], (7,)), (2, 2, [5], (8,)),
               (2, 3, [3, 4], (8, 10)), (3, 2, [2, 3], (5, 4)), (1, 1, [4, 5], (8, 8))]
    for cin, cout, modes, n in configs:
        torch.manual_seed(len(n) * 100 + cin)
        sc = SpectralConv(cin, cout, modes, dtype=torch.float64)
        with torch.no_grad():
            sc.weight.copy_(torch.randn(sc.weight.shape, generator=gen, dtype=torch.float64))
        x = torch.randn((2, cin) + n, generator=gen, dtype=torch.float64)
        ref = direct_spectral_conv(x, torch.view_as_complex(sc.weight.detach()), modes)
        got = sc(x).detach()
        err = (got - ref).abs().max().item() / max(ref.abs().max().item(), 1e-300)
        check(err < 1e-12, "spectral conv %s grid %s cin %d cout %d vs direct DFT "
              "(max rel err %.2e)" % (modes, n, cin, cout, err))
        xg = x.clone().requires_grad_(True)
        # gradcheck perturbs sc.weight in place, so sc(v) sees the perturbed weight
        okg = torch.autograd.gradcheck(lambda v, wt: sc(v), (xg, sc.weight),
                                       eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
        check(okg, "spectral conv %s grid %s gradient (input and weight) by finite "
              "differences" % (modes, n))

    # A wrong implementation must be caught: drop the negative-frequency block in 2-D.
    sc = SpectralConv(2, 2, [3, 3], dtype=torch.float64)
    x = torch.randn((1, 2, 8, 8), generator=gen, dtype=torch.float64)
    w = torch.view_as_complex(sc.weight.detach()).clone()
    ref = direct_spectral_conv(x, w, [3, 3])
    w[:, :, 1] = 0
    bad = direct_spectral_conv(x, w, [3, 3])
    check((sc(x).detach() - bad).abs().max().item() > 1e-3 * ref.abs().max().item(),
          "the direct-DFT check distinguishes a missing negative-mode block")

    # Whole models: output shapes, grid channel convention and one training step.
    for case, s in (("fno1d", 32), ("fno2d_time", 16)):
        torch.manual_seed(0)
        model = make_model(case, 4, 8)
        x, y = make_data(case, s, 3, 2, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        if case == "fno1d":
            out = model(x)
            check(tuple(out.shape) == (3, s, 1), "fno1d output shape %s" % (tuple(out.shape),))
            loss = rel_l2(out, y)
        else:
            out = model(x)
            check(tuple(out.shape) == (3, s, s, 1),
                  "fno2d output shape %s" % (tuple(out.shape),))
            loss = rollout(model, x, y, 2)
        g = model.grid(x)
        want = torch.zeros(g.shape)
        for i in range(s):
            want[:, i, ..., 0] = i / (s - 1)
            if case == "fno2d_time":
                want[:, :, i, 1] = i / (s - 1)
        check((g - want).abs().max().item() < 1e-6,
              "%s grid channels are linspace(0, 1, s) with endpoint, x then y" % case)
        loss.backward()
        opt.step()
        used = [(nm, p) for nm, p in model.named_parameters() if not nm.startswith("unused_bn")]
        check(all(p.grad is not None and p.grad.abs().sum().item() > 0 for _, p in used),
              "%s every used parameter has a nonzero gradient (%d tensors)" % (case, len(used)))
        check(all(p.grad is None for nm, p in model.named_parameters()
                  if nm.startswith("unused_bn")),
              "%s the unused BatchNorm parameters get no gradient" % case)
    pred = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    targ = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    want = 18 ** 0.5 / 1.0 + 1.0 / 2.0      # sum over the batch of ||p - t|| / ||t||
    check(abs(rel_l2(pred, targ).item() - want) < 1e-6,
          "relative L2 summed over the batch (closed form %.6f)" % want)
    print("1..%d" % num)
    return fails


def main():
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    if args.selftest:
        fails = selftest()
        print(json.dumps({"impl": "torch", "selftest": "fail" if fails else "pass",
                          "failures": fails}))
        return 1 if fails else 0
    print(json.dumps(bench(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

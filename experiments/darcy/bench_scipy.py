"""Per-sample time of scipy's sparse direct solve (scipy.sparse.linalg.spsolve, SuperLU) on the
Darcy system opl generates (pde/darcy.h): nodes x_i = i/(s-1), five-point stencil with the face
coefficient the arithmetic mean of its two nodes, scaled by (s-1)^2, u = 0 on the boundary
nodes, f = 1, a = 12 / 3 from the sign of a zero-Neumann Gaussian random field (tau 3, alpha 2;
cosine series by scipy's DCT-I). Timed per sample: assembly of the sparse matrix + spsolve (the
random field is drawn outside the timing, which favours scipy). Prints the median wall ms
("scipy_ms") and the median process CPU ms ("scipy_cpu_ms": on a shared machine, less inflated
by other load than wall time; run with OPENBLAS_NUM_THREADS=1 so that it is one thread's).

With DUMP (darcy_bench_solve's a and u of one sample, [S, S] float64 each), scipy also solves
that coefficient and prints the stencil's agreement: max |u_opl - u_scipy| and max |u|.

usage: python3 bench_scipy.py S SAMPLES [DUMP]
"""
import sys
import time

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def coefficient(s, rng, tau=3.0, alpha=2.0):
    k = np.arange(s)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    c = tau ** (alpha - 1) * (np.pi ** 2 * (k1 ** 2 + k2 ** 2) + tau ** 2) ** (-alpha / 2)
    c[0, 0] = 0
    g = scipy.fft.idctn(c * rng.standard_normal((s, s)), type=1)
    return np.where(g >= 0, 12.0, 3.0)


def assemble(a):
    s = a.shape[0]
    m = s - 2
    h2 = (s - 1) ** 2
    ac = a[1:-1, 1:-1]
    fw = 0.5 * (ac + a[:-2, 1:-1])   # face to (i-1, j)
    fe = 0.5 * (ac + a[2:, 1:-1])    # (i+1, j)
    fs = 0.5 * (ac + a[1:-1, :-2])   # (i, j-1)
    fn = 0.5 * (ac + a[1:-1, 2:])    # (i, j+1)
    diag = h2 * (fw + fe + fs + fn)
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [diag.ravel()]
    for face, di, dj in ((fw, -1, 0), (fe, 1, 0), (fs, 0, -1), (fn, 0, 1)):
        ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
        ni, nj = ii + di, jj + dj
        keep = (ni >= 0) & (ni < m) & (nj >= 0) & (nj < m)
        rows.append(idx[keep])
        cols.append(idx[ni[keep], nj[keep]])
        vals.append(-h2 * face[keep])
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m))


def main():
    s = int(sys.argv[1]) if len(sys.argv) > 1 else 421
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rng = np.random.default_rng(0)
    times, cpu = [], []
    for _ in range(n):
        a = coefficient(s, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        A = assemble(a)
        u = spla.spsolve(A, np.ones(A.shape[0]))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert np.all(np.isfinite(u))
    print("scipy_ms %.3f" % (1000 * float(np.median(times))))
    print("scipy_cpu_ms %.3f" % (1000 * float(np.median(cpu))))
    if len(sys.argv) > 3:
        au = np.fromfile(sys.argv[3], dtype=np.float64)
        assert au.size == 2 * s * s, "%s: expected 2 x %d^2 doubles" % (sys.argv[3], s)
        a, u_opl = au[: s * s].reshape(s, s), au[s * s:].reshape(s, s)
        A = assemble(a)
        u = spla.spsolve(A, np.ones(A.shape[0])).reshape(s - 2, s - 2)
        print("max_abs_diff %.3e max_abs_u %.6e" % (float(np.max(np.abs(u_opl[1:-1, 1:-1] - u))), float(np.max(np.abs(u)))))


if __name__ == "__main__":
    main()

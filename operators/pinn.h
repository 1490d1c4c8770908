/* opl operators — coordinate networks u_theta(t, x) for physics-informed training (PINNs).
 *
 * The network maps a point (t, x) of a problem's domain [0, T] x [x0, x1] to u. Its input
 * features are the normalized coordinates t^ = 2 t / T - 1 and x^ = 2 (x - x0) / (x1 - x0) - 1,
 * or, with the periodic embedding, t^ and [cos(k w x), sin(k w x)], k = 1..nfreq, w = 2 pi /
 * (x1 - x0), which makes every output exactly periodic in x (Dong & Ni, "A method for
 * representing periodic functions and enforcing exactly periodic boundary conditions with deep
 * neural networks", J. Comput. Phys. 435 (2021) 110242; as used by jaxpi).
 *
 * Architectures (tanh activations, Glorot-normal weights N(0, 2 / (fan_in + fan_out)) as in
 * Raissi's code, zero biases):
 *   mlp           DEPTH hidden layers of WIDTH units, then a linear output (Raissi, Perdikaris,
 *                 Karniadakis, J. Comput. Phys. 378 (2019) 686: DEPTH 8, WIDTH 20 for Burgers);
 *   modified-mlp  Wang, Teng, Perdikaris, "Understanding and mitigating gradient flow pathologies
 *                 in physics-informed neural networks", SIAM J. Sci. Comput. 43 (2021) A3055:
 *                 U = s(X W_u + b_u), V = s(X W_v + b_v), H_1 = s(X W_1 + b_1),
 *                 Z_k = s(H_k W_{k+1} + b_{k+1}), H_{k+1} = (1 - Z_k) U + Z_k V, k = 1..DEPTH-1,
 *                 output H_DEPTH W + b: the mlp's DEPTH hidden layers plus the two encoders U, V.
 * Hard constraints (optional): the output is u = u0(x) + t g(x) N(t, x), N the network, so that
 * u(0, x) = u0(x) exactly; g(x) = 1 for a periodic problem and, for a Dirichlet problem with
 * u = 0 at both ends, g(x) = 1 - x^2 on the normalized interval ((x - x0)(x1 - x) / ((x1 - x0)/2)^2),
 * which makes u vanish at x0 and x1 exactly when u0 does (Burgers: u0 = -sin pi x).
 *
 * Time windows (optional time marching; Wight & Zhao, "Solving Allen-Cahn and Cahn-Hilliard
 * equations using the adaptive physics informed neural networks", 2020; Wang, Sankaran,
 * Perdikaris 2022, who combine it with causal weighting): [0, T] is cut into W equal windows
 * [t_k, t_{k+1}], t_k = k T / W, and window k has its own network of the configured architecture,
 * whose time input is scaled over its window, t^ = 2 (t - t_k) / (t_{k+1} - t_k) - 1. The model
 * is the piecewise function: a point (t, x) goes to window min(W - 1, floor(t W / T)), so a
 * window boundary t_k belongs to the later window. Each window's network is initialized from the
 * seed on its own (train/pinn.h trains them in sequence, window k's initial condition being
 * window k-1's network at t_k). Windows are not combined with hard conditions (u0 is the
 * initial condition of window 0 only).
 *
 * Every layer acts on jets (core/jet.h), so one forward gives u and the derivatives a residual
 * needs; the plain forward of the model interface is the jet with no derivative. */
#ifndef OPL_PINN_H
#define OPL_PINN_H

#include "core/jet.h"
#include "core/ops.h"
#include "core/rng.h"
#include "operators/model.h"
#include "pde/pinn_problems.h"

/* ------------------------------------------------------------------ problems */

/* The problems are those of pde/pinn_problems.h (domain, T, boundary conditions, coefficients of
 * the residual form, u0, reference solutions); a PINN names one by its index in that table. */
typedef enum { OPL_PINN_BURGERS = 0, OPL_PINN_ALLEN_CAHN = 1, OPL_PINN_KDV = 2, OPL_PINN_PROBLEM_COUNT } opl_pinn_problem_id;

/* The problem of an id (NULL out of range); the id of a name or -1; "burgers|allen-cahn|kdv". */
const opl_pinn_problem *opl_pinn_problem_get(int id);
int opl_pinn_problem_id_of(const char *name);
const char *opl_pinn_problem_names(void);
/* 1 if problem p is periodic in x. */
int opl_pinn_periodic(const opl_pinn_problem *p);
/* The highest x-derivative p's residual needs (3 with dispersion, else 2). */
int opl_pinn_order(const opl_pinn_problem *p);
/* The initial condition of problem id and its first nd x-derivatives (closed forms): d[0..nd]
 * at x (nd <= 4); d[0] equals the table's u0(x). */
void opl_pinn_u0(int id, double x, double *d, int nd);

/* ------------------------------------------------------------------ the network */

typedef enum { OPL_PINN_ARCH_MLP = 0, OPL_PINN_ARCH_MODIFIED = 1, OPL_PINN_ARCH_COUNT } opl_pinn_arch;
/* "mlp", "modified-mlp"; the arch of a name or -1. */
const char *opl_pinn_arch_name(int arch);
int opl_pinn_arch_find(const char *name);

#define OPL_PINN_MAX_DEPTH 32
#define OPL_PINN_MAX_WINDOWS 64

typedef struct opl_pinn_config {
  int problem;       /* opl_pinn_problem_id */
  int arch;          /* opl_pinn_arch */
  int depth, width;  /* hidden layers 1..OPL_PINN_MAX_DEPTH (modified-mlp: >= 1), units >= 1 */
  int periodic;      /* periodic embedding in x: 1 or 0 */
  int nfreq;         /* Fourier modes of the embedding, >= 1 (when periodic) */
  int hard;          /* hard initial (and Dirichlet) conditions: 1 or 0 */
  int windows;       /* time windows W, 1..OPL_PINN_MAX_WINDOWS (W > 1 only with hard = 0) */
} opl_pinn_config;

/* Defaults for a problem: mlp, depth 4, width 64, the periodic embedding with 1 mode for a
 * periodic problem, soft conditions, one time window. */
opl_pinn_config opl_pinn_config_default(int problem);

typedef struct opl_pinn {
  opl_pinn_config cfg;
  const opl_pinn_problem *prob;
  int64_t nin;                                  /* input features */
  opl_tensor *w[OPL_PINN_MAX_DEPTH + 1], *b[OPL_PINN_MAX_DEPTH + 1]; /* hidden layers, then output */
  opl_tensor *wu, *bu, *wv, *bv;                /* modified-mlp encoders (else NULL) */
  double t0, t1;      /* the time interval its t input is scaled over (t1 <= t0: [0, T]) */
  struct opl_pinn *win; /* windows > 1: the [windows] networks (each with windows = 1; the
                         * fields above are then window 0's); else NULL */
} opl_pinn;

/* Time window k of net: the network of that window (net itself when net has one window and
 * k = 0), its interval [*t0, *t1] (either may be NULL). NULL for k out of range. */
const opl_pinn *opl_pinn_window(const opl_pinn *net, int k, double *t0, double *t1);
/* The window of time t: min(W - 1, max(0, floor(t W / T))). */
int opl_pinn_window_of(const opl_pinn *net, double t);

/* The network's u and its derivatives at points p [N, 2] (columns t, x; a caller or arena
 * tensor, not differentiated) as a jet [K, N, 1] of spec s (K = opl_jet_k(s); s.nx <= 4).
 * Differentiable in the parameters. With several time windows each point goes to its window's
 * network; that piecewise evaluation is not differentiated (OPL_ERR_STATE when c records
 * gradients and the points fall in more than one window: train one window's network,
 * opl_pinn_window). Errors are sticky in c. */
opl_tensor *opl_pinn_forward_jet(opl_ctx *c, const opl_pinn *net, const opl_tensor *p, opl_jet_spec s);

/* The PINN as an opl_model (operators/model.h): kind "pinn"; forward (N, 2) points (t, x) ->
 * (N, 1) u; sdim = 0, in_channels 2, out_channels 1. Parameters "pinn.<i>.weight" / ".bias" for
 * the hidden layers i = 0..depth-1 and the output layer i = depth, plus "pinn.u.*", "pinn.v.*"
 * (modified-mlp); with time windows, window 0's under those names and window k >= 1's under
 * "pinn.w<k>.<i>.*", "pinn.w<k>.u.*", "pinn.w<k>.v.*", window after window in the parameter list
 * (opl_pinn_window_params). Attributes "model" = "pinn", "pinn.version", "pinn.problem",
 * "pinn.arch", "pinn.depth", "pinn.width", "pinn.periodic", "pinn.nfreq", "pinn.hard",
 * "pinn.windows" (absent in files of one window written before windows existed: 1),
 * "pinn.param_count" (all windows).
 * set_io accepts only sdim 0, 2 inputs and 1 output. */
extern const opl_model_kind opl_pinn_kind;
/* The parameter tensors of one window: the first index in the model's parameter list and the
 * count (every window has the same count). */
void opl_pinn_window_params(const opl_pinn *net, int k, int *first, int *count);
extern const opl_model_ops opl_pinn_ops;

#endif

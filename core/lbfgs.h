/* opl — limited-memory BFGS in double precision on a plain callback.
 *
 * Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006: Algorithm 7.4 (the
 * two-loop recursion, initial matrix H0 = gamma I with gamma = s'y / y'y, eq. 7.20),
 * Algorithm 7.5 (L-BFGS), and Algorithms 3.5 / 3.6 (line search and zoom) for a step that
 * satisfies the strong Wolfe conditions
 *     f(x + a p) <= f(x) + c1 a g'p,   |g(x + a p)'p| <= c2 |g'p|,   c1 = 1e-4, c2 = 0.9,
 * with safeguarded cubic interpolation (N&W eq. 3.59) inside the zoom. The decrease test
 * allows fnoise |f(x)| for rounding of f (default 1e-12), and a step is also accepted when it
 * meets the approximate Wolfe conditions of Hager & Zhang (SIAM J. Optim. 16 (2005) 170):
 * 0.9 phi'(0) <= phi'(a) <= 0.8 |phi'(0)| and f <= f(x) + fnoise |f(x)|, so that near a
 * minimizer, where true decreases fall below f's rounding error, steps are still judged by the
 * (accurate) gradient. After a failed line search the history is dropped and the search
 * restarts along -gamma g, gamma = s'y / y'y of the run's last pair (N&W eq. 7.20).
 *
 * SUNDIALS-style object: create (problem size, history) / set options / run / get statistics /
 * free(&s). A solver can be run many times; each run starts with an empty history.
 */
#ifndef OPL_LBFGS_H
#define OPL_LBFGS_H

#include <stdint.h>
#include "core/opl.h"

/* The objective: return f(x) and fill g[n] with its gradient at x[n]. Return NAN to signal
 * that f cannot be evaluated at x (the line search then shortens the step). */
typedef double (*opl_lbfgs_fn)(void *user, const double *x, double *g, int n);
/* Optional monitor, called at the start point (iter 0) and after every accepted step with
 * the current iterate, value and gradient. */
typedef void (*opl_lbfgs_monitor_fn)(void *user, int iter, const double *x, double f,
                                     const double *g, int n);

typedef struct opl_lbfgs opl_lbfgs;

typedef struct opl_lbfgs_stats {
  int64_t iterations;       /* accepted steps */
  int64_t evaluations;      /* calls of f */
  int64_t resets;           /* history resets (non-descent direction or failed line search) */
  int64_t skipped_updates;  /* pairs dropped for lack of curvature (s'y <= 1e-10 |s| |y|) */
  double f;                 /* final value */
  double gnorm;             /* final gradient infinity norm */
  int status;               /* status of the last run */
} opl_lbfgs_stats;

/* A solver for n unknowns keeping m >= 1 correction pairs (3..20 is usual). Defaults:
 * max_iter 1000, gtol 1e-5, max_evals 0 (no limit), 40 evaluations per line search.
 * Returns NULL and fills err on n < 1, m < 1 or out of memory. */
opl_lbfgs *opl_lbfgs_create(int n, int m, opl_err *err);
/* Maximum number of iterations (>= 1); OPL_ERR_ARG otherwise. */
int opl_lbfgs_set_max_iter(opl_lbfgs *s, int64_t max_iter);
/* Maximum number of evaluations of f over a run (0: no limit, else >= 1). */
int opl_lbfgs_set_max_evals(opl_lbfgs *s, int64_t max_evals);
/* Stop with success when ||g||_inf <= gtol (gtol >= 0). */
int opl_lbfgs_set_gtol(opl_lbfgs *s, double gtol);
/* The relative rounding level of f, 0 <= fnoise < 1 (default 1e-12): an objective computed in
 * single precision is uncertain to about 1e-5 of its value near a minimizer. OPL_ERR_ARG
 * otherwise. */
int opl_lbfgs_set_fnoise(opl_lbfgs *s, double fnoise);
/* Monitor called at every accepted iterate (NULL: none). */
void opl_lbfgs_set_monitor(opl_lbfgs *s, opl_lbfgs_monitor_fn fn, void *user);

/* Minimize f from x[n] (overwritten by the best point found; *fx, if not NULL, gets its
 * value). Returns OPL_OK when ||g||_inf <= gtol; OPL_ERR_CONVERGENCE when the iteration or
 * evaluation budget runs out or no step satisfying the Wolfe conditions can be found (x is
 * the best point so far); OPL_ERR_NONFINITE when f or g is not finite at the start point;
 * OPL_ERR_ARG on a NULL f or x. err gets the message. */
int opl_lbfgs_run(opl_lbfgs *s, opl_lbfgs_fn f, void *user, double *x, double *fx, opl_err *err);
/* Statistics of the last run. */
void opl_lbfgs_get_stats(const opl_lbfgs *s, opl_lbfgs_stats *st);
/* Free the solver; sets *s to NULL. Accepts NULL. */
void opl_lbfgs_free(opl_lbfgs **s);

#endif

/* opl tests — the finite-difference gradient checker and the adjoint checker.
 *
 * Gradient checks are a table: one row (gc_case) per (op, input shapes, options). The checker
 * fills the inputs with seeded random values, runs the op, seeds the output gradient with
 * random weights r and runs backward, then compares every probed input gradient with the
 * central difference of sum(r * op(x)). Input gradients are pre-filled with a constant to
 * check that backward accumulates rather than overwrites.
 *
 * Adjoint checks (linear ops): <r, A x> == <A^T r, x>, where A^T r comes from backward. */
#ifndef OPL_GRADCHECK_H
#define OPL_GRADCHECK_H

#include "core/ops.h"

enum {
  GC_INIT_UNIFORM = 0,   /* U(-1, 1) */
  GC_INIT_POS,           /* U(0.5, 2) (sqrt, log, div denominators) */
  GC_INIT_AWAY0,         /* |x| in U(0.1, 1), random sign (relu, abs kinks) */
};

typedef struct gc_input {
  int rank;
  int64_t shape[OPL_MAX_RANK];
  int cplx;              /* complex tensor (shape counts complex elements) */
  int init;              /* GC_INIT_* */
  int no_grad;           /* not differentiated (e.g. a loss target) */
} gc_input;

/* Build the op under test from inputs in[0..nin). Return its output (NULL on error). */
typedef opl_tensor *(*gc_fn)(opl_ctx *c, opl_tensor **in, const void *opt);

typedef struct gc_case {
  const char *name;
  gc_fn fn;
  const void *opt;       /* passed to fn */
  int nin;
  gc_input in[OPL_MAX_INPUTS];
  double rtol;           /* 0: 1e-6 in double builds, 2e-2 in single builds */
  int max_probe;         /* elements probed per input; 0: 40 */
} gc_case;

/* Run one row as two TAP tests: the gradient check, then the release check (the op on arena
 * copies of its inputs, every copy and the output released with opl_release before backward:
 * the gradients must not change, so an op's opl_record_saves declaration covers every value its
 * backward reads). Returns 1 if both passed. */
int gc_check(const gc_case *gc, unsigned seed);
/* Run one row as an adjoint test (the op must be linear in its inputs). Returns 1 if passed. */
int gc_check_adjoint(const gc_case *gc, unsigned seed);
/* Run a table; returns the number of rows that failed. */
int gc_run_table(const gc_case *rows, int n);
int gc_run_adjoint_table(const gc_case *rows, int n);

/* Deterministic test random numbers: U(0,1) from a 64-bit state. */
double gc_uniform(uint64_t *state);

#endif

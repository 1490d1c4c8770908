/* A steady-state training step does no malloc: the process's malloc family is counted around
 * repeated steps of an MLP (linear, activations, loss, backward, Adam), after warm-up steps.
 * Each call's return address is recorded and resolved afterwards: calls made by OpenBLAS itself
 * (its threaded GEMM driver allocates a job table on every multi-threaded call, which glibc
 * serves from memory it keeps) are reported separately; calls from anywhere else fail the test.
 * Not built into sanitizer runs, whose runtimes own malloc. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "core/optim.h"
#include "operators/mlp.h"

#if defined(__SANITIZE_ADDRESS__)
int main(void) {
  tap_begin();
  skip("sanitizer build owns malloc", "steady-state step does no malloc");
  return tap_end();
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
#define MAXREC 4096
static int tracking = 0;
static long n_rec = 0;
static void *rec[MAXREC];
#define TRACK()                                                       \
  do {                                                                \
    if (tracking) {                                                   \
      if (n_rec < MAXREC) rec[n_rec] = __builtin_return_address(0);   \
      n_rec++;                                                        \
    }                                                                 \
  } while (0)
void *malloc(size_t n) { TRACK(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { TRACK(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { TRACK(); return __libc_realloc(p, n); }
int posix_memalign(void **p, size_t al, size_t n) {
  TRACK();
  *p = __libc_memalign(al, n);
  return *p ? 0 : 12;
}
void *aligned_alloc(size_t al, size_t n) { TRACK(); return __libc_memalign(al, n); }

int main(void) {
  tap_begin();
  opl_err err = {0};
  opl_params p;
  opl_params_init(&p);
  opl_rng rng;
  opl_rng_seed(&rng, 3);
  opl_mlp m;
  int64_t widths[4] = {3, 64, 64, 2};
  opl_mlp_init(&m, &p, "mlp", 3, widths, OPL_GELU, &rng, &err);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(512, 3), 0, &err), *y = opl_tensor_alloc(OPL_DIMS(512, 2), 0, &err);
  opl_rng_fill_normal(&rng, x->data, x->numel, 0, 1);
  opl_rng_fill_normal(&rng, y->data, y->numel, 0, 1);
  opl_optim_config cfg = opl_optim_defaults(OPL_OPTIM_ADAMW);
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAMW, &p, &cfg, &err);
  int64_t sys_before = 0;
  for (int s = 0; s < 12; s++) {
    if (s == 4) {
      opl_ctx_stats st;
      opl_ctx_get_stats(c, &st);
      sys_before = st.sys_allocs;
      tracking = 1;
    }
    opl_ctx_reset(c);
    opl_params_zero_grad(&p);
    opl_tensor *h = opl_mlp_forward(c, &m, x);
    opl_tensor *loss = opl_add(c, opl_mse_loss(c, h, y), opl_rel_lp_loss(c, h, y, 2, OPL_REDUCE_MEAN));
    opl_backward(c, loss);
    opl_params_clip_grad_norm(&p, 1.0);
    opl_optim_step(o, NULL);
  }
  tracking = 0;
  long blas = 0, other = 0;
  for (long i = 0; i < n_rec && i < MAXREC; i++) {
    Dl_info info;
    if (dladdr(rec[i], &info) && info.dli_fname && strstr(info.dli_fname, "openblas")) blas++;
    else {
      if (other < 5) diag("  malloc from %s (%s)", info.dli_fname ? info.dli_fname : "?", info.dli_sname ? info.dli_sname : "?");
      other++;
    }
  }
  opl_ctx_stats st;
  opl_ctx_get_stats(c, &st);
  ok(opl_ctx_status(c) == OPL_OK, "training steps ran: %s", opl_ctx_errmsg(c));
  ok(n_rec <= MAXREC, "all %ld calls recorded", n_rec);
  ok(other == 0, "8 steady-state training steps: %ld malloc calls outside OpenBLAS", other);
  diag("OpenBLAS's threaded GEMM driver made %ld allocations in those steps (%.1f per step)", blas, blas / 8.0);
  ok(st.sys_allocs == sys_before, "context made no system allocation in steady state");
  diag("arena high-water mark %.2f MiB, capacity %.2f MiB", st.arena_high / 1048576.0,
       st.arena_capacity / 1048576.0);
  opl_optim_free(&o);
  opl_params_free(&p);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_ctx_free(&c);
  return tap_end();
}
#endif

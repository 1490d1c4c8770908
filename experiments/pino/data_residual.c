/* The PDE residual of a stored data set itself (pde/residual.h): for the first k samples of a
 * 1-D opl data set, the trajectory (a, then every stored frame, at the spatial stride sub) is
 * put through the residual the physics loss of `opl train fno --pde-weight` uses, and the mean
 * square residual is printed next to the mean square of u_t (the right-hand side f(u)): what the
 * PDE loss of a perfect prediction at that resolution would be, and how it compares with the
 * size of the terms it balances.
 *
 *   usage: pino_data_residual DATA.h5 [k (default 10)] [sub (default 1)]
 *   prints: residual: k K s X frames T dt DT mean_sq_residual R mean_sq_ut U ratio sqrt(R/U)
 * Exit 0, 1 on a runtime error (message on stderr), 2 on bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "datasets/h5layout.h"
#include "pde/residual.h"

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: pino_data_residual DATA.h5 [k] [sub]\n");
    return 2;
  }
  long k = argc > 2 ? strtol(argv[2], NULL, 10) : 10, sub = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
  if (k < 1 || sub < 1) {
    fprintf(stderr, "pino_data_residual: k and sub must be >= 1\n");
    return 2;
  }
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(argv[1], NULL, &e);
  if (!ds) {
    fprintf(stderr, "pino_data_residual: %s\n", e.msg);
    return 1;
  }
  const opl_ds_info *in = opl_ds_get_info(ds);
  int64_t nx = 0, T = in->dims.t + 1;
  int rc = 1;
  opl_resid *r = NULL;
  opl_real *a = NULL, *u = NULL;
  double *w = NULL, *R = NULL, *R0 = NULL;
  if (k > in->dims.n) k = (long)in->dims.n;
  if (in->dims.sdim != 1 || !in->t) {
    fprintf(stderr, "pino_data_residual: '%s' is not a 1-D data set with frame times\n", argv[1]);
    goto done;
  }
  if (opl_ds_check_sub(ds, (int)sub, &nx, NULL, &e)) goto fail;
  opl_resid_params p;
  if (opl_resid_from_provenance(in->attrs, in->nattrs, in->t[0], argv[1], &p, &e) || !(r = opl_resid_new(&p, &e)))
    goto fail;
  a = malloc(sizeof(opl_real) * (size_t)(k * nx));
  u = malloc(sizeof(opl_real) * (size_t)(k * (T - 1) * nx));
  w = malloc(sizeof(double) * (size_t)(k * T * nx));
  R = malloc(sizeof(double) * (size_t)(k * T * nx));
  R0 = malloc(sizeof(double) * (size_t)(3 * nx) * 2);
  if (!a || !u || !w || !R || !R0) {
    fprintf(stderr, "pino_data_residual: out of memory\n");
    goto done;
  }
  if (opl_ds_read_a_range(ds, 0, k, (int)sub, a, &e) || opl_ds_read_u_range(ds, 0, k, 0, T - 1, (int)sub, u, &e))
    goto fail;
  for (long b = 0; b < k; b++)
    for (int64_t j = 0; j < T; j++)
      for (int64_t i = 0; i < nx; i++)
        w[(b * T + j) * nx + i] = j == 0 ? (double)a[b * nx + i] : (double)u[(b * (T - 1) + j - 1) * nx + i];
  if (opl_resid_apply(r, k, T, nx, 1, w, R, &e)) goto fail;
  /* u_t = f(u): the residual of a frame held still for three frames is -f(u) */
  double sr = 0, su = 0;
  for (int64_t f = 0; f < k * T; f++) {
    for (int q = 0; q < 3; q++)
      for (int64_t i = 0; i < nx; i++) R0[q * nx + i] = w[f * nx + i];
    if (opl_resid_apply(r, 1, 3, nx, 1, R0, R0 + 3 * nx, &e)) goto fail;
    for (int64_t i = 0; i < nx; i++) su += R0[3 * nx + i] * R0[3 * nx + i], sr += R[f * nx + i] * R[f * nx + i];
  }
  double n = (double)(k * T * nx);
  printf("residual: k %ld s %lld frames %lld dt %g mean_sq_residual %.6g mean_sq_ut %.6g ratio %.4g\n", k,
         (long long)nx, (long long)T, p.dt, sr / n, su / n, sqrt(sr / su));
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "pino_data_residual: %s\n", e.msg);
done:
  opl_resid_free(&r);
  free(a), free(u), free(w), free(R), free(R0);
  opl_ds_close(&ds);
  return rc;
}

/* core/dist: the MPI layer. Run alone it checks the single-process contracts (rank 0 of 1); under
 * mpirun -np P (tests/cli/test_mpi.sh) the same cases check the collectives: agreed sums, a
 * failure on one rank reaching every rank with its message, the gather to rank 0, and the
 * bucketed gradient sums started from the reverse pass. Every rank checks; a case passes when it
 * passed on every rank (the failures are summed over ranks), and rank 0 prints the TAP. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/ops.h"
#include "tests/tap.h"

/* A case passes when cond holds on every rank. */
static void check(int cond, const char *name) {
  double f = !cond;
  opl_dist_agree(OPL_OK, NULL, &f, 1);
  ok(f == 0, "%s", name);
}

int main(int argc, char **argv) {
  opl_err e = {0};
  /* a build without MPI started by mpirun as one of several processes refuses to run */
  int refused = -1;
  if (!opl_dist_built() && !getenv("OMPI_COMM_WORLD_SIZE")) {
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    refused = opl_dist_init(&argc, &argv, &e) == OPL_ERR_ARG && strstr(e.msg, "built without MPI");
    unsetenv("OMPI_COMM_WORLD_SIZE");
  }
  if (opl_dist_init(&argc, &argv, &e)) {
    printf("Bail out! %s\n", e.msg);
    return 1;
  }
  const int P = opl_dist_size(), R = opl_dist_rank();
  if (R != 0 && !freopen("/dev/null", "w", stdout)) return 1;
  tap_begin();
  diag("%d rank%s (MPI %s)", P, P > 1 ? "s" : "", opl_dist_built() ? "built in" : "not built");
  check(P >= 1 && R >= 0 && R < P, "0 <= rank < size");
  if (refused >= 0) ok(refused, "without MPI: started as 1 of 2 MPI processes is refused (%s)", e.msg);

  /* agreement: sums and a failure */
  double s[3] = {1.0, (double)(R + 1), 0.5 * R};
  int st = opl_dist_agree(OPL_OK, &e, s, 3);
  check(st == OPL_OK && s[0] == P && s[1] == 0.5 * P * (P + 1) && s[2] == 0.25 * P * (P - 1),
        "agree: OK everywhere, the sums over ranks");
  { /* a long list (the causal chunk losses of a PINN: one sum per chunk) */
    enum { NL = 1000 };
    double *l = malloc(sizeof(double) * NL);
    for (int i = 0; i < NL; i++) l[i] = i + 0.5 * R;
    st = opl_dist_agree(OPL_OK, &e, l, NL);
    int good = st == OPL_OK;
    for (int i = 0; i < NL; i++) good &= l[i] == (double)i * P + 0.25 * P * (P - 1);
    check(good, "agree: 1000 sums over ranks");
    free(l);
  }
  opl_err fe = {0};
  int mine = R == P - 1 ? opl_err_set(&fe, OPL_ERR_IO, "disk full on rank %d", R) : OPL_OK;
  st = opl_dist_agree(mine, &fe, NULL, 0);
  char want[64];
  snprintf(want, sizeof want, "disk full on rank %d", P - 1);
  check(st == OPL_ERR_IO && strstr(fe.msg, want) != NULL, "agree: the last rank's failure reaches every rank");
  if (P > 1) {
    snprintf(want, sizeof want, "rank %d: ", P - 1);
    check(strncmp(fe.msg, want, strlen(want)) == 0, "agree: the message names the failing rank");
  }
  opl_err fe2 = {0};
  mine = opl_err_set(&fe2, R == 0 ? OPL_ERR_NONFINITE : OPL_ERR_IO, "rank %d failed", R);
  st = opl_dist_agree(mine, &fe2, NULL, 0);
  check(st == OPL_ERR_NONFINITE && strstr(fe2.msg, "rank 0 failed"), "agree: of several failures the lowest rank's");

  /* broadcast and gather */
  int64_t v[2] = {R == 0 ? 42 : -1, R == 0 ? 7 : -1};
  check(opl_dist_bcast(v, sizeof v, 0, &e) == OPL_OK && v[0] == 42 && v[1] == 7, "bcast from rank 0");
  int64_t *cnt = malloc(sizeof(int64_t) * (size_t)P), tot = 0;
  for (int r = 0; r < P; r++) tot += cnt[r] = r + 1;
  double *send = malloc(sizeof(double) * (size_t)(R + 1)), *recv = malloc(sizeof(double) * (size_t)tot);
  for (int j = 0; j <= R; j++) send[j] = 100.0 * R + j;
  st = opl_dist_gather_doubles(send, cnt, recv, &e);
  int good = st == OPL_OK;
  if (R == 0)
    for (int r = 0, k = 0; r < P; r++)
      for (int j = 0; j <= r; j++, k++) good &= recv[k] == 100.0 * r + j;
  check(good, "gather: rank r's r + 1 values arrive at rank 0 in rank order");
  free(send);
  free(recv);
  free(cnt);

  /* bucketed gradient sums: loss = sum(x_r * w0 * w1 * w2 * w3) with x_r = (r + 1) base on rank r,
   * so the summed gradient of w_i is P (P + 1) / 2 base prod_{j != i} w_j; 2 KiB buckets hold one
   * parameter each (4 buckets), and the reverse pass finishes w3 first, w0 last */
  const int64_t n = 2048 / (int64_t)sizeof(opl_real);
  opl_params ps;
  opl_params_init(&ps);
  opl_tensor *w[4];
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%d", i);
    w[i] = opl_params_add(&ps, name, 1, (const int64_t[]){n}, 0, &e);
    for (int64_t k = 0; k < n; k++) w[i]->data[k] = (opl_real)(0.5 + 0.25 * i + 0.001 * (double)k);
  }
  opl_tensor *x = opl_tensor_alloc(1, (const int64_t[]){n}, 0, &e);
  for (int64_t k = 0; k < n; k++) x->data[k] = (opl_real)((R + 1) * (1.0 - 0.0003 * (double)k));
  opl_dist_grads *g = opl_dist_grads_new(&ps, 2048, &e);
  opl_ctx *c = opl_ctx_new(0);
  for (int step = 0; step < 2; step++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&ps);
    opl_tensor *y = x;
    for (int i = 0; i < 4; i++) y = opl_mul(c, y, w[i]);
    opl_tensor *loss = opl_sum(c, y);
    st = opl_dist_grads_begin(g, c, &e);
    if (!st) st = opl_backward(c, loss);
    int fst = opl_dist_grads_finish(g, c, &e);
    check(g && st == OPL_OK && fst == OPL_OK, step ? "grads: a second step" : "grads: begin, backward, finish");
  }
  double worst = 0, tri = 0.5 * P * (P + 1);
  for (int i = 0; i < 4; i++)
    for (int64_t k = 0; k < n; k++) {
      double want_g = tri * (1.0 - 0.0003 * (double)k);
      for (int j = 0; j < 4; j++)
        if (j != i) want_g *= (double)w[j]->data[k];
      double d = fabs((double)w[i]->grad[k] - want_g) / fabs(want_g);
      if (d > worst) worst = d;
    }
  diag("summed gradients: worst relative error %.3g against P (P + 1) / 2 times one rank's", worst);
  check(worst < 1e-5, "grads: every parameter's gradient is the sum over ranks");
  opl_dist_grads_stats gs = {0};
  opl_dist_grads_get_stats(g, &gs);
  diag("%d buckets, %lld bytes, %lld steps, %.0f started during backward", gs.buckets, (long long)gs.bytes,
       (long long)gs.steps, gs.started_early);
  check(gs.buckets == 4 && gs.bytes == 4 * 2048, "grads: 4 buckets of 2 KiB");
  if (P > 1)
    check(gs.steps == 2 && gs.started_early == 2.0 * 4, "grads: every bucket started from the reverse pass");
  else
    check(gs.steps == 0, "grads: a single process sums nothing");
  /* the same parameters everywhere (the summed gradients are the same bits on every rank) */
  st = opl_dist_check_same(&ps, "test: after the sums", &e);
  check(st == OPL_OK, "check_same: equal parameters pass");
  if (R == P - 1) w[2]->data[5] += (opl_real)1;
  st = opl_dist_check_same(&ps, "test: after a change on the last rank", &e);
  if (P > 1)
    check(st == OPL_ERR_STATE && strstr(e.msg, "test: after a change on the last rank the ranks hold different"),
          "check_same: one rank's changed parameter is found on every rank");
  else
    check(st == OPL_OK, "check_same: a single process always passes");
  opl_ctx_free(&c);
  opl_dist_grads_free(&g);
  opl_tensor_free(&x);
  opl_params_free(&ps);
  int rc = tap_end();
  opl_dist_finalize();
  return rc;
}

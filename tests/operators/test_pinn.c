/* PINN networks (operators/pinn.h): jet derivatives against finite differences of lower orders for
 * every architecture, hard conditions and the periodic embedding exactly satisfied, initial
 * conditions' derivatives, the model interface (attributes round trip, summary, bad input). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "operators/pinn.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static opl_model make(int problem, int arch, int periodic, int hard, uint64_t seed) {
  opl_pinn_config c = opl_pinn_config_default(problem);
  c.arch = arch, c.depth = 3, c.width = 12, c.periodic = periodic, c.hard = hard, c.nfreq = 2;
  opl_model m;
  opl_rng r;
  opl_rng_seed(&r, seed);
  opl_err e;
  int st = opl_model_create(&m, &opl_pinn_kind, &c, &r, &e);
  OPL_ASSERT(!st, "%s", e.msg);
  return m;
}

/* u [K, N, 1] of spec (4, 1) at points p[N] (t, x). */
static opl_tensor *jet_at(opl_ctx *c, const opl_model *m, int N, const double *t, const double *x) {
  opl_tensor *p = opl_new(c, OPL_DIMS(N, 2));
  for (int i = 0; i < N; i++) p->data[2 * i] = (opl_real)t[i], p->data[2 * i + 1] = (opl_real)x[i];
  opl_jet_spec s = {4, 1};
  return opl_pinn_forward_jet(c, m->self, p, s);
}

/* Component k+1 of the jet against the fourth-order central difference of component k
 * (h = 5e-3), and u_t against the same difference of u in t. */
static void check_derivatives(const char *name, const opl_model *m) {
  opl_ctx *c = opl_ctx_new(0);
  enum { N = 6 };
  const double h = 5e-3;
  double t[N], x[N], tp[N], tm[N], xp[N], xm[N], tp2[N], tm2[N], xp2[N], xm2[N];
  for (int i = 0; i < N; i++) {
    t[i] = 0.1 + 0.15 * i, x[i] = -0.9 + 0.33 * i;
    tp[i] = t[i] + h, tm[i] = t[i] - h, xp[i] = x[i] + h, xm[i] = x[i] - h;
    tp2[i] = t[i] + 2 * h, tm2[i] = t[i] - 2 * h, xp2[i] = x[i] + 2 * h, xm2[i] = x[i] - 2 * h;
  }
  opl_tensor *u = jet_at(c, m, N, t, x), *up = jet_at(c, m, N, t, xp), *um = jet_at(c, m, N, t, xm);
  opl_tensor *vp = jet_at(c, m, N, tp, x), *vm = jet_at(c, m, N, tm, x);
  opl_tensor *up2 = jet_at(c, m, N, t, xp2), *um2 = jet_at(c, m, N, t, xm2), *vp2 = jet_at(c, m, N, tp2, x),
             *vm2 = jet_at(c, m, N, tm2, x);
  ok(u && up && um && vp && vm && opl_ctx_status(c) == OPL_OK, "%s: jets computed: %s", name, opl_ctx_errmsg(c));
  if (!u || !up || !um || !vp || !vm || !up2 || !um2 || !vp2 || !vm2) {
    opl_ctx_free(&c);
    return;
  }
  double worst = 0;
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < N; i++) {
      int j = k * N + i;
      double fd = (-(double)up2->data[j] + 8 * (double)up->data[j] - 8 * (double)um->data[j] + (double)um2->data[j]) / (12 * h);
      double got = (double)u->data[(k + 1) * N + i];
      worst = fmax(worst, fabs(got - fd) / fmax(1, fabs(got)));
    }
  double worst_t = 0;
  for (int i = 0; i < N; i++) {
    double fd = (-(double)vp2->data[i] + 8 * (double)vp->data[i] - 8 * (double)vm->data[i] + (double)vm2->data[i]) / (12 * h);
    worst_t = fmax(worst_t, fabs((double)u->data[5 * N + i] - fd) / fmax(1, fabs(fd)));
  }
  ok(worst < 2e-3, "%s: d/dx of each x-derivative (orders 0..3) by fourth-order central differences: max rel. error %.2e", name, worst);
  ok(worst_t < 2e-3, "%s: u_t by central differences: max rel. error %.2e", name, worst_t);
  opl_ctx_free(&c);
}

static void test_derivatives(void) {
  const char *names[4] = {"mlp", "modified-mlp", "mlp periodic embedding", "modified-mlp hard conditions"};
  opl_model m[4] = {make(OPL_PINN_BURGERS, OPL_PINN_ARCH_MLP, 0, 0, 1), make(OPL_PINN_BURGERS, OPL_PINN_ARCH_MODIFIED, 0, 0, 2),
                    make(OPL_PINN_KDV, OPL_PINN_ARCH_MLP, 1, 0, 3), make(OPL_PINN_ALLEN_CAHN, OPL_PINN_ARCH_MODIFIED, 1, 1, 4)};
  for (int i = 0; i < 4; i++) {
    check_derivatives(names[i], &m[i]);
    opl_model_free(&m[i]);
  }
  opl_model b = make(OPL_PINN_BURGERS, OPL_PINN_ARCH_MLP, 0, 1, 5);
  check_derivatives("mlp hard conditions (Dirichlet)", &b);
  opl_model_free(&b);
}

/* Hard conditions: u(0, x) = u0(x) and (Burgers) u(t, +-1) = 0; periodic embedding: u and its
 * x-derivatives equal at x = -1 and x = 1. */
static void test_exact_conditions(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_model b = make(OPL_PINN_BURGERS, OPL_PINN_ARCH_MLP, 0, 1, 7);
  double t0[3] = {0, 0, 0}, x0[3] = {-0.7, 0.2, 0.9}, tb[3] = {0.1, 0.5, 1}, xl[3] = {-1, -1, -1}, xr[3] = {1, 1, 1};
  opl_tensor *u0 = jet_at(c, &b, 3, t0, x0), *ul = jet_at(c, &b, 3, tb, xl), *ur = jet_at(c, &b, 3, tb, xr);
  double e0 = 0, eb = 0;
  for (int i = 0; i < 3; i++) {
    double d[5];
    opl_pinn_u0(OPL_PINN_BURGERS, x0[i], d, 4);
    for (int k = 0; k < 5; k++) e0 = fmax(e0, fabs((double)u0->data[k * 3 + i] - d[k]) / fmax(1, fabs(d[k])));
    eb = fmax(eb, fmax(fabs((double)ul->data[i]), fabs((double)ur->data[i])));
  }
  ok(e0 < 10 * OPL_REAL_EPS, "hard: u(0, x) and its x-derivatives equal u0's (max rel. error %.1e)", e0);
  ok(eb < 10 * OPL_REAL_EPS, "hard: u(t, -1) = u(t, 1) = 0 (max |u| %.1e)", eb);
  opl_model_free(&b);
  opl_model k = make(OPL_PINN_KDV, OPL_PINN_ARCH_MODIFIED, 1, 0, 8);
  opl_tensor *kl = jet_at(c, &k, 3, tb, xl), *kr = jet_at(c, &k, 3, tb, xr);
  double ep = 0;
  for (int j = 0; j < 18; j++) ep = fmax(ep, fabs((double)kl->data[j] - (double)kr->data[j]) / fmax(1, fabs((double)kr->data[j])));
  ok(ep < 100 * OPL_REAL_EPS, "periodic embedding: u, u_x .. u_xxxx, u_t equal at x = -1 and x = 1 (max rel. diff. %.1e)", ep);
  opl_model_free(&k);
  opl_ctx_free(&c);
}

/* The initial conditions' derivatives against central differences of the previous order. */
static void test_u0(void) {
  double worst = 0, h = 1e-4;
  for (int id = 0; id < OPL_PINN_PROBLEM_COUNT; id++)
    for (double x = -0.95; x < 1; x += 0.3) {
      double d[5], p[5], m[5];
      opl_pinn_u0(id, x, d, 4);
      opl_pinn_u0(id, x + h, p, 4);
      opl_pinn_u0(id, x - h, m, 4);
      for (int k = 0; k < 4; k++) worst = fmax(worst, fabs((p[k] - m[k]) / (2 * h) - d[k + 1]) / fmax(1, fabs(d[k + 1])));
    }
  ok(worst < 1e-6, "u0 of burgers, allen-cahn, kdv: derivatives 1..4 against central differences (max rel. error %.1e)", worst);
  double d[1];
  opl_pinn_u0(OPL_PINN_ALLEN_CAHN, 0.5, d, 0);
  ok(fabs(d[0] - 0.25 * cos(M_PI * 0.5)) < 1e-15 && opl_pinn_problem_id_of("kdv") == OPL_PINN_KDV &&
         opl_pinn_problem_id_of("heat") == -1,
     "allen-cahn u0(0.5) = 0.25 cos(pi/2); problems found by name, unknown names not");
}

static void test_interface(void) {
  char dir[64], path[300];
  if (!test_tmpdir_make(dir, "pinn")) return;
  snprintf(path, sizeof path, "%s/pinn.h5", dir);
  opl_model m = make(OPL_PINN_KDV, OPL_PINN_ARCH_MODIFIED, 1, 1, 9), l;
  opl_err e;
  ok(opl_model_kind_find("pinn") == &opl_pinn_kind, "registry: pinn found by name");
  opl_model_row rows[64];
  int64_t total = 0;
  int nr = opl_model_summary(&m, rows, 64, &total);
  ok(nr == 6 && total == opl_model_param_count(&m), "summary: %d rows adding up to the %lld parameters", nr,
     (long long)opl_model_param_count(&m));
  int st = opl_model_save(path, &m, NULL, 0, &e);
  st = st ? st : opl_model_load(path, &l, &e);
  ok(!st, "saved and loaded: %s", st ? e.msg : "");
  if (!st) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *p = opl_new(c, OPL_DIMS(4, 2));
    for (int i = 0; i < 8; i++) p->data[i] = (opl_real)(0.1 * i - 0.3);
    opl_tensor *a = opl_model_forward(c, &m, p), *b = opl_model_forward(c, &l, p);
    ok(a && b && a->rank == 2 && a->shape[0] == 4 && a->shape[1] == 1 && !memcmp(a->data, b->data, 4 * sizeof(opl_real)),
       "forward (4, 2) -> (4, 1), the loaded model's bit for bit");
    const opl_pinn *q = l.self;
    ok(q->cfg.arch == OPL_PINN_ARCH_MODIFIED && q->cfg.hard == 1 && q->cfg.periodic == 1 && q->cfg.nfreq == 2 &&
           q->cfg.problem == OPL_PINN_KDV,
       "configuration read back from the attributes");
    opl_tensor *bad = opl_new(c, OPL_DIMS(4, 3));
    ok(!opl_model_forward(c, &m, bad) && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "(4, 3)"),
       "forward of (4, 3) refused naming the shape: %s", opl_ctx_errmsg(c));
    opl_ctx_free(&c);
    opl_model_free(&l);
  }
  opl_pinn_config cfg = opl_pinn_config_default(OPL_PINN_BURGERS);
  cfg.depth = 0;
  opl_model z;
  ok(opl_model_create(&z, &opl_pinn_kind, &cfg, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "depth 0"),
     "depth 0 refused: %s", e.msg);
  ok(opl_pinn_kind.set_io(&cfg, 1, 1, 1, &e) == OPL_ERR_UNSUPPORTED, "set_io: fields refused: %s", e.msg);
  { /* the configuration's integer attributes: missing and out of range, each named */
    opl_kv kv[OPL_MODEL_META_MAX];
    int n = m.ops->to_meta(m.self, kv);
    opl_pinn_config rc;
    ok(!opl_pinn_kind.config_from_meta(kv, n, &rc, &e) && rc.depth == 3 && rc.width == 12,
       "config_from_meta of to_meta: depth 3, width 12 (%s)", e.msg);
    opl_kv *d = (opl_kv *)opl_kv_find(kv, n, "pinn.depth");
    d->i = OPL_PINN_MAX_DEPTH + 1;
    int st = opl_pinn_kind.config_from_meta(kv, n, &rc, &e);
    char want[96];
    snprintf(want, sizeof want, "pinn: attribute 'pinn.depth' must be an integer in 1..%d", OPL_PINN_MAX_DEPTH);
    ok(st == OPL_ERR_FORMAT && !strcmp(e.msg, want), "pinn.depth %d: %s", OPL_PINN_MAX_DEPTH + 1, e.msg);
    d->key = "pinn.depth_";
    st = opl_pinn_kind.config_from_meta(kv, n, &rc, &e);
    ok(st == OPL_ERR_NOTFOUND && !strcmp(e.msg, "pinn: attribute 'pinn.depth' is missing"), "no pinn.depth: %s",
       e.msg);
  }
  opl_model_free(&m);
  test_tmpdir_remove(dir);
}

/* Time windows: the piecewise network routes each point to its window's network (whose time
 * input is scaled over the window), the derivatives of each window's network, the model file
 * round trip, and the configurations refused. */
static void test_windows(void) {
  opl_pinn_config cfg = opl_pinn_config_default(OPL_PINN_ALLEN_CAHN);
  cfg.arch = OPL_PINN_ARCH_MODIFIED, cfg.depth = 2, cfg.width = 8, cfg.nfreq = 2, cfg.windows = 3;
  opl_model m, l;
  opl_rng r;
  opl_rng_seed(&r, 5);
  opl_err e;
  int st = opl_model_create(&m, &opl_pinn_kind, &cfg, &r, &e);
  ok(!st, "3 windows of a modified MLP created: %s", st ? e.msg : "");
  if (st) return;
  opl_pinn_config one = cfg;
  one.windows = 1;
  opl_model m1;
  opl_rng_seed(&r, 5);
  OPL_ASSERT(!opl_model_create(&m1, &opl_pinn_kind, &one, &r, &e), "%s", e.msg);
  const opl_pinn *net = m.self;
  double a0, a1, b0, b1;
  const opl_pinn *w1 = opl_pinn_window(net, 1, &a0, &a1), *w2 = opl_pinn_window(net, 2, &b0, &b1);
  ok(opl_model_param_count(&m) == 3 * opl_model_param_count(&m1) && w1 && w2 && !opl_pinn_window(net, 3, NULL, NULL) &&
         fabs(a0 - 1.0 / 3) < 1e-15 && fabs(a1 - 2.0 / 3) < 1e-15 && b1 == 1 && opl_pinn_window_of(net, 0.5) == 1 &&
         opl_pinn_window_of(net, 1) == 2 && opl_pinn_window_of(net, -0.1) == 0,
     "3 windows: 3x the parameters of one, windows [1/3, 2/3] and [2/3, 1], points routed by time");
  int first, count;
  opl_pinn_window_params(net, 2, &first, &count);
  ok(count * 3 == m.params.n && m.params.t[first] == w2->wu && !strcmp(m.params.t[first]->name, "pinn.w2.u.weight") &&
         !strcmp(m.params.t[0]->name, "pinn.u.weight"),
     "window 2's parameters: %d tensors from index %d, named pinn.w2.*", count, first);
  check_derivatives("window 1 of 3, modified MLP", &(opl_model){.self = (void *)w1});
  /* the piecewise forward equals each window's own network on its points */
  opl_ctx *c = opl_ctx_new(0);
  opl_ctx_set_grad_enabled(c, 0);
  enum { N = 6 };
  const double tt[N] = {0.0, 0.2, 1.0 / 3, 0.5, 0.7, 1.0}, xx[N] = {-0.9, -0.3, 0.1, 0.4, 0.8, 0.95};
  opl_tensor *u = jet_at(c, &m, N, tt, xx);
  double worst = 0;
  for (int i = 0; i < N && u; i++) {
    opl_tensor *p = opl_new(c, OPL_DIMS(1, 2));
    p->data[0] = (opl_real)tt[i], p->data[1] = (opl_real)xx[i];
    opl_jet_spec s = {4, 1};
    opl_tensor *ui = opl_pinn_forward_jet(c, opl_pinn_window(net, opl_pinn_window_of(net, (double)p->data[0]), NULL, NULL), p, s);
    for (int k = 0; ui && k < 6; k++)
      worst = fmax(worst, fabs((double)u->data[k * N + i] - (double)ui->data[k]) / fmax(1, fabs((double)ui->data[k])));
  }
  /* equal up to the rounding of GEMMs of other sizes */
  ok(u && worst < 100 * OPL_REAL_EPS,
     "piecewise jet at 6 points over 3 windows equals each window's network's (max rel. diff. %.1e)", worst);
  opl_ctx_set_grad_enabled(c, 1);
  opl_tensor *g = jet_at(c, &m, N, tt, xx);
  ok(!g && opl_ctx_status(c) == OPL_ERR_STATE && strstr(opl_ctx_errmsg(c), "without gradients"),
     "the piecewise network across windows with gradients recorded: refused (%s)", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  char dir[64], path[300];
  if (test_tmpdir_make(dir, "pinnw")) {
    snprintf(path, sizeof path, "%s/w.h5", dir);
    st = opl_model_save(path, &m, NULL, 0, &e);
    st = st ? st : opl_model_load(path, &l, &e);
    ok(!st, "3 windows: saved and loaded: %s", st ? e.msg : "");
    if (!st) {
      c = opl_ctx_new(0);
      opl_ctx_set_grad_enabled(c, 0);
      opl_tensor *p = opl_new(c, OPL_DIMS(N, 2));
      for (int i = 0; i < N; i++) p->data[2 * i] = (opl_real)tt[i], p->data[2 * i + 1] = (opl_real)xx[i];
      opl_tensor *ya = opl_model_forward(c, &m, p), *yb = opl_model_forward(c, &l, p);
      const opl_pinn *q = l.self;
      ok(ya && yb && !memcmp(ya->data, yb->data, N * sizeof(opl_real)) && q->cfg.windows == 3,
         "the loaded model has 3 windows and its forward over all of them is the saved one's bit for bit");
      opl_ctx_free(&c);
      opl_model_free(&l);
    }
    test_tmpdir_remove(dir);
  }
  opl_model z;
  cfg.windows = 0;
  ok(opl_model_create(&z, &opl_pinn_kind, &cfg, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "0 time windows"),
     "0 windows refused: %s", e.msg);
  cfg.windows = 2, cfg.hard = 1;
  ok(opl_model_create(&z, &opl_pinn_kind, &cfg, NULL, &e) == OPL_ERR_ARG && strstr(e.msg, "hard"),
     "2 windows with hard conditions refused: %s", e.msg);
  opl_model_free(&m);
  opl_model_free(&m1);
}

int main(void) {
  tap_begin();
  test_derivatives();
  test_exact_conditions();
  test_u0();
  test_interface();
  test_windows();
  return tap_end();
}

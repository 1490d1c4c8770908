/* Optimizers (SGD, Adam, AdamW) and lr schedulers: steps against references written in
 * double from the algorithm boxes of the torch.optim documentation, complex parameters as
 * real pairs, state set and checkpoint round trip, schedulers' lr sequences, minimization
 * of a quadratic, bad configurations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/optim.h"
#include "tests/tap.h"

#define SINGLE (sizeof(opl_real) == 4)
/* Tolerances: references are computed in double; single builds round every operation. */
#define RTOL (SINGLE ? 2e-5 : 1e-12)
#define ATOL (SINGLE ? 1e-6 : 1e-14)

/* ------------------------------------------------------------ references (torch docs) */

typedef struct ref {
  int n;
  double p[32], b[32], m[32], v[32];
  int t;
} ref;

/* torch.optim.SGD algorithm box. */
static void ref_sgd(ref *r, const double *g_in, const opl_optim_config *c) {
  r->t++;
  for (int i = 0; i < r->n; i++) {
    double g = g_in[i];
    if (c->weight_decay != 0) g = g + c->weight_decay * r->p[i];
    if (c->momentum != 0) {
      if (r->t > 1) r->b[i] = c->momentum * r->b[i] + (1 - c->dampening) * g;
      else r->b[i] = g;
      if (c->nesterov) g = g + c->momentum * r->b[i];
      else g = r->b[i];
    }
    r->p[i] = r->p[i] - c->lr * g;
  }
}

/* torch.optim.Adam (decoupled = 0) and torch.optim.AdamW (decoupled = 1) algorithm boxes. */
static void ref_adam(ref *r, const double *g_in, const opl_optim_config *c, int decoupled) {
  r->t++;
  for (int i = 0; i < r->n; i++) {
    double g = g_in[i];
    if (decoupled) r->p[i] = r->p[i] - c->lr * c->weight_decay * r->p[i];
    else if (c->weight_decay != 0) g = g + c->weight_decay * r->p[i];
    r->m[i] = c->beta1 * r->m[i] + (1 - c->beta1) * g;
    r->v[i] = c->beta2 * r->v[i] + (1 - c->beta2) * g * g;
    double mhat = r->m[i] / (1 - pow(c->beta1, r->t));
    double vhat = r->v[i] / (1 - pow(c->beta2, r->t));
    r->p[i] = r->p[i] - c->lr * mhat / (sqrt(vhat) + c->eps);
  }
}

/* ------------------------------------------------------------ helpers */

/* A parameter set: "w" real (2, 3) and "z" complex (2) = 10 reals, from fixed values. */
static void make_params(opl_params *ps, opl_tensor **w, opl_tensor **z) {
  opl_err err;
  opl_params_init(ps);
  *w = opl_params_add(ps, "w", OPL_DIMS(2, 3), 0, &err);
  *z = opl_params_add(ps, "z", OPL_DIMS(2), OPL_T_COMPLEX, &err);
  for (int i = 0; i < 6; i++) (*w)->data[i] = (opl_real)(0.3 * i - 0.8);
  for (int i = 0; i < 4; i++) (*z)->data[i] = (opl_real)(0.5 - 0.35 * i);
}

/* Gradient of step k (k = 1, 2, ...): a fixed function of k and the index, with signs and
 * magnitudes that vary, so momentum and moments are exercised. g[10]. */
static void grads_of_step(int k, double *g) {
  for (int i = 0; i < 10; i++) g[i] = sin(1.3 * i + 0.7 * k) * (1 + 0.2 * i) + (i == 4 ? 0.0 : 0.05 * k);
}

static void set_grads(opl_tensor *w, opl_tensor *z, const double *g) {
  for (int i = 0; i < 6; i++) w->grad[i] = (opl_real)g[i];
  for (int i = 0; i < 4; i++) z->grad[i] = (opl_real)g[6 + i];
}

static void get_values(const opl_tensor *w, const opl_tensor *z, double *p) {
  for (int i = 0; i < 6; i++) p[i] = w->data[i];
  for (int i = 0; i < 4; i++) p[6 + i] = z->data[i];
}

/* Run nsteps of kind with cfg on the fixed problem and compare with the reference after each
 * step. */
static void check_against_ref(opl_optim_kind kind, opl_optim_config cfg, int nsteps, const char *what) {
  opl_params ps;
  opl_tensor *w, *z;
  make_params(&ps, &w, &z);
  ref r = {.n = 10};
  get_values(w, z, r.p);
  /* Values rounded to opl_real, as the optimizer sees them. */
  opl_err err;
  opl_optim *o = opl_optim_create(kind, &ps, &cfg, &err);
  if (!ok(o != NULL, "%s: create", what)) {
    diag("%s", err.msg);
    opl_params_free(&ps);
    return;
  }
  int good = 1;
  for (int k = 1; k <= nsteps; k++) {
    double g[10], got[10];
    grads_of_step(k, g);
    set_grads(w, z, g);
    for (int i = 0; i < 10; i++) g[i] = i < 6 ? (double)w->grad[i] : (double)z->grad[i - 6];
    good &= opl_optim_step(o, NULL) == OPL_OK;
    if (kind == OPL_OPTIM_SGD) ref_sgd(&r, g, &cfg);
    else ref_adam(&r, g, &cfg, kind == OPL_OPTIM_ADAMW);
    get_values(w, z, got);
    good &= arrays_close(10, got, r.p, RTOL, ATOL, "%s: step %d matches the torch formula", what, k);
  }
  ok(good && opl_optim_get_steps(o) == nsteps, "%s: %d steps counted", what, nsteps);
  opl_optim_free(&o);
  ok(o == NULL, "%s: free sets the pointer to NULL", what);
  opl_params_free(&ps);
}

static void test_against_reference(void) {
  opl_optim_config c = opl_optim_defaults(OPL_OPTIM_SGD);
  c.lr = 0.1;
  check_against_ref(OPL_OPTIM_SGD, c, 3, "sgd plain");
  c.weight_decay = 0.01;
  c.momentum = 0.9;
  check_against_ref(OPL_OPTIM_SGD, c, 4, "sgd momentum 0.9 + wd 0.01");
  c.dampening = 0.3;
  check_against_ref(OPL_OPTIM_SGD, c, 4, "sgd momentum 0.9, dampening 0.3");
  c.dampening = 0;
  c.nesterov = 1;
  check_against_ref(OPL_OPTIM_SGD, c, 4, "sgd nesterov 0.9 + wd 0.01");

  c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.lr = 0.01;
  check_against_ref(OPL_OPTIM_ADAM, c, 5, "adam defaults");
  c.beta1 = 0.5;
  c.beta2 = 0.9;
  c.eps = 1e-3;
  c.weight_decay = 0.1;
  check_against_ref(OPL_OPTIM_ADAM, c, 5, "adam betas (0.5, 0.9), eps 1e-3, L2 0.1");
  c = opl_optim_defaults(OPL_OPTIM_ADAMW);
  c.lr = 0.01;
  check_against_ref(OPL_OPTIM_ADAMW, c, 5, "adamw defaults (wd 1e-2)");
  c.weight_decay = 0.5;
  c.beta1 = 0;
  check_against_ref(OPL_OPTIM_ADAMW, c, 5, "adamw wd 0.5, beta1 0");
}

/* Hand-computed first steps. */
static void test_hand_values(void) {
  opl_params ps;
  opl_err err;
  opl_params_init(&ps);
  opl_tensor *p = opl_params_add(&ps, "p", OPL_DIMS(3), 0, &err);
  const double p0[3] = {1.0, -2.0, 0.5}, g0[3] = {0.5, -4.0, 0.0};
  for (int i = 0; i < 3; i++) p->data[i] = (opl_real)p0[i], p->grad[i] = (opl_real)g0[i];
  /* Adam step 1: m^ = g, v^ = g^2, p1 = p0 - lr g / (|g| + eps). */
  opl_optim_config c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.lr = 0.1;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &ps, &c, &err);
  opl_optim_step(o, NULL);
  is_close(p->data[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), RTOL, ATOL, "adam step 1: 1 - 0.1 * 0.5/(0.5 + 1e-8)");
  is_close(p->data[1], -2.0 + 0.1 * 4.0 / (4.0 + 1e-8), RTOL, ATOL, "adam step 1: -2 + 0.1 * 4/(4 + 1e-8)");
  is_close(p->data[2], 0.5, 0, 0, "adam step 1: zero gradient leaves p");
  opl_params *st = opl_optim_state(o);
  opl_tensor *m = opl_params_find(st, "adam.m/p"), *v = opl_params_find(st, "adam.v/p");
  ok(m && v, "state holds adam.m/p and adam.v/p");
  if (m && v) {
    is_close(m->data[1], 0.1 * -4.0, RTOL, ATOL, "m = (1 - b1) g");
    is_close(v->data[1], 0.001 * 16.0, RTOL, ATOL, "v = (1 - b2) g^2");
  }
  opl_optim_free(&o);

  /* SGD momentum 0.9, lr 0.1, two steps with the same gradient g:
   * b1 = g, p1 = p0 - 0.1 g; b2 = 0.9 g + g = 1.9 g, p2 = p1 - 0.19 g. Nesterov:
   * p1 = p0 - 0.1 (g + 0.9 g) = p0 - 0.19 g; p2 = p1 - 0.1 (g + 0.9 * 1.9 g) = p1 - 0.271 g. */
  for (int nest = 0; nest < 2; nest++) {
    for (int i = 0; i < 3; i++) p->data[i] = (opl_real)p0[i];
    c = opl_optim_defaults(OPL_OPTIM_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    c.nesterov = nest;
    o = opl_optim_create(OPL_OPTIM_SGD, &ps, &c, &err);
    opl_optim_step(o, NULL);
    opl_optim_step(o, NULL);
    double k = nest ? 0.19 + 0.271 : 0.1 + 0.19;
    is_close(p->data[1], -2.0 + k * 4.0, RTOL, ATOL, "sgd %s two steps: p = p0 - %g g",
             nest ? "nesterov" : "momentum", k);
    ok(opl_params_find(opl_optim_state(o), "sgd.b/p") != NULL, "state holds sgd.b/p");
    opl_optim_free(&o);
  }
  c = opl_optim_defaults(OPL_OPTIM_SGD);
  o = opl_optim_create(OPL_OPTIM_SGD, &ps, &c, &err);
  ok(opl_optim_state(o)->n == 1 && opl_params_find(opl_optim_state(o), "step"),
     "plain SGD keeps only the step count");
  opl_optim_free(&o);
  opl_params_free(&ps);
}

/* Adam vs AdamW: with gradients that do not depend on p, the moments are identical, so
 * e_t = p_AdamW - p_Adam(wd 0) obeys e_t = e_{t-1} - lr wd p_AdamW_{t-1} exactly. And Adam's
 * L2 weight decay is not the same as AdamW's. */
static void test_adam_vs_adamw(void) {
  opl_params pa, pw, pl;
  opl_tensor *wa, *za, *ww, *zw, *wl, *zl;
  make_params(&pa, &wa, &za);
  make_params(&pw, &ww, &zw);
  make_params(&pl, &wl, &zl);
  opl_optim_config ca = opl_optim_defaults(OPL_OPTIM_ADAM), cw = opl_optim_defaults(OPL_OPTIM_ADAMW);
  ca.lr = cw.lr = 0.05;
  cw.weight_decay = 0.2;
  opl_optim_config cl = ca;
  cl.weight_decay = 0.2;
  opl_err err;
  opl_optim *oa = opl_optim_create(OPL_OPTIM_ADAM, &pa, &ca, &err);
  opl_optim *ow = opl_optim_create(OPL_OPTIM_ADAMW, &pw, &cw, &err);
  opl_optim *ol = opl_optim_create(OPL_OPTIM_ADAM, &pl, &cl, &err);
  double e[10] = {0}, pprev[10], a[10], b[10], l[10];
  double maxerr = 0, maxdiff_l2 = 0;
  for (int k = 1; k <= 6; k++) {
    double g[10];
    grads_of_step(k, g);
    set_grads(wa, za, g);
    set_grads(ww, zw, g);
    set_grads(wl, zl, g);
    get_values(ww, zw, pprev);
    opl_optim_step(oa, NULL);
    opl_optim_step(ow, NULL);
    opl_optim_step(ol, NULL);
    get_values(wa, za, a);
    get_values(ww, zw, b);
    get_values(wl, zl, l);
    for (int i = 0; i < 10; i++) {
      e[i] -= cw.lr * cw.weight_decay * pprev[i];
      maxerr = fmax(maxerr, fabs((b[i] - a[i]) - e[i]));
      maxdiff_l2 = fmax(maxdiff_l2, fabs(l[i] - b[i]));
    }
  }
  ok(maxerr <= (SINGLE ? 2e-6 : 1e-14), "adamw - adam = accumulated -lr wd p (max err %.3g)", maxerr);
  ok(maxdiff_l2 > 1e-3, "adam with L2 0.2 differs from adamw with wd 0.2 (max diff %.3g)", maxdiff_l2);
  opl_optim_free(&oa);
  opl_optim_free(&ow);
  opl_optim_free(&ol);
  opl_params_free(&pa);
  opl_params_free(&pw);
  opl_params_free(&pl);
}

/* A complex parameter of n elements updates exactly like a real one of 2n reals holding
 * (re, im) pairs; Adam's v holds re^2 and im^2 separately, not |z|^2. */
static void test_complex_pairs(void) {
  for (int kind = 0; kind < 3; kind++) {
    opl_params pc, pr;
    opl_err err;
    opl_params_init(&pc);
    opl_params_init(&pr);
    opl_tensor *zc = opl_params_add(&pc, "z", OPL_DIMS(4), OPL_T_COMPLEX, &err);
    opl_tensor *zr = opl_params_add(&pr, "z", OPL_DIMS(8), 0, &err);
    for (int i = 0; i < 8; i++) zc->data[i] = zr->data[i] = (opl_real)(0.1 * i - 0.3);
    opl_optim_config c = opl_optim_defaults((opl_optim_kind)kind);
    c.lr = 0.02;
    c.momentum = kind == OPL_OPTIM_SGD ? 0.8 : 0;
    c.weight_decay = 0.1;
    opl_optim *oc = opl_optim_create((opl_optim_kind)kind, &pc, &c, &err);
    opl_optim *orr = opl_optim_create((opl_optim_kind)kind, &pr, &c, &err);
    for (int k = 1; k <= 4; k++) {
      for (int i = 0; i < 8; i++) zc->grad[i] = zr->grad[i] = (opl_real)cos(0.9 * i * k + k);
      opl_optim_step(oc, NULL);
      opl_optim_step(orr, NULL);
    }
    ok(memcmp(zc->data, zr->data, 8 * sizeof(opl_real)) == 0,
       "%s: complex (4) = real (8) pairs, bit for bit", opl_optim_kind_name((opl_optim_kind)kind));
    opl_optim_free(&oc);
    opl_optim_free(&orr);
    opl_params_free(&pc);
    opl_params_free(&pr);
  }
  /* v after one Adam step: (1 - b2) re^2 and (1 - b2) im^2. */
  opl_params pc;
  opl_err err;
  opl_params_init(&pc);
  opl_tensor *z = opl_params_add(&pc, "z", OPL_DIMS(1), OPL_T_COMPLEX, &err);
  z->grad[0] = 3;
  z->grad[1] = 4;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &pc, NULL, &err);
  opl_optim_step(o, NULL);
  opl_tensor *v = opl_params_find(opl_optim_state(o), "adam.v/z");
  ok(v && opl_is_complex(v) && v->numel == 1, "adam.v/z is complex with the parameter's shape");
  is_close(v->data[0], 0.001 * 9, RTOL, ATOL, "v re = (1 - b2) re(g)^2 (not |g|^2 = 25)");
  is_close(v->data[1], 0.001 * 16, RTOL, ATOL, "v im = (1 - b2) im(g)^2");
  /* Each component moves by lr (first Adam step): a real-pair update, not along g/|g|. */
  is_close(z->data[0], -1e-3 * 3 / (3 + 1e-8), RTOL, ATOL, "re moves by -lr sign(re g)");
  is_close(z->data[1], -1e-3 * 4 / (4 + 1e-8), RTOL, ATOL, "im moves by -lr sign(im g)");
  opl_optim_free(&o);
  opl_params_free(&pc);
}

/* The state set: names, shapes, no gradients; saving it (and the parameters) after step 2 and
 * restoring into a fresh optimizer gives the same step 3. */
static void test_state_roundtrip(void) {
  for (int kind = 0; kind < 3; kind++) {
    const char *kn = opl_optim_kind_name((opl_optim_kind)kind);
    opl_params ps;
    opl_tensor *w, *z;
    make_params(&ps, &w, &z);
    opl_optim_config c = opl_optim_defaults((opl_optim_kind)kind);
    c.lr = 0.03;
    c.momentum = kind == OPL_OPTIM_SGD ? 0.9 : 0;
    opl_err err;
    opl_optim *o = opl_optim_create((opl_optim_kind)kind, &ps, &c, &err);
    double g[10];
    for (int k = 1; k <= 2; k++) {
      grads_of_step(k, g);
      set_grads(w, z, g);
      opl_optim_step(o, NULL);
    }
    opl_params *st = opl_optim_state(o);
    int nexp = kind == OPL_OPTIM_SGD ? 3 : 5;
    ok(st->n == nexp, "%s: state has %d tensors (got %d)", kn, nexp, st->n);
    int nograd = 1;
    for (int i = 0; i < st->n; i++) nograd &= st->t[i]->grad == NULL;
    ok(nograd, "%s: state tensors carry no gradient", kn);
    opl_tensor *step = opl_params_find(st, "step");
    ok(step && step->numel == 1 && step->data[0] == 2, "%s: 'step' = 2 after two steps", kn);
    const char *bn = kind == OPL_OPTIM_SGD ? "sgd.b/z" : "adam.v/z";
    opl_tensor *bz = opl_params_find(st, bn);
    ok(bz && opl_is_complex(bz) && bz->numel == 2, "%s: '%s' is complex (2)", kn, bn);
    /* Save everything as plain numbers. */
    /* Save everything as (name, numbers), as a checkpoint writer would. */
    int64_t total = opl_params_count(st);
    double *saved = malloc((size_t)total * sizeof(double)), pw[10];
    char names[8][64];
    int64_t offs[8], off = 0;
    int nst = st->n;
    for (int i = 0; i < nst && i < 8; i++) {
      memcpy(names[i], st->t[i]->name, 64);
      offs[i] = off;
      for (int64_t j = 0; j < opl_nreal(st->t[i]); j++) saved[off++] = st->t[i]->data[j];
    }
    get_values(w, z, pw);
    /* Step 3 in the original. */
    grads_of_step(3, g);
    set_grads(w, z, g);
    opl_optim_step(o, NULL);
    double want[10], got[10];
    get_values(w, z, want);
    opl_optim_free(&o);
    /* Restore into a new optimizer (by name) and the parameters, then step 3 again. */
    for (int i = 0; i < 6; i++) w->data[i] = (opl_real)pw[i];
    for (int i = 0; i < 4; i++) z->data[i] = (opl_real)pw[6 + i];
    opl_optim *o2 = opl_optim_create((opl_optim_kind)kind, &ps, &c, &err);
    opl_params *st2 = opl_optim_state(o2);
    int found = st2->n == nst;
    for (int i = 0; i < nst && i < 8; i++) { /* restore by name */
      opl_tensor *t = opl_params_find(st2, names[i]);
      if (!t) {
        found = 0;
        continue;
      }
      for (int64_t j = 0; j < opl_nreal(t); j++) t->data[j] = (opl_real)saved[offs[i] + j];
    }
    ok(found, "%s: every saved state tensor is found by name in a new optimizer", kn);
    set_grads(w, z, g);
    opl_optim_step(o2, NULL);
    get_values(w, z, got);
    arrays_close(10, got, want, 0, 0, "%s: restored state gives the same step 3", kn);
    ok(opl_optim_get_steps(o2) == 3, "%s: restored step count continues at 3", kn);
    free(saved);
    opl_optim_free(&o2);
    opl_params_free(&ps);
  }
}

/* Minimize f(p) = 1/2 sum a_i (p_i - c_i)^2 over 10 reals (a complex parameter included). */
static void test_quadratic(void) {
  const double a[10] = {1, 2, 5, 0.5, 3, 1, 4, 2, 0.7, 1.5};
  const double cc[10] = {1, -2, 0.5, 3, -1, 0, 2, -0.5, 1.5, -3};
  for (int kind = 0; kind < 3; kind++) {
    opl_params ps;
    opl_tensor *w, *z;
    make_params(&ps, &w, &z);
    opl_optim_config c = opl_optim_defaults((opl_optim_kind)kind);
    int steps = 2000;
    if (kind == OPL_OPTIM_SGD) {
      c.lr = 0.05;
      c.momentum = 0.9;
      c.nesterov = 1;
    } else {
      c.lr = 0.05;
      c.weight_decay = kind == OPL_OPTIM_ADAMW ? 1e-2 : 0;
    }
    opl_err err;
    opl_optim *o = opl_optim_create((opl_optim_kind)kind, &ps, &c, &err);
    double p[10], g[10], f0 = 0, f = 0;
    get_values(w, z, p);
    for (int i = 0; i < 10; i++) f0 += 0.5 * a[i] * (p[i] - cc[i]) * (p[i] - cc[i]);
    opl_sched_cosine sch;
    opl_sched_cosine_init(&sch, o, 0, steps, 0, &err);
    for (int k = 0; k < steps; k++) {
      get_values(w, z, p);
      for (int i = 0; i < 10; i++) g[i] = a[i] * (p[i] - cc[i]);
      set_grads(w, z, g);
      opl_optim_step(o, NULL);
      if (kind != OPL_OPTIM_SGD) opl_sched_cosine_step(&sch, o); /* anneal Adam's lr to 0 */
    }
    get_values(w, z, p);
    double maxe = 0;
    for (int i = 0; i < 10; i++) {
      f += 0.5 * a[i] * (p[i] - cc[i]) * (p[i] - cc[i]);
      maxe = fmax(maxe, fabs(p[i] - cc[i]));
    }
    /* AdamW's decoupled decay (1e-2) pulls p toward 0, so it stops near, not at, c. */
    double tol_p = kind == OPL_OPTIM_ADAMW ? 2e-2 : 1e-3, tol_f = kind == OPL_OPTIM_ADAMW ? 1e-4 : 1e-6;
    ok(maxe < tol_p && f < tol_f * f0, "%s minimizes a quadratic: max |p - c| = %.3g, f/f0 = %.3g",
       opl_optim_kind_name((opl_optim_kind)kind), maxe, f / f0);
    opl_optim_free(&o);
    opl_params_free(&ps);
  }
}

/* ------------------------------------------------------------ schedulers */

static void test_schedulers(void) {
  opl_params ps;
  opl_tensor *w, *z;
  make_params(&ps, &w, &z);
  opl_err err;
  opl_optim_config c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.lr = 1e-3;
  opl_optim *o = opl_optim_create(OPL_OPTIM_ADAM, &ps, &c, &err);

  /* StepLR(step 100, gamma 0.5): the lr used in epoch e is 1e-3 0.5^floor(e / 100). */
  opl_sched_steplr s;
  ok(opl_sched_steplr_init(&s, o, 0, 100, 0.5, &err) == OPL_OK, "steplr init");
  int good = 1;
  for (int e = 0; e < 300; e++) {
    double want = e < 100 ? 1e-3 : e < 200 ? 5e-4 : 2.5e-4;
    good &= opl_optim_get_lr(o) == want;
    if (!good) {
      diag("epoch %d: lr %.17g, want %.17g", e, opl_optim_get_lr(o), want);
      break;
    }
    opl_sched_steplr_step(&s, o);
  }
  ok(good, "steplr(100, 0.5) over 300 epochs: 1e-3, 5e-4, 2.5e-4");
  ok(opl_optim_get_lr(o) == 1.25e-4 && s.last_epoch == 300, "after 300 steps lr = 1.25e-4");

  /* Cosine (T_max 50, eta_min 1e-5): endpoints, midpoint, and PyTorch's recursive form. */
  opl_optim_set_lr(o, 1e-3, NULL);
  opl_sched_cosine cs;
  ok(opl_sched_cosine_init(&cs, o, 0, 50, 1e-5, &err) == OPL_OK, "cosine init");
  is_close(opl_sched_cosine_lr(&cs), 1e-3, 0, 0, "cosine epoch 0: base lr");
  double rec = 1e-3, maxe = 0, prev = 1e-3;
  int mono = 1;
  for (int e = 1; e <= 50; e++) {
    double lr = opl_sched_cosine_step(&cs, o);
    /* torch CosineAnnealingLR.get_lr (chainable form) */
    rec = (1 + cos(M_PI * e / 50)) / (1 + cos(M_PI * (e - 1) / 50)) * (rec - 1e-5) + 1e-5;
    maxe = fmax(maxe, fabs(lr - rec));
    mono &= lr < prev;
    prev = lr;
    if (e == 25) is_close(lr, (1e-3 + 1e-5) / 2, 1e-14, 0, "cosine T_max/2: (base + eta_min)/2");
  }
  is_close(opl_optim_get_lr(o), 1e-5, 1e-12, 0, "cosine epoch T_max: eta_min");
  ok(maxe < 1e-15 && mono, "cosine closed form = torch's recursive form, decreasing (max diff %.3g)", maxe);

  /* ReduceLROnPlateau(factor 0.5, patience 2): see the comments for each epoch. */
  opl_optim_set_lr(o, 1.0, NULL);
  opl_sched_plateau pl;
  opl_sched_plateau_defaults(&pl);
  ok(pl.factor == 0.1 && pl.patience == 10 && pl.threshold == 1e-4 && pl.cooldown == 0 && pl.min_lr == 0,
     "plateau defaults are PyTorch's");
  pl.factor = 0.5;
  pl.patience = 2;
  ok(opl_sched_plateau_init(&pl, o, 0, &err) == OPL_OK, "plateau init");
  /* 10 best; 9 best; 9,9 bad 1,2; 9 bad 3 > 2 -> 0.5; 8.9995 is not better than
   * 9 (1 - 1e-4) = 8.9991 (threshold): bad 1, 2, 3 -> 0.25; 8 best; 8,8 bad 1,2;
   * 8 bad 3 -> 0.125; 7 best. */
  const double metric[] = {10, 9, 9, 9, 9, 8.9995, 8.9995, 8.9995, 8, 8, 8, 8, 7};
  const double want[] = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125};
  double got[13];
  for (int e = 0; e < 13; e++) got[e] = opl_sched_plateau_step(&pl, o, metric[e]);
  arrays_close(13, got, want, 0, 0, "plateau patience 2, threshold 1e-4 rel: lr sequence");
  ok(opl_optim_get_lr(o) == 0.125 && pl.best == 7 && pl.num_bad_epochs == 0 && pl.last_epoch == 13,
     "plateau state: lr 0.125, best 7, no bad epochs, epoch 13");

  /* Cooldown 2, patience 0, constant metric: reductions every 3rd epoch from epoch 2. */
  opl_optim_set_lr(o, 1.0, NULL);
  opl_sched_plateau_defaults(&pl);
  pl.factor = 0.5;
  pl.patience = 0;
  pl.cooldown = 2;
  opl_sched_plateau_init(&pl, o, 0, &err);
  const double want2[] = {1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
  for (int e = 0; e < 8; e++) got[e] = opl_sched_plateau_step(&pl, o, 1.0);
  arrays_close(8, got, want2, 0, 0, "plateau cooldown 2, patience 0: lr sequence");

  /* min_lr floor, and no change smaller than eps = 1e-8. */
  opl_sched_plateau_defaults(&pl);
  pl.patience = 0;
  pl.min_lr = 0.05;
  opl_sched_plateau_init(&pl, NULL, 1.0, &err);
  const double want3[] = {1, 0.1, 0.05, 0.05, 0.05};
  for (int e = 0; e < 5; e++) got[e] = opl_sched_plateau_step(&pl, NULL, 3.0);
  arrays_close(5, got, want3, 1e-15, 0, "plateau min_lr 0.05: 1, 0.1, 0.05, 0.05 (no optimizer)");

  /* NaN metric counts as bad. */
  opl_sched_plateau_defaults(&pl);
  pl.patience = 1;
  opl_sched_plateau_init(&pl, NULL, 1.0, &err);
  opl_sched_plateau_step(&pl, NULL, 1.0);
  opl_sched_plateau_step(&pl, NULL, NAN);
  ok(pl.num_bad_epochs == 1 && pl.best == 1.0, "NaN metric is a bad epoch");

  /* Bad scheduler arguments. */
  ok(opl_sched_steplr_init(&s, o, 0, 0, 0.5, &err) == OPL_ERR_ARG && strstr(err.msg, "step_size = 0"),
     "steplr step_size 0: %s", err.msg);
  ok(opl_sched_steplr_init(&s, NULL, 1, 10, -0.5, &err) == OPL_ERR_ARG && strstr(err.msg, "gamma = -0.5"),
     "steplr gamma < 0: %s", err.msg);
  ok(opl_sched_cosine_init(&cs, NULL, -1, 10, 0, &err) == OPL_ERR_ARG && strstr(err.msg, "lr = -1"),
     "cosine lr0 < 0: %s", err.msg);
  ok(opl_sched_cosine_init(&cs, NULL, 1, 0, 0, &err) == OPL_ERR_ARG && strstr(err.msg, "T_max = 0"),
     "cosine T_max 0: %s", err.msg);
  opl_sched_plateau_defaults(&pl);
  pl.factor = 1.0;
  ok(opl_sched_plateau_init(&pl, NULL, 1, &err) == OPL_ERR_ARG && strstr(err.msg, "factor = 1"),
     "plateau factor 1: %s", err.msg);
  opl_sched_plateau_defaults(&pl);
  pl.patience = -1;
  ok(opl_sched_plateau_init(&pl, NULL, 1, &err) == OPL_ERR_ARG && strstr(err.msg, "patience = -1"),
     "plateau patience -1: %s", err.msg);

  opl_optim_free(&o);
  opl_params_free(&ps);
}

/* ------------------------------------------------------------ bad input */

static void bad_cfg(opl_optim_kind kind, opl_params *ps, opl_optim_config c, const char *needle,
                    const char *what) {
  opl_err err = {0};
  opl_optim *o = opl_optim_create(kind, ps, &c, &err);
  ok(o == NULL && err.status == OPL_ERR_ARG && strstr(err.msg, needle), "%s: %s", what, err.msg);
  opl_optim_free(&o);
}

static void test_bad_input(void) {
  opl_params ps;
  opl_tensor *w, *z;
  make_params(&ps, &w, &z);
  opl_optim_config c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.lr = -0.5;
  bad_cfg(OPL_OPTIM_ADAM, &ps, c, "lr = -0.5", "adam lr < 0");
  c.lr = NAN;
  bad_cfg(OPL_OPTIM_SGD, &ps, c, "lr = nan", "sgd lr NaN");
  c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.beta1 = 1.0;
  bad_cfg(OPL_OPTIM_ADAM, &ps, c, "beta1 = 1", "adam beta1 = 1");
  c = opl_optim_defaults(OPL_OPTIM_ADAMW);
  c.beta2 = -0.1;
  bad_cfg(OPL_OPTIM_ADAMW, &ps, c, "beta2 = -0.1", "adamw beta2 < 0");
  c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.eps = 0;
  bad_cfg(OPL_OPTIM_ADAM, &ps, c, "eps = 0", "adam eps = 0");
  c.eps = -1e-8;
  bad_cfg(OPL_OPTIM_ADAM, &ps, c, "eps = -1e-08", "adam eps < 0");
  c = opl_optim_defaults(OPL_OPTIM_ADAM);
  c.weight_decay = -0.01;
  bad_cfg(OPL_OPTIM_ADAM, &ps, c, "weight_decay = -0.01", "adam wd < 0");
  c = opl_optim_defaults(OPL_OPTIM_SGD);
  c.momentum = -0.9;
  bad_cfg(OPL_OPTIM_SGD, &ps, c, "momentum = -0.9", "sgd momentum < 0");
  c.momentum = 0;
  c.nesterov = 1;
  bad_cfg(OPL_OPTIM_SGD, &ps, c, "momentum = 0", "sgd nesterov without momentum");
  c.momentum = 0.9;
  c.dampening = 0.1;
  bad_cfg(OPL_OPTIM_SGD, &ps, c, "dampening = 0.1", "sgd nesterov with dampening");
  c = opl_optim_defaults(OPL_OPTIM_SGD);
  bad_cfg((opl_optim_kind)7, &ps, c, "kind 7", "unknown kind");

  opl_err err;
  opl_params empty;
  opl_params_init(&empty);
  ok(opl_optim_create(OPL_OPTIM_SGD, &empty, NULL, &err) == NULL && err.status == OPL_ERR_ARG,
     "empty parameter set: %s", err.msg);
  ok(opl_optim_create(OPL_OPTIM_SGD, NULL, NULL, &err) == NULL && err.status == OPL_ERR_ARG,
     "NULL parameter set: %s", err.msg);
  opl_optim *on = opl_optim_create(OPL_OPTIM_ADAM, &ps, NULL, NULL);
  ok(on != NULL && opl_optim_get_config(on).eps == 1e-8, "NULL cfg gives the defaults, NULL err allowed");
  opl_optim_free(&on);
  ok(opl_optim_create(OPL_OPTIM_ADAM, &empty, NULL, NULL) == NULL, "error with NULL err");

  /* A parameter name too long for the state prefix. */
  opl_params lp;
  opl_params_init(&lp);
  char name[64];
  memset(name, 'a', 60);
  name[60] = 0;
  opl_params_add(&lp, name, OPL_DIMS(2), 0, &err);
  ok(opl_optim_create(OPL_OPTIM_ADAM, &lp, NULL, &err) == NULL && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "adam.m/aaaa"),
     "state name too long: %.80s...", err.msg);
  opl_params_free(&lp);

  /* set_lr checks; step detects a changed parameter set. */
  opl_optim *o = opl_optim_create(OPL_OPTIM_SGD, &ps, NULL, &err);
  ok(opl_optim_set_lr(o, -1, &err) == OPL_ERR_ARG && err.status == OPL_ERR_ARG && strstr(err.msg, "lr = -1") &&
         opl_optim_get_lr(o) == 1e-3,
     "set_lr(-1) is refused, lr kept: %s", err.msg);
  ok(opl_optim_set_lr(o, 0.25, NULL) == OPL_OK && opl_optim_get_lr(o) == 0.25 &&
         opl_optim_get_config(o).lr == 0.25 && opl_optim_get_kind(o) == OPL_OPTIM_SGD,
     "set_lr / get_lr / get_config");
  opl_params_add(&ps, "late", OPL_DIMS(1), 0, &err);
  ok(opl_optim_step(o, &err) == OPL_ERR_STATE && err.status == OPL_ERR_STATE &&
         strstr(err.msg, "sgd: the parameter set has 3 parameters, 2 at create"),
     "step after adding a parameter: %s", err.msg);
  ok(opl_optim_get_steps(o) == 0, "failed step does not count");
  opl_optim_free(&o);
  opl_optim_free(&o); /* second free is a no-op */
  opl_params_free(&ps);
}

int main(void) {
  tap_begin();
  test_against_reference();
  test_hand_values();
  test_adam_vs_adamw();
  test_complex_pairs();
  test_state_roundtrip();
  test_quadratic();
  test_schedulers();
  test_bad_input();
  return tap_end();
}

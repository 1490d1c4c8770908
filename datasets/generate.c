/* opl datasets — generation runs: settings (preset + overrides), one sample, the parallel,
 * resumable run. Contracts and conventions in generate.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/files.h"
#include "datasets/gen_dist.h"
#include "datasets/generate.h"
#include "pde/grf.h"
#include "pde/grid.h"
#include "pde/kdv.h"

#define GEN_MAX_PROV 48
#define GEN_POOL 4096

struct opl_gen {
  int eq;                   /* opl_gen_equation */
  char eqname[16];
  char preset[32];
  int64_t N;
  uint64_t seed;
  opl_dtype dtype;
  int plan;
  unsigned gflags;          /* OPL_GRID_* of every grid this run makes */
  int res, store, sdim;
  int64_t fsize;            /* doubles per stored frame: store^sdim */
  int64_t nreal;            /* solve points: res^sdim */
  opl_burgers_params bp;
  opl_kdv_params kp;
  opl_ns2d_params np;
  opl_solve_opts o;         /* resolved options, with_t0 = 1, grid = the shared grid (or NULL) */
  opl_grf_params grf;
  int has_grf;              /* burgers, ns: initial conditions from a GRF */
  int kdv_fixed;            /* kdv: the same domain for every sample */
  opl_grid *grid;           /* shared solve grid (NULL for kdv with a per-sample domain) */
  opl_grf *sampler;         /* on grid (has_grf, no explicit ic) */
  double *ic;               /* [nreal] explicit initial condition at the solve resolution, or NULL */
  char ic_source[256];
  int refine;               /* samples of the refinement check (burgers) */
  int refine_have;          /* refine_maxdiff is known (computed or read back) */
  double refine_maxdiff;
  double *x, *y, *t;        /* coordinates [store], [store] (2-D), [nt] */
  double *Lps, *tps;        /* kdv with a per-sample domain: each sample's L [N] and times [N, nt] */
  opl_kv prov[GEN_MAX_PROV];
  int nprov, nprov_base;    /* all / before the refinement attributes */
  char pool[GEN_POOL];      /* storage of the provenance strings */
  size_t pool_used;
};

/* ------------------------------------------------------------ small helpers */

/* Monotonic wall-clock time in seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prefix "generate: " to a message produced by a lower layer. */
static int fail_from(opl_err *err, const opl_err *low, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_from(opl_err *err, const opl_err *low, const char *fmt, ...) {
  char head[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  int st = low->status ? low->status : OPL_ERR_STATE;
  return opl_err_set(err, st, "%s%s", head, low->msg);
}

/* A copy of s in g's provenance text pool (valid while g lives). */
static const char *pool_str(opl_gen *g, const char *s) {
  size_t n = strlen(s) + 1;
  if (g->pool_used + n > GEN_POOL) return "(provenance text pool exhausted)";
  char *p = g->pool + g->pool_used;
  memcpy(p, s, n);
  g->pool_used += n;
  return p;
}

/* Append one provenance attribute (string, int64, double); keys are static strings. */
static void prov_s(opl_gen *g, const char *k, const char *v) {
  OPL_ASSERT(g->nprov < GEN_MAX_PROV);
  g->prov[g->nprov++] = (opl_kv){.key = k, .type = OPL_KV_STR, .s = pool_str(g, v)};
}
static void prov_i(opl_gen *g, const char *k, int64_t v) {
  OPL_ASSERT(g->nprov < GEN_MAX_PROV);
  g->prov[g->nprov++] = (opl_kv){.key = k, .type = OPL_KV_INT, .i = v};
}
static void prov_d(opl_gen *g, const char *k, double v) {
  OPL_ASSERT(g->nprov < GEN_MAX_PROV);
  g->prov[g->nprov++] = (opl_kv){.key = k, .type = OPL_KV_REAL, .d = v};
}

void opl_gen_config_default(opl_gen_config *c) {
  memset(c, 0, sizeof *c);
  c->dtype = OPL_DT_F32;
  c->T = c->dt = c->nu = c->L = c->a = c->b = NAN;
  c->rtol = c->atol = c->cfl = c->sigma = c->tau = c->alpha = NAN;
  c->refine = -1;
  c->plan = OPL_GEN_PLAN_ESTIMATE;
}

int opl_gen_parse_dtype(const char *name, opl_dtype *dtype, opl_err *err) {
  if (name && (!strcmp(name, "float32") || !strcmp(name, "f32") || !strcmp(name, "single"))) {
    *dtype = OPL_DT_F32;
    return OPL_OK;
  }
  if (name && (!strcmp(name, "float64") || !strcmp(name, "f64") || !strcmp(name, "double"))) {
    *dtype = OPL_DT_F64;
    return OPL_OK;
  }
  return opl_err_set(err, OPL_ERR_ARG, "generate: dtype \"%s\" (expected float32 or float64)", name ? name : "(null)");
}

int opl_gen_parse_plan(const char *name, int *plan, opl_err *err) {
  if (name && !strcmp(name, "estimate")) {
    *plan = OPL_GEN_PLAN_ESTIMATE;
    return OPL_OK;
  }
  if (name && !strcmp(name, "measure")) {
    *plan = OPL_GEN_PLAN_MEASURE;
    return OPL_OK;
  }
  return opl_err_set(err, OPL_ERR_ARG, "generate: plan \"%s\" (expected estimate or measure)", name ? name : "(null)");
}

void opl_gen_free(opl_gen **pg) {
  if (!pg || !*pg) return;
  opl_gen *g = *pg;
  opl_grf_free(&g->sampler);
  opl_grid_free(&g->grid);
  opl_pde_free(g->ic);
  free(g->x);
  free(g->y);
  free(g->t);
  free(g->Lps);
  free(g->tps);
  free(g);
  *pg = NULL;
}

/* ------------------------------------------------------------ resolving the settings */

/* A set override (not NAN) must be finite and satisfy lo < v (strict) or lo <= v. */
static int check_real(const char *name, double v, double lo, int strict, opl_err *err) {
  if (isnan(v)) return OPL_OK;
  if (!isfinite(v) || (strict ? !(v > lo) : !(v >= lo)))
    return opl_err_set(err, OPL_ERR_ARG, "generate: %s = %g (expected a finite value %s %g)", name, v,
                       strict ? ">" : ">=", lo);
  return OPL_OK;
}

/* An override that the equation has no use for. */
static int not_for(const char *name, double v, const char *eq, opl_err *err) {
  if (isnan(v)) return OPL_OK;
  return opl_err_set(err, OPL_ERR_ARG, "generate: %s = %g does not apply to %s", name, v, eq);
}

/* Build the provenance list of the resolved settings (without the refinement attributes). */
static void build_prov(opl_gen *g) {
  char buf[256];
  const opl_solve_opts *o = &g->o;
  g->nprov = 0;
  g->pool_used = 0;
  prov_s(g, "generator", "opl datasets/generate");
  prov_s(g, "equation", g->eqname);
  prov_s(g, "preset", g->preset);
  if (g->eq == OPL_GEN_BURGERS) {
    prov_s(g, "pde", "u_t + (u^2/2)_x = nu u_xx on [0, L), periodic");
    prov_d(g, "nu", g->bp.nu);
    prov_d(g, "L", g->bp.L);
  } else if (g->eq == OPL_GEN_KDV) {
    prov_s(g, "pde", "u_t + a u u_x + b u_xxx = 0 on [0, L), periodic");
    prov_d(g, "a", g->kp.a);
    prov_d(g, "b", g->kp.b);
    prov_d(g, "L", g->kp.L);
    prov_s(g, "domain", g->kdv_fixed ? "fixed"
                                     : "per-sample: L = 128 U(0.9, 1.1) and T = 100 U(0.9, 1.1) drawn per sample "
                                       "(opl_kdv_ic_mppde_seeded(seed, i)); datasets L [N] and t [N, nt] hold each "
                                       "sample's L and frame times (sample i's points are j L[i] / X), x holds the "
                                       "nominal j L / X, and attributes L and T the nominal values");
  } else {
    prov_s(g, "pde", "w_t + u.grad w = nu lap w + f, -lap psi = w, u = (psi_y, -psi_x) on [0, L)^2");
    prov_d(g, "nu", g->np.nu);
    prov_d(g, "L", g->np.L);
    prov_s(g, "forcing", g->np.forcing == OPL_NS2D_FORCE_FNO ? "fno: 0.1 (sin(2 pi (x + y) / L) + cos(2 pi (x + y) / L))"
                                                            : "none");
  }
  if (g->ic) {
    prov_s(g, "ic", "explicit");
    prov_s(g, "ic_source", g->ic_source);
  } else if (g->has_grf) {
    prov_s(g, "ic", "grf");
    prov_s(g, "grf_convention", g->grf.convention == OPL_GRF_GRF1 ? "grf1" : "fno");
    prov_d(g, "grf_sigma", g->grf.sigma);
    prov_d(g, "grf_tau", g->grf.tau);
    prov_d(g, "grf_alpha", g->grf.alpha);
    prov_i(g, "grf_kmax", g->grf.kmax);
  } else {
    prov_s(g, "ic", "mppde: sum_{j=1..10} A_j sin(2 pi l_j x / L + phi_j), A ~ U(-1/2, 1/2), phi ~ U(0, 2 pi), "
                    "l ~ U{1, 2}");
  }
  prov_s(g, "scheme", opl_solve_scheme_name(o->scheme));
  prov_d(g, "dt", o->dt);
  if (o->scheme == OPL_SCHEME_RK) {
    prov_s(g, "rk_method", opl_rk_method_name((opl_rk_method)o->rk_method));
    prov_d(g, "rtol", o->rtol);
    prov_d(g, "atol", o->atol);
    prov_i(g, "max_steps", o->max_steps);
  }
  prov_d(g, "cfl", o->cfl);
  prov_d(g, "T", o->T);
  prov_i(g, "nt", o->nt);
  prov_s(g, "times", "u frame j (0-based) is t = (j + 1) T / nt; a is t = 0");
  prov_i(g, "solve_res", g->res);
  prov_i(g, "store_res", g->store);
  prov_s(g, "store_mode", o->store_mode == OPL_STORE_STRIDE ? "stride" : "spectral");
  prov_i(g, "seed", (int64_t)g->seed);
  snprintf(buf, sizeof buf, "philox4x32-10; sample i draws from opl_rng_split(opl_rng_seed(seed), i)");
  prov_s(g, "rng", buf);
  prov_s(g, "plan", g->plan == OPL_GEN_PLAN_MEASURE ? "measure" : "estimate");
  prov_s(g, "solve_precision", "float64");
  g->nprov_base = g->nprov;
}

/* Append the refinement attributes (once known). */
static void prov_refine(opl_gen *g) {
  g->nprov = g->nprov_base;
  if (g->refine > 0 && g->refine_have) {
    prov_i(g, "refine_samples", g->refine);
    prov_d(g, "refine_maxdiff", g->refine_maxdiff);
    prov_s(g, "refine_check", "max |u - u_fine| over samples 0..refine_samples-1, all frames and stored points; "
                              "u_fine: 2x the resolution, dt / 2");
  }
}

/* Resolve the preset and the overrides of c into g (equation, parameters, solve options,
 * resolutions, refinement, explicit initial condition) and check them; see opl_gen_new. */
static int resolve(opl_gen *g, const opl_gen_config *c, opl_err *err) {
  opl_err e2 = {0};
  int rc;
  opl_solve_opts *o = &g->o;
  const char *eq = c->equation;
  if (!eq) return opl_err_set(err, OPL_ERR_ARG, "generate: no equation (expected burgers, kdv or ns)");
  if (!strcmp(eq, "burgers")) g->eq = OPL_GEN_BURGERS;
  else if (!strcmp(eq, "kdv")) g->eq = OPL_GEN_KDV;
  else if (!strcmp(eq, "ns") || !strcmp(eq, "ns2d") || !strcmp(eq, "navier-stokes")) g->eq = OPL_GEN_NS;
  else return opl_err_set(err, OPL_ERR_ARG, "generate: unknown equation \"%s\" (expected burgers, kdv or ns)", eq);
  static const char *const eqn[] = {"burgers", "kdv", "ns"}, *const defp[] = {"fno", "mppde", "fno"};
  snprintf(g->eqname, sizeof g->eqname, "%s", eqn[g->eq]);
  const char *preset = c->preset && c->preset[0] ? c->preset : defp[g->eq];
  snprintf(g->preset, sizeof g->preset, "%s", preset);
  if (c->n < 1) return opl_err_set(err, OPL_ERR_ARG, "generate: n = %lld samples (expected >= 1)", (long long)c->n);
  if (c->dtype != OPL_DT_F32 && c->dtype != OPL_DT_F64)
    return opl_err_set(err, OPL_ERR_ARG, "generate: dtype %d (expected OPL_DT_F32 or OPL_DT_F64)", (int)c->dtype);
  if (c->plan != OPL_GEN_PLAN_ESTIMATE && c->plan != OPL_GEN_PLAN_MEASURE)
    return opl_err_set(err, OPL_ERR_ARG, "generate: plan %d (expected estimate or measure)", c->plan);
  g->N = c->n;
  g->seed = c->seed;
  g->dtype = c->dtype;
  g->plan = c->plan;
  g->gflags = c->plan == OPL_GEN_PLAN_MEASURE ? OPL_GRID_MEASURE : OPL_GRID_ESTIMATE;

  /* the preset */
  int n = 0;
  if (g->eq == OPL_GEN_BURGERS) rc = opl_solve_burgers_preset(preset, &g->bp, o, &g->grf, &e2);
  else if (g->eq == OPL_GEN_KDV) rc = opl_solve_kdv_preset(preset, &g->kp, o, &e2);
  else rc = opl_solve_ns2d_preset(preset, &g->np, o, &g->grf, &e2);
  if (rc) return fail_from(err, &e2, "generate: %s: ", g->eqname);
  g->has_grf = g->eq != OPL_GEN_KDV;
  g->sdim = g->eq == OPL_GEN_NS ? 2 : 1;

  /* overrides that do not apply */
  const char *en = g->eqname;
  if (g->eq == OPL_GEN_KDV) {
    if ((rc = not_for("nu", c->nu, en, err)) || (rc = not_for("sigma", c->sigma, en, err)) ||
        (rc = not_for("tau", c->tau, en, err)) || (rc = not_for("alpha", c->alpha, en, err)))
      return rc;
    if (c->kmax) return opl_err_set(err, OPL_ERR_ARG, "generate: kmax = %d does not apply to kdv", c->kmax);
  } else {
    if ((rc = not_for("a", c->a, en, err)) || (rc = not_for("b", c->b, en, err))) return rc;
  }
  if (g->eq != OPL_GEN_NS && c->forcing)
    return opl_err_set(err, OPL_ERR_ARG, "generate: forcing \"%s\" applies to ns only", c->forcing);
  if (g->eq != OPL_GEN_BURGERS && c->refine > 0)
    return opl_err_set(err, OPL_ERR_ARG, "generate: refine = %d: the refinement check is for burgers only", c->refine);
  if ((rc = check_real("T", c->T, 0, 1, err)) || (rc = check_real("nu", c->nu, 0, 1, err)) ||
      (rc = check_real("L", c->L, 0, 1, err)) || (rc = check_real("a", c->a, -INFINITY, 1, err)) ||
      (rc = check_real("b", c->b, -INFINITY, 1, err)) || (rc = check_real("rtol", c->rtol, 0, 1, err)) ||
      (rc = check_real("atol", c->atol, 0, 0, err)) || (rc = check_real("cfl", c->cfl, 0, 0, err)) ||
      (rc = check_real("sigma", c->sigma, 0, 1, err)) || (rc = check_real("tau", c->tau, 0, 0, err)) ||
      (rc = check_real("alpha", c->alpha, 0, 1, err)) || (rc = check_real("dt", c->dt, 0, 0, err)))
    return rc;

  /* scheme */
  if (c->scheme) {
    int s = 0, m = o->rk_method;
    if (opl_solve_scheme_parse(c->scheme, &s, &m, &e2)) return fail_from(err, &e2, "generate: ");
    if (s == OPL_SCHEME_RK && o->scheme != OPL_SCHEME_RK && isnan(c->dt)) o->dt = 0; /* adaptive by default */
    o->scheme = s;
    o->rk_method = m;
  }
  if (g->eq == OPL_GEN_KDV && (o->scheme == OPL_SCHEME_CN_HEUN || o->scheme == OPL_SCHEME_CN_EULER))
    return opl_err_set(err, OPL_ERR_ARG, "generate: scheme %s needs a real linear symbol; kdv's is i b k^3 (expected "
                       "etdrk4 or rk)", opl_solve_scheme_name(o->scheme));
  if (g->eq != OPL_GEN_NS && o->scheme == OPL_SCHEME_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "generate: scheme fno is the Navier-Stokes scheme of ns_2d.py (%s: expected "
                       "etdrk4, rk, dp5, tsit5, bs3%s)", g->eqname, g->eq == OPL_GEN_BURGERS ? ", cn-heun, cn-euler" : "");
  if (!isnan(c->dt)) o->dt = c->dt;
  if (o->scheme != OPL_SCHEME_RK && !(o->dt > 0))
    return opl_err_set(err, OPL_ERR_ARG, "generate: dt = %g (expected > 0 for the %s scheme)", o->dt,
                       opl_solve_scheme_name(o->scheme));
  if (!isnan(c->rtol)) o->rtol = c->rtol;
  if (!isnan(c->atol)) o->atol = c->atol;
  if (!isnan(c->cfl)) o->cfl = c->cfl;
  if (!isnan(c->T)) o->T = c->T;
  if (c->nt < 0) return opl_err_set(err, OPL_ERR_ARG, "generate: nt = %d snapshots (expected >= 1)", c->nt);
  if (c->nt > 0) o->nt = c->nt;
  o->with_t0 = 1;
  o->times = NULL;

  /* physics */
  if (g->eq == OPL_GEN_BURGERS) {
    if (!isnan(c->nu)) g->bp.nu = c->nu;
    if (!isnan(c->L)) g->bp.L = c->L;
    n = g->bp.n;
  } else if (g->eq == OPL_GEN_KDV) {
    if (!isnan(c->a)) g->kp.a = c->a;
    if (!isnan(c->b)) g->kp.b = c->b;
    g->kdv_fixed = !isnan(c->L) || !isnan(c->T) || c->ic;
    if (!isnan(c->L)) g->kp.L = c->L;
    n = g->kp.n;
  } else {
    if (!isnan(c->nu)) g->np.nu = c->nu;
    if (!isnan(c->L)) g->np.L = c->L;
    if (c->forcing) {
      if (!strcmp(c->forcing, "fno")) g->np.forcing = OPL_NS2D_FORCE_FNO;
      else if (!strcmp(c->forcing, "none")) g->np.forcing = OPL_NS2D_FORCE_NONE;
      else return opl_err_set(err, OPL_ERR_ARG, "generate: forcing \"%s\" (expected fno or none)", c->forcing);
    }
    n = g->np.n;
  }
  if (g->has_grf) {
    if (!isnan(c->sigma)) g->grf.sigma = c->sigma;
    if (!isnan(c->tau)) g->grf.tau = c->tau;
    if (!isnan(c->alpha)) g->grf.alpha = c->alpha;
    if (c->kmax) g->grf.kmax = c->kmax < 0 ? 0 : c->kmax;
  }

  /* resolutions */
  int preset_store = o->store_n ? o->store_n : n;
  if (c->res) {
    if (c->res < 4 || c->res % 2)
      return opl_err_set(err, OPL_ERR_ARG, "generate: solve resolution res = %d (expected even and >= 4)", c->res);
    n = c->res;
    if (!c->store_res && preset_store > n) preset_store = n;
  }
  if (c->store_mode) {
    if (!strcmp(c->store_mode, "stride")) o->store_mode = OPL_STORE_STRIDE;
    else if (!strcmp(c->store_mode, "spectral")) o->store_mode = OPL_STORE_SPECTRAL;
    else return opl_err_set(err, OPL_ERR_ARG, "generate: store mode \"%s\" (expected stride or spectral)", c->store_mode);
  }
  int store = c->store_res ? c->store_res : preset_store;
  if (o->store_mode == OPL_STORE_STRIDE && (store < 1 || n % store != 0))
    return opl_err_set(err, OPL_ERR_SHAPE, "generate: store resolution %d does not divide the solve resolution %d "
                       "(expected a divisor of %d, or store mode spectral)", store, n, n);
  if (o->store_mode == OPL_STORE_SPECTRAL && (store < 4 || store % 2))
    return opl_err_set(err, OPL_ERR_SHAPE, "generate: store resolution %d (expected even and >= 4 for spectral "
                       "storage; solve resolution %d)", store, n);
  g->res = n;
  g->store = store;
  o->store_n = store;
  g->bp.n = g->kp.n = g->np.n = n;
  if (g->eq == OPL_GEN_BURGERS) rc = opl_burgers_check(&g->bp, &e2);
  else if (g->eq == OPL_GEN_KDV) rc = opl_kdv_check(&g->kp, &e2);
  else rc = opl_ns2d_check(&g->np, &e2);
  if (rc) return fail_from(err, &e2, "generate: ");
  g->fsize = g->sdim == 1 ? store : (int64_t)store * store;
  g->nreal = g->sdim == 1 ? n : (int64_t)n * n;

  /* refinement check */
  g->refine = c->refine < 0 ? (g->eq == OPL_GEN_BURGERS && !strcmp(preset, "chebfun") ? 3 : 0) : c->refine;
  if (g->refine > g->N) g->refine = (int)g->N;
  if (c->ic && g->refine > 0) g->refine = 1;

  /* explicit initial condition */
  if (c->ic) {
    if (c->n != 1)
      return opl_err_set(err, OPL_ERR_ARG, "generate: an explicit initial condition needs n = 1 sample (got n = %lld)",
                         (long long)c->n);
    if (c->ic_n < 4 || c->ic_n % 2)
      return opl_err_set(err, OPL_ERR_SHAPE, "generate: initial condition of %d points per axis (expected even and >= "
                         "4)", c->ic_n);
    snprintf(g->ic_source, sizeof g->ic_source, "%s", c->ic_source ? c->ic_source : "explicit");
  }
  return OPL_OK;
}

opl_gen *opl_gen_new(const opl_gen_config *cfg, opl_err *err) {
  if (!cfg) {
    opl_err_set(err, OPL_ERR_ARG, "generate: NULL config");
    return NULL;
  }
  opl_gen *g = calloc(1, sizeof *g);
  if (!g) {
    opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
    return NULL;
  }
  opl_err e2 = {0};
  if (resolve(g, cfg, err)) goto fail;
  const double L = g->eq == OPL_GEN_BURGERS ? g->bp.L : g->eq == OPL_GEN_KDV ? g->kp.L : g->np.L;
  /* the shared solve grid (planned here, once, before any parallel loop) */
  if (g->eq != OPL_GEN_KDV || g->kdv_fixed) {
    g->grid = g->sdim == 1 ? opl_grid_new_1d(g->res, L, g->gflags, &e2)
                           : opl_grid_new_2d(g->res, g->res, L, L, g->gflags, &e2);
    if (!g->grid) {
      fail_from(err, &e2, "generate: solve grid: ");
      goto fail;
    }
  }
  g->o.grid = g->grid;
  g->o.grid_flags = g->gflags;
  if (cfg->ic) {
    /* resample the explicit initial condition onto the solve grid */
    g->ic = opl_pde_alloc(g->nreal);
    if (!g->ic) {
      opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
      goto fail;
    }
    if (cfg->ic_n == g->res) {
      memcpy(g->ic, cfg->ic, sizeof(double) * (size_t)g->nreal);
    } else {
      opl_grid *src = g->sdim == 1 ? opl_grid_new_1d(cfg->ic_n, L, OPL_GRID_ESTIMATE, &e2)
                                   : opl_grid_new_2d(cfg->ic_n, cfg->ic_n, L, L, OPL_GRID_ESTIMATE, &e2);
      double *w = src ? opl_pde_alloc(opl_grid_resample_work(src, g->grid)) : NULL;
      int rc = !src ? e2.status : !w ? opl_err_set(&e2, OPL_ERR_NOMEM, "out of memory")
                                     : opl_grid_resample(src, cfg->ic, g->grid, g->ic, w, &e2);
      opl_pde_free(w);
      opl_grid_free(&src);
      if (rc) {
        fail_from(err, &e2, "generate: initial condition (%d points per axis to %d): ", cfg->ic_n, g->res);
        goto fail;
      }
    }
    for (int64_t i = 0; i < g->nreal; i++)
      if (!isfinite(g->ic[i])) {
        opl_err_set(err, OPL_ERR_NONFINITE, "generate: initial condition value %lld is %g (expected finite)",
                    (long long)i, g->ic[i]);
        goto fail;
      }
  } else if (g->has_grf) {
    g->sampler = opl_grf_new(g->grid, &g->grf, &e2);
    if (!g->sampler) {
      fail_from(err, &e2, "generate: initial-condition field: ");
      goto fail;
    }
  }
  /* coordinates */
  g->x = malloc(sizeof(double) * (size_t)g->store);
  g->y = g->sdim == 2 ? malloc(sizeof(double) * (size_t)g->store) : NULL;
  g->t = malloc(sizeof(double) * (size_t)g->o.nt);
  if (!g->x || (g->sdim == 2 && !g->y) || !g->t) {
    opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
    goto fail;
  }
  for (int i = 0; i < g->store; i++) {
    g->x[i] = (double)i * L / (double)g->store;
    if (g->y) g->y[i] = g->x[i];
  }
  for (int j = 0; j < g->o.nt; j++) g->t[j] = g->o.T * (double)(j + 1) / (double)g->o.nt;
  g->t[g->o.nt - 1] = g->o.T;
  if (g->eq == OPL_GEN_KDV && !g->kdv_fixed) {
    /* Each sample's domain length and frame times, as its solve computes them (pde/solve.c: the
     * times j T / nt with the last exactly T). */
    const int64_t nt = g->o.nt;
    g->Lps = malloc(sizeof(double) * (size_t)g->N);
    g->tps = malloc(sizeof(double) * (size_t)(g->N * nt));
    if (!g->Lps || !g->tps) {
      opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory (per-sample times of %lld samples)", (long long)g->N);
      goto fail;
    }
    for (int64_t i = 0; i < g->N; i++) {
      opl_kdv_ic ic;
      opl_kdv_ic_mppde_seeded(g->seed, (uint64_t)i, &ic);
      g->Lps[i] = ic.L;
      for (int64_t j = 0; j < nt; j++) g->tps[i * nt + j] = ic.T * (double)(j + 1) / (double)nt;
      g->tps[i * nt + nt - 1] = ic.T;
    }
  }
  build_prov(g);
  return g;
fail:
  opl_gen_free(&g);
  return NULL;
}

/* ------------------------------------------------------------ accessors */

int opl_gen_equation_of(const opl_gen *g) { return g->eq; }
const char *opl_gen_equation_name(const opl_gen *g) { return g->eqname; }
const char *opl_gen_preset_name(const opl_gen *g) { return g->preset; }
void opl_gen_dims(const opl_gen *g, opl_ds_dims *d) {
  *d = (opl_ds_dims){.n = g->N, .t = g->o.nt, .sdim = g->sdim, .x = g->store, .y = g->sdim == 2 ? g->store : 1};
}
const opl_solve_opts *opl_gen_solve_opts(const opl_gen *g) { return &g->o; }
const opl_kv *opl_gen_provenance(const opl_gen *g, int *n) {
  if (n) *n = g->nprov;
  return g->prov;
}
const double *opl_gen_x(const opl_gen *g) { return g->x; }
const double *opl_gen_t(const opl_gen *g) { return g->t; }
int opl_gen_per_sample(const opl_gen *g, opl_ds_per_sample *ps) {
  if (ps) *ps = (opl_ds_per_sample){.L = g->Lps, .t = g->tps};
  return g->Lps != NULL;
}
int opl_gen_refine_samples(const opl_gen *g) { return g->refine; }
int64_t opl_gen_a_size(const opl_gen *g) { return g->fsize; }
int64_t opl_gen_u_size(const opl_gen *g) { return g->fsize * g->o.nt; }

/* ------------------------------------------------------------ one sample */

/* Per-thread workspace of sample solves. */
typedef struct gen_ws {
  double *u0;     /* [nreal] initial condition at the solve resolution */
  double *work;   /* [opl_grf_work_size] GRF scratch */
  double *out;    /* [(nt + 1) fsize] the stored frames: a, then u */
} gen_ws;

/* Free a workspace (accepts a partly allocated one). */
static void ws_free(gen_ws *w) {
  opl_pde_free(w->u0);
  opl_pde_free(w->work);
  opl_pde_free(w->out);
  memset(w, 0, sizeof *w);
}

/* Allocate the workspace of one thread for g's samples; OPL_ERR_NOMEM (w freed) on failure. */
static int ws_alloc(const opl_gen *g, gen_ws *w) {
  memset(w, 0, sizeof *w);
  w->u0 = opl_pde_alloc(g->nreal);
  w->work = g->sampler ? opl_pde_alloc(opl_grf_work_size(g->sampler)) : NULL;
  w->out = opl_pde_alloc((g->o.nt + 1) * g->fsize);
  if (!w->u0 || (g->sampler && !w->work) || !w->out) {
    ws_free(w);
    return OPL_ERR_NOMEM;
  }
  return OPL_OK;
}

/* The initial condition of sample idx at the solve resolution into w->u0; for KdV also the
 * sample's parameters and options into *kp, *o. */
static void sample_ic(const opl_gen *g, int64_t idx, gen_ws *w, opl_kdv_params *kp, opl_solve_opts *o) {
  *o = g->o;
  if (g->ic) {
    memcpy(w->u0, g->ic, sizeof(double) * (size_t)g->nreal);
    *kp = g->kp;
  } else if (g->eq == OPL_GEN_KDV) {
    opl_kdv_ic ic;
    opl_kdv_ic_mppde_seeded(g->seed, (uint64_t)idx, &ic);
    ic.n = g->res;
    *kp = g->kp;
    if (g->kdv_fixed) {
      ic.L = g->kp.L;
      ic.T = g->o.T;
    } else {
      opl_solve_kdv_apply_ic(&ic, kp, o);
      o->grid = NULL; /* the domain differs per sample: the solve makes its own grid */
    }
    opl_kdv_ic_eval(&ic, w->u0);
  } else {
    opl_grf_sample_seeded(g->sampler, g->seed, (uint64_t)idx, w->u0, w->work);
  }
}

/* Solve sample idx into w->out (frame 0 = a, frames 1..nt = u). */
static int sample_solve(const opl_gen *g, int64_t idx, gen_ws *w, opl_solve_stats *st, opl_err *err) {
  opl_kdv_params kp;
  opl_solve_opts o;
  opl_err e2 = {0};
  sample_ic(g, idx, w, &kp, &o);
  int rc;
  if (g->eq == OPL_GEN_BURGERS) rc = opl_solve_burgers(&g->bp, w->u0, &o, w->out, st, &e2);
  else if (g->eq == OPL_GEN_KDV) rc = opl_solve_kdv(&kp, w->u0, &o, w->out, st, &e2);
  else rc = opl_solve_ns2d(&g->np, w->u0, &o, w->out, st, &e2);
  if (rc) return fail_from(err, &e2, "generate: sample %lld: ", (long long)idx);
  return OPL_OK;
}

int opl_gen_sample(const opl_gen *g, int64_t index, double *a, double *u, opl_solve_stats *stats, opl_err *err) {
  if (!g || !a || !u) return opl_err_set(err, OPL_ERR_ARG, "generate: NULL argument");
  if (index < 0 || index >= g->N)
    return opl_err_set(err, OPL_ERR_ARG, "generate: sample index %lld (expected 0 <= index < N = %lld)",
                       (long long)index, (long long)g->N);
  gen_ws w;
  if (ws_alloc(g, &w)) return opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
  opl_solve_stats stl;
  int rc = sample_solve(g, index, &w, stats ? stats : &stl, err);
  if (!rc) {
    memcpy(a, w.out, sizeof(double) * (size_t)g->fsize);
    memcpy(u, w.out + g->fsize, sizeof(double) * (size_t)(g->fsize * g->o.nt));
  }
  ws_free(&w);
  return rc;
}

/* ------------------------------------------------------------ the run */

/* Shared state of the parallel loop (fields written under `omp critical(opl_gen_run)`). */
typedef struct run_state {
  opl_gen *g;
  opl_ds_writer *w;
  const opl_gen_run_opts *ro;
  opl_gen_result *res;
  opl_gen_progress pg;
  double t0;
  int stop;          /* read/written with omp atomic */
  int rc;            /* first error */
  opl_err err;
} run_state;

/* Record a sample written; call the progress callback. */
static void run_written(run_state *s, int64_t idx, const opl_solve_stats *st) {
#pragma omp critical(opl_gen_run)
  {
    s->res->solved++;
    s->res->steps += st->steps;
    s->res->nfev += st->nfev;
    if (st->cfl_max > s->res->cfl_max) s->res->cfl_max = st->cfl_max;
    s->pg.done++;
    s->pg.solved++;
    s->pg.index = idx;
    s->pg.elapsed = now_s() - s->t0;
    s->pg.rate = s->pg.elapsed > 0 ? (double)s->pg.solved / s->pg.elapsed : 0;
    s->pg.eta = s->pg.rate > 0 ? (double)(s->pg.todo - s->pg.solved) / s->pg.rate : NAN;
    if (s->ro->progress && s->ro->progress(s->ro->user, &s->pg)) {
      s->res->stopped = 1;
#pragma omp atomic write
      s->stop = 1;
    }
  }
}

/* Record a failure of sample idx (the first one wins) and stop the run. */
static void run_failed(run_state *s, int64_t idx, int rc, const opl_err *e, const opl_solve_stats *st) {
#pragma omp critical(opl_gen_run)
  {
    if (!s->rc) {
      s->rc = rc;
      s->err = *e;
      s->res->failed_index = idx;
      s->res->failed_t = st ? st->t_reached : NAN;
    }
  }
#pragma omp atomic write
  s->stop = 1;
}

/* The refinement check of samples 0..k-1 (k = g->refine), in parallel; their frames are kept in
 * keep[k] (each (nt + 1) fsize doubles) for the data set. */
static int run_refine(opl_gen *g, int threads, double **keep, opl_gen_result *res, opl_err *err) {
  const int k = g->refine;
  double md = 0;
  int rc = OPL_OK;
  opl_err e1 = {0};
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads < k ? threads : k) reduction(max : md)
  for (int i = 0; i < k; i++) {
    int bad;
#pragma omp atomic read
    bad = rc;
    if (bad) continue;
    gen_ws w;
    opl_err e2 = {0};
    opl_solve_stats st = {0};
    int r = ws_alloc(g, &w) ? opl_err_set(&e2, OPL_ERR_NOMEM, "generate: out of memory") : OPL_OK;
    if (!r) r = sample_solve(g, i, &w, &st, &e2);
    double d = 0;
    if (!r) {
      opl_err e3 = {0};
      opl_kdv_params kp;
      opl_solve_opts o;
      sample_ic(g, i, &w, &kp, &o);
      r = opl_solve_burgers_refinement(&g->bp, w.u0, &o, w.out, &d, NULL, &e3);
      if (r) fail_from(&e2, &e3, "generate: refinement check of sample %d: ", i);
    }
    if (r) {
#pragma omp critical(opl_gen_run)
      {
        if (!rc) {
          e1 = e2;
          res->failed_index = i;
          res->failed_t = st.t_reached;
          rc = r;
        }
      }
    } else {
      md = d > md ? d : md;
      keep[i] = w.out;
      w.out = NULL;
#pragma omp critical(opl_gen_run)
      {
        res->steps += st.steps;
        res->nfev += st.nfev;
        if (st.cfl_max > res->cfl_max) res->cfl_max = st.cfl_max;
      }
    }
    ws_free(&w);
  }
  if (rc) {
    if (err) *err = e1;
    return rc;
  }
  g->refine_maxdiff = md;
  g->refine_have = 1;
  return OPL_OK;
}

/* Resuming a Burgers run with a refinement check: take the check's attributes from the partial
 * file instead of recomputing them (they then match, and the resume comparison checks the rest). */
static void refine_from_partial(opl_gen *g, const char *partial) {
  opl_kv *kv = NULL;
  int n = 0;
  if (opl_h5_read_attrs(partial, "/", &kv, &n, NULL)) return;
  const opl_kv *ks = opl_kv_find(kv, n, "refine_samples"), *kd = opl_kv_find(kv, n, "refine_maxdiff");
  if (ks && kd && ks->type == OPL_KV_INT && kd->type == OPL_KV_REAL && ks->i == g->refine) {
    g->refine_maxdiff = kd->d;
    g->refine_have = 1;
  }
  opl_kv_free(&kv, n);
}

/* The writer allocates the whole partial file when it creates it (its datasets are allocated
 * early, so that samples can be written in any order). Refuse before that when the samples alone
 * (a [N, X(, Y)] and u [N, nt, X(, Y)] on disk, the HDF5 metadata not counted) exceed the space
 * left on the file system that will hold it: a data set too large for the disk fails at once with
 * the sizes, instead of filling the disk. */
static int check_space(const char *partial, const opl_ds_dims *d, opl_dtype disk, opl_err *err) {
  const double elt = disk == OPL_DT_F64 ? 8.0 : 4.0;
  const double per_sample = elt * (double)d->x * (double)d->y * (1.0 + (double)d->t) + 1.0; /* + its 'done' flag */
  const double need = per_sample * (double)d->n;
  uint64_t avail = 0;
  opl_err e = {0};
  if (opl_fs_free_bytes(partial, &avail, &e)) return fail_from(err, &e, "generate: ");
  if (need > (double)avail)
    return opl_err_set(err, OPL_ERR_IO,
                       "generate: '%s' needs at least %.4g GB (%lld samples of %.4g MB: a and %lld frames of u at "
                       "%lld%s points, %s) but its file system has %.4g GB free; generate fewer samples (--n), at a "
                       "lower --store-res or --nt, or write to another file system",
                       partial, need / 1e9, (long long)d->n, per_sample / 1e6, (long long)d->t, (long long)d->x,
                       d->sdim == 2 ? "^2" : "", disk == OPL_DT_F64 ? "float64" : "float32", (double)avail / 1e9);
  return OPL_OK;
}

/* ------------------------------------------------------------ runs on several ranks
 *
 * Under mpirun (core/dist.h) rank 0 runs as a single process does up to the todo list, the
 * samples are solved in rounds on every rank and written by rank 0 (datasets/gen_dist.h); these
 * are the rounds' callbacks. */

static int dist_ws_new(const void *gen, void **ws, opl_err *err) {
  gen_ws *w = malloc(sizeof *w);
  if (!w || ws_alloc(gen, w)) {
    free(w);
    *ws = NULL;
    return opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory (workspaces)");
  }
  *ws = w;
  return OPL_OK;
}

static void dist_ws_free(void *ws) {
  if (!ws) return;
  ws_free(ws);
  free(ws);
}

static int dist_solve(const void *gen, void *ws, int64_t idx, double *out, opl_solve_stats *st, opl_err *err) {
  const opl_gen *g = gen;
  gen_ws *w = ws;
  int r = sample_solve(g, idx, w, st, err);
  if (!r) memcpy(out, w->out, sizeof(double) * (size_t)((g->o.nt + 1) * g->fsize));
  return r;
}

static int dist_written(void *user, int64_t idx, const opl_solve_stats *st) {
  run_state *s = user;
  run_written(s, idx, st);
  return s->stop;
}

static opl_gen_dist_job dist_job(const opl_gen *g, int threads, run_state *s) {
  return (opl_gen_dist_job){.gen = g, .a_size = g->fsize, .size = (g->o.nt + 1) * g->fsize, .threads = threads,
                            .ws_new = dist_ws_new, .ws_free = dist_ws_free, .solve = dist_solve,
                            .written = s ? dist_written : NULL, .user = s};
}

int opl_gen_run(opl_gen *g, const char *path, const opl_gen_run_opts *ro_in, opl_gen_result *res_out,
                opl_err *err) {
  const double t_start = now_s();
  opl_gen_run_opts ro = {0};
  if (ro_in) ro = *ro_in;
  opl_gen_result rl, *res = res_out ? res_out : &rl;
  memset(res, 0, sizeof *res);
  res->total = g ? g->N : 0;
  res->failed_index = -1;
  res->failed_t = NAN;
  if (!g || !path || !path[0]) return opl_err_set(err, OPL_ERR_ARG, "generate: NULL run or empty output path");
  int threads = ro.threads > 0 ? ro.threads : opl_get_num_threads();
  if (threads < 1) threads = 1;
  const int dist = opl_dist_size() > 1;
  int told = 0; /* rank 0 of several: the other ranks know the todo list (or the failure) */
  if (dist && opl_dist_rank() != 0) {
    opl_gen_dist_job job = dist_job(g, threads, NULL);
    int rc = opl_gen_dist_follow(&job, res, err);
    res->wall = now_s() - t_start;
    return rc;
  }
  size_t plen = strlen(path) + 16;
  char *partial = malloc(plen);
  int64_t *idx = NULL;
  double **keep = NULL;
  opl_ds_writer *w = NULL;
  int rc = OPL_OK;
  if (!partial) return opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
  snprintf(partial, plen, "%s.partial", path);
  if (ro.restart && unlink(partial) != 0 && errno != ENOENT) {
    rc = opl_err_set(err, OPL_ERR_IO, "generate: cannot remove '%s' (%s)", partial, strerror(errno));
    goto done;
  }
  struct stat sb;
  const int have_partial = stat(partial, &sb) == 0;

  /* the refinement check (before the file: it is part of the provenance) */
  g->refine_have = 0;
  if (g->refine > 0) {
    if (have_partial) refine_from_partial(g, partial);
    if (!g->refine_have) {
      keep = calloc((size_t)g->refine, sizeof *keep);
      if (!keep) {
        rc = opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
        goto done;
      }
      if ((rc = run_refine(g, threads, keep, res, err))) goto done;
    }
    res->refine_samples = g->refine;
    res->refine_maxdiff = g->refine_maxdiff;
  }
  prov_refine(g);

  /* open the partial file */
  opl_ds_dims d;
  opl_gen_dims(g, &d);
  opl_ds_per_sample ps;
  opl_gen_per_sample(g, &ps);
  opl_err e2 = {0};
  if (have_partial) {
    w = opl_ds_writer_resume_ps(path, &d, g->dtype, g->x, g->y, g->t, g->Lps ? &ps : NULL, g->prov, g->nprov, &e2);
    if (!w) {
      rc = fail_from(err, &e2, "generate: cannot resume '%s' (remove it, or restart, to start over): ", partial);
      goto done;
    }
    res->resumed_file = 1;
  } else {
    if ((rc = check_space(partial, &d, g->dtype, err))) goto done;
    w = opl_ds_writer_create_ps(path, &d, g->dtype, g->x, g->y, g->t, g->Lps ? &ps : NULL, g->prov, g->nprov, &e2);
    if (!w) {
      rc = fail_from(err, &e2, "generate: ");
      goto done;
    }
  }
  int64_t ntodo = opl_ds_writer_todo(w, NULL);
  res->resumed = g->N - ntodo;
  idx = malloc(sizeof(int64_t) * (size_t)(ntodo > 0 ? ntodo : 1));
  if (!idx) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "generate: out of memory");
    goto done;
  }
  opl_ds_writer_todo(w, idx);

  run_state s = {.g = g, .w = w, .ro = &ro, .res = res, .t0 = now_s()};
  s.pg = (opl_gen_progress){.total = g->N, .done = g->N - ntodo, .todo = ntodo, .index = -1, .eta = NAN};
  if (ro.progress && ro.progress(ro.user, &s.pg)) {
    res->stopped = 1;
    s.stop = 1;
  }

  /* samples the refinement check has already solved */
  if (keep && !s.stop) {
    int64_t m = 0;
    for (int64_t k = 0; k < ntodo; k++) {
      int64_t i = idx[k];
      if (i < g->refine && keep[i]) {
        opl_solve_stats st = {0};
        int r = opl_ds_writer_put(w, i, keep[i], keep[i] + g->fsize, OPL_DT_F64, &e2);
        if (r) {
          run_failed(&s, i, r, &e2, NULL);
          break;
        }
        run_written(&s, i, &st);
        if (s.stop) break;
      } else {
        idx[m++] = i;
      }
    }
    if (!s.stop) ntodo = m;
  }

  if (dist) { /* the todo list to the other ranks, then the rounds */
    opl_gen_dist_job job = dist_job(g, threads, &s);
    told = 1;
    int st = opl_gen_dist_lead(&job, w, idx, ntodo, s.stop, res, err);
    if (st) {
      rc = st;
      goto done_told;
    }
  }
  /* the parallel loop: one sample per iteration, each thread with its own workspace */
  if (!dist && !s.stop && ntodo > 0) {
    int nth = (int64_t)threads < ntodo ? threads : (int)ntodo;
#pragma omp parallel num_threads(nth)
    {
      gen_ws ws;
      int ok_ws = ws_alloc(g, &ws) == OPL_OK;
      if (!ok_ws) {
        opl_err en = {0};
        opl_err_set(&en, OPL_ERR_NOMEM, "generate: out of memory (workspace of a thread)");
        run_failed(&s, -1, OPL_ERR_NOMEM, &en, NULL);
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t k = 0; k < ntodo; k++) {
        int stop;
#pragma omp atomic read
        stop = s.stop;
        if (stop || !ok_ws) continue;
        const int64_t i = idx[k];
        opl_solve_stats st = {0};
        opl_err es = {0};
        int r = sample_solve(g, i, &ws, &st, &es);
        if (!r) {
          opl_err ep = {0};
          r = opl_ds_writer_put(w, i, ws.out, ws.out + g->fsize, OPL_DT_F64, &ep);
          if (r) fail_from(&es, &ep, "generate: sample %lld: ", (long long)i);
        }
        if (r) run_failed(&s, i, r, &es, &st);
        else run_written(&s, i, &st);
      }
      ws_free(&ws);
    }
  }
  if (s.rc) {
    rc = s.rc;
    if (err) *err = s.err;
    goto done;
  }
  if (res->stopped && opl_ds_writer_todo(w, NULL) == 0) res->stopped = 0; /* nothing left: finish */
  if (res->stopped) {
    rc = opl_err_set(err, OPL_ERR_STATE,
                     "generate: stopped at the caller's request with %lld of %lld samples written; '%s' keeps them "
                     "(run again with the same settings to resume)",
                     (long long)s.pg.done, (long long)g->N, partial);
    goto done;
  }
  if ((rc = opl_ds_writer_finish(&w, &e2))) fail_from(err, &e2, "generate: ");

done:
  if (dist) rc = opl_gen_dist_end(told, rc, err); /* rank 0's end (or its failure before the todo list) */
done_told:
  opl_ds_writer_close(&w);
  if (keep)
    for (int i = 0; i < g->refine; i++) opl_pde_free(keep[i]);
  free(keep);
  free(idx);
  free(partial);
  res->wall = now_s() - t_start;
  return rc;
}

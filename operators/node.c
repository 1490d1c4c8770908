/* opl operators — neural differential equations on the adaptive RK core: the tape-tensor
 * vector operations, the solve (store-all or checkpointed), per-step error and stiffness
 * tensors, global and local regularizers. The formulas and choices are documented in node.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "operators/node.h"
#include "core/dist.h"
#include "core/rng.h"

#define NDE_MAX_PARAMS 256

typedef struct nde_step {
  double t, h, tend, err, rho;
  opl_tensor *eest, *stiff;   /* differentiable scalars (1) on the solve's context */
  opl_real *y, *f;            /* state and derivative at t: tensor data (store-all) or a heap
                               * checkpoint (checkpoint mode) */
} nde_step;

struct opl_nde {
  opl_rk_method m;
  opl_nde_field f;
  void *user;
  double rtol, atol, h0, hmax;
  int64_t max_steps;
  opl_nde_memory mode;
  opl_nde_adjoint adj;
  opl_nde_saveat saveat;
  int dist;                   /* opl_nde_set_dist: the state is this process's rows of a batch */
  opl_tensor **params;
  int nparams;
  opl_ctx *ci;                /* the nde's own context: tape-free forward and step replays */
  /* last solve */
  int solved;
  uint64_t gen;               /* solve counter (a checkpoint node checks it) */
  double t0, tlast;
  int nt;
  double *ts;
  int64_t *save_step;         /* [nt] accepted steps completed when output i was taken */
  int64_t *dense_step;        /* [nt] the step whose interpolant gave output i, -1 for a state */
  int64_t nsteps, capsteps;
  nde_step *steps;
  opl_real *yfin, *ffin;      /* state and derivative at the last step's end */
  opl_real *ckpt_fin;         /* heap buffer behind yfin / ffin in checkpoint mode */
  int steps_heap;             /* the step records' y / f are heap checkpoints */
  int64_t N;
  int u0_rank;
  int64_t u0_shape[OPL_MAX_RANK];
  opl_nde_stats st;
  /* frozen step sequence */
  int frozen;
  int64_t nfrozen;
  double *fz_h, *fz_tend;
  double fz_t0;
  int fz_nt;
  double *fz_ts;
};

/* ------------------------------------------------------------ tensor vector operations */

/* A vector is a slot holding a tensor. On the tape, lincomb and rhs replace the slot's tensor by
 * a newly recorded one; without a tape every slot owns one heap tensor written in place. */
typedef struct tslot {
  opl_tensor *t;
  opl_tensor *own;
} tslot;

/* What one run of the core works on (the vops' vspace and the rhs user pointer). */
typedef struct tspace {
  opl_nde *nd;
  opl_ctx *c;                 /* context of the records: the caller's (tape) or nd->ci */
  int tape;                   /* record on c's tape */
  int record_steps;           /* the main solve: append step records */
  int dist;                   /* the vectors are this rank's rows: norms and decisions are agreed */
  double nglob;               /* elements of a whole vector over all ranks (dist; set by a norm) */
  int rank;
  int64_t shape[OPL_MAX_RANK], N;
  opl_tape_mark_t mark;
  int status;                 /* first failure of a vector operation or of the field */
  char msg[400];
  opl_tensor *last_eest, *last_stiff; /* the accepted hook's tensors of the latest step */
  /* Dense outputs of the main solve (OPL_NDE_SAVEAT_DENSE): the next output index to produce;
   * its value goes to tout[i] (tape) or outs + i N (no tape, through the scratch slot dtmp). */
  int dense, next;
  opl_tensor **tout;
  opl_real *outs;
  void *dtmp;
} tspace;

static void ts_fail(tspace *sp, int status, const char *fmt, double t) {
  if (sp->status) return;
  sp->status = status;
  snprintf(sp->msg, sizeof sp->msg, fmt, t);
}

static void *tv_new(const opl_rk_vops *o) {
  tspace *sp = o->vspace;
  tslot *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (!sp->tape) {
    s->own = opl_tensor_alloc(sp->rank, sp->shape, 0, NULL);
    if (!s->own) {
      free(s);
      return NULL;
    }
    s->t = s->own;
  }
  return s;
}

static void tv_free(const opl_rk_vops *o, void *v) {
  (void)o;
  tslot *s = v;
  if (!s) return;
  opl_tensor_free(&s->own);
  free(s);
}

static void tv_lincomb(const opl_rk_vops *o, int m, const double *a, const void *const *xv, void *yv) {
  tspace *sp = o->vspace;
  tslot *y = yv;
  opl_tensor *xs[OPL_LINCOMB_MAX];
  for (int j = 0; j < m; j++) {
    xs[j] = ((const tslot *)xv[j])->t;
    if (!xs[j]) {
      if (sp->tape) y->t = NULL;
      return;
    }
  }
  if (sp->tape) {
    y->t = opl_lincomb(sp->c, m, a, xs);
    if (!y->t) ts_fail(sp, opl_ctx_status(sp->c), "a vector operation failed at t = %.17g", NAN);
  } else {
    const opl_real *xd[OPL_LINCOMB_MAX];
    for (int j = 0; j < m; j++) xd[j] = xs[j]->data;
    opl_lincomb_kernel(sp->N, m, a, xd, y->own->data);
  }
}

/* The norm of rk.h over the whole vector. On one process: opl_wrms_value. Distributed (every
 * rank calls it at the same point, the parallel N_Vector of SUNDIALS): this rank's two sums of
 * opl_wrms_sums and its element count, summed over the ranks in one reduction (every rank gets the
 * same bits), so a NaN or Inf on any rank makes every rank's result non-finite. */
static double ts_norm(tspace *sp, const tslot *e, const tslot *ya, const tslot *yb, double rtol, double atol) {
  const opl_tensor *te = e->t, *ta = ya->t, *tb = yb->t;
  if (!sp->dist) {
    if (!te || !ta || !tb) return NAN;
    return opl_wrms_value(sp->N, te->data, ta->data, tb->data, rtol, atol);
  }
  double sc[3] = {NAN, 0, (double)sp->N};
  if (te && ta && tb) opl_wrms_sums(sp->N, te->data, ta->data, tb->data, rtol, atol, sc);
  opl_err ae = {0};
  if (opl_dist_agree(OPL_OK, &ae, sc, 3)) {
    ts_fail(sp, ae.status, "the error norm's sum over ranks failed at t = %.17g", NAN);
    return NAN;
  }
  sp->nglob = sc[2];
  return sqrt(sc[0] / sc[2]) + sc[1];
}

static double tv_wrms(const opl_rk_vops *o, const void *e, const void *ya, const void *yb,
                      double rtol, double atol) {
  return ts_norm(o->vspace, e, ya, yb, rtol, atol);
}

static int tv_rhs_local(void *user, double t, const void *yv, void *dyv) {
  tspace *sp = user;
  opl_nde *nd = sp->nd;
  const tslot *y = yv;
  tslot *dy = dyv;
  if (!y->t || sp->status) return -1;
  opl_arena_mark_t am = opl_arena_mark(sp->c);
  opl_tensor *du = NULL;
  int rv = nd->f(nd->user, sp->c, t, y->t, &du);
  if (rv < 0) {
    ts_fail(sp, OPL_ERR_STATE, "the vector field failed (fatal) at t = %.17g", t);
    if (!sp->tape) opl_arena_rewind(sp->c, am);
    return rv;
  }
  if (rv > 0) {
    if (!sp->tape) opl_arena_rewind(sp->c, am);
    return rv;
  }
  char b1[96], b2[96];
  if (!du || opl_ctx_status(sp->c)) {
    if (!sp->status) {
      sp->status = opl_ctx_status(sp->c) ? opl_ctx_status(sp->c) : OPL_ERR_STATE;
      snprintf(sp->msg, sizeof sp->msg, "the vector field returned 0 but %s at t = %.17g",
               opl_ctx_status(sp->c) ? opl_ctx_errmsg(sp->c) : "no tensor", t);
    }
    return -1;
  }
  if (!opl_shape_eq(du->rank, du->shape, sp->rank, sp->shape) || opl_is_complex(du)) {
    if (!sp->status) {
      sp->status = OPL_ERR_SHAPE;
      snprintf(sp->msg, sizeof sp->msg,
               "the vector field's output %s%s differs from the state %s at t = %.17g",
               opl_shape_str(b1, du->rank, du->shape), opl_is_complex(du) ? " complex" : "",
               opl_shape_str(b2, sp->rank, sp->shape), t);
    }
    return -1;
  }
  if (sp->tape) {
    dy->t = du;
  } else {
    memcpy(dy->own->data, du->data, (size_t)sp->N * sizeof(opl_real));
    opl_arena_rewind(sp->c, am);
  }
  return 0;
}

/* Distributed: the ranks agree on a field evaluation's outcome rv (0; > 0 recoverable; < 0
 * fatal, described by *status and msg[400]) in one reduction that also sums sums[0..n) over the
 * ranks (sums has n + 1 entries: the last carries the recoverable flag). Returns -1 when it was
 * fatal on some rank (*status and msg then the lowest failing rank's), else 1 when it was
 * recoverable on some rank, else 0. */
static int agree_outcome(int rv, int *status, char *msg, double *sums, int n) {
  opl_err ae = {0};
  int mine = OPL_OK;
  if (rv < 0) {
    mine = *status ? *status : OPL_ERR_STATE;
    snprintf(ae.msg, sizeof ae.msg, "%s", *status ? msg : "the vector field failed");
  }
  sums[n] = rv > 0;
  int st = opl_dist_agree(mine, &ae, sums, n + 1);
  if (st) {
    *status = st;
    snprintf(msg, 400, "%.390s", ae.msg);
    return -1;
  }
  return sums[n] > 0 ? 1 : 0;
}

/* The right-hand side. Distributed, the ranks agree on its outcome before the core acts on it
 * (a rank that rejected an attempt alone would wait in a norm the others never reach): fatal on
 * any rank is fatal on every rank, with the message of the lowest failing rank; otherwise
 * recoverable on any rank is recoverable on every rank. */
static int tv_rhs(void *user, double t, const void *yv, void *dyv) {
  tspace *sp = user;
  int rv = tv_rhs_local(user, t, yv, dyv);
  if (!sp->dist) return rv;
  double rec;
  return agree_outcome(rv, &sp->status, sp->msg, &rec, 0);
}

static void tv_mark(const opl_rk_vops *o) {
  tspace *sp = o->vspace;
  sp->mark = opl_tape_mark(sp->c);
}

static void tv_discard(const opl_rk_vops *o) {
  tspace *sp = o->vspace;
  opl_tape_rewind(sp->c, sp->mark);
}

/* rho = ||dk|| / ||dg|| as a tensor: 0 (a constant) when ||dg|| = 0, so no NaN can appear.
 * Distributed: both norms over all ranks (opl_wrms_reduced). */
static opl_tensor *stiff_tensor(tspace *sp, const opl_rk_step_info *in) {
  opl_tensor *dk = ((const tslot *)in->dk)->t, *dg = ((const tslot *)in->dg)->t;
  if (sp->dist) {
    const double ng = ts_norm(sp, in->dg, in->dg, in->dg, 0, 1);
    if (!(ng > 0)) return opl_zeros(sp->c, OPL_DIMS(1));
    const double nk = ts_norm(sp, in->dk, in->dk, in->dk, 0, 1);
    return opl_div(sp->c, opl_wrms_reduced(sp->c, dk, dk, dk, 0, 1, nk, sp->nglob),
                   opl_wrms_reduced(sp->c, dg, dg, dg, 0, 1, ng, sp->nglob));
  }
  if (opl_wrms_value(sp->N, dg->data, dg->data, dg->data, 0, 1) > 0)
    return opl_div(sp->c, opl_wrms(sp->c, dk, dk, dk, 0, 1), opl_wrms(sp->c, dg, dg, dg, 0, 1));
  return opl_zeros(sp->c, OPL_DIMS(1));
}

static int grow_steps(opl_nde *nd) {
  if (nd->nsteps < nd->capsteps) return 1;
  int64_t cap = nd->capsteps ? 2 * nd->capsteps : 64;
  nde_step *ns = realloc(nd->steps, (size_t)cap * sizeof *ns);
  if (!ns) return 0;
  nd->steps = ns;
  nd->capsteps = cap;
  return 1;
}

/* The outputs of the main dense solve that fall in the accepted step in (t, tend]: an output at
 * tend is the new state itself (save_step j + 1, dense_step -1); one inside the step is the
 * method's dense output (node.h), a linear combination of the step's state and stages (one
 * opl_lincomb on the tape: differentiable), recorded as from step j (dense_step j). */
static void dense_outputs(const opl_rk_vops *o, tspace *sp, const opl_rk_step_info *in) {
  opl_nde *nd = sp->nd;
  const int64_t j = nd->nsteps - 1;
  for (; sp->next < nd->nt && nd->ts[sp->next] <= in->tend && !sp->status; sp->next++) {
    const int i = sp->next;
    const int at_end = nd->ts[i] == in->tend;
    nd->save_step[i] = j + 1;
    nd->dense_step[i] = at_end ? -1 : j;
    if (sp->tape) {
      tslot out = {0};
      if (at_end) out.t = ((const tslot *)in->y1)->t;
      else opl_rk_dense_step(in, nd->m, o, nd->ts[i], &out);
      if (!(sp->tout[i] = out.t))
        ts_fail(sp, opl_ctx_status(sp->c) ? opl_ctx_status(sp->c) : OPL_ERR_NOMEM,
                "the dense output failed at t = %.17g", nd->ts[i]);
    } else {
      const tslot *src = in->y1;
      if (!at_end) {
        opl_rk_dense_step(in, nd->m, o, nd->ts[i], sp->dtmp);
        src = sp->dtmp;
      }
      memcpy(sp->outs + (size_t)i * (size_t)sp->N, src->t->data, (size_t)sp->N * sizeof(opl_real));
    }
  }
}

static void tv_accepted(const opl_rk_vops *o, void *user, const opl_rk_step_info *in) {
  (void)user;
  tspace *sp = o->vspace;
  opl_nde *nd = sp->nd;
  const tslot *y0 = in->y0, *y1 = in->y1, *k0 = in->k[0], *k1 = in->k[in->s - 1];
  sp->last_eest = sp->last_stiff = NULL;
  if (sp->tape) {
    /* distributed: the core's norm is already the whole batch's (a sum over ranks) */
    sp->last_eest = sp->dist ? opl_wrms_reduced(sp->c, ((const tslot *)in->e)->t, y0->t, y1->t, in->rtol, in->atol,
                                                in->err, sp->nglob)
                             : opl_wrms(sp->c, ((const tslot *)in->e)->t, y0->t, y1->t, in->rtol, in->atol);
    sp->last_stiff = in->dk ? stiff_tensor(sp, in) : opl_zeros(sp->c, OPL_DIMS(1));
    if (!sp->last_eest || !sp->last_stiff)
      ts_fail(sp, opl_ctx_status(sp->c) ? opl_ctx_status(sp->c) : OPL_ERR_NOMEM,
              "recording the step's error and stiffness failed at t = %.17g", in->t);
  }
  if (!sp->record_steps || sp->status) return;
  if (!grow_steps(nd)) {
    ts_fail(sp, OPL_ERR_NOMEM, "out of memory for the step records at t = %.17g", in->t);
    return;
  }
  nde_step *st = &nd->steps[nd->nsteps];
  memset(st, 0, sizeof *st);
  st->t = in->t, st->h = in->h, st->tend = in->tend, st->err = in->err, st->rho = in->rho;
  st->eest = sp->last_eest, st->stiff = sp->last_stiff;
  const size_t bytes = (size_t)sp->N * sizeof(opl_real);
  if (sp->tape) {
    st->y = y0->t->data, st->f = k0->t->data;
    nd->yfin = y1->t->data, nd->ffin = k1->t->data;
  } else {
    st->y = malloc(2 * bytes);
    if (!st->y) {
      ts_fail(sp, OPL_ERR_NOMEM, "out of memory for the checkpoint at t = %.17g", in->t);
      return;
    }
    st->f = st->y + sp->N;
    memcpy(st->y, y0->t->data, bytes);
    memcpy(st->f, k0->t->data, bytes);
    memcpy(nd->ckpt_fin, y1->t->data, bytes);
    memcpy(nd->ckpt_fin + sp->N, k1->t->data, bytes);
    nd->yfin = nd->ckpt_fin, nd->ffin = nd->ckpt_fin + sp->N;
    nd->st.ckpt_bytes += 2 * bytes;
  }
  nd->nsteps++;
  if (sp->dense) dense_outputs(o, sp, in);
}

/* A core stepping tensors of u's shape, recording on c (tape = 1) or in place (tape = 0). */
static opl_rk *make_rk(opl_nde *nd, tspace *sp, opl_ctx *c, int tape, const opl_tensor *u,
                       opl_err *err) {
  memset(sp, 0, sizeof *sp);
  sp->nd = nd;
  sp->c = c;
  sp->tape = tape;
  sp->rank = u->rank;
  memcpy(sp->shape, u->shape, sizeof sp->shape);
  sp->N = u->numel;
  sp->dist = nd->dist && opl_dist_size() > 1;
  opl_rk_vops ops = {.n = u->numel, .vspace = sp, .vnew = tv_new, .vfree = tv_free,
                     .lincomb = tv_lincomb, .wrms = tv_wrms, .rhs = tv_rhs,
                     .accepted = tv_accepted};
  if (tape) ops.mark = tv_mark, ops.discard = tv_discard;
  opl_rk *rk = opl_rk_create(&ops, sp, nd->m, err);
  if (!rk) return NULL;
  if (opl_rk_set_tolerances(rk, nd->rtol, nd->atol, err) ||
      opl_rk_set_initial_step(rk, nd->h0, err) || opl_rk_set_max_steps(rk, nd->max_steps, err) ||
      opl_rk_set_max_step(rk, nd->hmax, err)) {
    opl_rk_free(&rk);
    return NULL;
  }
  return rk;
}

/* The status of a failed core call: the vector field's or vector operation's own message when
 * one failed (with the time reached), else the core's. */
static int rk_fail(tspace *sp, opl_rk *rk, int st, opl_err *core_err, opl_err *err) {
  if (sp->status)
    return opl_err_set(err, sp->status, "opl_nde: %s (solve stopped at t = %.17g)", sp->msg,
                       opl_rk_time(rk));
  return opl_err_set(err, st, "opl_nde: %s", core_err->msg);
}

/* ------------------------------------------------------------ create, settings */

opl_nde *opl_nde_create(opl_rk_method m, opl_nde_field f, void *user, opl_err *err) {
  if (!opl_rk_method_name(m)) {
    opl_err_set(err, OPL_ERR_ARG, "opl_nde_create: method = %d is not a method (0..%d)", (int)m,
                OPL_RK_METHOD_COUNT - 1);
    return NULL;
  }
  if (!f) {
    opl_err_set(err, OPL_ERR_ARG, "opl_nde_create: the vector field is NULL");
    return NULL;
  }
  opl_nde *nd = calloc(1, sizeof *nd);
  if (!nd || !(nd->ci = opl_ctx_new((size_t)4 << 20))) {
    free(nd);
    opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_create: out of memory");
    return NULL;
  }
  nd->m = m, nd->f = f, nd->user = user;
  nd->rtol = 1e-6, nd->atol = 1e-9, nd->h0 = 0, nd->hmax = INFINITY, nd->max_steps = 100000;
  nd->mode = OPL_NDE_STORE_ALL;
  return nd;
}

/* Forget the last solve's records (and free its checkpoints). */
static void clear_steps(opl_nde *nd) {
  if (nd->steps_heap)
    for (int64_t j = 0; j < nd->nsteps; j++) free(nd->steps[j].y);
  nd->nsteps = 0;
  nd->steps_heap = 0;
  free(nd->ckpt_fin);
  nd->ckpt_fin = NULL;
  nd->yfin = nd->ffin = NULL;
  nd->solved = 0;
}

void opl_nde_free(opl_nde **pnd) {
  if (!pnd || !*pnd) return;
  opl_nde *nd = *pnd;
  clear_steps(nd);
  free(nd->steps);
  free(nd->ts);
  free(nd->save_step);
  free(nd->dense_step);
  free(nd->params);
  free(nd->fz_h);
  free(nd->fz_tend);
  free(nd->fz_ts);
  opl_ctx_free(&nd->ci);
  free(nd);
  *pnd = NULL;
}

int opl_nde_set_tolerances(opl_nde *nd, double rtol, double atol, opl_err *err) {
  OPL_ASSERT(nd);
  if (!(rtol > 0) || !isfinite(rtol))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_tolerances: rtol = %g (must be > 0 and finite)", rtol);
  if (!(atol > 0) || !isfinite(atol))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_tolerances: atol = %g (must be > 0 and finite)", atol);
  nd->rtol = rtol, nd->atol = atol;
  return OPL_OK;
}

int opl_nde_set_initial_step(opl_nde *nd, double h0, opl_err *err) {
  OPL_ASSERT(nd);
  if (!(h0 >= 0) || !isfinite(h0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_initial_step: h0 = %g (must be > 0, or 0 for automatic)", h0);
  nd->h0 = h0;
  return OPL_OK;
}

int opl_nde_set_max_steps(opl_nde *nd, int64_t max_steps, opl_err *err) {
  OPL_ASSERT(nd);
  if (max_steps < 1)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_max_steps: max_steps = %lld (must be >= 1)",
                       (long long)max_steps);
  nd->max_steps = max_steps;
  return OPL_OK;
}

int opl_nde_set_max_step(opl_nde *nd, double hmax, opl_err *err) {
  OPL_ASSERT(nd);
  if (!(hmax > 0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_max_step: hmax = %g (must be > 0)", hmax);
  nd->hmax = hmax;
  return OPL_OK;
}

int opl_nde_set_memory(opl_nde *nd, opl_nde_memory mode, opl_err *err) {
  OPL_ASSERT(nd);
  if (mode != OPL_NDE_STORE_ALL && mode != OPL_NDE_CHECKPOINT)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_memory: mode = %d (0 store all, 1 checkpoint)", (int)mode);
  nd->mode = mode;
  nd->adj = mode == OPL_NDE_STORE_ALL ? OPL_NDE_ADJ_DISCRETE : OPL_NDE_ADJ_CHECKPOINT;
  return OPL_OK;
}

int opl_nde_set_adjoint(opl_nde *nd, opl_nde_adjoint adj, opl_err *err) {
  OPL_ASSERT(nd);
  if (adj < OPL_NDE_ADJ_DISCRETE || adj > OPL_NDE_ADJ_INTERP)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_adjoint: adjoint = %d (0 discrete, 1 checkpointed "
                       "discrete, 2 backsolve, 3 interpolating)", (int)adj);
  nd->adj = adj;
  nd->mode = adj == OPL_NDE_ADJ_DISCRETE ? OPL_NDE_STORE_ALL : OPL_NDE_CHECKPOINT;
  return OPL_OK;
}

int opl_nde_set_dist(opl_nde *nd, int on) {
  OPL_ASSERT(nd);
  int was = nd->dist;
  nd->dist = on != 0;
  return was;
}

int opl_nde_set_saveat(opl_nde *nd, opl_nde_saveat mode, opl_err *err) {
  OPL_ASSERT(nd);
  if (mode != OPL_NDE_SAVEAT_STEP && mode != OPL_NDE_SAVEAT_DENSE)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_saveat: mode = %d (0 step to each output time, 1 dense "
                       "output)", (int)mode);
  nd->saveat = mode;
  return OPL_OK;
}

int opl_nde_set_params(opl_nde *nd, int n, opl_tensor *const *params, opl_err *err) {
  OPL_ASSERT(nd);
  if (n < 0 || n > NDE_MAX_PARAMS || (n > 0 && !params))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_params: n = %d (must be 0..%d with a list)", n,
                       NDE_MAX_PARAMS);
  opl_tensor **p = NULL;
  if (n > 0) {
    if (!(p = malloc((size_t)n * sizeof *p)))
      return opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_set_params: out of memory");
    for (int i = 0; i < n; i++) {
      if (!params[i] || (params[i]->flags & OPL_T_ARENA)) {
        free(p);
        return opl_err_set(err, OPL_ERR_ARG, "opl_nde_set_params: params[%d] is %s", i,
                           params[i] ? "an arena tensor (must be a heap parameter)" : "NULL");
      }
      p[i] = params[i];
    }
  }
  free(nd->params);
  nd->params = p;
  nd->nparams = n;
  return OPL_OK;
}

int opl_nde_freeze(opl_nde *nd, int on, opl_err *err) {
  OPL_ASSERT(nd);
  if (!on) {
    nd->frozen = 0;
    return OPL_OK;
  }
  if (!nd->solved)
    return opl_err_set(err, OPL_ERR_STATE, "opl_nde_freeze: no successful solve to freeze");
  double *h = malloc((size_t)(nd->nsteps + 1) * sizeof *h), *te = malloc((size_t)(nd->nsteps + 1) * sizeof *te);
  double *ts = malloc((size_t)nd->nt * sizeof *ts);
  if (!h || !te || !ts) {
    free(h), free(te), free(ts);
    return opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_freeze: out of memory");
  }
  for (int64_t j = 0; j < nd->nsteps; j++) h[j] = nd->steps[j].h, te[j] = nd->steps[j].tend;
  memcpy(ts, nd->ts, (size_t)nd->nt * sizeof *ts);
  free(nd->fz_h), free(nd->fz_tend), free(nd->fz_ts);
  nd->fz_h = h, nd->fz_tend = te, nd->fz_ts = ts;
  nd->nfrozen = nd->nsteps;
  nd->fz_t0 = nd->t0;
  nd->fz_nt = nd->nt;
  nd->frozen = 1;
  return OPL_OK;
}

/* ------------------------------------------------------------ solve */

/* The checkpointed solve's tape node: its output packs [u(ts_0), ..., u(ts_{nt-1}), EEst_0..,
 * rho_0..] (nt N + 2 nsteps reals). */
typedef struct ckpt_rec {
  opl_nde *nd;
  uint64_t gen;
  opl_tensor *u0;
} ckpt_rec;

/* u(t) for t in [t0, T] of the last solve from the step records: the cubic Hermite interpolant
 * of the states and derivatives at the ends of the step containing t (exact at step times).
 * out [N]. */
static void hermite_at(const opl_nde *nd, double t, opl_real *out) {
  const int64_t N = nd->N;
  if (nd->nsteps == 0) {
    memcpy(out, nd->yfin, (size_t)N * sizeof(opl_real));
    return;
  }
  int64_t lo = 0, hi = nd->nsteps - 1; /* the last step j with t_j <= t (0 if t < t_0) */
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (nd->steps[mid].t <= t) lo = mid;
    else hi = mid - 1;
  }
  const int64_t j = lo;
  const nde_step *s = &nd->steps[j];
  const opl_real *y0 = s->y, *f0 = s->f;
  const opl_real *y1 = j + 1 < nd->nsteps ? nd->steps[j + 1].y : nd->yfin;
  const opl_real *f1 = j + 1 < nd->nsteps ? nd->steps[j + 1].f : nd->ffin;
  const double h = s->tend - s->t, th = (t - s->t) / h;
  if (th == 0) {
    memcpy(out, y0, (size_t)N * sizeof(opl_real));
    return;
  }
  const double h00 = (1 + 2 * th) * (1 - th) * (1 - th), h10 = th * (1 - th) * (1 - th);
  const double h01 = th * th * (3 - 2 * th), h11 = th * th * (th - 1);
  for (int64_t i = 0; i < N; i++)
    out[i] = (opl_real)(h00 * y0[i] + h10 * h * f0[i] + h01 * y1[i] + h11 * h * f1[i]);
}

/* The augmented backward system of a continuous adjoint, in s = T - t (the core integrates
 * forward only). State z (double): backsolve [u (N), a (N), g (P)], interpolating [a (N), g (P)]:
 *   du/ds = -F(T - s, u),  da/ds = a^T dF/du,  dg/ds = a^T dF/dtheta
 * (Chen et al., "Neural Ordinary Differential Equations", NeurIPS 2018, eq. (4) and Alg. 1,
 * with the time reversed). One evaluation is one forward of F on the scratch context's tape and
 * one backward pass of <a, F> (both vector-Jacobian products at once). */
typedef struct adj_space {
  opl_nde *nd;
  int backsolve;
  double T;
  int64_t N, P;
  opl_tensor **ps;            /* [np] parameters requiring a gradient */
  int np;
  opl_real *ubuf;             /* [N] the interpolated state */
  int status;
  char msg[400];
  /* Distributed (nd->dist on several ranks): u and a are this rank's rows, g is the whole
   * batch's (the ranks' dg are summed in every evaluation, so g is the same on every rank). */
  int dist;
  double *sums;               /* [P + 1] scratch of that sum */
} adj_space;

static int adj_rhs_local(void *user, double s, const void *zv, void *dzv) {
  adj_space *A = user;
  opl_nde *nd = A->nd;
  opl_ctx *ci = nd->ci;
  const double *z = zv;
  double *dz = dzv;
  const int64_t N = A->N;
  const double t = A->T - s;
  const double *a = A->backsolve ? z + N : z;
  double *da = A->backsolve ? dz + N : dz, *dg = da + N;
  opl_ctx_reset(ci);
  opl_tensor *u = opl_new(ci, nd->u0_rank, nd->u0_shape);
  opl_tensor *at = opl_new(ci, nd->u0_rank, nd->u0_shape);
  if (!u || !at) {
    snprintf(A->msg, sizeof A->msg, "%s", opl_ctx_errmsg(ci));
    A->status = opl_ctx_status(ci);
    return -1;
  }
  if (A->backsolve)
    for (int64_t i = 0; i < N; i++) u->data[i] = (opl_real)z[i];
  else
    hermite_at(nd, t, u->data);
  for (int64_t i = 0; i < N; i++) at->data[i] = (opl_real)a[i];
  opl_set_requires_grad(u);
  for (int k = 0; k < A->np; k++) opl_tensor_zero_grad(A->ps[k]);
  opl_tensor *du = NULL;
  int rv = nd->f(nd->user, ci, t, u, &du);
  if (rv > 0) return rv;
  char b1[96], b2[96];
  if (rv < 0 || !du || opl_ctx_status(ci)) {
    A->status = opl_ctx_status(ci) ? opl_ctx_status(ci) : OPL_ERR_STATE;
    snprintf(A->msg, sizeof A->msg, "the vector field %s at t = %.17g",
             rv < 0 ? "failed (fatal)" : opl_ctx_status(ci) ? opl_ctx_errmsg(ci) : "returned no tensor", t);
    return -1;
  }
  if (!opl_shape_eq(du->rank, du->shape, nd->u0_rank, nd->u0_shape) || opl_is_complex(du)) {
    A->status = OPL_ERR_SHAPE;
    snprintf(A->msg, sizeof A->msg, "the vector field's output %s differs from the state %s at t = %.17g",
             opl_shape_str(b1, du->rank, du->shape), opl_shape_str(b2, nd->u0_rank, nd->u0_shape), t);
    return -1;
  }
  if (A->backsolve)
    for (int64_t i = 0; i < N; i++) dz[i] = -(double)du->data[i];
  opl_tensor *l = opl_sum(ci, opl_mul(ci, at, du));
  if (!l || opl_backward(ci, l)) {
    A->status = opl_ctx_status(ci) ? opl_ctx_status(ci) : OPL_ERR_STATE;
    snprintf(A->msg, sizeof A->msg, "the vector-Jacobian product failed at t = %.17g: %s", t, opl_ctx_errmsg(ci));
    return -1;
  }
  for (int64_t i = 0; i < N; i++) da[i] = u->grad ? (double)u->grad[i] : 0;
  for (int k = 0, off = 0; k < A->np; off += (int)A->ps[k]->numel, k++)
    for (int64_t i = 0; i < A->ps[k]->numel; i++) dg[off + i] = (double)A->ps[k]->grad[i];
  return 0;
}

/* The augmented right-hand side. Distributed: the ranks' parameter parts dg are summed (dg of the
 * whole batch: the sum over samples of a^T dF/dtheta), together with the agreement on the outcome
 * (fatal anywhere: fatal everywhere with the lowest failing rank's message; else recoverable
 * anywhere: recoverable everywhere), in one reduction per evaluation. */
static int adj_rhs(void *user, double s, const void *zv, void *dzv) {
  adj_space *A = user;
  int rv = adj_rhs_local(user, s, zv, dzv);
  if (!A->dist) return rv;
  double *dg = (double *)dzv + (A->backsolve ? 2 * A->N : A->N);
  for (int64_t i = 0; i < A->P; i++) A->sums[i] = rv == 0 ? dg[i] : 0;
  const int out = agree_outcome(rv, &A->status, A->msg, A->sums, (int)A->P);
  if (out == 0) memcpy(dg, A->sums, (size_t)A->P * sizeof(double));
  return out;
}

/* The augmented error norm (rk.h) of the distributed adjoint: the rows u, a of every rank and
 * the parameter part g once (rank 0's; g is the same on every rank), summed in one reduction:
 * the norm of the whole batch's augmented state. e, ya, yb [n]. */
static double adj_wrms(const opl_rk_vops *o, const void *ev, const void *yav, const void *ybv, double rtol,
                       double atol) {
  const adj_space *A = o->vspace;
  const double *e = ev, *ya = yav, *yb = ybv;
  const int64_t nrow = (A->backsolve ? 2 : 1) * A->N, n = opl_dist_rank() == 0 ? o->n : nrow;
  double sc[3] = {0, 0, (double)n};
  opl_rk_wrms_sums(n, e, ya, yb, rtol, atol, sc);
  opl_err ae = {0};
  if (opl_dist_agree(OPL_OK, &ae, sc, 3)) return NAN;
  return sqrt(sc[0] / sc[2]) + sc[1];
}

/* Backward of a solve with a continuous adjoint (OPL_NDE_ADJ_BACKSOLVE / _INTERP): a(T) is the
 * gradient of the last output; the augmented system is integrated from T back to t0 with the
 * nde's method and tolerances; at each earlier output time t_i the core stops on it and the
 * output's gradient is added to a (a jump), then the core restarts. The interpolating adjoint
 * also stops on every accepted forward step's time, where the Hermite interpolant's derivative
 * has a kink. Finally u0 receives a(t0) and each parameter g's share. */
static void cont_bw(opl_node *node) {
  const ckpt_rec *r = node->saved;
  opl_nde *nd = r->nd;
  opl_ctx *c = node->ctx;
  const int64_t N = nd->N, S = nd->nsteps;
  const opl_real *g = node->out->grad;
  const char *name = nd->adj == OPL_NDE_ADJ_BACKSOLVE ? "backsolve" : "interpolating";
  for (int64_t j = 0; j < 2 * S; j++)
    if (g[nd->nt * N + j] != 0) {
      opl_ctx_error(c, OPL_ERR_ARG, "opl_nde: the %s continuous adjoint cannot differentiate the "
                    "per-step error or stiffness of step %lld (a global regularizer): use the "
                    "discrete adjoint (OPL_NDE_ADJ_DISCRETE or _CHECKPOINT) or the local "
                    "regularizer", name, (long long)(j % (S ? S : 1)));
      return;
    }
  adj_space A = {.nd = nd, .backsolve = nd->adj == OPL_NDE_ADJ_BACKSOLVE, .T = nd->tlast, .N = N};
  opl_tensor *ps[NDE_MAX_PARAMS];
  for (int k = 0; k < nd->nparams; k++)
    if (opl_requires_grad(nd->params[k])) {
      ps[A.np++] = nd->params[k];
      A.P += nd->params[k]->numel;
    }
  A.ps = ps;
  const int64_t off_a = A.backsolve ? N : 0, n = off_a + N + A.P;
  /* saved: the parameters' gradients accumulated before this backward (the evaluations
   * overwrite them); z: the augmented state. */
  double *z = calloc((size_t)n, sizeof *z);
  opl_real *saved = malloc(((size_t)A.P + 1) * sizeof *saved);
  if (!z || !saved) {
    free(z), free(saved);
    opl_ctx_error(c, OPL_ERR_NOMEM, "opl_nde: out of memory for the %s adjoint", name);
    return;
  }
  for (int k = 0, off = 0; k < A.np; off += (int)ps[k]->numel, k++)
    memcpy(saved + off, ps[k]->grad, (size_t)ps[k]->numel * sizeof(opl_real));
  opl_rk_vops ops = opl_rk_vops_double(n);
  ops.rhs = adj_rhs;
  A.dist = nd->dist && opl_dist_size() > 1;
  if (A.dist) {
    ops.vspace = &A;
    ops.wrms = adj_wrms;
    if (!(A.sums = malloc(((size_t)A.P + 1) * sizeof *A.sums))) {
      free(z), free(saved);
      opl_ctx_error(c, OPL_ERR_NOMEM, "opl_nde: out of memory for the %s adjoint", name);
      return;
    }
  }
  opl_err e = {0};
  opl_rk *rk = opl_rk_create(&ops, &A, nd->m, &e);
  if (rk && (opl_rk_set_tolerances(rk, nd->rtol, nd->atol, &e) || opl_rk_set_max_steps(rk, nd->max_steps, &e) ||
             opl_rk_set_max_step(rk, nd->hmax, &e)))
    opl_rk_free(&rk);
  int oldg = opl_ctx_set_grad_enabled(nd->ci, 1);
  nd->st.backward_nfev = 0;
  int st = rk ? OPL_OK : (e.status ? e.status : OPL_ERR_NOMEM);
  if (A.backsolve)
    for (int64_t i = 0; i < N; i++) z[i] = (double)nd->yfin[i];
  for (int64_t i = 0; i < N; i++) z[off_a + i] = (double)g[(nd->nt - 1) * N + i];
  int64_t jb = S - 1; /* the next forward step start to stop on (interpolating) */
  double s = 0;
  for (int i = nd->nt - 2; !st && i >= -1; i--) {
    const double tt = i >= 0 ? nd->ts[i] : nd->t0; /* next stop in t */
    const double target = A.T - tt;
    if (target > s) {
      st = opl_rk_init(rk, s, z, &e);
      while (!st && !A.backsolve && jb >= 0 && nd->steps[jb].t > tt) {
        const double sj = A.T - nd->steps[jb].t;
        if (sj > opl_rk_time(rk)) st = opl_rk_advance(rk, sj, &e);
        jb--;
      }
      if (!st) st = opl_rk_advance(rk, target, &e);
      opl_rk_stats rs;
      opl_rk_get_stats(rk, &rs);
      nd->st.backward_nfev += rs.nfev;
      if (st) break;
      opl_rk_get_state(rk, z);
      s = target;
    }
    if (i >= 0)
      for (int64_t k = 0; k < N; k++) z[off_a + k] += (double)g[(int64_t)i * N + k];
  }
  opl_ctx_reset(nd->ci);
  opl_ctx_set_grad_enabled(nd->ci, oldg);
  /* distributed: g is the whole batch's on every rank; rank 0 alone adds it, so the trainer's sum
   * of the gradients over ranks counts it once */
  for (int k = 0, off = 0; k < A.np; off += (int)ps[k]->numel, k++)
    for (int64_t i = 0; i < ps[k]->numel; i++)
      ps[k]->grad[i] = saved[off + i] + (st || (A.dist && opl_dist_rank() != 0) ? 0 : (opl_real)z[off_a + N + off + i]);
  if (st) {
    if (A.status)
      opl_ctx_error(c, A.status, "opl_nde %s adjoint: %s (backward solve stopped at t = %.17g)", name,
                    A.msg, rk ? A.T - opl_rk_time(rk) : A.T);
    else
      opl_ctx_error(c, st, "opl_nde %s adjoint: %s", name, e.msg);
    if (opl_ctx_status(nd->ci)) opl_ctx_clear_error(nd->ci);
  } else {
    opl_real *gu = opl_grad_of(c, r->u0);
    if (gu)
      for (int64_t i = 0; i < N; i++) gu[i] += (opl_real)z[off_a + i];
  }
  opl_rk_free(&rk);
  free(z);
  free(saved);
  free(A.sums);
}

/* Backward of the checkpointed solve: for j = nsteps-1 .. 0, replay step j from its checkpoint
 * on the scratch context with a tape and pull back a_{j+1} (the adjoint of the state after the
 * step, plus the gradients of the outputs taken there) and the gradients of EEst_j and rho_j:
 * a_j = grad of <a_{j+1}, y_{j+1}> + gE_j EEst_j + gS_j rho_j with respect to y_j; parameters
 * receive their part directly. Finally u0 receives a_0. */
static void ckpt_bw(opl_node *node) {
  const ckpt_rec *r = node->saved;
  opl_nde *nd = r->nd;
  opl_ctx *c = node->ctx;
  if (nd->gen != r->gen) {
    opl_ctx_error(c, OPL_ERR_STATE, "opl_nde: backward through a checkpointed solve after the nde "
                  "solved again (its checkpoints are gone)");
    return;
  }
  if (nd->adj == OPL_NDE_ADJ_BACKSOLVE || nd->adj == OPL_NDE_ADJ_INTERP) {
    cont_bw(node);
    return;
  }
  const int64_t N = nd->N, S = nd->nsteps;
  const opl_real *g = node->out->grad;
  opl_real *adj = calloc((size_t)N, sizeof *adj);
  if (!adj) {
    opl_ctx_error(c, OPL_ERR_NOMEM, "opl_nde: out of memory for the adjoint");
    return;
  }
  nd->st.backward_nfev = 0;
  opl_ctx *ci = nd->ci;
  int oldg = opl_ctx_set_grad_enabled(ci, 1);
  int out_i = nd->nt - 1;
  for (int64_t j = S - 1; j >= 0 && !opl_ctx_status(c); j--) {
    /* Outputs taken during step j: the state after it adds to the adjoint; dense outputs inside
     * it (out_i < i <= i_hi with dense_step j) add their terms to the replay's loss. */
    const int i_hi = out_i;
    for (; out_i >= 0 && nd->save_step[out_i] == j + 1; out_i--)
      if (nd->dense_step[out_i] < 0)
        for (int64_t i = 0; i < N; i++) adj[i] += g[out_i * N + i];
    const nde_step *st = &nd->steps[j];
    const double gE = g[nd->nt * N + j], gS = g[nd->nt * N + S + j];
    opl_ctx_reset(ci);
    opl_tensor *yj = opl_new(ci, nd->u0_rank, nd->u0_shape);
    if (!yj) break;
    memcpy(yj->data, st->y, (size_t)N * sizeof(opl_real));
    opl_set_requires_grad(yj);
    tspace sp;
    opl_err e = {0}, e2 = {0};
    opl_rk *rk = make_rk(nd, &sp, ci, 1, yj, &e);
    if (!rk) {
      opl_ctx_error(c, e.status, "opl_nde backward: %s", e.msg);
      break;
    }
    tslot ys = {.t = yj};
    int rc = opl_rk_init(rk, st->t, &ys, &e);
    if (!rc) rc = opl_rk_take_step(rk, st->h, st->tend, &e);
    opl_rk_stats rs;
    opl_rk_get_stats(rk, &rs);
    nd->st.backward_nfev += rs.nfev;
    if (rc) {
      rk_fail(&sp, rk, rc, &e, &e2);
      opl_ctx_error(c, e2.status, "opl_nde backward, replaying step %lld: %s", (long long)j, e2.msg);
      opl_rk_free(&rk);
      break;
    }
    opl_tensor *y1 = ((const tslot *)opl_rk_state(rk))->t;
    opl_tensor *at = opl_new_like(ci, y1);
    if (at) memcpy(at->data, adj, (size_t)N * sizeof(opl_real));
    opl_tensor *terms[3] = {opl_sum(ci, opl_mul(ci, at, y1)), sp.last_eest, sp.last_stiff};
    opl_tensor *loss = opl_lincomb(ci, 3, (const double[]){1, gE, gS}, terms);
    for (int i = out_i + 1; i <= i_hi && loss; i++) {
      if (nd->dense_step[i] != j) continue;
      tslot du = {0};
      if (opl_rk_dense(rk, nd->ts[i], &du, &e) || !du.t) {
        opl_ctx_error(c, e.status ? e.status : opl_ctx_status(ci), "opl_nde backward, dense output %d in step %lld: %s",
                      i, (long long)j, e.status ? e.msg : opl_ctx_errmsg(ci));
        loss = NULL;
        break;
      }
      opl_tensor *gi = opl_new_like(ci, du.t);
      if (gi) memcpy(gi->data, g + (int64_t)i * N, (size_t)N * sizeof(opl_real));
      loss = opl_add(ci, loss, opl_sum(ci, opl_mul(ci, gi, du.t)));
    }
    opl_rk_free(&rk);
    if (opl_ctx_status(c)) break;
    if (!loss || opl_backward(ci, loss)) {
      opl_ctx_error(c, opl_ctx_status(ci), "opl_nde backward, step %lld: %s", (long long)j, opl_ctx_errmsg(ci));
      break;
    }
    for (int64_t i = 0; i < N; i++) adj[i] = yj->grad ? yj->grad[i] : 0;
  }
  for (; out_i >= 0; out_i--)
    for (int64_t i = 0; i < N; i++) adj[i] += g[out_i * N + i];
  opl_ctx_reset(ci);
  opl_ctx_set_grad_enabled(ci, oldg);
  if (opl_ctx_status(ci)) opl_ctx_clear_error(ci);
  opl_real *gu = opl_grad_of(c, r->u0);
  if (gu && !opl_ctx_status(c))
    for (int64_t i = 0; i < N; i++) gu[i] += adj[i];
  free(adj);
}

static int check_solve_args(opl_nde *nd, opl_ctx *c, double t0, opl_tensor *u0, int nt,
                            const double *ts, opl_tensor **us, opl_err *err) {
  if (!c || !u0 || !ts || !us || nt < 1)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_solve: %s", !c ? "context is NULL" : !u0 ? "u0 is NULL"
                       : nt < 1 ? "nt < 1 (need at least one output time)" : "ts or us is NULL");
  if (opl_ctx_status(c))
    return opl_err_set(err, opl_ctx_status(c), "opl_nde_solve: the context holds an error: %s", opl_ctx_errmsg(c));
  if (opl_is_complex(u0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_solve: u0 must be real");
  if (!isfinite(t0)) return opl_err_set(err, OPL_ERR_ARG, "opl_nde_solve: t0 = %g is not finite", t0);
  for (int i = 0; i < nt; i++) {
    double prev = i ? ts[i - 1] : t0;
    if (!isfinite(ts[i]) || ts[i] < prev || (i > 0 && ts[i] == prev))
      return opl_err_set(err, OPL_ERR_ARG, "opl_nde_solve: output time ts[%d] = %.17g (must be finite, >= t0 = %g "
                         "and increasing)", i, ts[i], t0);
  }
  if (nd->frozen) {
    if (t0 != nd->fz_t0 || nt != nd->fz_nt || memcmp(ts, nd->fz_ts, (size_t)nt * sizeof *ts))
      return opl_err_set(err, OPL_ERR_ARG, "opl_nde_solve: frozen step sequence is for t0 = %g and %d other "
                         "output times", nd->fz_t0, nd->fz_nt);
  }
  return OPL_OK;
}

int opl_nde_solve(opl_nde *nd, opl_ctx *c, double t0, opl_tensor *u0, int nt, const double *ts,
                  opl_tensor **us, opl_err *err) {
  OPL_ASSERT(nd);
  int st = check_solve_args(nd, c, t0, u0, nt, ts, us, err);
  if (st) return st;
  clear_steps(nd);
  nd->gen++;
  memset(&nd->st, 0, sizeof nd->st);
  nd->st.t0 = nd->st.t = t0;
  double *nts = realloc(nd->ts, (size_t)nt * sizeof *nts);
  if (nts) nd->ts = nts;
  int64_t *nss = realloc(nd->save_step, (size_t)nt * sizeof *nss);
  if (nss) nd->save_step = nss;
  int64_t *nds = realloc(nd->dense_step, (size_t)nt * sizeof *nds);
  if (nds) nd->dense_step = nds;
  if (!nts || !nss || !nds) return opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_solve: out of memory");
  for (int i = 0; i < nt; i++) nd->dense_step[i] = -1;
  memcpy(nd->ts, ts, (size_t)nt * sizeof *ts);
  nd->nt = nt;
  nd->t0 = t0;
  nd->N = u0->numel;
  nd->u0_rank = u0->rank;
  memcpy(nd->u0_shape, u0->shape, sizeof nd->u0_shape);
  const int tape = nd->mode == OPL_NDE_STORE_ALL && opl_ctx_grad_enabled(c);
  opl_ctx *fc = tape ? c : nd->ci;
  int oldg = opl_ctx_set_grad_enabled(nd->ci, 0);
  opl_ctx_reset(nd->ci);
  if (!tape) {
    nd->ckpt_fin = malloc(2 * (size_t)nd->N * sizeof(opl_real));
    nd->steps_heap = 1;
    if (!nd->ckpt_fin) {
      opl_ctx_set_grad_enabled(nd->ci, oldg);
      return opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_solve: out of memory");
    }
  }
  tspace sp;
  opl_err e = {0};
  opl_rk *rk = make_rk(nd, &sp, fc, tape, u0, err);
  if (!rk) {
    opl_ctx_set_grad_enabled(nd->ci, oldg);
    return err ? err->status : OPL_ERR_NOMEM;
  }
  sp.record_steps = 1;
  tslot u0s = {.t = u0};
  /* Outputs without a tape are gathered here first: [nt][N]. */
  opl_real *outs = tape ? NULL : malloc((size_t)nt * (size_t)nd->N * sizeof(opl_real));
  if (!tape && !outs) {
    opl_rk_free(&rk);
    opl_ctx_set_grad_enabled(nd->ci, oldg);
    return opl_err_set(err, OPL_ERR_NOMEM, "opl_nde_solve: out of memory");
  }
  opl_tensor **tout = tape ? us : NULL;
  const int dense = nd->saveat == OPL_NDE_SAVEAT_DENSE;
  if (dense) {
    sp.dense = 1, sp.tout = tout, sp.outs = outs;
    const opl_rk_vops vo = {.vspace = &sp};
    if (!tape && !(sp.dtmp = tv_new(&vo)))
      sp.status = OPL_ERR_NOMEM, snprintf(sp.msg, sizeof sp.msg, "out of memory for the dense output");
  }
  st = sp.status ? sp.status : opl_rk_init(rk, t0, &u0s, &e);
  if (dense && !st) {
    /* Dense output: the steps go to the last output time only (the last step is shortened to
     * land on it); the accepted hook gives every output inside or at the end of a step. */
    for (; sp.next < nt && ts[sp.next] <= t0; sp.next++) {
      nd->save_step[sp.next] = 0;
      const tslot *ys = opl_rk_state(rk);
      if (tape) tout[sp.next] = ys->t;
      else memcpy(outs + (size_t)sp.next * nd->N, ys->t->data, (size_t)nd->N * sizeof(opl_real));
    }
    const double T = ts[nt - 1];
    if (nd->frozen) {
      while (!st && !sp.status && opl_rk_time(rk) < T) {
        int64_t j = nd->nsteps;
        if (j >= nd->nfrozen) {
          st = opl_err_set(&e, OPL_ERR_STATE, "the frozen step sequence ends at t = %.17g before T = %.17g",
                           opl_rk_time(rk), T);
          break;
        }
        st = opl_rk_take_step(rk, nd->fz_h[j], nd->fz_tend[j], &e);
      }
    } else if (opl_rk_time(rk) < T) {
      st = opl_rk_advance(rk, T, &e);
    }
    if (!st && !sp.status && sp.next != nt)
      st = opl_err_set(&e, OPL_ERR_STATE, "output ts[%d] = %.17g was not reached (t = %.17g)", sp.next,
                       ts[sp.next], opl_rk_time(rk));
  }
  for (int i = 0; !dense && !st && i < nt; i++) {
    if (nd->frozen) {
      while (!st && opl_rk_time(rk) < ts[i]) {
        int64_t j = nd->nsteps;
        if (j >= nd->nfrozen) {
          st = opl_err_set(&e, OPL_ERR_STATE, "the frozen step sequence ends at t = %.17g before ts[%d] = %.17g",
                           opl_rk_time(rk), i, ts[i]);
          break;
        }
        st = opl_rk_take_step(rk, nd->fz_h[j], nd->fz_tend[j], &e);
      }
    } else {
      st = opl_rk_advance(rk, ts[i], &e);
    }
    if (st) break;
    nd->save_step[i] = nd->nsteps;
    const tslot *ys = opl_rk_state(rk);
    if (tape) {
      tout[i] = ys->t;
    } else {
      memcpy(outs + (size_t)i * nd->N, ys->t->data, (size_t)nd->N * sizeof(opl_real));
    }
  }
  opl_rk_stats rs;
  opl_rk_get_stats(rk, &rs);
  nd->st.nfev = rs.nfev, nd->st.accepted = rs.accepted, nd->st.rejected = rs.rejected;
  nd->st.t = opl_rk_time(rk);
  if (!st && sp.status) st = sp.status; /* a failure the core did not see (a record) */
  if (sp.dist) { /* a failure on one rank only (a record) stops the solve on every rank */
    opl_err ae = {0};
    snprintf(ae.msg, sizeof ae.msg, "%s", sp.status ? sp.msg : e.msg);
    int ag = opl_dist_agree(st, &ae, NULL, 0);
    if (ag && !st) {
      st = sp.status = ag;
      snprintf(sp.msg, sizeof sp.msg, "%.390s", ae.msg);
    }
  }
  if (st) {
    int rc = sp.status ? sp.status : st;
    if (sp.status)
      opl_err_set(err, rc, "opl_nde_solve: %s (solve stopped at t = %.17g)", sp.msg, nd->st.t);
    else
      opl_err_set(err, rc, "opl_nde_solve: %s", e.msg);
    tv_free(NULL, sp.dtmp);
    opl_rk_free(&rk);
    free(outs);
    opl_ctx_reset(nd->ci);
    opl_ctx_set_grad_enabled(nd->ci, oldg);
    clear_steps(nd);
    return rc;
  }
  tv_free(NULL, sp.dtmp);
  opl_rk_free(&rk);
  opl_ctx_reset(nd->ci);
  opl_ctx_set_grad_enabled(nd->ci, oldg);
  if (nd->nsteps == 0) {
    nd->yfin = tape ? NULL : nd->ckpt_fin;
    if (!tape) memcpy(nd->ckpt_fin, u0->data, (size_t)nd->N * sizeof(opl_real));
  }
  if (!tape) {
    /* The packed output and, when something requires a gradient, the replaying node. */
    const int64_t N = nd->N, S = nd->nsteps, total = nt * N + 2 * S;
    opl_tensor *P = opl_new(c, OPL_DIMS(total));
    if (P) {
      memcpy(P->data, outs, (size_t)(nt * N) * sizeof(opl_real));
      for (int64_t j = 0; j < S; j++) {
        P->data[nt * N + j] = (opl_real)nd->steps[j].err;
        P->data[nt * N + S + j] = (opl_real)nd->steps[j].rho;
      }
      opl_tensor *in[OPL_MAX_INPUTS] = {0};
      int nin = 0;
      if (opl_requires_grad(u0)) in[nin++] = u0;
      for (int i = 0; i < nd->nparams && nin < OPL_MAX_INPUTS; i++)
        if (opl_requires_grad(nd->params[i])) in[nin++] = nd->params[i];
      opl_node *node = nin ? opl_record(c, "nde_checkpoint", ckpt_bw, P, nin, in) : NULL;
      if (node) {
        ckpt_rec *r = opl_arena_alloc(c, sizeof *r);
        if (r) {
          r->nd = nd, r->gen = nd->gen, r->u0 = opl_requires_grad(u0) ? u0 : NULL;
          node->saved = r;
          /* u0 only: the parameters receive their gradients from the replay directly. */
          node->nin = r->u0 ? 1 : 0;
          if (!r->u0) node->in[0] = NULL;
          /* Distributed: the full list as the node's every input (node->more), so that the
           * gradient sums over ranks (core/dist.h) see that the replay writes the parameters'
           * gradients and start their buckets only after it. */
          opl_tensor **all = nd->dist && opl_dist_size() > 1 ? opl_arena_alloc(c, sizeof *all * (size_t)(nd->nparams + 1))
                                                             : NULL;
          if (all) {
            int na = 0;
            if (r->u0) all[na++] = u0;
            for (int i = 0; i < nd->nparams; i++)
              if (opl_requires_grad(nd->params[i])) all[na++] = nd->params[i];
            node->more = all, node->nmore = na;
          }
        }
      }
      for (int i = 0; i < nt; i++)
        us[i] = opl_reshape(c, opl_slice(c, P, 0, (int64_t)i * N, N), u0->rank, u0->shape);
      for (int64_t j = 0; j < S; j++) {
        nd->steps[j].eest = opl_slice(c, P, 0, nt * N + j, 1);
        nd->steps[j].stiff = opl_slice(c, P, 0, nt * N + S + j, 1);
      }
    }
    free(outs);
    if (opl_ctx_status(c))
      return opl_err_set(err, opl_ctx_status(c), "opl_nde_solve: %s", opl_ctx_errmsg(c));
  }
  nd->tlast = ts[nt - 1];
  nd->solved = 1;
  return OPL_OK;
}

/* ------------------------------------------------------------ statistics and records */

void opl_nde_get_stats(const opl_nde *nd, opl_nde_stats *st) {
  *st = nd->st;
  opl_ctx_stats cs;
  opl_ctx_get_stats(nd->ci, &cs);
  st->scratch_high = cs.arena_high;
}

int64_t opl_nde_num_steps(const opl_nde *nd) { return nd->nsteps; }

int opl_nde_step(const opl_nde *nd, int64_t j, double *t, double *h, double *eest, double *rho,
                 opl_err *err) {
  if (j < 0 || j >= nd->nsteps)
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_step: j = %lld outside 0..%lld", (long long)j,
                       (long long)nd->nsteps - 1);
  const nde_step *s = &nd->steps[j];
  if (t) *t = s->t;
  if (h) *h = s->h;
  if (eest) *eest = s->err;
  if (rho) *rho = s->rho;
  return OPL_OK;
}

opl_tensor *opl_nde_eest(const opl_nde *nd, int64_t j) {
  return j >= 0 && j < nd->nsteps ? nd->steps[j].eest : NULL;
}
opl_tensor *opl_nde_stiff(const opl_nde *nd, int64_t j) {
  return j >= 0 && j < nd->nsteps ? nd->steps[j].stiff : NULL;
}

/* ------------------------------------------------------------ regularizers */

/* The per-step scalars (which = 0: EEst, 1: rho) as one (nsteps) tensor. */
static opl_tensor *gather(const opl_nde *nd, opl_ctx *c, int which) {
  opl_tensor **xs = opl_arena_alloc(c, (size_t)nd->nsteps * sizeof *xs);
  if (!xs) return NULL;
  for (int64_t j = 0; j < nd->nsteps; j++) xs[j] = which ? nd->steps[j].stiff : nd->steps[j].eest;
  return opl_concat(c, (int)nd->nsteps, xs, 0);
}

opl_tensor *opl_nde_reg_error(const opl_nde *nd, opl_ctx *c, int mean) {
  if (!nd->solved) {
    opl_ctx_error(c, OPL_ERR_STATE, "opl_nde_reg_error: no successful solve");
    return NULL;
  }
  if (nd->nsteps == 0) return opl_zeros(c, OPL_DIMS(1));
  opl_tensor *h = opl_new(c, OPL_DIMS(nd->nsteps));
  if (!h) return NULL;
  for (int64_t j = 0; j < nd->nsteps; j++)
    h->data[j] = (opl_real)(fabs(nd->steps[j].h) / (mean ? (double)nd->nsteps : 1.0));
  return opl_sum(c, opl_mul(c, gather(nd, c, 0), h));
}

opl_tensor *opl_nde_reg_stiff(const opl_nde *nd, opl_ctx *c, int mean) {
  if (!nd->solved) {
    opl_ctx_error(c, OPL_ERR_STATE, "opl_nde_reg_stiff: no successful solve");
    return NULL;
  }
  if (nd->nsteps == 0) return opl_zeros(c, OPL_DIMS(1));
  if (mean) return opl_mean(c, gather(nd, c, 1));
  int64_t jm = 0; /* the max's gradient goes to the (first) largest step */
  for (int64_t j = 1; j < nd->nsteps; j++)
    if (nd->steps[j].rho > nd->steps[jm].rho) jm = j;
  return opl_scale(c, nd->steps[jm].stiff, 1.0);
}

int opl_nde_local_reg(opl_nde *nd, opl_ctx *c, double t1, double dt, opl_tensor **reg_err,
                      opl_tensor **reg_stiff, double *dt_out, opl_err *err) {
  OPL_ASSERT(nd && c);
  if (!nd->solved)
    return opl_err_set(err, OPL_ERR_STATE, "opl_nde_local_reg: no successful solve");
  if (!(t1 >= nd->t0 && t1 < nd->tlast))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_local_reg: t1 = %.17g outside the span [%.17g, %.17g)", t1,
                       nd->t0, nd->tlast);
  if (!(dt >= 0) || !isfinite(dt))
    return opl_err_set(err, OPL_ERR_ARG, "opl_nde_local_reg: dt = %g (must be > 0, or 0 for the heuristic)", dt);
  if (opl_ctx_status(c))
    return opl_err_set(err, opl_ctx_status(c), "opl_nde_local_reg: the context holds an error: %s", opl_ctx_errmsg(c));
  /* u(t1): cubic Hermite between the ends of the step containing t1 (t_j <= t1 < tend_j). */
  opl_tensor *u1 = opl_new(c, nd->u0_rank, nd->u0_shape);
  if (!u1) return opl_err_set(err, opl_ctx_status(c), "opl_nde_local_reg: %s", opl_ctx_errmsg(c));
  hermite_at(nd, t1, u1->data);
  const int tape = opl_ctx_grad_enabled(c);
  opl_ctx *fc = tape ? c : nd->ci;
  int oldg = opl_ctx_set_grad_enabled(nd->ci, 0);
  opl_ctx_reset(nd->ci);
  tspace sp;
  opl_err e = {0};
  opl_rk *rk = make_rk(nd, &sp, fc, tape, u1, err);
  if (!rk) {
    opl_ctx_set_grad_enabled(nd->ci, oldg);
    return err ? err->status : OPL_ERR_NOMEM;
  }
  tslot us = {.t = u1};
  const double tstop = nd->tlast;
  int st = opl_rk_init(rk, t1, &us, &e);
  if (!st && dt == 0) st = opl_rk_start_step(rk, tstop, &dt, &e);
  if (!st) st = opl_rk_take_step(rk, dt, t1 + dt, &e);
  opl_rk_stats rs;
  opl_rk_get_stats(rk, &rs);
  nd->st.local_nfev = rs.nfev;
  if (st) {
    opl_err e2 = {0};
    rk_fail(&sp, rk, st, &e, &e2);
    opl_err_set(err, e2.status, "opl_nde_local_reg at t1 = %.17g: %s", t1, e2.msg);
  } else if (tape) {
    if (reg_err) *reg_err = opl_scale(c, sp.last_eest, dt);
    if (reg_stiff) *reg_stiff = opl_scale(c, sp.last_stiff, 1.0);
  } else {
    if (reg_err) *reg_err = opl_full(c, OPL_DIMS(1), rs.err_last * dt);
    if (reg_stiff) *reg_stiff = opl_full(c, OPL_DIMS(1), rs.stiff_last);
  }
  opl_rk_free(&rk);
  opl_ctx_reset(nd->ci);
  opl_ctx_set_grad_enabled(nd->ci, oldg);
  if (!st && opl_ctx_status(c))
    st = opl_err_set(err, opl_ctx_status(c), "opl_nde_local_reg: %s", opl_ctx_errmsg(c));
  if (!st && dt_out) *dt_out = dt;
  return st;
}

int opl_nde_local_reg_draw(opl_nde *nd, opl_ctx *c, int biased, uint64_t seed, double *t1_out,
                           opl_tensor **reg_err, opl_tensor **reg_stiff, opl_err *err) {
  OPL_ASSERT(nd);
  if (!nd->solved || nd->nsteps == 0)
    return opl_err_set(err, OPL_ERR_STATE, "opl_nde_local_reg_draw: no successful solve with a step");
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  double t1;
  if (biased) {
    int64_t j = (int64_t)(opl_rng_uniform(&rng) * (double)nd->nsteps);
    if (j >= nd->nsteps) j = nd->nsteps - 1;
    t1 = nd->steps[j].t;
  } else {
    t1 = nd->t0 + opl_rng_uniform(&rng) * (nd->tlast - nd->t0);
    if (t1 >= nd->tlast) t1 = nd->t0;
  }
  if (t1_out) *t1_out = t1;
  return opl_nde_local_reg(nd, c, t1, 0, reg_err, reg_stiff, NULL, err);
}

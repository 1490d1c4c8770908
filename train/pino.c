/* opl train — the physics losses of the physics-informed neural operator. See pino.h. */
#include <math.h>
#include <stdlib.h>

#include "core/ops.h"
#include "train/pino.h"

struct opl_pino {
  double w, v;       /* the weights of the residual and initial-condition terms */
  opl_resid *resid;  /* NULL when w = 0 */
};

int opl_pino_check_weights(double pde_weight, double ic_weight, opl_err *err) {
  if (!(isfinite(pde_weight) && pde_weight >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: pde_weight = %g, expected a finite value >= 0", pde_weight);
  if (!(isfinite(ic_weight) && ic_weight >= 0))
    return opl_err_set(err, OPL_ERR_ARG, "train: ic_weight = %g, expected a finite value >= 0", ic_weight);
  return OPL_OK;
}

int opl_pino_new(const opl_task *task, double pde_weight, double ic_weight, const opl_ds_info *info, opl_pino **out,
                 opl_err *err) {
  *out = NULL;
  int st = opl_pino_check_weights(pde_weight, ic_weight, err);
  if (st) return st;
  if (pde_weight == 0 && ic_weight == 0) return OPL_OK;
  if (!task || task->kind != OPL_TASK_SPACETIME)
    return opl_err_set(err, OPL_ERR_ARG,
                       "the PDE and initial-condition losses need the space-time task (a model over space and time: "
                       "--dim 2 on 1-D data, --dim 3 on 2-D data), not the %s task",
                       opl_task_name(task ? task->kind : -1));
  if (ic_weight > 0 && task->t_in != 0)
    return opl_err_set(err, OPL_ERR_ARG,
                       "the initial-condition loss needs the prediction to start at t = 0 (--T-in 0: the initial state "
                       "in, t = 0 .. T out), this run predicts from %lld input frames", (long long)task->t_in);
  opl_pino *p = calloc(1, sizeof *p);
  if (!p) return opl_err_set(err, OPL_ERR_NOMEM, "out of memory");
  p->w = pde_weight;
  p->v = ic_weight;
  if (pde_weight > 0 && opl_ds_per_sample_coords(info)) {
    free(p);
    return opl_err_set(err, OPL_ERR_ARG, "the PDE loss needs one domain length and one time step for the whole set; "
                       "'%s' stores per-sample domain lengths or times (generate with a fixed L and T)", info->path);
  }
  if (pde_weight > 0) {
    /* The times of the predicted frames: t = 0 and t[0 .. t_out) for T_in = 0, else
     * t[t_in .. t_in + t_out). They must be uniform: the time rule of the residual. */
    int64_t nf = task->t_out + (task->t_in == 0), first = task->t_in == 0 ? -1 : task->t_in;
    if (nf < 3) {
      free(p);
      return opl_err_set(err, OPL_ERR_ARG, "the PDE loss needs >= 3 predicted frames (its time derivative), this run "
                         "predicts %lld", (long long)nf);
    }
    if (!info->t) {
      free(p);
      return opl_err_set(err, OPL_ERR_ARG, "the PDE loss needs the frame times of '%s' (dataset t), which it does not store",
                         info->path);
    }
    double t0 = first < 0 ? 0.0 : info->t[first], dt = info->t[first + 1] - t0;
    for (int64_t j = 1; j < nf; j++) {
      double tj = info->t[first + j], step = tj - (j == 1 ? t0 : info->t[first + j - 1]);
      if (!(fabs(step - dt) <= 1e-6 * fabs(dt)) || !(dt > 0)) {
        free(p);
        return opl_err_set(err, OPL_ERR_ARG, "the PDE loss needs uniformly spaced frames; in '%s' the step before t = %g "
                           "is %g, the first %g", info->path, tj, step, dt);
      }
    }
    opl_resid_params rp;
    opl_err e;
    if ((st = opl_resid_from_provenance(info->attrs, info->nattrs, dt, info->path, &rp, &e)) ||
        !(p->resid = opl_resid_new(&rp, &e))) {
      free(p);
      return opl_err_set(err, st ? st : e.status, "%s", opl_err_text(&e));
    }
  }
  *out = p;
  return OPL_OK;
}

void opl_pino_free(opl_pino **pp) {
  if (!pp || !*pp) return;
  opl_resid_free(&(*pp)->resid);
  free(*pp);
  *pp = NULL;
}

const opl_resid *opl_pino_resid(const opl_pino *p) { return p ? p->resid : NULL; }

opl_tensor *opl_pino_loss(opl_ctx *c, opl_pino *p, opl_tensor *loss, opl_tensor *pred, opl_tensor *x, double *pde_sum,
                          double *ic_sum) {
  if (pde_sum) *pde_sum = NAN;
  if (ic_sum) *ic_sum = NAN;
  if (!p || !loss || opl_ctx_status(c)) return loss;
  if (!opl_check_input(c, "pino_loss", "pred", pred, -1, 0)) return NULL;
  int64_t B = pred->shape[0], per = pred->numel / B, P = per / pred->shape[1];
  opl_tensor *total = loss;
  if (p->w > 0) {
    /* sum_b mean R_b^2 = sum R^2 / (T P) */
    opl_tensor *s = opl_scale(c, opl_sum(c, opl_square(c, opl_resid_op(c, p->resid, pred))), 1.0 / (double)per);
    if (!s) return NULL;
    if (pde_sum) *pde_sum = (double)s->data[0];
    total = opl_add(c, total, opl_scale(c, s, p->w));
  }
  if (p->v > 0) {
    if (!opl_check_input(c, "pino_loss", "x", x, pred->rank, 0)) return NULL;
    opl_tensor *d = opl_sub(c, opl_slice(c, pred, 1, 0, 1), x);
    opl_tensor *s = opl_scale(c, opl_sum(c, opl_square(c, d)), 1.0 / (double)P);
    if (!s) return NULL;
    if (ic_sum) *ic_sum = (double)s->data[0];
    total = opl_add(c, total, opl_scale(c, s, p->v));
  }
  return total;
}

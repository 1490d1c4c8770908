/* node_steps -- the accepted steps of a trained neural ODE's solve of one test trajectory, to see
 * what sets the step size (experiments/node/results.md, section 6): per step j its start time
 * t_j, size h_j, the controller's error norm EEst_j (a step is accepted when EEst <= 1,
 * solvers/rk.h) and the growth h_j / h_{j-1}. The solve is opl eval's (train/evaluate.h): one
 * trajectory from its first stored snapshot through the stored times, with the model's solver,
 * tolerances and output mode; the trajectory printed is the last of the last NTEST samples.
 *
 * usage: node_steps MODEL.h5 DATA.h5 [NTEST]   (NTEST default 1)
 * stdout: "# model ..., sample S: N accepted, R rejected, NFE E", a header line and one line per
 * step "j t h eest growth", then "# EEst: mean M (h-weighted W), max X; steps with EEst < 0.1: K".
 * Exit status 0, 1 on failure (the message on stderr), 2 usage. */
#include <stdio.h>
#include <stdlib.h>

#include "operators/node_model.h"
#include "train/evaluate.h"

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: node_steps MODEL.h5 DATA.h5 [NTEST]\n");
    return 2;
  }
  long long ntest = argc == 4 ? atoll(argv[3]) : 1;
  if (ntest < 1) {
    fprintf(stderr, "node_steps: NTEST expects an integer >= 1, got '%s'\n", argv[3]);
    return 2;
  }
  opl_err e = {0};
  opl_trained m;
  if (opl_trained_load(argv[1], &m, &e)) {
    fprintf(stderr, "node_steps: %s\n", e.msg);
    return 1;
  }
  const opl_nde *nd = opl_node_model_nde(&m.model);
  if (!nd) {
    fprintf(stderr, "node_steps: '%s' holds a %s model, not a neural ODE\n", argv[1], m.model.ops->name);
    opl_trained_free(&m);
    return 1;
  }
  opl_ds *ds = opl_ds_open(argv[2], NULL, &e);
  if (!ds) {
    fprintf(stderr, "node_steps: %s\n", e.msg);
    opl_trained_free(&m);
    return 1;
  }
  opl_eval_opts o = {.ntest = ntest, .sub = 1, .batch = 1};
  opl_eval_result r;
  int st = opl_evaluate(&m, ds, &o, &r, &e);
  if (st) {
    fprintf(stderr, "node_steps: %s\n", e.msg);
  } else {
    /* the nde holds the last solve: the last sample's */
    opl_nde_stats s;
    opl_nde_get_stats(nd, &s);
    int64_t n = opl_nde_num_steps(nd), small = 0;
    printf("# model %s, sample %lld: %lld accepted, %lld rejected, NFE %lld; relative L2 %.4g\n", argv[1],
           (long long)r.samples[r.n - 1], (long long)s.accepted, (long long)s.rejected, (long long)s.nfev,
           r.rel[r.n - 1]);
    printf("%4s %12s %12s %12s %8s\n", "j", "t", "h", "eest", "growth");
    double sum = 0, wsum = 0, hsum = 0, mx = 0, hprev = 0;
    for (int64_t j = 0; j < n && !st; j++) {
      double t, h, eest;
      if ((st = opl_nde_step(nd, j, &t, &h, &eest, NULL, &e))) {
        fprintf(stderr, "node_steps: %s\n", e.msg);
        break;
      }
      if (j) printf("%4lld %12.6g %12.6g %12.4g %8.3f\n", (long long)j, t, h, eest, h / hprev);
      else printf("%4lld %12.6g %12.6g %12.4g %8s\n", (long long)j, t, h, eest, "-");
      sum += eest, wsum += eest * h, hsum += h, hprev = h;
      if (eest > mx) mx = eest;
      if (eest < 0.1) small++;
    }
    if (!st && n > 0)
      printf("# EEst: mean %.4g (h-weighted %.4g), max %.4g; steps with EEst < 0.1: %lld of %lld\n", sum / (double)n,
             wsum / hsum, mx, (long long)small, (long long)n);
  }
  opl_eval_result_free(&r);
  opl_ds_close(&ds);
  opl_trained_free(&m);
  return st ? 1 : 0;
}

/* opl eval MODEL.h5 for a coordinate network (opl train pinn): the network against opl's reference
 * solution of its problem on the uniform grid of the domain (that of opl predict).
 *
 *   opl eval MODEL.h5 [--nx NX] [--nt NT] [--plot FILE.png]
 *
 * Prints exactly one line on stdout, "relative L2: X" = ||u - u_ref|| / ||u_ref|| over the grid
 * (x [NX] with both ends, t [NT] from 0 to T inclusive; default 256 x 101), and the model and
 * the maximum error on stderr. --plot draws three colour maps over (t, x), t across and x up:
 * reference, prediction (on the reference's colour scale) and error (prediction - reference).
 * References: pde/pinn_problems.h (Burgers: the Cole-Hopf solution; Allen-Cahn and KdV: ETDRK4 on
 * a fine grid).
 * Exit status: 0, 1 runtime failure, 2 usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "cli/plot.h"
#include "train/pinn.h"

/* 1 if path is an opl checkpoint of a PINN model (attribute model = "pinn"). */
int cli_is_pinn_model(const char *path) {
  opl_kv *kv = NULL;
  int n = 0;
  if (opl_checkpoint_read_meta(path, &kv, &n, NULL)) return 0;
  const opl_kv *m = opl_kv_find(kv, n, "model");
  int yes = m && m->type == OPL_KV_STR && m->s && !strcmp(m->s, "pinn");
  opl_kv_free(&kv, n);
  return yes;
}

int cli_eval_pinn(int argc, char **argv) {
  int64_t nx = 256, nt = 101, threads = 0;
  static const char *plot;
  plot = NULL;
  const cli_opt opts[] = {
      {"nx", CLI_INT, &nx, "points in x, both ends included (default 256)"},
      {"nt", CLI_INT, &nt, "points in t from 0 to T inclusive (default 101)"},
      {"plot", CLI_STRING, &plot, "draw reference, prediction and error over (t, x) into this PNG"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("eval", "MODEL.h5 [--nx NX --nt NT] [--plot FILE.png]  (a model of opl train pinn)", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "opl eval: a PINN model takes no data set: expected MODEL.h5 alone\n");
    return 2;
  }
  if (nx < 2 || nt < 2 || nx > (1 << 20) || nt > (1 << 20) || nx * nt > (1 << 28)) {
    fprintf(stderr, "opl eval: --nx %lld --nt %lld: expected 2..1048576 points each, at most 2^28 in all\n", (long long)nx,
            (long long)nt);
    return 2;
  }
  const cli_file outs[] = {{"--plot", plot}}, ins[] = {{"MODEL.h5", pos[0]}};
  if (cli_outputs_check("eval", outs, 1, ins, 1)) return 2;
  if (plot && !cli_plot_available()) {
    fprintf(stderr, "opl eval: --plot: this build has no plotting (cairo)\n");
    return 2;
  }
  if (threads > 0) opl_set_num_threads((int)threads);
  opl_err e = {0};
  opl_model m;
  if (opl_model_load(pos[0], &m, &e)) {
    fprintf(stderr, "opl eval: cannot load the model: %s\n", e.msg);
    return 1;
  }
  const opl_pinn *net = m.self;
  int64_t n = nx * nt;
  double *x = malloc(sizeof(double) * (size_t)nx), *t = malloc(sizeof(double) * (size_t)nt),
         *u = malloc(sizeof(double) * (size_t)n), *ur = malloc(sizeof(double) * (size_t)n);
  int status = 0;
  if (!x || !t || !u || !ur) {
    fprintf(stderr, "opl eval: out of memory\n");
    status = 1;
  } else if (opl_pinn_predict_grid(&m, nx, nt, x, t, u, &e)) {
    fprintf(stderr, "opl eval: %s\n", opl_err_text(&e));
    status = 1;
  } else if (opl_pinn_reference(net->prob, (int)nx, (int)nt, NULL, NULL, NULL, ur, NULL, &e)) {
    fprintf(stderr, "opl eval: reference solution: %s\n", opl_err_text(&e));
    status = 1;
  } else {
    double num = 0, den = 0, mx = 0;
    for (int64_t k = 0; k < n; k++) {
      double d = u[k] - ur[k];
      num += d * d;
      den += ur[k] * ur[k];
      mx = fmax(mx, fabs(d));
    }
    double rel = sqrt(num / den);
    printf("relative L2: %.4e\n", rel);
    fflush(stdout);
    char desc[256];
    m.ops->describe(m.self, desc, sizeof desc);
    fprintf(stderr, "opl eval: %s on %lld x %lld points (t, x); max |error| %.3e\n", desc, (long long)nt, (long long)nx, mx);
    if (plot) {
      opl_real *buf = malloc(sizeof(opl_real) * (size_t)(2 * n)); /* reference [nt, nx], prediction [nt, nx] */
      if (!buf) {
        fprintf(stderr, "opl eval: --plot: out of memory\n");
        status = 1;
      } else {
        for (int64_t k = 0; k < n; k++) buf[k] = (opl_real)ur[k], buf[n + k] = (opl_real)u[k];
        char label[128], title[384], msg[512];
        snprintf(label, sizeof label, "%s, relative L2 %.2e", net->prob->name, rel);
        snprintf(title, sizeof title, "%s", desc);
        cli_plot_sample ps = {.label = label, .input = NULL, .truth = buf, .pred = buf + n};
        cli_plot_2d_style st = {.input_name = NULL, .truth_name = "reference u", .pred_name = "prediction u",
                                .err_name = "error (prediction - reference)", .across = "t", .up = "x"};
        if (cli_plot_2d_styled(plot, title, 1, &ps, nt, nx, &st, msg, sizeof msg)) {
          fprintf(stderr, "opl eval: --plot: %s\n", msg);
          status = 1;
        } else {
          fprintf(stderr, "opl eval: plot written to '%s'\n", plot);
        }
        free(buf);
      }
    }
  }
  free(x);
  free(t);
  free(u);
  free(ur);
  opl_model_free(&m);
  return status;
}

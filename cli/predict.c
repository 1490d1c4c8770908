/* opl predict — a trained coordinate network (opl train pinn) on the uniform grid of its problem.
 *
 *   opl predict MODEL.h5 --nx NX --nt NT -o OUT.h5
 *
 * Writes datasets x [NX] (from x0 to x1, both ends included), t [NT] (from 0 to T inclusive) and
 * u [NT, NX] (float64), with the model path and the problem as attributes: readable with h5py
 * alone. Exit status: 0, 1 runtime failure, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "cli/progress.h"
#include "train/pinn.h"

int cli_predict(int argc0, char **argv0) {
  int argc;
  char **argv = cli_short_out(argc0, argv0, &argc);
  if (!argv) return 1;
  int64_t nx = 256, nt = 101, threads = 0;
  static const char *out;
  out = NULL;
  const cli_opt opts[] = {
      {"nx", CLI_INT, &nx, "points in x, both ends included (default 256)"},
      {"nt", CLI_INT, &nt, "points in t from 0 to T inclusive (default 101)"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"out", CLI_STRING, &out, "the output file (-o)"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("predict", "MODEL.h5 --nx NX --nt NT -o OUT.h5", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                     pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1 || !out) {
    fprintf(stderr, "opl predict: expected MODEL.h5 and -o OUT.h5; see opl predict --help\n");
    return 2;
  }
  if (nx < 2 || nt < 2 || nx > (1 << 20) || nt > (1 << 20) || nx * nt > (1 << 28)) {
    fprintf(stderr, "opl predict: --nx %lld --nt %lld: expected 2..1048576 points each, at most 2^28 in all\n",
            (long long)nx, (long long)nt);
    return 2;
  }
  const cli_file outs[] = {{"-o", out}}, ins[] = {{"MODEL.h5", pos[0]}};
  if (cli_outputs_check("predict", outs, 1, ins, 1)) return 2;
  if (threads > 0) opl_set_num_threads((int)threads);
  opl_err e = {0};
  opl_model m;
  if (opl_model_load(pos[0], &m, &e)) {
    fprintf(stderr, "opl predict: cannot load the model: %s\n", e.msg);
    return 1;
  }
  if (strcmp(m.ops->name, "pinn")) {
    fprintf(stderr, "opl predict: '%s' is a %s model; opl predict evaluates coordinate networks (opl train pinn)\n",
            pos[0], m.ops->name);
    opl_model_free(&m);
    return 2;
  }
  double *x = malloc(sizeof(double) * (size_t)nx), *t = malloc(sizeof(double) * (size_t)nt),
         *u = malloc(sizeof(double) * (size_t)(nx * nt));
  int st = !x || !t || !u ? opl_err_set(&e, OPL_ERR_NOMEM, "predict: out of memory")
                          : opl_pinn_predict_grid(&m, nx, nt, x, t, u, &e);
  if (!st) {
    opl_h5w *w = opl_h5w_create(out, &e);
    if (!w) st = e.status;
    else {
      int64_t sx[1] = {nx}, stt[1] = {nt}, su[2] = {nt, nx};
      const opl_pinn *net = m.self;
      opl_h5w_put_array(w, "x", 1, sx, 0, x, OPL_DT_F64, OPL_DT_F64, &e);
      opl_h5w_put_array(w, "t", 1, stt, 0, t, OPL_DT_F64, OPL_DT_F64, &e);
      opl_h5w_put_array(w, "u", 2, su, 0, u, OPL_DT_F64, OPL_DT_F64, &e);
      opl_kv kv[] = {OPL_KVS("content", "opl predict: u [nt, nx] of a coordinate network on the uniform grid x [nx], t [nt]"),
                     OPL_KVS("model", pos[0]), OPL_KVS("equation", net->prob->name), OPL_KVI("nx", nx),
                     OPL_KVI("nt", nt)};
      opl_h5w_attrs(w, "/", kv, (int)(sizeof kv / sizeof kv[0]), &e);
      st = opl_h5w_commit(&w, &e);
    }
  }
  if (st) fprintf(stderr, "opl predict: %s\n", opl_err_text(&e));
  else fprintf(stderr, "opl predict: u on %lld x %lld points (t, x) written to '%s'\n", (long long)nt, (long long)nx, out);
  free(x);
  free(t);
  free(u);
  opl_model_free(&m);
  return st ? 1 : 0;
}

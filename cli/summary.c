/* opl summary — the layer table of a model: a model kind with its architecture flags, or a
 * model / checkpoint file (its stored configuration).
 *
 *   opl summary fno [--preset fno1d|fno2d|fno2d_time|fno3d] [--dim 1|2|3] [--modes K] [--width W]
 *                   [--layers L] [--proj P] [--T-in N]
 *   opl summary mgno [--preset P] [options]
 *   opl summary sinenet [--preset ins-k8|...] [--waves K] [--hidden H] [--mult M] [--in-channels C]
 *                       [--out-channels C] [--padding zeros|circular]
 *   opl summary MODEL.h5
 *
 * Prints the model's description, one row per layer (name, output shape, parameters; shapes
 * symbolic: N the batch, X, Y, Z the spatial extents) and, last, `parameters: N` (the sum of
 * the rows, equal to the size of the model's parameter set). For an FNO reference
 * configuration it also prints the number the reference script's count_params gives (which
 * counts BatchNorm layers the script defines but never calls; operators/fno.h).
 * Without --preset, --dim 1 is fourier_1d.py's model, 2 fourier_2d_time.py's (--T-in input
 * frames, as opl train fno --dim 2 on frames), 3 fourier_3d.py's; the flags then override it,
 * as in opl train fno. Exit status: 0, 1 unreadable file, 2 usage error. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "operators/fno.h"
#include "operators/mgno.h"
#include "operators/model.h"
#include "operators/sinenet.h"

opl_fno_config cli_fno_config(int ref, int64_t modes, int64_t width, int64_t layers, int64_t proj) {
  opl_fno_config mc = opl_fno_config_reference((opl_fno_ref)ref);
  if (modes > 0)
    for (int a = 0; a < mc.d; a++) mc.modes[a] = (int)modes;
  if (width > 0) mc.width = width;
  mc.layers = (int)layers;
  mc.proj_channels = proj;
  return mc;
}

static const struct {
  const char *name, *script;
  opl_fno_ref ref;
} presets[] = {
    {"fno1d", "fourier_1d.py", OPL_FNO_REF_1D},
    {"fno2d", "fourier_2d.py", OPL_FNO_REF_2D},
    {"fno2d_time", "fourier_2d_time.py", OPL_FNO_REF_2D_TIME},
    {"fno3d", "fourier_3d.py", OPL_FNO_REF_3D},
};
#define NPRESETS ((int)(sizeof presets / sizeof presets[0]))

/* Print the table of m; ref >= 0: also the reference script's count for that configuration. */
static void print_summary(const opl_model *m, int ref) {
  char desc[256];
  m->ops->describe(m->self, desc, sizeof desc);
  printf("%s\n", desc);
  opl_model_row rows[64];
  int64_t total = 0;
  int n = opl_model_summary(m, rows, 64, &total);
  printf("  %-40s %-22s %12s\n", "layer", "output shape", "parameters");
  int64_t sum = 0;
  for (int i = 0; i < n && i < 64; i++) {
    printf("  %-40s %-22s %12lld\n", rows[i].name, rows[i].shape, (long long)rows[i].params);
    sum += rows[i].params;
  }
  if (n > 64) printf("  ... %d more layers\n", n - 64);
  const opl_fno *f = opl_model_fno(m);
  if (f && ref >= 0) {
    int64_t rc = opl_fno_reference_param_count(&f->cfg, (opl_fno_ref)ref);
    if (rc >= 0 && rc != total)
      printf("reference %s count_params: %lld (%lld more: BatchNorm layers it defines but never calls)\n",
             presets[ref].script, (long long)rc, (long long)(rc - total));
    else if (rc >= 0)
      printf("reference %s count_params: %lld\n", presets[ref].script, (long long)rc);
  }
  if (n <= 64 && sum != total) printf("note: the rows add up to %lld\n", (long long)sum);
  printf("parameters: %lld\n", (long long)total);
}

static int is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* opl summary mgno [--preset darcy-rough|darcy-smooth|ns] [--layers L] [--channels-u C]
 * [--in-channels C] [--num-iteration "1,0;1,0;2,0"] [--padding zeros|circular|reflect]: the flags
 * override the preset's (default darcy-rough). */
static int summary_mgno(int argc, char **argv) {
  static const char *iters, *padding, *pre;
  iters = padding = pre = NULL;
  int64_t layers = -1, cu = -1, cin = -1;
  const cli_opt opts[] = {
      {"preset", CLI_STRING, &pre, OPL_MGNO_PRESETS " (default darcy-rough)"},
      {"layers", CLI_INT, &layers, "MgNO layers (-1: the preset's)"},
      {"channels-u", CLI_INT, &cu, "u-channels (-1: the preset's)"},
      {"in-channels", CLI_INT, &cin, "input (f) channels (-1: the preset's)"},
      {"num-iteration", CLI_STRING, &iters, "[pre,post] smoothing per level, levels separated by ';' (\"1,0;2,0\")"},
      {"padding", CLI_STRING, &padding, "zeros (Dirichlet), circular (periodic) or reflect"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("summary", "mgno [--preset P] [options]", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                     pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  opl_err e = {0};
  opl_mgno_config mc;
  if (opl_mgno_preset(pre ? pre : "darcy-rough", &mc, &e)) {
    fprintf(stderr, "opl summary: --preset: %s\n", e.msg);
    return 2;
  }
  if (layers != -1) mc.layers = (int)(layers < 0 || layers > 1000 ? 0 : layers);
  if (cu != -1) mc.channels_u = cu;
  if (cin != -1) mc.in_channels = cin;
  if (iters && opl_mgno_parse_iters(iters, &mc, &e)) {
    fprintf(stderr, "opl summary: --num-iteration: %s\n", e.msg);
    return 2;
  }
  if (padding) {
    if (!strcmp(padding, "zeros")) mc.pad = OPL_PAD_ZERO;
    else if (!strcmp(padding, "circular")) mc.pad = OPL_PAD_CIRCULAR;
    else if (!strcmp(padding, "reflect")) mc.pad = OPL_PAD_REFLECT;
    else {
      fprintf(stderr, "opl summary: --padding expects zeros, circular or reflect, got '%s'\n", padding);
      return 2;
    }
  }
  opl_model m;
  if (opl_model_create(&m, &opl_mgno_kind, &mc, NULL, &e)) {
    fprintf(stderr, "opl summary: %s\n", e.msg);
    return 2;
  }
  print_summary(&m, -1);
  opl_model_free(&m);
  return 0;
}

/* opl summary sinenet [--preset P] [--waves K] [--hidden H] [--mult M] [--in-channels C]
 * [--out-channels C] [--padding zeros|circular]: the flags override the preset's (default
 * ins-k8, the paper's 35,490,219-parameter model). */
static int summary_sinenet(int argc, char **argv) {
  static const char *padding, *pre;
  padding = pre = NULL;
  int64_t waves = -1, hidden = -1, cin = -1, cout = -1;
  double mult = -1;
  const cli_opt opts[] = {
      {"preset", CLI_STRING, &pre, OPL_SINENET_PRESETS " (default ins-k8)"},
      {"waves", CLI_INT, &waves, "waves K (-1: the preset's)"},
      {"hidden", CLI_INT, &hidden, "hidden width H (-1: the preset's)"},
      {"mult", CLI_DOUBLE, &mult, "width multiplier m: widths int(H m^k) (-1: the preset's)"},
      {"in-channels", CLI_INT, &cin, "input channels, T_hist x fields (-1: the preset's)"},
      {"out-channels", CLI_INT, &cout, "output channels (-1: the preset's)"},
      {"padding", CLI_STRING, &padding, "zeros or circular (periodic)"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("summary", "sinenet [--preset P] [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  opl_err e = {0};
  opl_sinenet_config sc;
  if (opl_sinenet_preset(pre ? pre : "ins-k8", &sc, &e)) {
    fprintf(stderr, "opl summary: --preset: %s\n", e.msg);
    return 2;
  }
  if (waves != -1) sc.waves = (int)(waves < 0 || waves > 1000 ? 0 : waves);
  if (hidden != -1) sc.hidden = hidden;
  if (mult != -1) sc.mult = mult;
  if (cin != -1) sc.in_channels = cin;
  if (cout != -1) sc.out_channels = cout;
  if (padding) {
    if (!strcmp(padding, "zeros")) sc.pad = OPL_PAD_ZERO;
    else if (!strcmp(padding, "circular")) sc.pad = OPL_PAD_CIRCULAR;
    else {
      fprintf(stderr, "opl summary: --padding expects zeros or circular, got '%s'\n", padding);
      return 2;
    }
  }
  opl_model m;
  if (opl_model_create(&m, &opl_sinenet_kind, &sc, NULL, &e)) {
    fprintf(stderr, "opl summary: %s\n", e.msg);
    return 2;
  }
  print_summary(&m, -1);
  opl_model_free(&m);
  return 0;
}

int cli_summary(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (argv[i][0] != '-') {
      if (!strcmp(argv[i], "mgno")) return summary_mgno(argc, argv);
      if (!strcmp(argv[i], "sinenet")) return summary_sinenet(argc, argv);
      break;
    }
  static const char *preset;
  preset = NULL;
  int64_t dim = 0, modes = -1, width = -1, layers = 4, proj = 128, t_in = 10;
  const cli_opt opts[] = {
      {"preset", CLI_STRING, &preset, "fno1d, fno2d, fno2d_time or fno3d: a reference script's configuration"},
      {"dim", CLI_INT, &dim, "1: FNO-1d; 2: FNO-2d time stepping; 3: FNO-3d (0: the preset's, else 1)"},
      {"modes", CLI_INT, &modes, "Fourier modes per axis (-1: the preset's)"},
      {"width", CLI_INT, &width, "channels of the Fourier layers (-1: the preset's)"},
      {"layers", CLI_INT, &layers, "Fourier layers"},
      {"proj", CLI_INT, &proj, "hidden channels of the projection"},
      {"T-in", CLI_INT, &t_in, "input frames of the time models (--dim 2, 3)"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("summary", "MODEL|MODEL.h5 [--preset P] [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  char kinds[128];
  if (npos != 1) {
    fprintf(stderr, "opl summary: expected one MODEL (a kind: %s) or a MODEL.h5 file, got %d arguments\n",
            opl_model_kind_names(kinds, sizeof kinds), npos);
    return 2;
  }
  const opl_model_kind *kind = opl_model_kind_find(pos[0]);
  opl_err e = {0};
  opl_model m;
  if (!kind) {
    if (!is_file(pos[0])) {
      fprintf(stderr, "opl summary: '%s' is neither a model kind (%s) nor a model file\n", pos[0],
              opl_model_kind_names(kinds, sizeof kinds));
      return strstr(pos[0], ".h5") ? 1 : 2;
    }
    if (opl_model_load(pos[0], &m, &e)) {
      fprintf(stderr, "opl summary: %s\n", e.msg);
      return 1;
    }
    print_summary(&m, -1);
    opl_model_free(&m);
    return 0;
  }
  if (kind != &opl_fno_kind) {
    fprintf(stderr, "opl summary: model '%s' has no architecture flags on the command line; give a MODEL.h5 file of it\n",
            kind->name);
    return 2;
  }
  int ref = -1;
  if (preset) {
    for (int i = 0; i < NPRESETS; i++)
      if (!strcmp(preset, presets[i].name)) ref = (int)presets[i].ref;
    if (ref < 0) {
      fprintf(stderr, "opl summary: --preset expects fno1d, fno2d, fno2d_time or fno3d, got '%s'\n", preset);
      return 2;
    }
  }
  if (dim < 0 || dim > 3) {
    fprintf(stderr, "opl summary: --dim expects 1, 2 or 3, got %lld\n", (long long)dim);
    return 2;
  }
  if (ref < 0) ref = dim == 3 ? OPL_FNO_REF_3D : dim == 2 ? OPL_FNO_REF_2D_TIME : OPL_FNO_REF_1D;
  if (dim && dim != opl_fno_config_reference((opl_fno_ref)ref).d) {
    fprintf(stderr, "opl summary: --dim %lld contradicts --preset %s (d = %d)\n", (long long)dim, preset,
            opl_fno_config_reference((opl_fno_ref)ref).d);
    return 2;
  }
  if ((modes != -1 && modes < 1) || (width != -1 && width < 1) || modes > 1 << 20 || width > 1 << 20 || layers < 1 ||
      layers > OPL_FNO_MAX_LAYERS || proj < 1 || t_in < 1 || t_in > 1 << 20) {
    fprintf(stderr, "opl summary: --modes, --width, --proj and --T-in expect integers >= 1, --layers 1..%d (got modes "
                    "%lld, width %lld, layers %lld, proj %lld, T-in %lld)\n",
            OPL_FNO_MAX_LAYERS, (long long)modes, (long long)width, (long long)layers, (long long)proj, (long long)t_in);
    return 2;
  }
  opl_fno_config mc = cli_fno_config(ref, modes, width, layers, proj);
  if (ref == OPL_FNO_REF_2D_TIME || ref == OPL_FNO_REF_3D) mc.in_channels = t_in;
  if (opl_model_create(&m, kind, &mc, NULL, &e)) {
    fprintf(stderr, "opl summary: %s\n", e.msg);
    return 2;
  }
  print_summary(&m, ref);
  opl_model_free(&m);
  return 0;
}

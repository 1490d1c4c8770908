/* opl info — what is in an HDF5 file opl can read: a data set (native opl layout, FNO MATLAB
 * v7.3 .mat, PDEBench 1-D) or an opl checkpoint. Prints the layout, shapes, dtype, N, T,
 * resolution, coordinates, the provenance attributes, value ranges of a few samples and whether
 * opl's checksum block verifies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/io.h"
#include "core/opl.h"
#include "datasets/h5layout.h"

static const char usage[] =
    "FILE.h5 [--samples K]\n\n"
    "Summarizes a data set (opl native, FNO .mat v7.3, PDEBench) or an opl checkpoint: layout,\n"
    "shapes, dtype, N, T, resolution, provenance attributes, value ranges of the first K samples,\n"
    "and whether opl's checksum verifies (every read of an opl file checks it). Exit status: 0,\n"
    "1 when the file cannot be read or is damaged, 2 usage error.";

/* Print kv[0..n) as "key value" lines. */
static void print_kv(const opl_kv *kv, int n, const char *indent) {
  for (int i = 0; i < n; i++) {
    const opl_kv *k = &kv[i];
    if (k->type == OPL_KV_STR) printf("%s%-16s %s\n", indent, k->key, k->s);
    else if (k->type == OPL_KV_INT) printf("%s%-16s %lld\n", indent, k->key, (long long)k->i);
    else printf("%s%-16s %.17g\n", indent, k->key, k->d);
  }
}

/* min, max, mean, rms of v[n] into s[4]. */
static void stats(const opl_real *v, int64_t n, double s[4]) {
  double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = (double)v[i];
    mn = fmin(mn, x);
    mx = fmax(mx, x);
    sum += x;
    sq += x * x;
  }
  s[0] = mn, s[1] = mx, s[2] = sum / (double)n, s[3] = sqrt(sq / (double)n);
}

/* Print the range of a coordinate v[n] (or that the file has none). */
static void coord_line(const char *name, const double *v, int64_t n) {
  if (!v || n < 1) {   /* opl_ds_open refuses empty axes; never index an empty array */
    printf("  %-8s (not stored)\n", name);
    return;
  }
  if (n > 1) printf("  %-8s %.6g .. %.6g (%lld values, step %.6g)\n", name, v[0], v[n - 1], (long long)n, v[1] - v[0]);
  else printf("  %-8s %.6g\n", name, v[0]);
}

/* Summary of a data set (any layout opl_ds_open reads); value ranges of the first ksamples.
 * Returns the exit status (0, or 1 when it cannot be read). */
static int info_dataset(const char *path, int64_t ksamples) {
  opl_err e = {0};
  opl_ds *d = opl_ds_open(path, NULL, &e);
  if (!d) {
    fprintf(stderr, "opl info: %s\n", e.msg);
    if (strstr(e.msg, "unfinished"))
      fprintf(stderr, "opl info: an interrupted `opl generate` left this file; rerun the same command to resume it\n");
    return 1;
  }
  const opl_ds_info *in = opl_ds_get_info(d);
  const opl_ds_dims *m = &in->dims;
  printf("layout     %s%s\n", opl_ds_layout_name(in->layout),
         in->layout == OPL_DS_NATIVE ? " (opl native)" : in->layout == OPL_DS_FNO_MAT ? " (FNO MATLAB v7.3 .mat)"
                                                                                     : " (PDEBench)");
  printf("dtype      float%d\n", in->bits);
  printf("samples    N = %lld\n", (long long)m->n);
  printf("frames     T = %lld after t = 0%s\n", (long long)m->t,
         in->t0_dropped ? " (the stored t = 0 frame is not counted)" : "");
  if (m->sdim == 2) printf("space      2-D, %lld x %lld\n", (long long)m->x, (long long)m->y);
  else printf("space      1-D, %lld points\n", (long long)m->x);
  char sa[96], su[96];
  if (m->sdim == 2) {
    snprintf(sa, sizeof sa, "[%lld, %lld, %lld]", (long long)m->n, (long long)m->x, (long long)m->y);
    snprintf(su, sizeof su, "[%lld, %lld, %lld, %lld]", (long long)m->n, (long long)m->t, (long long)m->x,
             (long long)m->y);
  } else {
    snprintf(sa, sizeof sa, "[%lld, %lld]", (long long)m->n, (long long)m->x);
    snprintf(su, sizeof su, "[%lld, %lld, %lld]", (long long)m->n, (long long)m->t, (long long)m->x);
  }
  printf("input a    %s from dataset '%s'%s\n", sa, in->a_name, in->a_from_u ? " (frame t = 0)" : "");
  printf("solution u %s from dataset '%s'%s\n", su, in->u_name, in->transposed ? " (stored with MATLAB's reversed axes)" : "");
  printf("coordinates\n");
  coord_line("x", in->x, m->x);
  if (m->sdim == 2) coord_line("y", in->y, m->y);
  if (in->t_ps) {
    /* per-sample times: each row increases (checked on open); ranges over the samples */
    double f0 = INFINITY, f1 = -INFINITY, l0 = INFINITY, l1 = -INFINITY;
    for (int64_t i = 0; i < m->n; i++) {
      const double *r = opl_ds_sample_times(in, i);
      f0 = fmin(f0, r[0]), f1 = fmax(f1, r[0]), l0 = fmin(l0, r[m->t - 1]), l1 = fmax(l1, r[m->t - 1]);
    }
    printf("  %-8s per sample [%lld, %lld]: first time %.6g .. %.6g, last time %.6g .. %.6g\n", "t", (long long)m->n,
           (long long)m->t, f0, f1, l0, l1);
  } else {
    coord_line("t", in->t, m->t);
  }
  if (in->L) {
    double a = INFINITY, b = -INFINITY;
    for (int64_t i = 0; i < m->n; i++) a = fmin(a, in->L[i]), b = fmax(b, in->L[i]);
    printf("  %-8s per sample [%lld]: domain length %.6g .. %.6g (sample i's points: j L[i] / %lld; x is nominal)\n",
           "L", (long long)m->n, a, b, (long long)m->x);
  }
  if (in->nattrs > 0) {
    printf("attributes (%d)\n", in->nattrs);
    print_kv(in->attrs, in->nattrs, "  ");
  } else {
    printf("attributes none\n");
  }
  int64_t k = ksamples < m->n ? ksamples : m->n;
  int rc = 0;
  if (k > 0) {
    const int64_t pa = m->x * m->y, pu = m->t * pa;
    opl_real *a = malloc(sizeof(opl_real) * (size_t)pa), *u = malloc(sizeof(opl_real) * (size_t)pu);
    if (!a || !u) {
      fprintf(stderr, "opl info: out of memory reading samples of '%s'\n", path);
      rc = 1;
    }
    if (!rc) printf("value ranges (min, max, mean, rms) of the first %lld sample%s\n", (long long)k, k == 1 ? "" : "s");
    for (int64_t i = 0; i < k && !rc; i++) {
      if (opl_ds_read_a_range(d, i, 1, 1, a, &e) || opl_ds_read_u_range(d, i, 1, 0, m->t, 1, u, &e)) {
        fprintf(stderr, "opl info: %s\n", e.msg);
        rc = 1;
        break;
      }
      double sa4[4], su4[4], sl[4];
      stats(a, pa, sa4);
      stats(u, pu, su4);
      stats(u + (m->t - 1) * pa, pa, sl);
      printf("  #%-4lld a: %10.4g %10.4g %10.4g %10.4g | u: %10.4g %10.4g %10.4g %10.4g | last frame rms %.4g\n",
             (long long)i, sa4[0], sa4[1], sa4[2], sa4[3], su4[0], su4[1], su4[2], su4[3], sl[3]);
    }
    free(a);
    free(u);
  }
  opl_ds_close(&d);
  return rc;
}

/* Summary of an opl checkpoint: attributes, the tensors of /model and /optim. Exit status. */
static int info_checkpoint(const char *path) {
  opl_err e = {0};
  opl_kv *kv = NULL;
  int nkv = 0;
  if (opl_checkpoint_read_meta(path, &kv, &nkv, &e)) {
    fprintf(stderr, "opl info: %s\n", e.msg);
    return 1;
  }
  const opl_kv *fv = opl_kv_find(kv, nkv, "format_version");
  printf("layout     %s (version %lld)\n", OPL_CHECKPOINT_FORMAT, fv && fv->type == OPL_KV_INT ? (long long)fv->i : 0LL);
  printf("attributes (%d)\n", nkv);
  print_kv(kv, nkv, "  ");
  opl_kv_free(&kv, nkv);
  int rc = 0;
  const char *groups[2] = {"model", "optim"};
  for (int gi = 0; gi < 2; gi++) {
    char **names = NULL;
    int n = 0;
    int st = opl_h5_list(path, groups[gi], &names, &n, &e);
    if (st == OPL_ERR_NOTFOUND && gi == 1) {
      printf("optim      (none)\n");
      continue;
    }
    if (st) {
      fprintf(stderr, "opl info: %s\n", e.msg);
      rc = 1;
      continue;
    }
    int64_t total = 0;
    int bits = 0;
    for (int i = 0; i < n; i++) {
      char ds[512];
      opl_h5_dsinfo di;
      snprintf(ds, sizeof ds, "%s/%s", groups[gi], names[i]);
      if (opl_h5_info(path, ds, &di, &e)) continue;
      int64_t cnt = di.cplx ? 2 : 1;
      for (int r = 0; r < di.rank; r++) cnt *= di.shape[r];
      total += cnt;
      bits = di.bits;
    }
    printf("%-10s %d tensors, %lld reals, float%d\n", groups[gi], n, (long long)total, bits);
    for (int i = 0; i < n; i++) {
      char ds[512], sh[128];
      opl_h5_dsinfo di;
      snprintf(ds, sizeof ds, "%s/%s", groups[gi], names[i]);
      if (opl_h5_info(path, ds, &di, &e)) {
        printf("  %-28s (%s)\n", names[i], e.msg);
        continue;
      }
      printf("  %-28s %s%s\n", names[i], opl_shape_str(sh, di.rank, di.shape), di.cplx ? " complex" : "");
    }
    opl_h5_names_free(&names, n);
  }
  return rc;
}

int cli_info(int argc, char **argv) {
  int64_t ksamples = 3;
  const cli_opt opts[] = {
      {"samples", CLI_INT, &ksamples, "print value ranges of the first K samples"},
  };
  char *pos[2];
  int npos = 0;
  int rc = cli_parse("info", usage, argc, argv, opts, 1, pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "opl info: expected one file name%s; see opl info --help\n", npos ? ", got two" : "");
    return 2;
  }
  if (ksamples < 0) {
    fprintf(stderr, "opl info: --samples is %lld, expected >= 0\n", (long long)ksamples);
    return 2;
  }
  const char *path = pos[0];
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "opl info: '%s': no such file\n", path);
    return 1;
  }
  printf("file       %s (%lld bytes)\n", path, (long long)st.st_size);
  /* The checksum first (every later read checks it again: opl_h5_check in core/io.h): HDF5
   * may crash on corrupted metadata, so a damaged file is never parsed. */
  opl_err e = {0};
  int origin = OPL_H5_FOREIGN;
  int vs = opl_h5_check(path, &origin, &e);
  if (vs) {
    if (vs == OPL_ERR_FORMAT) printf("checksum   MISMATCH\n");
    fprintf(stderr, "opl info: %s\n", e.msg);
    return 1;
  }
  printf("checksum   %s\n", origin == OPL_H5_OPL       ? "verified (opl user block: length and CRC-32 match)"
                           : origin == OPL_H5_PARTIAL ? "none yet (an unfinished opl data set)"
                                                      : "none (not written by opl)");
  opl_kv *kv = NULL;
  int nkv = 0;
  int is_ckpt = 0;
  if (!opl_h5_read_attrs(path, "/", &kv, &nkv, NULL)) {
    const opl_kv *f = opl_kv_find(kv, nkv, "format");
    is_ckpt = f && f->type == OPL_KV_STR && !strcmp(f->s, OPL_CHECKPOINT_FORMAT);
    opl_kv_free(&kv, nkv);
  }
  return is_ckpt ? info_checkpoint(path) : info_dataset(path, ksamples);
}

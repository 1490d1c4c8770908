/* Damaged files: a fuzz-style corpus generated here from an opl data set and an opl
 * checkpoint. Every byte region of each file (the user block, the superblock, object headers,
 * B-trees and heaps, attribute messages, raw data) gets damaged copies — one byte changed at
 * offsets sampled deterministically across the region, with several bit patterns — plus a
 * truncated and an extended copy, a copy with the user block stripped and one with it zeroed.
 * Every reader must refuse each copy cleanly (OPL_ERR_FORMAT, a message naming the file on one
 * line): never accept it, never crash or hang (an alarm ends a hang), nothing printed.
 * HDF5 1.10 itself crashes or loops on some of these bytes; opl's checksum stops them first. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/io.h"
#include "datasets/h5layout.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[256];
static const char *tpath(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static unsigned char *slurp(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)*n + 1);
  if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  return b;
}
static int spit(const char *path, const unsigned char *b, long n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int rc = fwrite(b, 1, (size_t)n, f) == (size_t)n ? 0 : -1;
  return fclose(f) == 0 ? rc : -1;
}

/* ---------------------------------------------------------------- the two originals */

static int make_dataset(const char *path) {
  enum { N = 6, T = 2, X = 16 };
  opl_ds_dims d = {.n = N, .t = T, .sdim = 1, .x = X, .y = 1};
  double x[X], t[T] = {0.5, 1.0}, a[X], u[T * X];
  for (int i = 0; i < X; i++) x[i] = i / (double)X;
  opl_kv prov[] = {OPL_KVS("equation", "burgers"), OPL_KVD("nu", 0.1), OPL_KVI("seed", 3),
                   OPL_KVS("generator", "opl datasets/generate")};
  opl_err e;
  opl_ds_writer *w = opl_ds_writer_create(path, &d, OPL_DT_F32, x, NULL, t, prov, 4, &e);
  if (!w) {
    diag("writer: %s", e.msg);
    return -1;
  }
  for (int s = 0; s < N; s++) {
    for (int i = 0; i < X; i++) a[i] = s + 0.25 * i;
    for (int i = 0; i < T * X; i++) u[i] = 0.5 * s - 0.125 * i;
    if (opl_ds_writer_put(w, s, a, u, OPL_DT_F64, &e)) {
      diag("put: %s", e.msg);
      return -1;
    }
  }
  if (opl_ds_writer_finish(&w, &e)) {
    diag("finish: %s", e.msg);
    return -1;
  }
  return 0;
}

static int make_checkpoint(const char *path) {
  opl_params m, o;
  opl_params_init(&m);
  opl_params_init(&o);
  const char *names[] = {"lift.w", "lift.b", "proj.w"};
  int64_t shapes[3][2] = {{8, 2}, {8, 1}, {1, 8}};
  for (int k = 0; k < 3; k++) {
    opl_tensor *t = opl_params_add(&m, names[k], 2, shapes[k], 0, NULL);
    for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(0.1 * (k + 1) - 0.01 * i);
    char nm[32];
    snprintf(nm, sizeof nm, "m.%s", names[k]);
    opl_tensor *s = opl_params_add(&o, nm, 2, shapes[k], 0, NULL);
    for (int64_t i = 0; i < opl_nreal(s); i++) s->data[i] = (opl_real)(1e-3 * i);
  }
  opl_kv meta[] = {OPL_KVS("equation", "burgers"), OPL_KVI("epoch", 4), OPL_KVD("lr", 1e-3)};
  opl_err e;
  int st = opl_checkpoint_save(path, &m, &o, meta, 3, &e);
  if (st) diag("checkpoint: %s", e.msg);
  opl_params_free(&m);
  opl_params_free(&o);
  return st ? -1 : 0;
}

/* ---------------------------------------------------------------- regions */

typedef struct region {
  char name[48];
  long lo, hi;   /* [lo, hi) in file bytes */
} region;

static int nreg;
static region regs[64];

static void add_region(const char *name, long lo, long hi, long size) {
  if (nreg >= 64 || lo < 0 || lo >= size) return;
  if (hi > size) hi = size;
  if (hi <= lo) hi = lo + 1;
  snprintf(regs[nreg].name, sizeof regs[nreg].name, "%s", name);
  regs[nreg].lo = lo;
  regs[nreg].hi = hi;
  nreg++;
}

/* Every occurrence (up to 3) of a byte string: HDF5 metadata signatures (OHDR, TREE, HEAP,
 * SNOD, GCOL, BTHD, FRHP, ...) and attribute names (inside their attribute messages). */
static void add_matches(const unsigned char *b, long n, const char *what, const char *label, long span) {
  size_t k = strlen(what);
  int found = 0;
  for (long i = 512; i + (long)k <= n && found < 3; i++)
    if (memcmp(b + i, what, k) == 0) {
      char nm[48];
      snprintf(nm, sizeof nm, "%s %s@%ld", label, what, i);
      add_region(nm, i, i + span, n);
      found++;
      i += (long)k;
    }
}

/* Object headers (version 1 has no signature: found through HDF5) and raw data of each
 * dataset of a file, file offsets (the base address is the end of the 512-byte user block). */
static void add_objects(const char *path, const char *const *objs, int nobj, long size) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return;
  for (int k = 0; k < nobj; k++) {
    H5O_info_t oi;
    char nm[48];
    if (H5Oget_info_by_name2(f, objs[k], &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0) {
      snprintf(nm, sizeof nm, "object header %s", objs[k]);
      add_region(nm, 512 + (long)oi.addr, 512 + (long)oi.addr + 64, size);
    }
    if (oi.type != H5O_TYPE_DATASET) continue;
    hid_t d = H5Dopen2(f, objs[k], H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    hsize_t bytes = H5Dget_storage_size(d);
    if (off == HADDR_UNDEF) {   /* chunked: the first chunk */
      hid_t sp = H5Dget_space(d);
      hsize_t coff[8], csize = 0;
      unsigned mask;
      haddr_t addr = HADDR_UNDEF;
      if (H5Dget_chunk_info(d, sp, 0, coff, &mask, &addr, &csize) >= 0) {
        off = addr;
        bytes = csize;
      }
      H5Sclose(sp);
    }
    if (off != HADDR_UNDEF && bytes > 0) {
      snprintf(nm, sizeof nm, "raw data %s", objs[k]);
      add_region(nm, (long)off, (long)(off + bytes), size);
    }
    H5Dclose(d);
  }
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
}

static void find_regions(const char *path, const unsigned char *b, long n, const char *const *objs, int nobj,
                         const char *const *attrs, int nattr) {
  nreg = 0;
  add_region("user block: header text", 0, 40, n);
  add_region("user block: padding", 40, 512, n);
  add_region("superblock", 512, 512 + 96, n);
  const char *sigs[] = {"OHDR", "OCHK", "TREE", "HEAP", "SNOD", "GCOL", "BTHD", "BTLF", "FRHP", "FHDB", "FSHD"};
  for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) add_matches(b, n, sigs[k], "metadata", 48);
  for (int k = 0; k < nattr; k++) add_matches(b, n, attrs[k], "attribute", 40);
  H5E_auto2_t fn;
  void *data;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  add_objects(path, objs, nobj, n);
  H5Eset_auto2(H5E_DEFAULT, fn, data);
  add_region("end of file", n - 16, n, n);
}

/* ---------------------------------------------------------------- the readers */

typedef int (*reader_fn)(const char *path, opl_err *e);

/* A data set: open it (and read everything when it opens). */
static int read_dataset(const char *path, opl_err *e) {
  opl_ds *d = opl_ds_open(path, NULL, e);
  if (!d) return e->status;
  const opl_ds_info *in = opl_ds_get_info(d);
  int64_t n = in->dims.n, P = in->dims.x * in->dims.y;
  opl_real *a = malloc(sizeof(opl_real) * (size_t)(n * P)), *u = malloc(sizeof(opl_real) * (size_t)(n * P * in->dims.t));
  int st = opl_ds_read_a_range(d, 0, n, 1, a, e);
  if (!st) st = opl_ds_read_u_range(d, 0, n, 0, in->dims.t, 1, u, e);
  free(a);
  free(u);
  opl_ds_close(&d);
  return st;
}

/* A checkpoint: every reader a verb uses (metadata, model and optimizer state, attributes,
 * one tensor); the first failure is returned, and all must fail. */
static int read_checkpoint(const char *path, opl_err *e) {
  opl_kv *kv = NULL;
  int n = 0, st[4];
  st[0] = opl_checkpoint_read_meta(path, &kv, &n, e);
  opl_kv_free(&kv, n);
  opl_params m, o;
  opl_params_init(&m);
  opl_params_init(&o);
  int64_t shapes[3][2] = {{8, 2}, {8, 1}, {1, 8}};
  const char *names[] = {"lift.w", "lift.b", "proj.w"};
  for (int k = 0; k < 3; k++) opl_params_add(&m, names[k], 2, shapes[k], 0, NULL);
  opl_err e1, e2, e3;
  st[1] = opl_checkpoint_load(path, &m, &o, &e1);
  st[2] = opl_h5_read_attrs(path, "/", &kv, &n, &e2);
  opl_kv_free(&kv, n);
  opl_tensor *t = NULL;
  st[3] = opl_h5_read_tensor(path, "/model/lift.w", &t, &e3);
  opl_tensor_free(&t);
  opl_params_free(&m);
  opl_params_free(&o);
  const opl_err *es[4] = {e, &e1, &e2, &e3};
  for (int k = 0; k < 4; k++)
    if (st[k] != OPL_ERR_FORMAT) {   /* report the odd one */
      if (k) *e = *es[k];
      return st[k] == OPL_OK ? OPL_OK : st[k];
    }
  return OPL_ERR_FORMAT;
}

/* Write the damaged copy, read it, check the refusal. Returns 1 when it was clean. */
static int refused(const char *copy, const unsigned char *b, long n, reader_fn rd, char *why, size_t cap) {
  opl_err e = {0};
  if (spit(copy, b, n)) {
    snprintf(why, cap, "cannot write the copy");
    return 0;
  }
  int st = rd(copy, &e);
  unlink(copy);
  const char *base = strrchr(copy, '/');
  int good = st == OPL_ERR_FORMAT && strstr(e.msg, base ? base + 1 : copy) && !strchr(e.msg, '\n');
  snprintf(why, cap, "%s: %s", opl_status_name(st), st == OPL_OK ? "ACCEPTED" : e.msg);
  return good;
}

/* Redirect stderr to a file; stderr_end returns the bytes written meanwhile. */
static int saved_fd = -1;
static void stderr_begin(void) {
  fflush(stderr);
  saved_fd = dup(2);
  int fd = open(tpath("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
}
static long stderr_end(void) {
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  struct stat st;
  return stat(tpath("stderr.txt"), &st) == 0 ? (long)st.st_size : -1;
}

static void fuzz(const char *label, const char *orig, reader_fn rd, const char *const *objs, int nobj,
                 const char *const *attrs, int nattr, int per_region) {
  long n = 0;
  unsigned char *b = slurp(orig, &n);
  opl_err e = {0};
  int st = b ? rd(orig, &e) : OPL_ERR_IO;
  ok(b && n > 1024 && st == OPL_OK, "%s: the original (%ld bytes) reads: %s", label, n, st ? e.msg : "yes");
  if (!b || n <= 1024 || st) {
    free(b);
    return;
  }
  find_regions(orig, b, n, objs, nobj, attrs, nattr);
  diag("%s: %d regions", label, nreg);
  static const unsigned char masks[] = {0x01, 0x80, 0xFF, 0x10, 0x04, 0x40};
  char copy[512], why[600];
  snprintf(copy, sizeof copy, "%s", tpath("damaged.h5"));
  int total = 0;
  stderr_begin();
  for (int r = 0; r < nreg; r++) {
    long span = regs[r].hi - regs[r].lo;
    int cases = 0, clean = 0;
    char first_bad[700] = "";
    for (int j = 0; j < per_region; j++) {
      /* offsets spread over the region, the first and last byte included */
      long off = regs[r].lo + (per_region > 1 ? (span - 1) * j / (per_region - 1) : 0);
      unsigned char keep = b[off];
      b[off] ^= masks[(j + r) % 6];
      int good = refused(copy, b, n, rd, why, sizeof why);
      b[off] = keep;
      cases++;
      clean += good;
      if (!good && !first_bad[0]) snprintf(first_bad, sizeof first_bad, "byte %ld: %s", off, why);
    }
    total += cases;
    long nerr = stderr_end();
    ok(clean == cases, "%s, %s [%ld, %ld): %d damaged copies, %d refused cleanly%s%s", label, regs[r].name,
       regs[r].lo, regs[r].hi, cases, clean, first_bad[0] ? "; first failure: " : "", first_bad);
    if (nerr) diag("stderr got %ld bytes", nerr);
    stderr_begin();
  }
  /* Truncated, extended, user block stripped (a valid HDF5 file with opl's attributes and no
   * checksum), user block zeroed, first byte of the header changed. */
  int good = refused(copy, b, n - 1, rd, why, sizeof why);
  long nerr = stderr_end();
  ok(good, "%s: truncated by one byte: %s", label, why);
  stderr_begin();
  unsigned char *ext = malloc((size_t)n + 1);
  memcpy(ext, b, (size_t)n);
  ext[n] = 0;
  good = refused(copy, ext, n + 1, rd, why, sizeof why);
  free(ext);
  nerr += stderr_end();
  ok(good, "%s: extended by one byte: %s", label, why);
  stderr_begin();
  good = refused(copy, b + 512, n - 512, rd, why, sizeof why);
  nerr += stderr_end();
  ok(good && strstr(why, "opl's root attribute"), "%s: user block stripped (opl attributes, no checksum): %s", label,
     why);
  stderr_begin();
  unsigned char hdr[512];
  memcpy(hdr, b, 512);
  memset(b, 0, 512);
  good = refused(copy, b, n, rd, why, sizeof why);
  memcpy(b, hdr, 512);
  nerr += stderr_end();
  ok(good && strstr(why, "opl's root attribute"), "%s: user block zeroed: %s", label, why);
  stderr_begin();
  b[0] = 'P';
  good = refused(copy, b, n, rd, why, sizeof why);
  b[0] = hdr[0];
  nerr += stderr_end();
  ok(good && strstr(why, "damaged header"), "%s: first byte of the header changed: refused as damaged: %s", label,
     why);
  ok(nerr == 0, "%s: nothing printed to stderr (%ld bytes); %d sampled copies in all", label, nerr, total);
  free(b);
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "damaged")) return tap_end();
  alarm(300);   /* a hang inside HDF5 ends the test (SIGALRM) instead of the suite's timeout */
  int san = getenv("OPL_SANITIZED") && getenv("OPL_SANITIZED")[0] == '1';
  int per = san ? 8 : 24;
  char ds[512], ck[512];   /* own copies: tpath's buffers are reused */
  snprintf(ds, sizeof ds, "%s", tpath("data.h5"));
  snprintf(ck, sizeof ck, "%s", tpath("ckpt.h5"));
  ok(make_dataset(ds) == 0, "an opl data set written by the opl writer");
  ok(make_checkpoint(ck) == 0, "an opl checkpoint written by opl_checkpoint_save");
  const char *dobjs[] = {"/", "/a", "/u", "/x", "/t"};
  const char *dattrs[] = {"layout_version", "opl_version", "equation", "generator", "seed"};
  fuzz("data set", ds, read_dataset, dobjs, 5, dattrs, 5, per);
  const char *cobjs[] = {"/", "/model", "/model/lift.w", "/model/proj.w", "/optim", "/optim/m.lift.w"};
  const char *cattrs[] = {"format_version", "opl_version", "precision", "equation", "epoch"};
  fuzz("checkpoint", ck, read_checkpoint, cobjs, 6, cattrs, 5, per);
  test_tmpdir_remove(dir);
  return tap_end();
}

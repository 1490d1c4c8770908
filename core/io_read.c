/* opl — HDF5 tensor I/O, the reader: opening a file (after the integrity check), dataset shapes,
 * whole and row reads, listings, all-or-nothing tensor and parameter loads, attributes
 * (opl_h5r_*), and the one-call forms (opl_h5_load_*, opl_h5_info, opl_h5_read_*,
 * opl_h5_list). See core/io.h for the contracts.
 *
 * Every public call runs between opl_io_enter() and opl_io_leave() (core/h5.c). Every hid_t is
 * closed on every path; files are opened with H5F_CLOSE_STRONG so that a file close also
 * closes anything a failure path may have left open. Loads are all-or-nothing: data go to
 * malloc'd temporaries first (I/O is not an op: the arena rule does not apply here) and are
 * copied into the tensors only when all succeeded.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io_internal.h"

static const char *class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "unknown";
  }
}

/* Read a single-valued string / integer / float attribute into kv (type and value; kv->s on
 * the heap, kv->key untouched). OPL_OK, or OPL_ERR_FORMAT / IO / NOMEM with a reason in
 * why[160] ("holds 3 values", "is compound data"). */
static int attr_read(hid_t a, opl_kv *kv, char *why) {
  int st = OPL_OK;
  hid_t sp = H5Aget_space(a), ft = H5Aget_type(a), mt = H5I_INVALID_HID;
  why[0] = 0;
  if (sp < 0 || ft < 0) {
    st = OPL_ERR_IO;
    snprintf(why, 160, "cannot be queried");
    goto done;
  }
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (np != 1) {
    st = OPL_ERR_FORMAT;
    snprintf(why, 160, "holds %lld values, expected a single value", (long long)np);
    goto done;
  }
  H5T_class_t cls = H5Tget_class(ft);
  if (cls == H5T_STRING) {
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (H5Tis_variable_str(ft) > 0) {
      char *p = NULL;
      H5Tset_size(mt, H5T_VARIABLE);
      if (H5Aread(a, mt, &p) < 0) {
        st = OPL_ERR_IO;
        snprintf(why, 160, "cannot be read");
        goto done;
      }
      kv->s = strdup(p ? p : "");
      if (p) H5free_memory(p);
    } else {
      size_t n = H5Tget_size(ft);
      char *buf = calloc(n + 2, 1);
      if (!buf) {
        st = OPL_ERR_NOMEM;
        snprintf(why, 160, "out of memory");
        goto done;
      }
      H5Tset_size(mt, n + 1);
      H5Tset_strpad(mt, H5T_STR_NULLTERM);
      if (H5Aread(a, mt, buf) < 0) {
        free(buf);
        st = OPL_ERR_IO;
        snprintf(why, 160, "cannot be read");
        goto done;
      }
      kv->s = buf;
    }
    if (!kv->s) {
      st = OPL_ERR_NOMEM;
      snprintf(why, 160, "out of memory");
      goto done;
    }
    kv->type = OPL_KV_STR;
  } else if (cls == H5T_INTEGER) {
    if (H5Aread(a, H5T_NATIVE_INT64, &kv->i) < 0) {
      st = OPL_ERR_IO;
      snprintf(why, 160, "cannot be read");
      goto done;
    }
    kv->type = OPL_KV_INT;
  } else if (cls == H5T_FLOAT) {
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &kv->d) < 0) {
      st = OPL_ERR_IO;
      snprintf(why, 160, "cannot be read");
      goto done;
    }
    kv->type = OPL_KV_REAL;
  } else {
    st = OPL_ERR_FORMAT;
    snprintf(why, 160, "is %s data, expected a string, integer or float", class_name(cls));
  }
done:
  OPL_H5_CLOSE_T(mt);
  OPL_H5_CLOSE_T(ft);
  OPL_H5_CLOSE_S(sp);
  return st;
}

static const char *kv_type_name(int t) {
  return t == OPL_KV_STR ? "a string" : t == OPL_KV_INT ? "an integer" : "a float";
}

static int r_attr(opl_h5r *r, const char *obj, const char *key, int mask, opl_kv *kv, opl_err *err);

/* The root attributes by which opl marks its own files: any "opl_version", or format /
 * layout / generator with opl's values ("opl-dataset" is datasets/'s OPL_DS_LAYOUT_NAME). */
static const struct { const char *key, *prefix; } opl_marks[] = {
    {"opl_version", NULL}, {"format", OPL_CHECKPOINT_FORMAT}, {"layout", "opl-dataset"}, {"generator", "opl "}};

/* A file without a verified opl checksum must not carry opl's marks: every file opl writes is
 * checksummed, so such a file is an opl file whose header was damaged (or rewritten by other
 * software, which opl cannot vouch for). OPL_ERR_FORMAT naming the attribute, else OPL_OK. */
static int r_opl_marks(opl_h5r *r, opl_err *err) {
  for (size_t i = 0; i < sizeof opl_marks / sizeof opl_marks[0]; i++) {
    htri_t ex = H5Aexists(r->f, opl_marks[i].key);
    H5Eclear2(H5E_DEFAULT);
    if (ex <= 0) continue;
    opl_kv kv = {0};
    opl_err e;
    int hit = 1;
    if (opl_marks[i].prefix) {
      hit = r_attr(r, "/", opl_marks[i].key, 1 << OPL_KV_STR, &kv, &e) == OPL_OK &&
            strncmp(kv.s, opl_marks[i].prefix, strlen(opl_marks[i].prefix)) == 0;
      free((char *)kv.s);
    }
    if (hit)
      return fail(err, OPL_ERR_FORMAT, r->path,
                  "damaged header: the file carries opl's root attribute '%s' but no valid opl checksum in its "
                  "user block",
                  opl_marks[i].key);
  }
  return OPL_OK;
}

opl_h5r *opl_h5r_open(const char *path, opl_err *err) {
  if (!path || !path[0]) {
    opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
    return NULL;
  }
  if (opl_h5_open_precheck(path, "io", "expected an HDF5 file", 1, err) != OPL_OK) return NULL;
  opl_h5r *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    opl_err_set(err, OPL_ERR_NOMEM, "io: out of memory");
    return NULL;
  }
  /* Integrity first: HDF5 must never parse a damaged opl file. */
  int origin;
  if (opl_h5_check(path, &origin, err) != OPL_OK) {
    free(r->path);
    free(r);
    return NULL;
  }
  opl_io_guard g;
  opl_io_enter(&g);
  char why[256];
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    if (is == 0) fail(err, OPL_ERR_FORMAT, path, "not an HDF5 file (no HDF5 signature)");
    else fail(err, OPL_ERR_FORMAT, path, "cannot be checked for an HDF5 signature%s", opl_h5_why(why));
    r->f = H5I_INVALID_HID;
  } else {
    r->f = opl_h5_open_rdonly(path, why);
    if (r->f < 0) fail(err, OPL_ERR_FORMAT, path, "truncated or corrupt HDF5 file%s", why);
    else if (origin == OPL_H5_FOREIGN && r_opl_marks(r, err) != OPL_OK)
      OPL_H5_CLOSE_F(r->f);
    if (r->f >= 0 && H5Aexists(r->f, "format") > 0) {
      opl_kv kv = {0};
      opl_err e;
      r->ckpt = r_attr(r, "/", "format", 1 << OPL_KV_STR, &kv, &e) == OPL_OK && !strcmp(kv.s, OPL_CHECKPOINT_FORMAT);
      free((char *)kv.s);
    }
    H5Eclear2(H5E_DEFAULT);
  }
  opl_io_leave(&g);
  if (r->f < 0) {
    free(r->path);
    free(r);
    return NULL;
  }
  return r;
}

void opl_h5r_close(opl_h5r **pr) {
  if (!pr || !*pr) return;
  opl_h5r *r = *pr;
  *pr = NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  H5Fclose(r->f);
  opl_io_leave(&g);
  free(r->path);
  free(r);
}

/* Open dataset at absolute path: OPL_ERR_NOTFOUND if missing or not a dataset. */
static int ds_open(const opl_h5r *r, const char *path, hid_t *d, opl_err *err) {
  int found;
  *d = opl_io_open_typed(r->f, path, H5I_DATASET, &found);
  if (*d >= 0) return OPL_OK;
  return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is not a dataset" : "no dataset '%s'", path);
}

/* Shape of an open dataset as opl sees it; ddims[drank] are the dims on disk (the complex
 * axis included). */
static int ds_info(const opl_h5r *r, hid_t d, const char *path, opl_h5_dsinfo *info, hsize_t *ddims,
                   int *drank, opl_err *err) {
  char why[256];
  int st = OPL_OK;
  hid_t ft = H5Dget_type(d), sp = H5Dget_space(d), a = H5I_INVALID_HID;
  memset(info, 0, sizeof *info);
  if (ft < 0 || sp < 0) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "dataset '%s' cannot be queried%s", path, opl_h5_why(why));
    goto done;
  }
  H5T_class_t cls = H5Tget_class(ft);
  if (cls != H5T_FLOAT) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "dataset '%s' holds %s data, expected float32 or float64",
              path, class_name(cls));
    goto done;
  }
  info->bits = (int)(8 * H5Tget_size(ft));
  if (H5Sget_simple_extent_type(sp) == H5S_NULL) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "dataset '%s' has a null dataspace (no data)", path);
    goto done;
  }
  hsize_t dims[H5S_MAX_RANK];
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd < 0 || nd > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "dataset '%s' has an unreadable dataspace%s", path,
              opl_h5_why(why));
    goto done;
  }
  int cplx = 0;
  htri_t ex = H5Aexists(d, "complex");
  if (ex > 0) {
    opl_kv kv = {0};
    char aw[160];
    a = H5Aopen(d, "complex", H5P_DEFAULT);
    int ast = a >= 0 ? attr_read(a, &kv, aw) : OPL_ERR_IO;
    if (ast == OPL_OK && kv.type != OPL_KV_INT) {
      free((char *)kv.s);
      ast = OPL_ERR_FORMAT;
      snprintf(aw, sizeof aw, "is %s, expected an integer", kv_type_name(kv.type));
    }
    if (ast != OPL_OK) {
      st = fail(err, OPL_ERR_FORMAT, r->path, "attribute 'complex' of dataset '%s' %s", path,
                a >= 0 ? aw : "cannot be opened");
      goto done;
    }
    cplx = kv.i != 0;
  }
  if (cplx && (nd < 1 || dims[nd - 1] != 2)) {
    st = fail(err, OPL_ERR_FORMAT, r->path,
              "dataset '%s' is marked complex but its last axis has length %lld, expected 2", path,
              nd < 1 ? 0LL : (long long)dims[nd - 1]);
    goto done;
  }
  info->cplx = cplx;
  info->rank = nd - cplx;
  if (info->rank > OPL_MAX_RANK) {
    st = fail(err, OPL_ERR_SHAPE, r->path, "dataset '%s' has rank %d, opl tensors have at most %d",
              path, info->rank, OPL_MAX_RANK);
    goto done;
  }
  for (int i = 0; i < info->rank; i++) {
    info->shape[i] = (int64_t)dims[i];
    if (dims[i] == 0) {
      char sb[112];
      st = fail(err, OPL_ERR_SHAPE, r->path, "dataset '%s' of shape %s has an empty axis", path,
                opl_io_shape_desc(sb, info->rank, info->shape, cplx));
      goto done;
    }
  }
  if (ddims)
    for (int i = 0; i < nd; i++) ddims[i] = dims[i];
  if (drank) *drank = nd;
done:
  OPL_H5_CLOSE_A(a);
  OPL_H5_CLOSE_T(ft);
  OPL_H5_CLOSE_S(sp);
  return st;
}

static int r_check(const opl_h5r *r, opl_err *err) {
  return r ? OPL_OK : opl_err_set(err, OPL_ERR_ARG, "io: NULL reader");
}

static int r_info(opl_h5r *r, const char *dataset, opl_h5_dsinfo *info, opl_err *err) {
  char path[IO_PATH_CAP];
  if (!info) return opl_err_set(err, OPL_ERR_ARG, "io: NULL info");
  if (!dataset || !opl_io_path(path, sizeof path, NULL, dataset))
    return fail(err, OPL_ERR_ARG, r->path, "bad dataset name");
  hid_t d;
  int st = ds_open(r, path, &d, err);
  if (st) return st;
  st = ds_info(r, d, path, info, NULL, NULL, err);
  H5Dclose(d);
  return st;
}

/* Read the whole dataset into a new heap tensor. */
static int r_read_tensor(opl_h5r *r, const char *dataset, opl_tensor **out, opl_err *err) {
  char path[IO_PATH_CAP], why[256];
  opl_h5_dsinfo info;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  *out = NULL;
  if (!dataset || !opl_io_path(path, sizeof path, NULL, dataset))
    return fail(err, OPL_ERR_ARG, r->path, "bad dataset name");
  hid_t d;
  int st = ds_open(r, path, &d, err);
  if (st) return st;
  st = ds_info(r, d, path, &info, NULL, NULL, err);
  opl_tensor *t = NULL;
  if (st == OPL_OK) {
    opl_err e;
    t = opl_tensor_alloc(info.rank, info.shape, info.cplx ? OPL_T_COMPLEX : 0, &e);
    if (!t) st = fail(err, e.status, r->path, "dataset '%s': %s", path, e.msg);
  }
  if (st == OPL_OK && H5Dread(d, OPL_HDF5_NATIVE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
    st = fail(err, OPL_ERR_FORMAT, r->path, "cannot read dataset '%s'%s", path, opl_h5_why(why));
  H5Dclose(d);
  if (st != OPL_OK) {
    opl_tensor_free(&t);
    return st;
  }
  const char *base = strrchr(path, '/');
  snprintf(t->name, sizeof t->name, "%.63s", base ? base + 1 : path);
  *out = t;
  return OPL_OK;
}

static int r_read_rows(opl_h5r *r, const char *dataset, int64_t start, int64_t count,
                       opl_tensor *dst, opl_err *err) {
  char path[IO_PATH_CAP], why[256], sa[112], sb[112], sc[112];
  opl_h5_dsinfo info;
  hsize_t ddims[H5S_MAX_RANK];
  int drank = 0;
  if (!dst) return opl_err_set(err, OPL_ERR_ARG, "io: NULL destination tensor");
  if (!dataset || !opl_io_path(path, sizeof path, NULL, dataset))
    return fail(err, OPL_ERR_ARG, r->path, "bad dataset name");
  hid_t d, fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
  int st = ds_open(r, path, &d, err);
  if (st) return st;
  st = ds_info(r, d, path, &info, ddims, &drank, err);
  if (st) goto done;
  if (info.rank < 1) {
    st = fail(err, OPL_ERR_ARG, r->path, "dataset '%s' is a scalar: it has no rows", path);
    goto done;
  }
  if (start < 0 || count < 1 || start > info.shape[0] - count) {
    st = fail(err, OPL_ERR_ARG, r->path, "rows [%lld, %lld) outside dataset '%s' of shape %s", (long long)start,
              (long long)(start + count), path, opl_io_shape_desc(sa, info.rank, info.shape, info.cplx));
    goto done;
  }
  int64_t want[OPL_MAX_RANK];
  want[0] = count;
  for (int i = 1; i < info.rank; i++) want[i] = info.shape[i];
  if (!opl_shape_eq(dst->rank, dst->shape, info.rank, want) || opl_is_complex(dst) != info.cplx) {
    st = fail(err, OPL_ERR_SHAPE, r->path,
              "rows [%lld, %lld) of dataset '%s' (shape %s) have shape %s, destination tensor has %s",
              (long long)start, (long long)(start + count), path,
              opl_io_shape_desc(sa, info.rank, info.shape, info.cplx), opl_io_shape_desc(sb, info.rank, want, info.cplx),
              opl_io_shape_desc(sc, dst->rank, dst->shape, opl_is_complex(dst)));
    goto done;
  }
  hsize_t off[H5S_MAX_RANK] = {0}, cnt[H5S_MAX_RANK];
  for (int i = 0; i < drank; i++) cnt[i] = ddims[i];
  off[0] = (hsize_t)start;
  cnt[0] = (hsize_t)count;
  fs = H5Dget_space(d);
  ms = H5Screate_simple(drank, cnt, NULL);
  if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
      H5Dread(d, OPL_HDF5_NATIVE, ms, fs, H5P_DEFAULT, dst->data) < 0)
    st = fail(err, OPL_ERR_FORMAT, r->path, "cannot read rows [%lld, %lld) of dataset '%s'%s",
              (long long)start, (long long)(start + count), path, opl_h5_why(why));
done:
  OPL_H5_CLOSE_S(ms);
  OPL_H5_CLOSE_S(fs);
  H5Dclose(d);
  return st;
}

void opl_h5_names_free(char ***names, int n) {
  if (!names || !*names) return;
  for (int i = 0; i < n; i++) free((*names)[i]);
  free(*names);
  *names = NULL;
}

/* Names of the datasets directly in the group at absolute path gpath. */
static int r_list(opl_h5r *r, const char *gpath, char ***names, int *n, opl_err *err) {
  char why[256];
  int found, st = OPL_OK, cnt = 0;
  char **v = NULL;
  *names = NULL;
  *n = 0;
  hid_t g = opl_io_open_typed(r->f, gpath, H5I_GROUP, &found);
  if (g < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is not a group" : "no group '%s'", gpath);
  H5G_info_t gi;
  unsigned crt = 0;
  hid_t gcpl = H5Gget_create_plist(g);
  if (gcpl >= 0) H5Pget_link_creation_order(gcpl, &crt);
  OPL_H5_CLOSE_P(gcpl);
  H5_index_t idx = (crt & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  if (H5Gget_info(g, &gi) < 0) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "group '%s' cannot be listed%s", gpath, opl_h5_why(why));
    goto done;
  }
  v = calloc(gi.nlinks + 1, sizeof *v);
  if (!v) {
    st = fail(err, OPL_ERR_NOMEM, r->path, "out of memory listing '%s'", gpath);
    goto done;
  }
  for (hsize_t i = 0; i < gi.nlinks; i++) {
    ssize_t len = H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
    if (len < 0) {
      st = fail(err, OPL_ERR_FORMAT, r->path, "group '%s' cannot be listed%s", gpath, opl_h5_why(why));
      goto done;
    }
    char *name = malloc((size_t)len + 1);
    if (!name) {
      st = fail(err, OPL_ERR_NOMEM, r->path, "out of memory listing '%s'", gpath);
      goto done;
    }
    H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, name, (size_t)len + 1, H5P_DEFAULT);
    /* Keep datasets only (dangling links and groups are skipped). */
    int is_ds = 0;
    if (H5Oexists_by_name(g, name, H5P_DEFAULT) > 0) {
      hid_t o = H5Oopen(g, name, H5P_DEFAULT);
      if (o >= 0) {
        is_ds = H5Iget_type(o) == H5I_DATASET;
        H5Oclose(o);
      }
    }
    H5Eclear2(H5E_DEFAULT);
    if (is_ds) v[cnt++] = name;
    else free(name);
  }
done:
  H5Gclose(g);
  if (st != OPL_OK) {
    opl_h5_names_free(&v, cnt);
    return st;
  }
  *names = v;
  *n = cnt;
  return OPL_OK;
}

/* ---------------------------------------------------------------- staged (all-or-nothing) loads */

void opl_io_stages_free(opl_io_stage *s, int n) {
  if (!s) return;
  for (int i = 0; i < n; i++) free(s[i].buf);
  free(s);
}

void opl_io_stages_commit(const opl_io_stage *s, int n) {
  for (int i = 0; i < n; i++)
    memcpy(s[i].t->data, s[i].buf, (size_t)opl_nreal(s[i].t) * sizeof(opl_real));
}

/* Check and read t[0..n) from group into new buffers (*out, n stages). No tensor modified. */
static int stage_read(opl_h5r *r, const char *group, opl_tensor *const *t, int n, opl_io_stage **out,
                      opl_err *err) {
  char gpath[IO_PATH_CAP], path[IO_PATH_CAP], why[256], sa[112], sb[112];
  *out = NULL;
  if (n < 0 || (n > 0 && !t)) return fail(err, OPL_ERR_ARG, r->path, "bad tensor list (n = %d)", n);
  if (!opl_io_path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  int found;
  hid_t g = opl_io_open_typed(r->f, gpath, H5I_GROUP, &found);
  if (g < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is not a group" : "no group '%s'", gpath);
  H5Gclose(g);
  opl_io_stage *s = calloc((size_t)n + 1, sizeof *s);
  if (!s) return fail(err, OPL_ERR_NOMEM, r->path, "out of memory");
  int st = OPL_OK;
  for (int i = 0; i < n && st == OPL_OK; i++) {
    const opl_tensor *ti = t[i];
    if (!ti) {
      st = fail(err, OPL_ERR_ARG, r->path, "tensor %d of the list is NULL", i);
      break;
    }
    if (!opl_io_name_ok(ti->name)) {
      st = fail(err, OPL_ERR_ARG, r->path, "tensor name '%s' is not a dataset name", ti->name);
      break;
    }
    opl_io_path(path, sizeof path, gpath, ti->name);
    hid_t d;
    if ((st = ds_open(r, path, &d, err)) != OPL_OK) break;
    opl_h5_dsinfo info;
    st = ds_info(r, d, path, &info, NULL, NULL, err);
    if (st == OPL_OK && (!opl_shape_eq(info.rank, info.shape, ti->rank, ti->shape) ||
                         info.cplx != opl_is_complex(ti)))
      st = fail(err, OPL_ERR_SHAPE, r->path, "dataset '%s' has shape %s, tensor '%s' expects %s", path,
                opl_io_shape_desc(sa, info.rank, info.shape, info.cplx), ti->name,
                opl_io_shape_desc(sb, ti->rank, ti->shape, opl_is_complex(ti)));
    if (st == OPL_OK) {
      s[i].t = (opl_tensor *)ti;
      s[i].buf = malloc((size_t)opl_nreal(ti) * sizeof(opl_real));
      if (!s[i].buf)
        st = fail(err, OPL_ERR_NOMEM, r->path, "out of memory reading dataset '%s'", path);
      else if (H5Dread(d, OPL_HDF5_NATIVE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s[i].buf) < 0)
        st = fail(err, OPL_ERR_FORMAT, r->path, "cannot read dataset '%s'%s", path, opl_h5_why(why));
    }
    H5Dclose(d);
  }
  if (st != OPL_OK) {
    opl_io_stages_free(s, n);
    return st;
  }
  *out = s;
  return OPL_OK;
}

/* OPL_ERR_SHAPE if group holds a dataset that p has no parameter for. */
static int strict_extras(opl_h5r *r, const char *group, const opl_params *p, opl_err *err) {
  char gpath[IO_PATH_CAP];
  char **names = NULL;
  int n = 0;
  if (!opl_io_path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  int st = r_list(r, gpath, &names, &n, err);
  for (int i = 0; i < n && st == OPL_OK; i++)
    if (!opl_params_find(p, names[i]))
      st = fail(err, OPL_ERR_SHAPE, r->path,
                "group '%s' has dataset '%s' that the parameter set lacks (%d datasets in the file, "
                "%d parameters in the set)",
                gpath, names[i], n, p->n);
  opl_h5_names_free(&names, n);
  return st;
}

/* For a checkpoint (r->ckpt): OPL_ERR_NONFINITE naming the parameter and the flat index of
 * its first NaN or Inf among v[0..n) (the values of dataset `group`/`name`), else OPL_OK. The
 * weights and optimizer state of a usable model are finite: a checksummed checkpoint with a
 * NaN weight was saved from a diverged run, and must not be evaluated or resumed. Other
 * parameter files (opl_h5_save_params) round-trip any value. */
static int params_finite(const opl_h5r *r, const char *group, const char *name, const opl_real *v, int64_t n,
                         opl_err *err) {
  if (!r->ckpt) return OPL_OK;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return fail(err, OPL_ERR_NONFINITE, r->path, "parameter '%s/%s' holds %g at flat index %lld: not a usable model",
                  opl_io_is_root(group) ? "" : group, name, (double)v[i], (long long)i);
  return OPL_OK;
}

/* Stage p strictly: every parameter found and matching, no extra dataset, every value finite. */
int opl_io_stage_params(opl_h5r *r, const char *group, const opl_params *p, opl_io_stage **s, opl_err *err) {
  int st = stage_read(r, group, p->t, p->n, s, err);
  if (st) return st;
  for (int i = 0; i < p->n && st == OPL_OK; i++)
    st = params_finite(r, group, p->t[i]->name, (*s)[i].buf, opl_nreal(p->t[i]), err);
  if (st == OPL_OK) st = strict_extras(r, group, p, err);
  if (st != OPL_OK) {
    opl_io_stages_free(*s, p->n);
    *s = NULL;
  }
  return st;
}

/* Fill the empty set p from the datasets of group; p stays empty on failure. */
int opl_io_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  char gpath[IO_PATH_CAP], path[IO_PATH_CAP], why[256];
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "io: NULL parameter set");
  if (p->n != 0)
    return fail(err, OPL_ERR_ARG, r->path, "reading group '%s' into a parameter set that already has %d parameters",
                group ? group : "/", p->n);
  if (!opl_io_path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  char **names = NULL;
  int n = 0;
  int st = r_list(r, gpath, &names, &n, err);
  if (st) return st;
  opl_params tmp;
  opl_params_init(&tmp);
  for (int i = 0; i < n && st == OPL_OK; i++) {
    opl_io_path(path, sizeof path, gpath, names[i]);
    hid_t d;
    if ((st = ds_open(r, path, &d, err)) != OPL_OK) break;
    opl_h5_dsinfo info;
    st = ds_info(r, d, path, &info, NULL, NULL, err);
    if (st == OPL_OK) {
      opl_err e;
      opl_tensor *t = opl_params_add(&tmp, names[i], info.rank, info.shape,
                                     info.cplx ? OPL_T_COMPLEX : 0, &e);
      if (!t)
        st = fail(err, e.status, r->path, "dataset '%s': %s", path, e.msg);
      else if (H5Dread(d, OPL_HDF5_NATIVE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
        st = fail(err, OPL_ERR_FORMAT, r->path, "cannot read dataset '%s'%s", path, opl_h5_why(why));
      else
        st = params_finite(r, group, names[i], t->data, opl_nreal(t), err);
    }
    H5Dclose(d);
  }
  opl_h5_names_free(&names, n);
  if (st != OPL_OK) {
    opl_params_free(&tmp);
    return st;
  }
  opl_params_free(p);
  *p = tmp;
  return OPL_OK;
}

/* ---------------------------------------------------------------- attributes (reader) */

/* Open obj (root, group or dataset) for attributes. */
static int r_obj(opl_h5r *r, const char *obj, hid_t *o, char *path, opl_err *err) {
  int found;
  if (!opl_io_path(path, IO_PATH_CAP, NULL, obj)) return fail(err, OPL_ERR_ARG, r->path, "object name too long");
  *o = opl_io_open_typed(r->f, path, H5I_BADID, &found);
  if (*o < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is neither a group nor a dataset" : "no object '%s'",
                path);
  return OPL_OK;
}

/* Read attribute key of obj into kv (kv->s on the heap), requiring one of the types in mask
 * (1 << OPL_KV_*). */
static int r_attr(opl_h5r *r, const char *obj, const char *key, int mask, opl_kv *kv, opl_err *err) {
  char path[IO_PATH_CAP], aw[160];
  hid_t o = H5I_INVALID_HID, a = H5I_INVALID_HID;
  memset(kv, 0, sizeof *kv);
  if (!key || !key[0]) return fail(err, OPL_ERR_ARG, r->path, "empty attribute name");
  int st = r_obj(r, obj, &o, path, err);
  if (st) return st;
  htri_t ex = H5Aexists(o, key);
  if (ex <= 0) {
    st = fail(err, OPL_ERR_NOTFOUND, r->path, "no attribute '%s' on '%s'", key, path);
    goto done;
  }
  a = H5Aopen(o, key, H5P_DEFAULT);
  st = a >= 0 ? attr_read(a, kv, aw) : OPL_ERR_IO;
  if (a < 0) snprintf(aw, sizeof aw, "cannot be opened");
  if (st != OPL_OK) {
    st = fail(err, st, r->path, "attribute '%s' of '%s' %s", key, path, aw);
    goto done;
  }
  if (!(mask & (1 << kv->type))) {
    const char *want = mask == (1 << OPL_KV_STR) ? "a string" : mask == (1 << OPL_KV_INT) ? "an integer" : "a number";
    st = fail(err, OPL_ERR_FORMAT, r->path, "attribute '%s' of '%s' is %s, expected %s", key, path,
              kv_type_name(kv->type), want);
    free((char *)kv->s);
    kv->s = NULL;
  }
done:
  OPL_H5_CLOSE_A(a);
  H5Oclose(o);
  return st;
}

typedef struct attr_list {
  opl_kv *kv;
  int n, cap, status;
} attr_list;

static herr_t attr_list_cb(hid_t loc, const char *name, const H5A_info_t *ainfo, void *data) {
  (void)ainfo;
  attr_list *l = data;
  char aw[160];
  opl_kv kv = {0};
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return 0;
  int st = attr_read(a, &kv, aw);
  H5Aclose(a);
  if (st == OPL_ERR_NOMEM) {
    l->status = st;
    return -1;
  }
  if (st != OPL_OK) return 0;   /* not a single string / integer / float: skipped */
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    opl_kv *nk = realloc(l->kv, (size_t)cap * sizeof *nk);
    if (!nk) {
      free((char *)kv.s);
      l->status = OPL_ERR_NOMEM;
      return -1;
    }
    l->kv = nk;
    l->cap = cap;
  }
  kv.key = strdup(name);
  if (!kv.key) {
    free((char *)kv.s);
    l->status = OPL_ERR_NOMEM;
    return -1;
  }
  l->kv[l->n++] = kv;
  return 0;
}

static int r_attrs(opl_h5r *r, const char *obj, opl_kv **kv, int *n, opl_err *err) {
  char path[IO_PATH_CAP], why[256];
  hid_t o = H5I_INVALID_HID;
  if (!kv || !n) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  *kv = NULL;
  *n = 0;
  int st = r_obj(r, obj, &o, path, err);
  if (st) return st;
  attr_list l = {0};
  hsize_t idx = 0;
  herr_t rc = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_list_cb, &l);
  opl_h5_why(why);
  H5Oclose(o);
  if (l.status != OPL_OK || rc < 0) {
    st = l.status ? fail(err, l.status, r->path, "out of memory reading the attributes of '%s'", path)
                  : fail(err, OPL_ERR_FORMAT, r->path, "cannot list the attributes of '%s'%s", path, why);
    opl_kv_free(&l.kv, l.n);
    return st;
  }
  *kv = l.kv;
  *n = l.n;
  return OPL_OK;
}

const opl_kv *opl_kv_find(const opl_kv *kv, int n, const char *key) {
  if (!kv || !key) return NULL;
  for (int i = 0; i < n; i++)
    if (kv[i].key && strcmp(kv[i].key, key) == 0) return &kv[i];
  return NULL;
}

void opl_kv_free(opl_kv **kv, int n) {
  if (!kv || !*kv) return;
  for (int i = 0; i < n; i++) {
    free((char *)(*kv)[i].key);
    free((char *)(*kv)[i].s);
  }
  free(*kv);
  *kv = NULL;
}

/* ---------------------------------------------------------------- public reader calls */

#define R_CALL(expr) IO_CALL(r_check(r, err), expr)

int opl_h5r_info(opl_h5r *r, const char *dataset, opl_h5_dsinfo *info, opl_err *err) {
  R_CALL(r_info(r, dataset, info, err));
}
int opl_h5r_read_tensor(opl_h5r *r, const char *dataset, opl_tensor **out, opl_err *err) {
  R_CALL(r_read_tensor(r, dataset, out, err));
}
int opl_h5r_read_rows(opl_h5r *r, const char *dataset, int64_t start, int64_t count,
                      opl_tensor *dst, opl_err *err) {
  R_CALL(r_read_rows(r, dataset, start, count, dst, err));
}

static int r_list_pub(opl_h5r *r, const char *group, char ***names, int *n, opl_err *err) {
  char gpath[IO_PATH_CAP];
  if (!names || !n) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  *names = NULL;
  *n = 0;
  if (!opl_io_path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  return r_list(r, gpath, names, n, err);
}
int opl_h5r_list(opl_h5r *r, const char *group, char ***names, int *n, opl_err *err) {
  R_CALL(r_list_pub(r, group, names, n, err));
}

static int r_load_tensors(opl_h5r *r, const char *group, opl_tensor *const *t, int n, opl_err *err) {
  opl_io_stage *s;
  int st = stage_read(r, group, t, n, &s, err);
  if (st) return st;
  opl_io_stages_commit(s, n);
  opl_io_stages_free(s, n);
  return OPL_OK;
}
int opl_h5r_load_tensors(opl_h5r *r, const char *group, opl_tensor *const *t, int n,
                         opl_err *err) {
  R_CALL(r_load_tensors(r, group, t, n, err));
}

static int r_load_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  opl_io_stage *s;
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "io: NULL parameter set");
  int st = opl_io_stage_params(r, group, p, &s, err);
  if (st) return st;
  opl_io_stages_commit(s, p->n);
  opl_io_stages_free(s, p->n);
  return OPL_OK;
}
int opl_h5r_load_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  R_CALL(r_load_params(r, group, p, err));
}
int opl_h5r_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  R_CALL(opl_io_read_params(r, group, p, err));
}

static int r_attr_str(opl_h5r *r, const char *obj, const char *key, char **out, opl_err *err) {
  opl_kv kv;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  *out = NULL;
  int st = r_attr(r, obj, key, 1 << OPL_KV_STR, &kv, err);
  if (st == OPL_OK) *out = (char *)kv.s;
  return st;
}
static int r_attr_int(opl_h5r *r, const char *obj, const char *key, int64_t *out, opl_err *err) {
  opl_kv kv;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  int st = r_attr(r, obj, key, 1 << OPL_KV_INT, &kv, err);
  if (st == OPL_OK) *out = kv.i;
  return st;
}
static int r_attr_double(opl_h5r *r, const char *obj, const char *key, double *out, opl_err *err) {
  opl_kv kv;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  int st = r_attr(r, obj, key, (1 << OPL_KV_INT) | (1 << OPL_KV_REAL), &kv, err);
  if (st == OPL_OK) *out = kv.type == OPL_KV_INT ? (double)kv.i : kv.d;
  return st;
}
int opl_h5r_attr_str(opl_h5r *r, const char *obj, const char *key, char **out, opl_err *err) {
  R_CALL(r_attr_str(r, obj, key, out, err));
}
int opl_h5r_attr_int(opl_h5r *r, const char *obj, const char *key, int64_t *out, opl_err *err) {
  R_CALL(r_attr_int(r, obj, key, out, err));
}
int opl_h5r_attr_double(opl_h5r *r, const char *obj, const char *key, double *out,
                        opl_err *err) {
  R_CALL(r_attr_double(r, obj, key, out, err));
}
int opl_h5r_attrs(opl_h5r *r, const char *obj, opl_kv **kv, int *n, opl_err *err) {
  R_CALL(r_attrs(r, obj, kv, n, err));
}



int opl_h5_load_tensors(const char *path, const char *group, opl_tensor *const *t, int n,
                        opl_err *err) {
  PATH_CALL(opl_h5r_load_tensors(r, group, t, n, err));
}
int opl_h5_load_params(const char *path, const char *group, opl_params *p, opl_err *err) {
  PATH_CALL(opl_h5r_load_params(r, group, p, err));
}
int opl_h5_info(const char *path, const char *dataset, opl_h5_dsinfo *info, opl_err *err) {
  PATH_CALL(opl_h5r_info(r, dataset, info, err));
}
int opl_h5_read_tensor(const char *path, const char *dataset, opl_tensor **out, opl_err *err) {
  if (out) *out = NULL;
  PATH_CALL(opl_h5r_read_tensor(r, dataset, out, err));
}
int opl_h5_list(const char *path, const char *group, char ***names, int *n, opl_err *err) {
  if (names) *names = NULL;
  if (n) *n = 0;
  PATH_CALL(opl_h5r_list(r, group, names, n, err));
}
int opl_h5_read_attrs(const char *path, const char *obj, opl_kv **kv, int *n, opl_err *err) {
  if (kv) *kv = NULL;
  if (n) *n = 0;
  PATH_CALL(opl_h5r_attrs(r, obj, kv, n, err));
}

static int read_rows_alloc(opl_h5r *r, const char *dataset, int64_t start, int64_t count,
                           opl_tensor **out, opl_err *err) {
  opl_h5_dsinfo info;
  char sb[112];
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "io: NULL output");
  int st = opl_h5r_info(r, dataset, &info, err);
  if (st) return st;
  if (info.rank < 1 || start < 0 || count < 1 || start > info.shape[0] - count)
    return fail(err, OPL_ERR_ARG, r->path, "rows [%lld, %lld) outside dataset '%s' of shape %s",
                (long long)start, (long long)(start + count), dataset,
                opl_io_shape_desc(sb, info.rank, info.shape, info.cplx));
  info.shape[0] = count;
  opl_err e;
  opl_tensor *t = opl_tensor_alloc(info.rank, info.shape, info.cplx ? OPL_T_COMPLEX : 0, &e);
  if (!t) return fail(err, e.status, r->path, "dataset '%s': %s", dataset, e.msg);
  st = opl_h5r_read_rows(r, dataset, start, count, t, err);
  if (st) {
    opl_tensor_free(&t);
    return st;
  }
  const char *base = strrchr(dataset, '/');
  snprintf(t->name, sizeof t->name, "%.63s", base ? base + 1 : dataset);
  *out = t;
  return OPL_OK;
}

int opl_h5_read_rows(const char *path, const char *dataset, int64_t start, int64_t count,
                     opl_tensor **out, opl_err *err) {
  if (out) *out = NULL;
  PATH_CALL(read_rows_alloc(r, dataset, start, count, out, err));
}

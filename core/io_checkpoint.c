/* opl — checkpoints: a model's parameters and its optimizer state in one HDF5 file with the
 * root attributes format = "opl-checkpoint", format_version, opl_version and precision
 * (opl_checkpoint_*). See core/io.h for the contracts; written with the writer of io_write.c,
 * read with the reader of io_read.c.
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

/* ================================================================ checkpoints */

static const char *const ckpt_reserved[] = {"format", "format_version", "opl_version", "precision"};

int opl_checkpoint_save(const char *path, const opl_params *model, const opl_params *optim_state,
                        const opl_kv *meta, int nmeta, opl_err *err) {
  if (!model) return opl_err_set(err, OPL_ERR_ARG, "io: checkpoint '%s': NULL model", path ? path : "(null)");
  if (nmeta < 0 || (nmeta > 0 && !meta))
    return opl_err_set(err, OPL_ERR_ARG, "io: checkpoint '%s': bad metadata (n = %d)", path ? path : "(null)", nmeta);
  for (int i = 0; i < nmeta; i++)
    for (size_t k = 0; k < sizeof ckpt_reserved / sizeof ckpt_reserved[0]; k++)
      if (meta[i].key && strcmp(meta[i].key, ckpt_reserved[k]) == 0)
        return opl_err_set(err, OPL_ERR_ARG, "io: checkpoint '%s': metadata key '%s' is reserved",
                           path ? path : "(null)", meta[i].key);
  opl_err e;
  opl_h5w *w = opl_h5w_create(path, &e);
  if (!w) {
    if (err) *err = e;
    return e.status;
  }
  opl_h5w_attr_str(w, "/", "format", OPL_CHECKPOINT_FORMAT, err);
  opl_h5w_attr_int(w, "/", "format_version", OPL_CHECKPOINT_VERSION, err);
  opl_h5w_attr_str(w, "/", "opl_version", OPL_VERSION, err);
  opl_h5w_attr_str(w, "/", "precision", OPL_PRECISION_NAME, err);
  opl_h5w_attrs(w, "/", meta, nmeta, err);
  opl_h5w_put_params(w, "/model", model, OPL_DT_NATIVE, err);
  if (optim_state) opl_h5w_put_params(w, "/optim", optim_state, OPL_DT_NATIVE, err);
  return opl_h5w_commit(&w, err);
}

/* OPL_OK if r is an opl checkpoint of a format version this build reads. */
static int ckpt_check(opl_h5r *r, opl_err *err) {
  char *fmt = NULL;
  opl_err e;
  int st = opl_h5r_attr_str(r, "/", "format", &fmt, &e);
  if (st != OPL_OK) {
    free(fmt);
    return fail(err, OPL_ERR_FORMAT, r->path, "not an opl checkpoint (%s)",
                st == OPL_ERR_NOTFOUND ? "no 'format' attribute on the root group" : e.msg);
  }
  if (strcmp(fmt, OPL_CHECKPOINT_FORMAT) != 0) {
    st = fail(err, OPL_ERR_FORMAT, r->path, "attribute 'format' is '%s', expected '%s'", fmt,
              OPL_CHECKPOINT_FORMAT);
    free(fmt);
    return st;
  }
  free(fmt);
  int64_t ver = 0;
  if (opl_h5r_attr_int(r, "/", "format_version", &ver, &e) != OPL_OK)
    return fail(err, OPL_ERR_FORMAT, r->path, "opl checkpoint without an integer 'format_version'");
  if (ver < 1 || ver > OPL_CHECKPOINT_VERSION)
    return fail(err, OPL_ERR_UNSUPPORTED, r->path, "checkpoint format_version %lld, this build reads 1..%d",
                (long long)ver, OPL_CHECKPOINT_VERSION);
  return OPL_OK;
}

static int ckpt_load(opl_h5r *r, opl_params *model, opl_params *optim, opl_err *err) {
  int st = ckpt_check(r, err), found;
  if (st) return st;
  hid_t g = opl_io_open_typed(r->f, "/model", H5I_GROUP, &found);
  if (g < 0) return fail(err, OPL_ERR_FORMAT, r->path, "opl checkpoint without a group '/model'");
  H5Gclose(g);
  opl_io_stage *sm = NULL, *so = NULL;
  opl_params filled;
  opl_params_init(&filled);
  st = opl_io_stage_params(r, "/model", model, &sm, err);
  if (st == OPL_OK && optim) {
    g = opl_io_open_typed(r->f, "/optim", H5I_GROUP, &found);
    if (g < 0)
      st = fail(err, OPL_ERR_NOTFOUND, r->path, "no group '/optim': the checkpoint holds no optimizer state");
    else
      H5Gclose(g);
    if (st == OPL_OK)
      st = optim->n > 0 ? opl_io_stage_params(r, "/optim", optim, &so, err) : opl_io_read_params(r, "/optim", &filled, err);
  }
  if (st == OPL_OK) {
    opl_io_stages_commit(sm, model->n);
    if (optim && optim->n > 0) opl_io_stages_commit(so, optim->n);
    else if (optim) {
      opl_params_free(optim);
      *optim = filled;
      opl_params_init(&filled);
    }
  }
  opl_io_stages_free(sm, model->n);
  if (so) opl_io_stages_free(so, optim->n);
  opl_params_free(&filled);
  return st;
}

int opl_checkpoint_load(const char *path, opl_params *model, opl_params *optim_state,
                        opl_err *err) {
  if (!model) return opl_err_set(err, OPL_ERR_ARG, "io: checkpoint '%s': NULL model", path ? path : "(null)");
  opl_io_guard g;
  opl_io_enter(&g);   /* one lock over the whole load */
  opl_err e;
  int st;
  opl_h5r *r = opl_h5r_open(path, &e);   /* verifies the checksum before HDF5 parses the file */
  if (!r) {
    if (err) *err = e;
    st = e.status;
  } else {
    st = ckpt_load(r, model, optim_state, err);
    opl_h5r_close(&r);
  }
  opl_io_leave(&g);
  return st;
}

static int ckpt_meta(opl_h5r *r, opl_kv **kv, int *n, opl_err *err) {
  int st = ckpt_check(r, err);
  return st ? st : opl_h5r_attrs(r, "/", kv, n, err);
}

int opl_checkpoint_read_meta(const char *path, opl_kv **kv, int *n, opl_err *err) {
  if (kv) *kv = NULL;
  if (n) *n = 0;
  PATH_CALL(ckpt_meta(r, kv, n, err));
}

/* opl datasets — the FNO MATLAB v7.3 layout as the reader sees it: which variables hold a and
 * u, their reversed (column-major) axes and where time is, and how a MATLAB file is recognized.
 * See datasets/h5layout.h.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "datasets/ds_internal.h"

/* FNO .mat: variable names, axes (reversed) and time axis. */
int opl_ds_setup_fnomat(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  static const char *pairs[][2] = {{"a", "u"}, {"input", "output"}, {"coeff", "sol"}};
  const char *an = o->a_name, *un = o->u_name;
  if (!an || !un) {
    for (int k = 0; k < 3 && (!an || !un); k++) {
      int ha = opl_ds_has_dataset(d->f, an ? an : pairs[k][0]), hu = opl_ds_has_dataset(d->f, un ? un : pairs[k][1]);
      if (ha && hu) {
        if (!an) an = pairs[k][0];
        if (!un) un = pairs[k][1];
      }
    }
    if (!an || !un) {
      char lst[200];
      return dfail(err, OPL_ERR_NOTFOUND, d->path,
                   "no input/solution variables (tried a/u, input/output, coeff/sol); variables found: %s",
                   opl_ds_list_datasets(d->f, lst, sizeof lst));
    }
  }
  int st = opl_ds_var_open(d, &d->a, an, err);
  if (!st) st = opl_ds_setup_a(d, 1, err);
  if (!st) st = opl_ds_var_open(d, &d->u, un, err);
  if (st) return st;
  ds_var *u = &d->u;
  int sd = d->info.dims.sdim, r = u->frank;
  int64_t X = d->info.dims.x;
  char s[96];
  if (sd == 1 && r == 2) {           /* MATLAB (N, X) = HDF5 [X][N] */
    u->ax[LN] = 1;
    u->ax[LX] = 0;
  } else if (sd == 1 && r == 3) {    /* MATLAB (N, T, X) = HDF5 [X][T][N], or (N, X, T) = [T][X][N] */
    u->ax[LN] = 2;
    if ((int64_t)u->fdims[0] != X && (int64_t)u->fdims[1] == X) {
      u->ax[LT] = 0;
      u->ax[LX] = 1;
    } else {
      u->ax[LT] = 1;
      u->ax[LX] = 0;
    }
  } else if (sd == 2 && r == 3) {    /* MATLAB (N, X, Y) = HDF5 [Y][X][N] */
    u->ax[LN] = 2;
    u->ax[LX] = 1;
    u->ax[LY] = 0;
  } else if (sd == 2 && r == 4) {    /* MATLAB (N, X, Y, T) = HDF5 [T][Y][X][N] */
    u->ax[LN] = 3;
    u->ax[LX] = 2;
    u->ax[LY] = 1;
    u->ax[LT] = 0;
  } else {
    return dfail(err, OPL_ERR_SHAPE, d->path,
                 "variable '%s' has HDF5 shape %s (rank %d); for a %d-D input '%s' expected rank %d or %d "
                 "(MATLAB %s)",
                 un, opl_ds_hshape(s, r, u->fdims), r, sd, an, sd + 1, sd + 2, sd == 1 ? "(N, X) or (N, T, X)" : "(N, X, Y) or (N, X, Y, T)");
  }
  return opl_ds_check_u_vs_a(d, err);
}

/* First bytes of the file's user block (MATLAB header) into buf[cap]; 0 if none. */
static int read_header(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t got = pread(fd, buf, cap - 1, 0);
  close(fd);
  if (got < 0) got = 0;
  buf[got] = 0;
  return (int)got;
}

/* 1 if some root dataset has a MATLAB_class attribute. */
static herr_t mat_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  if (!opl_ds_has_dataset(g, name)) return 0;
  if (H5Aexists_by_name(g, name, "MATLAB_class", H5P_DEFAULT) > 0) {
    *(int *)data = 1;
    return 1;
  }
  return 0;
}

int opl_ds_is_matlab(opl_ds *d) {
  char hdr[64];
  int matlab = 0;
  if (read_header(d->path, hdr, sizeof hdr) && !strncmp(hdr, "MATLAB", 6)) matlab = 1;
  if (!matlab) {
    H5Literate(d->f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, mat_cb, &matlab);
    H5Eclear2(H5E_DEFAULT);
  }
  return matlab;
}

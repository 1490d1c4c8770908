/* opl datasets — the PDEBench 1-D layout as the reader sees it: /tensor [N, T+1, X] whose frame
 * 0 (t = 0) is the input a unless the caller names another variable. See datasets/h5layout.h.
 */
#include <stdio.h>
#include <string.h>

#include "datasets/ds_internal.h"

int opl_ds_setup_pdebench(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  const char *un = o->u_name ? o->u_name : "tensor";
  int st = opl_ds_var_open(d, &d->u, un, err);
  if (st) return st;
  ds_var *u = &d->u;
  char s[96];
  if (u->frank != 3 && u->frank != 4)
    return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d (shape %s), expected 3 ([N, T, X]) or 4 ([N, T, X, Y])",
                 un, u->frank, opl_ds_hshape(s, u->frank, u->fdims));
  u->ax[LN] = 0;
  u->ax[LT] = 1;
  u->ax[LX] = 2;
  if (u->frank == 4) u->ax[LY] = 3;
  if (o->a_name) {
    if ((st = opl_ds_var_open(d, &d->a, o->a_name, err)) || (st = opl_ds_setup_a(d, 0, err))) return st;
    if (d->info.dims.sdim != u->frank - 2)
      return dfail(err, OPL_ERR_SHAPE, d->path, "dataset '%s' has rank %d, expected %d for dataset '%s' of rank %d",
                   d->a.name, d->a.frank, u->frank - 1, un, u->frank);
    return opl_ds_check_u_vs_a(d, err);
  }
  /* a = frame 0 of the trajectory: the same dataset, frame axis pinned to 0. */
  d->a = *u;
  d->a.id = H5Dopen2(d->f, un, H5P_DEFAULT);
  if (d->a.id < 0) return dfail(err, OPL_ERR_IO, d->path, "cannot open dataset '%s'", un);
  d->a.toff = 0;
  d->info.a_from_u = 1;
  d->info.dims.sdim = u->frank - 2;
  d->info.dims.n = opl_ds_var_ext(u, LN);
  d->info.dims.x = opl_ds_var_ext(u, LX);
  d->info.dims.y = opl_ds_var_ext(u, LY);
  return OPL_OK;
}

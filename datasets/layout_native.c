/* opl datasets — the native layout ("opl-dataset", what `opl generate` writes) as the reader
 * sees it: a [N, X(, Y)] and u [N, T, X(, Y)] (or u [N, X(, Y)] of a steady problem, T = 1) in
 * file order, the layout version, and the refusal of an unfinished file. See datasets/h5layout.h.
 */
#include <stdio.h>
#include <string.h>

#include "datasets/ds_internal.h"

int opl_ds_setup_native(opl_ds *d, const opl_ds_open_opts *o, opl_err *err) {
  const opl_kv *ver = opl_kv_find(d->attrs, d->nattrs, "layout_version");
  if (!ver || ver->type != OPL_KV_INT)
    return dfail(err, OPL_ERR_FORMAT, d->path, "attribute 'layout_version' missing or not an integer");
  if (ver->i > OPL_DS_LAYOUT_VERSION)
    return dfail(err, OPL_ERR_UNSUPPORTED, d->path, "layout_version %lld is newer than this opl reads (%d)",
                 (long long)ver->i, OPL_DS_LAYOUT_VERSION);
  if (opl_ds_has_dataset(d->f, "done"))
    return dfail(err, OPL_ERR_FORMAT, d->path,
                 "unfinished data set (it still has a 'done' dataset): resume and finish its generation");
  int st = opl_ds_var_open(d, &d->a, o->a_name ? o->a_name : "a", err);
  if (!st) st = opl_ds_setup_a(d, 0, err);
  if (!st) st = opl_ds_var_open(d, &d->u, o->u_name ? o->u_name : "u", err);
  if (st) return st;
  int sd = d->info.dims.sdim;
  char s[96];
  if (d->u.frank != sd + 2 && d->u.frank != sd + 1)
    return dfail(err, OPL_ERR_SHAPE, d->path,
                 "dataset '%s' has rank %d (shape %s), expected %d = rank of '%s' + 1 (a time axis) or %d (steady)",
                 d->u.name, d->u.frank, opl_ds_hshape(s, d->u.frank, d->u.fdims), sd + 2, d->a.name, sd + 1);
  const int steady = d->u.frank == sd + 1; /* no time axis: one frame */
  d->info.dims.steady = steady;
  d->u.ax[LN] = 0;
  if (!steady) d->u.ax[LT] = 1;
  d->u.ax[LX] = 2 - steady;
  if (sd == 2) d->u.ax[LY] = 3 - steady;
  return opl_ds_check_u_vs_a(d, err);
}

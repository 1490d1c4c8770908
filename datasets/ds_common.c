/* opl datasets — what the data set writer and readers share: the layout names, dataset lookup
 * and listing at the root of a file, shape text. See datasets/ds_internal.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "datasets/ds_internal.h"

const char *opl_ds_layout_name(int layout) {
  switch (layout) {
    case OPL_DS_AUTO: return "auto";
    case OPL_DS_NATIVE: return OPL_DS_LAYOUT_NAME;
    case OPL_DS_FNO_MAT: return "fno-mat";
    case OPL_DS_PDEBENCH: return "pdebench";
    default: return "unknown";
  }
}

/* "(2, 3, 64)" from hsize_t dims into buf[96]. */
char *opl_ds_hshape(char *buf, int rank, const hsize_t *dims) {
  int64_t s[8];
  for (int i = 0; i < rank && i < 8; i++) s[i] = (int64_t)dims[i];
  if (rank > OPL_MAX_RANK) {
    int k = snprintf(buf, 96, "(");
    for (int i = 0; i < rank && k < 90; i++) k += snprintf(buf + k, 96 - k, i ? ", %lld" : "%lld", (long long)s[i]);
    snprintf(buf + k, 96 - k, ")");
    return buf;
  }
  return opl_shape_str(buf, rank, s);
}

/* 1 if a link `name` exists at the root of f and is a dataset. */
int opl_ds_has_dataset(hid_t f, const char *name) {
  if (!name || !name[0]) return 0;
  if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return 0;
  H5O_info_t oi;
  if (H5Oget_info_by_name(f, name, &oi, H5P_DEFAULT) < 0) return 0;
  return oi.type == H5O_TYPE_DATASET;
}

/* Names of the root datasets, comma separated, into buf[cap] ("none" if empty). */
static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  char **b = data;  /* b[0] = buf, b[1] = (char *)cap */
  size_t cap = (size_t)(uintptr_t)b[1];
  if (!opl_ds_has_dataset(g, name)) return 0;
  size_t k = strlen(b[0]);
  if (k + strlen(name) + 3 < cap) snprintf(b[0] + k, cap - k, "%s%s", k ? ", " : "", name);
  else if (k + 5 < cap && !strstr(b[0], "...")) snprintf(b[0] + k, cap - k, ", ...");
  return 0;
}
const char *opl_ds_list_datasets(hid_t f, char *buf, size_t cap) {
  buf[0] = 0;
  char *b[2] = {buf, (char *)(uintptr_t)cap};
  H5Literate(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, list_cb, b);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, cap, "none");
  return buf;
}

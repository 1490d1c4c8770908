/* opl — HDF5 object paths of the tensor I/O files: joining and normalizing "/grp/name", the
 * names a tensor may have on disk, and opening an object of a given type by path. See
 * core/io_internal.h for the contracts.
 */
#include <string.h>

#include "core/io_internal.h"

int opl_io_is_root(const char *g) { return !g || !g[0] || (g[0] == '/' && !g[1]); }

/* Absolute, normalized HDF5 path of name inside group into out[cap]: "/grp/name", with
 * repeated and trailing '/' removed; "/" for the root. group may be NULL/""/"/" (root),
 * name may be NULL or "" (the group itself). Returns 0 when it does not fit. */
int opl_io_path(char *out, size_t cap, const char *group, const char *name) {
  char tmp[IO_PATH_CAP];
  int n = snprintf(tmp, sizeof tmp, "/%s/%s", opl_io_is_root(group) ? "" : group, name ? name : "");
  if (n < 0 || (size_t)n >= sizeof tmp) return 0;
  size_t k = 0;
  for (const char *c = tmp; *c; c++) {
    if (*c == '/' && k > 0 && out[k - 1] == '/') continue;
    if (k + 1 >= cap) return 0;
    out[k++] = *c;
  }
  while (k > 1 && out[k - 1] == '/') k--;
  out[k] = 0;
  return 1;
}

/* A tensor / dataset name usable as one path component: 1..63 chars, no '/', not "." */
int opl_io_name_ok(const char *name) {
  return name && name[0] && strlen(name) < sizeof(((opl_tensor *)0)->name) && !strchr(name, '/') &&
         strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* 1 if the object at absolute normalized path exists (every link on the way resolves). */
int opl_io_exists(hid_t f, const char *path) {
  if (strcmp(path, "/") == 0) return 1;
  char buf[IO_PATH_CAP];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) return 0;
      if (H5Oexists_by_name(f, buf, H5P_DEFAULT) <= 0) return 0;
      *p = c;
      if (!c) break;
    }
  }
  return 1;
}

/* Open the object at path if it exists and has type want (H5I_GROUP, H5I_DATASET or
 * H5I_BADID for either); otherwise H5I_INVALID_HID. *found (if not NULL) tells whether
 * something of another type exists there. */
hid_t opl_io_open_typed(hid_t f, const char *path, H5I_type_t want, int *found) {
  if (found) *found = 0;
  if (!opl_io_exists(f, path)) return H5I_INVALID_HID;
  hid_t o = H5Oopen(f, path, H5P_DEFAULT);
  if (o < 0) return H5I_INVALID_HID;
  if (found) *found = 1;
  H5I_type_t t = H5Iget_type(o);
  if (want != H5I_BADID ? t != want : (t != H5I_GROUP && t != H5I_DATASET)) {
    H5Oclose(o);
    return H5I_INVALID_HID;
  }
  return o;
}

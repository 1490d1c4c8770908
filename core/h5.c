/* opl — HDF5 plumbing shared by core/ and datasets/: the process-wide lock, HDF5's error
 * printing silenced and its reasons captured, error messages, handle closing, file property
 * lists, open pre-checks, the end of an atomic write, one scalar attribute. See core/h5.h.
 *
 * The lock: the installed HDF5 is the serial, non-thread-safe build, so every HDF5 call opl
 * makes runs between opl_io_enter() and opl_io_leave() (or opl_io_lock / opl_io_unlock): one
 * process-wide recursive mutex, HDF5's automatic error printing switched off
 * (H5Eset_auto2(H5E_DEFAULT, NULL, NULL)) and restored afterwards. The innermost HDF5 error
 * description, when useful, is appended to opl's own message ("(HDF5: truncated file: eof =
 * ...)").
 *
 * Atomic replace: write "<path>.tmp.<pid>" (or "<path>.partial"), H5Fclose, stamp and fsync,
 * rename(2), fsync the directory — the usual POSIX recipe for a crash-safe replacement.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/h5.h"

/* ================================================================ lock, silence, reasons */

static pthread_once_t h5_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t h5_mutex;

/* At exit, before HDF5's own atexit handler (registered earlier, so run later) terminates the
 * library: silence its error printing. Otherwise a library that could not release every
 * internal block after reading a corrupt file prints "HDF5: infinite loop closing library". */
static void h5_atexit(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void h5_init_once(void) {
  /* No HDF5 library shutdown at exit. After a write fails (a full disk), H5Fclose fails too
   * and HDF5 keeps a half-closed file whose second close, in H5_term_library at exit,
   * crashes (H5F__close_cb); every opl file is closed explicitly before exit anyway, and the
   * operating system reclaims the rest. Effective only when this is the process's first
   * HDF5 call (in opl it is: every HDF5 use goes through opl_io_enter / opl_io_lock). */
  H5dont_atexit();
  H5open();
  atexit(h5_atexit);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&h5_mutex, &a);
  pthread_mutexattr_destroy(&a);
}

void opl_h5_init(void) { pthread_once(&h5_once, h5_init_once); }

void opl_io_enter(opl_io_guard *g) {
  opl_h5_init();
  pthread_mutex_lock(&h5_mutex);
  H5E_auto2_t func = NULL;
  g->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &func, &g->data);
  g->func = (void (*)(void))func;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void opl_io_leave(opl_io_guard *g) {
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)g->func, g->data);
  pthread_mutex_unlock(&h5_mutex);
}

void opl_io_lock(void) {
  opl_h5_init();
  pthread_mutex_lock(&h5_mutex);
}

void opl_io_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *d = data;
  if (!d[0] && e && e->desc && e->desc[0]) snprintf(d, 200, "%s", e->desc);
  return 0;
}

const char *opl_h5_why(char *buf) {
  char d[200] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, d);
  H5Eclear2(H5E_DEFAULT);
  /* One line: HDF5's descriptions may embed newlines (the ctime() stamp of a failed open). */
  size_t k = 0;
  for (const char *c = d; *c; c++) {
    char ch = (unsigned char)*c < 0x20 || *c == 0x7f ? ' ' : *c;
    if (ch == ' ' && (k == 0 || d[k - 1] == ' ')) continue;
    d[k++] = ch;
  }
  while (k > 0 && d[k - 1] == ' ') k--;
  d[k] = 0;
  if (d[0])
    snprintf(buf, 256, " (HDF5: %s)", d);
  else
    buf[0] = 0;
  return buf;
}

/* ================================================================ messages */

int opl_h5_fail(opl_err *err, int status, const char *who, size_t cap, const char *file, const char *fmt, ...) {
  char m[512];
  if (cap > sizeof m) cap = sizeof m;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, cap, fmt, ap);
  va_end(ap);
  return opl_err_set(err, status, "%s: '%s': %s", who, file ? file : "(null)", m);
}

/* ================================================================ files */

hid_t opl_h5_fcpl(int ordered) {
  hid_t p = H5Pcreate(H5P_FILE_CREATE);
  if (p >= 0) {
    if (ordered) H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_userblock(p, OPL_H5_USERBLOCK);
  }
  return p;
}

hid_t opl_h5_fapl(int v18) {
  hid_t p = H5Pcreate(H5P_FILE_ACCESS);
  if (p >= 0) {
    H5Pset_fclose_degree(p, H5F_CLOSE_STRONG);
    if (v18) H5Pset_libver_bounds(p, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  }
  return p;
}

hid_t opl_h5_open_rdonly(const char *path, char *why) {
  hid_t fapl = opl_h5_fapl(0);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (f < 0) opl_h5_why(why);
  else why[0] = 0;
  OPL_H5_CLOSE_P(fapl);
  return f;
}

char *opl_h5_dirname(const char *path) {
  size_t n = strlen(path);
  char *d = malloc(n + 2);   /* room for "." when path is "" */
  if (!d) return NULL;
  memcpy(d, path, n + 1);
  char *s = strrchr(d, '/');
  if (!s) strcpy(d, ".");
  else if (s == d) s[1] = 0;
  else *s = 0;
  return d;
}

int opl_h5_open_precheck(const char *path, const char *who, const char *dir_msg, int check_empty, opl_err *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    return opl_h5_fail(err, (e == ENOENT || e == ENOTDIR) ? OPL_ERR_NOTFOUND : OPL_ERR_IO, who, 480, path,
                       "cannot open (%s)", strerror(e));
  }
  if (S_ISDIR(st.st_mode)) return opl_h5_fail(err, OPL_ERR_IO, who, 480, path, "is a directory, %s", dir_msg);
  if (check_empty && S_ISREG(st.st_mode) && st.st_size == 0)
    return opl_h5_fail(err, OPL_ERR_FORMAT, who, 480, path, "empty file, expected an HDF5 file");
  if (access(path, R_OK) != 0) return opl_h5_fail(err, OPL_ERR_IO, who, 480, path, "not readable (%s)", strerror(errno));
  return OPL_OK;
}

/* fsync the directory dir; errors ignored. */
static void fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

int opl_h5_seal(const char *tmp, const char *path) {
  if (opl_h5_stamp(tmp, NULL) != OPL_OK) return 1;
  if (rename(tmp, path) != 0) return 2;
  /* Make the rename itself durable (best effort: some file systems refuse). */
  char *dir = opl_h5_dirname(path);
  if (dir) fsync_dir(dir);
  free(dir);
  return 0;
}

/* ================================================================ attributes */

herr_t opl_h5_attr_put(hid_t o, const opl_kv *kv, char *why) {
  herr_t rc = -1;
  hid_t sp = H5Screate(H5S_SCALAR), ft = H5I_INVALID_HID, a = H5I_INVALID_HID;
  if (sp < 0) {
    if (why) opl_h5_why(why);
    return -1;
  }
  if (kv->type == OPL_KV_STR) {
    ft = H5Tcopy(H5T_C_S1);
    if (ft >= 0 && H5Tset_size(ft, H5T_VARIABLE) >= 0 && H5Tset_cset(ft, H5T_CSET_UTF8) >= 0 &&
        (a = H5Acreate2(o, kv->key, ft, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, ft, &kv->s);
  } else if (kv->type == OPL_KV_INT) {
    if ((a = H5Acreate2(o, kv->key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, H5T_NATIVE_INT64, &kv->i);
  } else {
    if ((a = H5Acreate2(o, kv->key, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      rc = H5Awrite(a, H5T_NATIVE_DOUBLE, &kv->d);
  }
  if (rc < 0 && why) opl_h5_why(why);   /* before the closes below clear the error stack */
  OPL_H5_CLOSE_A(a);
  OPL_H5_CLOSE_T(ft);
  OPL_H5_CLOSE_S(sp);
  return rc;
}

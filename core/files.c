/* opl core — files as outputs (core/files.h): identity, atomic replacement, stale temporaries,
 * free space. POSIX (stat, rename, statvfs, kill(pid, 0)). */
#include "core/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

/* Split path into a heap copy of its directory ("." when it has none) and a pointer to its last
 * component (inside path; trailing slashes are not stripped: such a name is compared as is).
 * Returns NULL when out of memory. */
static char *dir_of(const char *path, const char **base) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    *base = path;
    return strdup(".");
  }
  *base = slash + 1;
  size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" -> "/" */
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, path, n);
  d[n] = 0;
  return d;
}

int opl_same_file(const char *a, const char *b) {
  if (!a || !b || !*a || !*b) return 0;
  struct stat sa, sb;
  int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (ea || eb) return 0;
  /* neither exists: the same entry of the same directory? */
  const char *ba, *bb;
  char *da = dir_of(a, &ba), *db = dir_of(b, &bb);
  int same;
  if (!da || !db) same = !strcmp(a, b);
  else if (strcmp(ba, bb)) same = 0;
  else if (stat(da, &sa) == 0 && stat(db, &sb) == 0) same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  else same = !strcmp(da, db);
  free(da);
  free(db);
  return same;
}

int opl_tmp_name(const char *path, long pid, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s.tmp.%ld", path ? path : "", pid);
  if (!path || !*path || n < 0 || (size_t)n >= cap)
    return OPL_ERR_ARG;
  return OPL_OK;
}

int opl_tmp_cleanup(const char *path, int *removed, opl_err *err) {
  if (removed) *removed = 0;
  if (!path || !*path) return opl_err_set(err, OPL_ERR_ARG, "files: no path to clean temporaries of");
  const char *base;
  char *dir = dir_of(path, &base);
  if (!dir) return opl_err_set(err, OPL_ERR_NOMEM, "files: out of memory");
  size_t blen = strlen(base);
  if (!blen) { /* "dir/": no file name, hence no temporaries of it */
    free(dir);
    return OPL_OK;
  }
  DIR *d = opendir(dir);
  if (!d) {
    int e = errno;
    free(dir);
    /* a directory that does not exist holds no temporaries (creating the output will fail and say so) */
    if (e == ENOENT || e == ENOTDIR) return OPL_OK;
    return opl_err_set(err, OPL_ERR_IO, "files: cannot read the directory of '%s' (%s)", path, strerror(e));
  }
  int st = OPL_OK, n = 0;
  const long self = (long)getpid();
  struct dirent *de;
  while (!st && (de = readdir(d))) {
    const char *nm = de->d_name;
    if (strncmp(nm, base, blen) || strncmp(nm + blen, ".tmp.", 5)) continue;
    const char *digits = nm + blen + 5;
    size_t nd = strspn(digits, "0123456789");
    if (nd == 0 || nd > 18 || digits[nd] || digits[0] == '0') continue;
    long pid = strtol(digits, NULL, 10);
    if (pid <= 0 || pid == self) continue;
    errno = 0;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* running (or not ours to ask about) */
    size_t fl = strlen(dir) + strlen(nm) + 2;
    char *full = malloc(fl);
    if (!full) {
      st = opl_err_set(err, OPL_ERR_NOMEM, "files: out of memory");
      break;
    }
    snprintf(full, fl, "%s/%s", dir, nm);
    struct stat sb;
    if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (unlink(full) == 0) n++;
      else if (errno != ENOENT) /* ENOENT: another process cleaned it first */
        st = opl_err_set(err, OPL_ERR_IO, "files: cannot remove the stale temporary file '%s' (%s)", full,
                         strerror(errno));
    }
    free(full);
  }
  closedir(d);
  free(dir);
  if (removed) *removed = n;
  return st;
}

int opl_fs_free_bytes(const char *path, uint64_t *bytes, opl_err *err) {
  if (!path || !*path || !bytes) return opl_err_set(err, OPL_ERR_ARG, "files: no path to measure free space for");
  struct statvfs v;
  if (statvfs(path, &v) == 0) {
    *bytes = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    return OPL_OK;
  }
  const char *base;
  char *dir = dir_of(path, &base);
  if (!dir) return opl_err_set(err, OPL_ERR_NOMEM, "files: out of memory");
  int rc = statvfs(dir, &v);
  int e = errno;
  if (rc == 0) *bytes = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
  else opl_err_set(err, OPL_ERR_IO, "files: cannot query the file system of '%s' (%s)", dir, strerror(e));
  free(dir);
  return rc == 0 ? OPL_OK : OPL_ERR_IO;
}

struct opl_atomic {
  char *path, *tmp;
  FILE *f;
};

static void atomic_free(opl_atomic *a) {
  if (!a) return;
  free(a->path);
  free(a->tmp);
  free(a);
}

opl_atomic *opl_atomic_open(const char *path, opl_err *err) {
  if (!path || !*path) {
    opl_err_set(err, OPL_ERR_ARG, "files: no output path");
    return NULL;
  }
  size_t cap = strlen(path) + 32;
  opl_atomic *a = calloc(1, sizeof *a);
  if (!a || !(a->path = strdup(path)) || !(a->tmp = malloc(cap))) {
    atomic_free(a);
    opl_err_set(err, OPL_ERR_NOMEM, "files: out of memory");
    return NULL;
  }
  opl_tmp_name(path, (long)getpid(), a->tmp, cap);
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
    int e = errno;
    if (fd >= 0) {
      close(fd);
      unlink(a->tmp);
    }
    opl_err_set(err, OPL_ERR_IO, "cannot create '%s' (writing '%s'): %s", a->tmp, path, strerror(e));
    atomic_free(a);
    return NULL;
  }
  return a;
}

FILE *opl_atomic_stream(opl_atomic *a) { return a ? a->f : NULL; }
const char *opl_atomic_tmp_path(const opl_atomic *a) { return a ? a->tmp : NULL; }

void opl_atomic_abort(opl_atomic **pa) {
  if (!pa || !*pa) return;
  opl_atomic *a = *pa;
  if (a->f) fclose(a->f);
  unlink(a->tmp);
  atomic_free(a);
  *pa = NULL;
}

int opl_atomic_commit(opl_atomic **pa, opl_err *err) {
  if (!pa || !*pa) return opl_err_set(err, OPL_ERR_ARG, "files: NULL atomic output");
  opl_atomic *a = *pa;
  int st = OPL_OK;
  if (ferror(a->f)) st = opl_err_set(err, OPL_ERR_IO, "write error on '%s'", a->tmp);
  else if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
    st = opl_err_set(err, OPL_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
  int rc = fclose(a->f);
  a->f = NULL;
  if (!st && rc != 0) st = opl_err_set(err, OPL_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
  if (!st && rename(a->tmp, a->path) != 0)
    st = opl_err_set(err, OPL_ERR_IO, "cannot rename '%s' to '%s': %s", a->tmp, a->path, strerror(errno));
  if (st) {
    unlink(a->tmp);
  } else {
    /* make the rename durable (best effort: some file systems refuse to fsync a directory) */
    const char *base;
    char *dir = dir_of(a->path, &base);
    int dfd = dir ? open(dir, O_RDONLY) : -1;
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  atomic_free(a);
  *pa = NULL;
  return st;
}

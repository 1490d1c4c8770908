/* opl — HDF5 I/O of the engine: tensors, parameter sets, attributes, checkpoints.
 *
 * See io.h for the layout on disk and the contracts. Implementation notes:
 *  - Every public function runs between opl_io_enter() and opl_io_leave(): a process-wide recursive
 *    mutex (the installed HDF5 is the serial, non-thread-safe build) and HDF5's automatic
 *    error printing switched off (H5Eset_auto2(H5E_DEFAULT, NULL, NULL)) and restored
 *    afterwards. The innermost HDF5 error description, when useful, is appended to our own
 *    message ("(HDF5: truncated file: eof = ...)").
 *  - Every hid_t is closed on every path; files are opened with H5F_CLOSE_STRONG so that a
 *    file close also closes anything a failure path may have left open.
 *  - Loads are all-or-nothing: data go to malloc'd temporaries first (I/O is not an op: the
 *    arena rule does not apply here) and are copied into the tensors only when all succeeded.
 *  - Atomic replace: write "<path>.tmp.<pid>", H5Fclose, fsync, rename(2), fsync the
 *    directory — the usual POSIX recipe for a crash-safe replacement.
 *  - Integrity: files are created with a 512-byte HDF5 user block (ignored by HDF5, h5py and
 *    h5dump, which look for the HDF5 signature at 0, 512, 1024, ...). At commit opl writes
 *    into it "OPL-CRC32 v1\nbytes=<N>\ncrc32=<hex>\n": the length and CRC-32 (IEEE 802.3
 *    polynomial, reflected, as in zlib/PNG) of everything after the user block, then zeros.
 *    Every reader (opl_h5r_open) verifies it BEFORE HDF5 parses the file: HDF5 1.10 itself can
 *    crash or hang on corrupted metadata (seen here with single-byte flips), so a damaged file
 *    must be refused before it reaches the parser (opl_h5_check in io.h has the rules).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/io.h"

#define IO_PATH_CAP 1024   /* longest HDF5 object path handled (bytes, with the NUL) */
#define IO_USERBLOCK 512   /* bytes reserved at the start of every file opl writes */
#define IO_CRC_MAGIC "OPL-CRC32 v1\n"
#define IO_PARTIAL_MAGIC "OPL-PARTIAL v1\n"   /* user block of an unfinished data set */

/* ================================================================ lock, silence, errors */

static pthread_once_t io_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t io_mutex;

static uint32_t crc_table[8][256];

/* At exit, before HDF5's own atexit handler (registered earlier, so run later) terminates the
 * library: silence its error printing. Otherwise a library that could not release every
 * internal block after reading a corrupt file prints "HDF5: infinite loop closing library". */
static void io_atexit(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void io_init_once(void) {
  /* CRC-32 table: entry b is b shifted through 8 steps of the reflected polynomial. */
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[0][b] = c;
  }
  /* Slicing-by-8 tables: entry [k][b] is entry [k-1][b] shifted through 8 more zero bits. */
  for (int k = 1; k < 8; k++)
    for (uint32_t b = 0; b < 256; b++)
      crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xFF];
  /* No HDF5 library shutdown at exit. After a write fails (a full disk), H5Fclose fails too
   * and HDF5 keeps a half-closed file whose second close, in H5_term_library at exit,
   * crashes (H5F__close_cb); every opl file is closed explicitly before exit anyway, and the
   * operating system reclaims the rest. Effective only when this is the process's first
   * HDF5 call (in opl it is: every HDF5 use goes through opl_io_enter / opl_io_lock). */
  H5dont_atexit();
  H5open();
  atexit(io_atexit);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&io_mutex, &a);
  pthread_mutexattr_destroy(&a);
}

void opl_io_enter(opl_io_guard *g) {
  pthread_once(&io_once, io_init_once);
  pthread_mutex_lock(&io_mutex);
  H5E_auto2_t func = NULL;
  g->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &func, &g->data);
  g->func = (void (*)(void))func;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void opl_io_leave(opl_io_guard *g) {
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)g->func, g->data);
  pthread_mutex_unlock(&io_mutex);
}

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

/* Fill err with "io: '<file>': <message>" and return status. */
static int fail(opl_err *err, int status, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(opl_err *err, int status, const char *file, const char *fmt, ...) {
  char m[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return opl_err_set(err, status, "io: '%s': %s", file ? file : "(null)", m);
}

/* ================================================================ CRC-32 user block */

/* Continue a CRC-32 over n bytes (start with crc = 0). */
/* Slicing-by-8 (Kounavis and Berry, "A Systematic Approach to Building High Performance,
 * Software-based, CRC Generators", ISCC 2005): eight table lookups per 8 input bytes. The
 * bytes are assembled little-endian by hand, so the result is the same on any host. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
          crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
          crc_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  for (size_t i = 0; i < n; i++) crc = crc_table[0][(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* The canonical opl header for a body of len bytes with CRC crc: the text, then zeros. */
static void crc_header(char *hdr, long long len, unsigned crc) {
  memset(hdr, 0, IO_USERBLOCK);
  snprintf(hdr, IO_USERBLOCK, IO_CRC_MAGIC "bytes=%lld\ncrc32=%08x\n", len, crc);
}

/* CRC-32 and length of the bytes of fd from offset IO_USERBLOCK to the end. 0 or -1 (errno). */
static int crc_of_body(int fd, uint32_t *crc, int64_t *len) {
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return -1;
  uint32_t c = 0;
  int64_t n = 0;
  off_t off = IO_USERBLOCK;
  for (;;) {
    ssize_t got = pread(fd, buf, CHUNK, off);
    if (got < 0) {
      if (errno == EINTR) continue;
      free(buf);
      return -1;
    }
    if (got == 0) break;
    c = crc32_update(c, buf, (size_t)got);
    n += got;
    off += got;
  }
  free(buf);
  *crc = c;
  *len = n;
  return 0;
}

/* Write the length and CRC of a closed file's body into its user block; 0 or -1 (errno). */
static int crc_stamp(const char *path) {
  int fd = open(path, O_RDWR);
  if (fd < 0) return -1;
  uint32_t crc;
  int64_t len;
  char hdr[IO_USERBLOCK];
  int rc = crc_of_body(fd, &crc, &len);
  if (rc == 0) {
    crc_header(hdr, (long long)len, (unsigned)crc);
    rc = pwrite(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr ? 0 : -1;
  }
  if (rc == 0) rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

void opl_io_lock(void) {
  pthread_once(&io_once, io_init_once);
  pthread_mutex_lock(&io_mutex);
}

void opl_io_unlock(void) { pthread_mutex_unlock(&io_mutex); }

int opl_h5_stamp(const char *path, opl_err *err) {
  pthread_once(&io_once, io_init_once);   /* the CRC tables */
  if (crc_stamp(path) != 0)
    return opl_err_set(err, OPL_ERR_IO, "%s: cannot write the checksum block: %s", path, strerror(errno));
  return OPL_OK;
}

int opl_h5_mark_partial(const char *path, opl_err *err) {
  char hdr[IO_USERBLOCK];
  memset(hdr, 0, sizeof hdr);
  memcpy(hdr, IO_PARTIAL_MAGIC, strlen(IO_PARTIAL_MAGIC));
  int fd = open(path, O_WRONLY);
  int rc = fd < 0 ? -1 : pwrite(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr ? 0 : -1;
  int e = errno;
  if (fd >= 0) close(fd);
  if (rc != 0)
    return opl_err_set(err, OPL_ERR_IO, "%s: cannot write the header block: %s", path, strerror(e));
  return OPL_OK;
}

/* 1 if buf[0..n) are all zero. */
static int all_zero(const char *buf, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (buf[i]) return 0;
  return 1;
}

/* Offset of the HDF5 superblock signature in fd (searched at 0, 512, 1024, ... as HDF5 does),
 * or -1 when there is none. */
static off_t h5_signature(int fd, off_t size) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  for (off_t off = 0; off + 8 <= size; off = off ? 2 * off : 512) {
    unsigned char b[8];
    if (pread(fd, b, 8, off) != 8) return -1;
    if (memcmp(b, sig, 8) == 0) return off;
  }
  return -1;
}

/* Classify the user block of path and verify an opl checksum (see opl_h5_check). */
static int crc_verify(const char *path, int *origin, opl_err *err) {
  char hdr[IO_USERBLOCK + 1], want[IO_USERBLOCK];
  *origin = OPL_H5_FOREIGN;
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    int e = errno;
    return fail(err, e == ENOENT || e == ENOTDIR ? OPL_ERR_NOTFOUND : OPL_ERR_IO, path,
                "cannot open (%s)", strerror(e));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int e = errno;
    close(fd);
    return fail(err, OPL_ERR_IO, path, "not a regular file%s%s", e ? ": " : "", e ? strerror(e) : "");
  }
  ssize_t got = pread(fd, hdr, IO_USERBLOCK, 0);
  if (got < 0) got = 0;
  hdr[got] = 0;
  size_t magic = strlen(IO_CRC_MAGIC), pmagic = strlen(IO_PARTIAL_MAGIC);
  if (got >= (ssize_t)magic && memcmp(hdr, IO_CRC_MAGIC, magic) == 0) {
    long long want_len = -1;
    unsigned want_crc = 0;
    /* Only the exact bytes opl writes are a valid header: the text as printed, zeros after. */
    if (got != IO_USERBLOCK ||
        sscanf(hdr + magic, "bytes=%lld\ncrc32=%x", &want_len, &want_crc) != 2 || want_len < 0 ||
        (crc_header(want, want_len, want_crc), memcmp(hdr, want, IO_USERBLOCK) != 0)) {
      close(fd);
      return fail(err, OPL_ERR_FORMAT, path, "damaged opl checksum header (the file's first %d bytes): the file is corrupt",
                  IO_USERBLOCK);
    }
    uint32_t crc;
    int64_t len;
    int rc = crc_of_body(fd, &crc, &len);
    int e = errno;
    close(fd);
    if (rc != 0) return fail(err, OPL_ERR_IO, path, "read error while verifying (%s)", strerror(e));
    if (len != want_len)
      return fail(err, OPL_ERR_FORMAT, path, "truncated or extended file: %lld bytes of data, expected %lld",
                  (long long)len, want_len);
    if (crc != want_crc)
      return fail(err, OPL_ERR_FORMAT, path, "checksum mismatch (crc32 %08x, expected %08x): the file is corrupt",
                  (unsigned)crc, want_crc);
    *origin = OPL_H5_OPL;
    return OPL_OK;
  }
  off_t sig = h5_signature(fd, sb.st_size);
  close(fd);
  if (got >= (ssize_t)pmagic && memcmp(hdr, IO_PARTIAL_MAGIC, pmagic) == 0) {
    if (got != IO_USERBLOCK || sig != IO_USERBLOCK || !all_zero(hdr + pmagic, IO_USERBLOCK - pmagic))
      return fail(err, OPL_ERR_FORMAT, path, "damaged opl header of an unfinished data set: the file is corrupt");
    *origin = OPL_H5_PARTIAL;
    return OPL_OK;
  }
  if (sig <= 0) return OPL_OK;   /* no user block (or not HDF5 at all: the HDF5 open says so) */
  /* A user block [0, sig): MATLAB v7.3 files have their text header there; software that
   * reserves one without writing it leaves zeros. Anything else is an opl header damaged
   * beyond recognition (or a foreign format opl does not read): refused, never guessed. */
  size_t ub = (size_t)sig < (size_t)got ? (size_t)sig : (size_t)got;
  if (ub >= 10 && memcmp(hdr, "MATLAB 7.3", 10) == 0) return OPL_OK;
  if (all_zero(hdr, ub) && (size_t)sig <= IO_USERBLOCK) return OPL_OK;
  char shown[40];
  size_t k = 0;
  for (size_t i = 0; i < ub && k + 5 < sizeof shown && i < 12; i++)
    k += (size_t)snprintf(shown + k, sizeof shown - k, "%02x ", (unsigned char)hdr[i]);
  if (k) shown[k - 1] = 0;
  return fail(err, OPL_ERR_FORMAT, path,
              "damaged header: the %lld-byte HDF5 user block is neither an opl checksum header nor a MATLAB "
              "v7.3 header (it starts with bytes %s)",
              (long long)sig, shown);
}

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id >= 0) fn(*id);
  *id = H5I_INVALID_HID;
}
#define CLOSE_T(x) close_id(&(x), H5Tclose)
#define CLOSE_S(x) close_id(&(x), H5Sclose)
#define CLOSE_D(x) close_id(&(x), H5Dclose)
#define CLOSE_A(x) close_id(&(x), H5Aclose)
#define CLOSE_O(x) close_id(&(x), H5Oclose)
#define CLOSE_P(x) close_id(&(x), H5Pclose)
#define CLOSE_F(x) close_id(&(x), H5Fclose)

/* "(3, 4)" or "complex (3, 4)" into buf[112]. */
static char *shape_desc(char *buf, int rank, const int64_t *shape, int cplx) {
  char s[96];
  opl_shape_str(s, rank, shape);
  snprintf(buf, 112, "%s%s", cplx ? "complex " : "", s);
  return buf;
}

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

static hid_t mem_type(opl_dtype t) {
  return t == OPL_DT_F32 ? H5T_NATIVE_FLOAT : t == OPL_DT_F64 ? H5T_NATIVE_DOUBLE : OPL_HDF5_NATIVE;
}
static hid_t disk_type(opl_dtype t) {
  if (t == OPL_DT_F32) return H5T_IEEE_F32LE;
  if (t == OPL_DT_F64) return H5T_IEEE_F64LE;
  return sizeof(opl_real) == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
}

/* ================================================================ object paths */

static int is_root(const char *g) { return !g || !g[0] || (g[0] == '/' && !g[1]); }

/* Absolute, normalized HDF5 path of name inside group into out[cap]: "/grp/name", with
 * repeated and trailing '/' removed; "/" for the root. group may be NULL/""/"/" (root),
 * name may be NULL or "" (the group itself). Returns 0 when it does not fit. */
static int h5path(char *out, size_t cap, const char *group, const char *name) {
  char tmp[IO_PATH_CAP];
  int n = snprintf(tmp, sizeof tmp, "/%s/%s", is_root(group) ? "" : group, name ? name : "");
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
static int name_ok(const char *name) {
  return name && name[0] && strlen(name) < sizeof(((opl_tensor *)0)->name) && !strchr(name, '/') &&
         strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* 1 if the object at absolute normalized path exists (every link on the way resolves). */
static int h5exists(hid_t f, const char *path) {
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
static hid_t open_typed(hid_t f, const char *path, H5I_type_t want, int *found) {
  if (found) *found = 0;
  if (!h5exists(f, path)) return H5I_INVALID_HID;
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

/* Group creation property list: link creation order tracked and indexed, so that listings
 * return parameters in the order they were written; no object times (HDF5 stamps each object
 * with its creation time by default), so that the same content gives the same bytes. */
static hid_t ordered_gcpl(void) {
  hid_t p = H5Pcreate(H5P_GROUP_CREATE);
  if (p >= 0) H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  if (p >= 0) H5Pset_obj_track_times(p, 0);
  return p;
}

/* Create the group at absolute path and its missing parents. 0: ok; -1: some component
 * exists and is not a group (bad[IO_PATH_CAP] names it); -2: HDF5 failure (why[256]). */
static int ensure_group(hid_t f, const char *path, char *bad, char *why) {
  if (strcmp(path, "/") == 0) return 0;
  char buf[IO_PATH_CAP];
  snprintf(buf, sizeof buf, "%s", path);
  int rc = 0;
  hid_t gcpl = ordered_gcpl();
  for (char *p = buf + 1; rc == 0; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      int found;
      hid_t g = open_typed(f, buf, H5I_GROUP, &found);
      if (g >= 0) {
        H5Oclose(g);
      } else if (found || H5Lexists(f, buf, H5P_DEFAULT) > 0) {
        snprintf(bad, IO_PATH_CAP, "%s", buf);
        rc = -1;
      } else {
        g = H5Gcreate2(f, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (g < 0) {
          opl_h5_why(why);
          rc = -2;
        }
        else H5Gclose(g);
      }
      *p = c;
      if (!c) break;
    }
  }
  CLOSE_P(gcpl);
  return rc;
}

/* ================================================================ attributes (ids) */

/* Write (replace) a scalar attribute on object o: type OPL_KV_STR (s), INT (i), REAL (d).
 * On failure (< 0) why[256] holds the HDF5 reason. */
static herr_t attr_write(hid_t o, const char *key, int type, const char *s, int64_t i, double d,
                         char *why) {
  herr_t rc = -1;
  hid_t sp = H5I_INVALID_HID, ft = H5I_INVALID_HID, a = H5I_INVALID_HID;
  htri_t ex = H5Aexists(o, key);
  why[0] = 0;
  if (ex < 0 || (ex > 0 && H5Adelete(o, key) < 0)) {
    opl_h5_why(why);
    return -1;
  }
  sp = H5Screate(H5S_SCALAR);
  if (sp < 0) goto done;
  if (type == OPL_KV_STR) {
    ft = H5Tcopy(H5T_C_S1);
    if (ft < 0 || H5Tset_size(ft, H5T_VARIABLE) < 0 || H5Tset_cset(ft, H5T_CSET_UTF8) < 0) goto done;
    a = H5Acreate2(o, key, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) goto done;
    rc = H5Awrite(a, ft, &s);
  } else if (type == OPL_KV_INT) {
    a = H5Acreate2(o, key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) goto done;
    rc = H5Awrite(a, H5T_NATIVE_INT64, &i);
  } else {
    a = H5Acreate2(o, key, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) goto done;
    rc = H5Awrite(a, H5T_NATIVE_DOUBLE, &d);
  }
done:
  if (rc < 0) opl_h5_why(why);
  CLOSE_A(a);
  CLOSE_T(ft);
  CLOSE_S(sp);
  return rc;
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
  CLOSE_T(mt);
  CLOSE_T(ft);
  CLOSE_S(sp);
  return st;
}

static const char *kv_type_name(int t) {
  return t == OPL_KV_STR ? "a string" : t == OPL_KV_INT ? "an integer" : "a float";
}

/* ================================================================ writer */

struct opl_h5w {
  hid_t f;
  char *path;      /* final name */
  char *tmp;       /* "<path>.tmp.<pid>" */
  int status;      /* sticky */
  opl_err err;     /* the first error */
};

static int w_fail(opl_h5w *w, opl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int w_fail(opl_h5w *w, opl_err *err, int status, const char *fmt, ...) {
  char m[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  opl_err_set(&w->err, status, "io: '%s': %s", w->path, m);
  w->status = status;
  if (err) *err = w->err;
  return status;
}

/* OPL_OK if w can be used; else its sticky error (or OPL_ERR_ARG for NULL). */
static int w_check(opl_h5w *w, opl_err *err) {
  if (!w) return opl_err_set(err, OPL_ERR_ARG, "io: NULL writer");
  if (w->status != OPL_OK) {
    if (err) *err = w->err;
    return w->status;
  }
  return OPL_OK;
}

static void w_free(opl_h5w *w) {
  free(w->path);
  free(w->tmp);
  free(w);
}

opl_h5w *opl_h5w_create(const char *path, opl_err *err) {
  if (!path || !path[0]) {
    opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
    return NULL;
  }
  /* The directory must exist and be writable; the target must not be a directory. */
  char *dir = strdup(path);
  if (!dir) {
    opl_err_set(err, OPL_ERR_NOMEM, "io: out of memory");
    return NULL;
  }
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  struct stat st;
  int bad = 0;
  if (stat(dir, &st) != 0) {
    fail(err, OPL_ERR_IO, path, "directory '%s' does not exist (%s)", dir, strerror(errno));
    bad = 1;
  } else if (!S_ISDIR(st.st_mode)) {
    fail(err, OPL_ERR_IO, path, "'%s' is not a directory", dir);
    bad = 1;
  } else if (access(dir, W_OK | X_OK) != 0) {
    fail(err, OPL_ERR_IO, path, "directory '%s' is not writable (%s)", dir, strerror(errno));
    bad = 1;
  } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fail(err, OPL_ERR_IO, path, "is a directory, cannot be replaced by a file");
    bad = 1;
  }
  free(dir);
  if (bad) return NULL;

  opl_h5w *w = calloc(1, sizeof *w);
  size_t n = strlen(path) + 32;
  if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
    if (w) w_free(w);
    opl_err_set(err, OPL_ERR_NOMEM, "io: out of memory");
    return NULL;
  }
  snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  w->f = H5I_INVALID_HID;

  opl_io_guard g;
  opl_io_enter(&g);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fcpl >= 0) {
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_userblock(fcpl, IO_USERBLOCK);
    H5Pset_obj_track_times(fcpl, 0); /* the root group's times (see ordered_gcpl) */
  }
  if (fapl >= 0) {
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    /* Object headers version 2 (checksummed metadata), readable by HDF5 >= 1.8 / any h5py. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  }
  w->f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
  int e = errno;
  char why[256];
  opl_h5_why(why);
  CLOSE_P(fcpl);
  CLOSE_P(fapl);
  if (w->f < 0) {
    fail(err, OPL_ERR_IO, path, "cannot create the temporary file '%s' (%s)%s", w->tmp,
         strerror(e), why);
    unlink(w->tmp);
    w_free(w);
    w = NULL;
  }
  opl_io_leave(&g);
  return w;
}

int opl_h5w_status(const opl_h5w *w) { return w ? w->status : OPL_ERR_ARG; }

/* Write a dataset (see opl_h5w_put_array). Under the lock; w checked by the caller. */
static int w_put_array(opl_h5w *w, const char *name, int rank, const int64_t *shape, int flags,
                       const void *data, opl_dtype mem, opl_dtype disk, opl_err *err) {
  char path[IO_PATH_CAP], why[256], bad[IO_PATH_CAP], sb[112];
  if (!name || !name[0] || !h5path(path, sizeof path, NULL, name) || strcmp(path, "/") == 0)
    return w_fail(w, err, OPL_ERR_ARG, "bad dataset name '%s'", name ? name : "(null)");
  if (rank < 0 || rank > OPL_MAX_RANK || (rank > 0 && !shape))
    return w_fail(w, err, OPL_ERR_SHAPE, "dataset '%s': rank %d outside [0, %d]", path, rank,
                  OPL_MAX_RANK);
  for (int i = 0; i < rank; i++)
    if (shape[i] <= 0)
      return w_fail(w, err, OPL_ERR_SHAPE, "dataset '%s': shape %s has a non-positive extent",
                    path, shape_desc(sb, rank, shape, 0));
  if (!data) return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': NULL data", path);
  if ((unsigned)mem > OPL_DT_F64 || (unsigned)disk > OPL_DT_F64)
    return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': unknown dtype (memory %d, disk %d)", path,
                  (int)mem, (int)disk);
  if (h5exists(w->f, path))
    return w_fail(w, err, OPL_ERR_ARG, "dataset '%s' written twice (an object of that name exists)",
                  path);
  /* Parent groups. */
  char parent[IO_PATH_CAP];
  snprintf(parent, sizeof parent, "%s", path);
  char *last = strrchr(parent, '/');
  if (last == parent) parent[1] = 0;
  else *last = 0;
  int rc = ensure_group(w->f, parent, bad, why);
  if (rc == -1) return w_fail(w, err, OPL_ERR_ARG, "dataset '%s': '%s' exists and is not a group", path, bad);
  if (rc < 0) return w_fail(w, err, OPL_ERR_IO, "cannot create group '%s'%s", parent, why);

  int cplx = (flags & OPL_T_COMPLEX) != 0;
  hsize_t dims[OPL_MAX_RANK + 1];
  for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
  if (cplx) dims[rank] = 2;
  int drank = rank + cplx;
  int st = OPL_OK;
  hid_t sp = drank ? H5Screate_simple(drank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5I_INVALID_HID;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE); /* no object times: same content, same bytes */
  if (dcpl >= 0) H5Pset_obj_track_times(dcpl, 0);
  if (sp >= 0 && dcpl >= 0) d = H5Dcreate2(w->f, path, disk_type(disk), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (d < 0 || H5Dwrite(d, mem_type(mem), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write dataset '%s' of shape %s%s", path,
                shape_desc(sb, rank, shape, cplx), opl_h5_why(why));
  else if (cplx && attr_write(d, "complex", OPL_KV_INT, NULL, 1, 0, why) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write attribute 'complex' of '%s'%s", path, why);
  CLOSE_D(d);
  CLOSE_S(sp);
  return st;
}

/* Write tensor t as "<group>/<t->name>". */
static int w_put_tensor(opl_h5w *w, const char *group, const opl_tensor *t, opl_dtype disk,
                        opl_err *err) {
  char path[IO_PATH_CAP];
  if (!t) return w_fail(w, err, OPL_ERR_ARG, "NULL tensor in group '%s'", is_root(group) ? "/" : group);
  if (!name_ok(t->name))
    return w_fail(w, err, OPL_ERR_ARG,
                  "tensor name '%s' is not a dataset name (1..63 characters, no '/')", t->name);
  if (!h5path(path, sizeof path, group, t->name))
    return w_fail(w, err, OPL_ERR_ARG, "path of tensor '%s' is too long", t->name);
  return w_put_array(w, path, t->rank, t->shape, t->flags & OPL_T_COMPLEX, t->data, OPL_DT_NATIVE,
                     disk, err);
}

static int w_group(opl_h5w *w, const char *group, opl_err *err) {
  char path[IO_PATH_CAP], bad[IO_PATH_CAP], why[256];
  if (!h5path(path, sizeof path, group, NULL))
    return w_fail(w, err, OPL_ERR_ARG, "group name too long");
  int rc = ensure_group(w->f, path, bad, why);
  if (rc == -1) return w_fail(w, err, OPL_ERR_ARG, "group '%s': '%s' exists and is not a group", path, bad);
  if (rc < 0) return w_fail(w, err, OPL_ERR_IO, "cannot create group '%s'%s", path, why);
  return OPL_OK;
}

static int w_put_tensors(opl_h5w *w, const char *group, opl_tensor *const *t, int n,
                         opl_dtype disk, opl_err *err) {
  int st = w_group(w, group, err);
  if (n > 0 && !t) return w_fail(w, err, OPL_ERR_ARG, "NULL tensor array");
  for (int i = 0; i < n && st == OPL_OK; i++) st = w_put_tensor(w, group, t[i], disk, err);
  return st;
}

/* Write one attribute on obj (root, existing object, or a new group). */
static int w_attr(opl_h5w *w, const char *obj, const char *key, int type, const char *s, int64_t i,
                  double d, opl_err *err) {
  char path[IO_PATH_CAP], why[256];
  if (!key || !key[0]) return w_fail(w, err, OPL_ERR_ARG, "empty attribute name");
  if (type == OPL_KV_STR && !s)
    return w_fail(w, err, OPL_ERR_ARG, "attribute '%s': NULL string value", key);
  if (type != OPL_KV_STR && type != OPL_KV_INT && type != OPL_KV_REAL)
    return w_fail(w, err, OPL_ERR_ARG, "attribute '%s': unknown type %d", key, type);
  if (!h5path(path, sizeof path, NULL, obj)) return w_fail(w, err, OPL_ERR_ARG, "object name too long");
  hid_t o = open_typed(w->f, path, H5I_BADID, NULL);
  if (o < 0) {
    int st = w_group(w, path, err);
    if (st) return st;
    o = open_typed(w->f, path, H5I_BADID, NULL);
    if (o < 0) return w_fail(w, err, OPL_ERR_IO, "cannot open '%s'%s", path, opl_h5_why(why));
  }
  int st = OPL_OK;
  if (attr_write(o, key, type, s, i, d, why) < 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot write attribute '%s' on '%s'%s", key, path, why);
  H5Oclose(o);
  return st;
}

static int w_attrs(opl_h5w *w, const char *obj, const opl_kv *kv, int n, opl_err *err) {
  if (n > 0 && !kv) return w_fail(w, err, OPL_ERR_ARG, "NULL attribute array");
  int st = OPL_OK;
  for (int i = 0; i < n && st == OPL_OK; i++)
    st = w_attr(w, obj, kv[i].key, kv[i].type, kv[i].s, kv[i].i, kv[i].d, err);
  return st;
}

/* The public writer calls: lock, check the sticky status, do, unlock. */
#define W_CALL(expr)                       \
  do {                                     \
    opl_io_guard g_;                           \
    int st_ = w_check(w, err);             \
    if (st_) return st_;                   \
    opl_io_enter(&g_);                         \
    st_ = (expr);                          \
    opl_io_leave(&g_);                         \
    return st_;                            \
  } while (0)

int opl_h5w_put_array(opl_h5w *w, const char *name, int rank, const int64_t *shape, int flags,
                      const void *data, opl_dtype mem, opl_dtype disk, opl_err *err) {
  W_CALL(w_put_array(w, name, rank, shape, flags, data, mem, disk, err));
}
int opl_h5w_put_tensor(opl_h5w *w, const char *group, const opl_tensor *t, opl_dtype disk,
                       opl_err *err) {
  W_CALL(w_put_tensor(w, group, t, disk, err));
}
int opl_h5w_put_tensors(opl_h5w *w, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, opl_err *err) {
  W_CALL(w_put_tensors(w, group, t, n, disk, err));
}
int opl_h5w_put_params(opl_h5w *w, const char *group, const opl_params *p, opl_dtype disk,
                       opl_err *err) {
  W_CALL(p ? w_put_tensors(w, group, p->t, p->n, disk, err)
           : w_fail(w, err, OPL_ERR_ARG, "NULL parameter set"));
}
int opl_h5w_group(opl_h5w *w, const char *group, opl_err *err) { W_CALL(w_group(w, group, err)); }
int opl_h5w_attr_str(opl_h5w *w, const char *obj, const char *key, const char *value,
                     opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_STR, value, 0, 0, err));
}
int opl_h5w_attr_int(opl_h5w *w, const char *obj, const char *key, int64_t value, opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_INT, NULL, value, 0, err));
}
int opl_h5w_attr_double(opl_h5w *w, const char *obj, const char *key, double value,
                        opl_err *err) {
  W_CALL(w_attr(w, obj, key, OPL_KV_REAL, NULL, 0, value, err));
}
int opl_h5w_attrs(opl_h5w *w, const char *obj, const opl_kv *kv, int n, opl_err *err) {
  W_CALL(w_attrs(w, obj, kv, n, err));
}

/* fsync a file or directory by name; 0 on success. */
static int sync_path(const char *path, int dir) {
  int fd = open(path, O_RDONLY | (dir ? O_DIRECTORY : 0));
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int opl_h5w_commit(opl_h5w **pw, opl_err *err) {
  if (!pw || !*pw) return opl_err_set(err, OPL_ERR_ARG, "io: NULL writer");
  opl_h5w *w = *pw;
  *pw = NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  int st = w->status;
  if (st != OPL_OK) {
    if (err) *err = w->err;
    if (w->f >= 0) H5Fclose(w->f);
  } else {
    char why[256];
    herr_t rc = H5Fclose(w->f);
    if (rc < 0) st = w_fail(w, err, OPL_ERR_IO, "cannot close '%s'%s", w->tmp, opl_h5_why(why));
  }
  w->f = H5I_INVALID_HID;
  opl_io_leave(&g);
  if (st == OPL_OK && crc_stamp(w->tmp) != 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot checksum and flush '%s' (%s)", w->tmp, strerror(errno));
  if (st == OPL_OK && rename(w->tmp, w->path) != 0)
    st = w_fail(w, err, OPL_ERR_IO, "cannot rename '%s' into place (%s)", w->tmp, strerror(errno));
  if (st != OPL_OK) {
    unlink(w->tmp);
  } else {
    /* Make the rename itself durable (best effort: some file systems refuse). */
    char *dir = strdup(w->path);
    if (dir) {
      char *slash = strrchr(dir, '/');
      if (!slash) strcpy(dir, ".");
      else if (slash == dir) dir[1] = 0;
      else *slash = 0;
      (void)sync_path(dir, 1);
      free(dir);
    }
  }
  w_free(w);
  return st;
}

void opl_h5w_abort(opl_h5w **pw) {
  if (!pw || !*pw) return;
  opl_h5w *w = *pw;
  *pw = NULL;
  opl_io_guard g;
  opl_io_enter(&g);
  if (w->f >= 0) H5Fclose(w->f);
  opl_io_leave(&g);
  unlink(w->tmp);
  w_free(w);
}

/* ================================================================ reader */

struct opl_h5r {
  hid_t f;
  char *path;
  int ckpt;   /* root attribute format = "opl-checkpoint": parameter loads require finite values */
};

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
  struct stat st;
  if (!path || !path[0]) {
    opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
    return NULL;
  }
  if (stat(path, &st) != 0) {
    int e = errno;
    fail(err, (e == ENOENT || e == ENOTDIR) ? OPL_ERR_NOTFOUND : OPL_ERR_IO, path, "cannot open (%s)",
         strerror(e));
    return NULL;
  }
  if (S_ISDIR(st.st_mode)) {
    fail(err, OPL_ERR_IO, path, "is a directory, expected an HDF5 file");
    return NULL;
  }
  if (S_ISREG(st.st_mode) && st.st_size == 0) {
    fail(err, OPL_ERR_FORMAT, path, "empty file, expected an HDF5 file");
    return NULL;
  }
  if (access(path, R_OK) != 0) {
    fail(err, OPL_ERR_IO, path, "not readable (%s)", strerror(errno));
    return NULL;
  }
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
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    r->f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    opl_h5_why(why);
    CLOSE_P(fapl);
    if (r->f < 0) fail(err, OPL_ERR_FORMAT, path, "truncated or corrupt HDF5 file%s", why);
    else if (origin == OPL_H5_FOREIGN && r_opl_marks(r, err) != OPL_OK)
      CLOSE_F(r->f);
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
  *d = open_typed(r->f, path, H5I_DATASET, &found);
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
                shape_desc(sb, info->rank, info->shape, cplx));
      goto done;
    }
  }
  if (ddims)
    for (int i = 0; i < nd; i++) ddims[i] = dims[i];
  if (drank) *drank = nd;
done:
  CLOSE_A(a);
  CLOSE_T(ft);
  CLOSE_S(sp);
  return st;
}

static int r_check(const opl_h5r *r, opl_err *err) {
  return r ? OPL_OK : opl_err_set(err, OPL_ERR_ARG, "io: NULL reader");
}

static int r_info(opl_h5r *r, const char *dataset, opl_h5_dsinfo *info, opl_err *err) {
  char path[IO_PATH_CAP];
  if (!info) return opl_err_set(err, OPL_ERR_ARG, "io: NULL info");
  if (!dataset || !h5path(path, sizeof path, NULL, dataset))
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
  if (!dataset || !h5path(path, sizeof path, NULL, dataset))
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
  if (!dataset || !h5path(path, sizeof path, NULL, dataset))
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
              (long long)(start + count), path, shape_desc(sa, info.rank, info.shape, info.cplx));
    goto done;
  }
  int64_t want[OPL_MAX_RANK];
  want[0] = count;
  for (int i = 1; i < info.rank; i++) want[i] = info.shape[i];
  if (!opl_shape_eq(dst->rank, dst->shape, info.rank, want) || opl_is_complex(dst) != info.cplx) {
    st = fail(err, OPL_ERR_SHAPE, r->path,
              "rows [%lld, %lld) of dataset '%s' (shape %s) have shape %s, destination tensor has %s",
              (long long)start, (long long)(start + count), path,
              shape_desc(sa, info.rank, info.shape, info.cplx), shape_desc(sb, info.rank, want, info.cplx),
              shape_desc(sc, dst->rank, dst->shape, opl_is_complex(dst)));
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
  CLOSE_S(ms);
  CLOSE_S(fs);
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
  hid_t g = open_typed(r->f, gpath, H5I_GROUP, &found);
  if (g < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is not a group" : "no group '%s'", gpath);
  H5G_info_t gi;
  unsigned crt = 0;
  hid_t gcpl = H5Gget_create_plist(g);
  if (gcpl >= 0) H5Pget_link_creation_order(gcpl, &crt);
  CLOSE_P(gcpl);
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

typedef struct stage {
  opl_tensor *t;
  opl_real *buf;   /* [nreal(t)] the values read, copied into t->data on success */
} stage;

static void stages_free(stage *s, int n) {
  if (!s) return;
  for (int i = 0; i < n; i++) free(s[i].buf);
  free(s);
}

static void stages_commit(const stage *s, int n) {
  for (int i = 0; i < n; i++)
    memcpy(s[i].t->data, s[i].buf, (size_t)opl_nreal(s[i].t) * sizeof(opl_real));
}

/* Check and read t[0..n) from group into new buffers (*out, n stages). No tensor modified. */
static int stage_read(opl_h5r *r, const char *group, opl_tensor *const *t, int n, stage **out,
                      opl_err *err) {
  char gpath[IO_PATH_CAP], path[IO_PATH_CAP], why[256], sa[112], sb[112];
  *out = NULL;
  if (n < 0 || (n > 0 && !t)) return fail(err, OPL_ERR_ARG, r->path, "bad tensor list (n = %d)", n);
  if (!h5path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  int found;
  hid_t g = open_typed(r->f, gpath, H5I_GROUP, &found);
  if (g < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is not a group" : "no group '%s'", gpath);
  H5Gclose(g);
  stage *s = calloc((size_t)n + 1, sizeof *s);
  if (!s) return fail(err, OPL_ERR_NOMEM, r->path, "out of memory");
  int st = OPL_OK;
  for (int i = 0; i < n && st == OPL_OK; i++) {
    const opl_tensor *ti = t[i];
    if (!ti) {
      st = fail(err, OPL_ERR_ARG, r->path, "tensor %d of the list is NULL", i);
      break;
    }
    if (!name_ok(ti->name)) {
      st = fail(err, OPL_ERR_ARG, r->path, "tensor name '%s' is not a dataset name", ti->name);
      break;
    }
    h5path(path, sizeof path, gpath, ti->name);
    hid_t d;
    if ((st = ds_open(r, path, &d, err)) != OPL_OK) break;
    opl_h5_dsinfo info;
    st = ds_info(r, d, path, &info, NULL, NULL, err);
    if (st == OPL_OK && (!opl_shape_eq(info.rank, info.shape, ti->rank, ti->shape) ||
                         info.cplx != opl_is_complex(ti)))
      st = fail(err, OPL_ERR_SHAPE, r->path, "dataset '%s' has shape %s, tensor '%s' expects %s", path,
                shape_desc(sa, info.rank, info.shape, info.cplx), ti->name,
                shape_desc(sb, ti->rank, ti->shape, opl_is_complex(ti)));
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
    stages_free(s, n);
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
  if (!h5path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
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
                  is_root(group) ? "" : group, name, (double)v[i], (long long)i);
  return OPL_OK;
}

/* Stage p strictly: every parameter found and matching, no extra dataset, every value finite. */
static int stage_params(opl_h5r *r, const char *group, const opl_params *p, stage **s, opl_err *err) {
  int st = stage_read(r, group, p->t, p->n, s, err);
  if (st) return st;
  for (int i = 0; i < p->n && st == OPL_OK; i++)
    st = params_finite(r, group, p->t[i]->name, (*s)[i].buf, opl_nreal(p->t[i]), err);
  if (st == OPL_OK) st = strict_extras(r, group, p, err);
  if (st != OPL_OK) {
    stages_free(*s, p->n);
    *s = NULL;
  }
  return st;
}

/* Fill the empty set p from the datasets of group; p stays empty on failure. */
static int r_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  char gpath[IO_PATH_CAP], path[IO_PATH_CAP], why[256];
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "io: NULL parameter set");
  if (p->n != 0)
    return fail(err, OPL_ERR_ARG, r->path, "reading group '%s' into a parameter set that already has %d parameters",
                group ? group : "/", p->n);
  if (!h5path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  char **names = NULL;
  int n = 0;
  int st = r_list(r, gpath, &names, &n, err);
  if (st) return st;
  opl_params tmp;
  opl_params_init(&tmp);
  for (int i = 0; i < n && st == OPL_OK; i++) {
    h5path(path, sizeof path, gpath, names[i]);
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
  if (!h5path(path, IO_PATH_CAP, NULL, obj)) return fail(err, OPL_ERR_ARG, r->path, "object name too long");
  *o = open_typed(r->f, path, H5I_BADID, &found);
  if (*o < 0)
    return fail(err, OPL_ERR_NOTFOUND, r->path, found ? "'%s' is neither a group nor a dataset" : "no object '%s'",
                path);
  return OPL_OK;
}

/* Read attribute key of obj into kv (kv->s on the heap), requiring one of the types in mask
 * (1 << OPL_KV_*). */
static int r_attr(opl_h5r *r, const char *obj, const char *key, int mask, opl_kv *kv, opl_err *err) {
  char path[IO_PATH_CAP], aw[160];
  hid_t o, a = H5I_INVALID_HID;
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
  CLOSE_A(a);
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
  hid_t o;
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

#define R_CALL(expr)                        \
  do {                                      \
    opl_io_guard g_;                            \
    int st_ = r_check(r, err);              \
    if (st_) return st_;                    \
    opl_io_enter(&g_);                          \
    st_ = (expr);                           \
    opl_io_leave(&g_);                          \
    return st_;                             \
  } while (0)

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
  if (!h5path(gpath, sizeof gpath, group, NULL)) return fail(err, OPL_ERR_ARG, r->path, "group name too long");
  return r_list(r, gpath, names, n, err);
}
int opl_h5r_list(opl_h5r *r, const char *group, char ***names, int *n, opl_err *err) {
  R_CALL(r_list_pub(r, group, names, n, err));
}

static int r_load_tensors(opl_h5r *r, const char *group, opl_tensor *const *t, int n, opl_err *err) {
  stage *s;
  int st = stage_read(r, group, t, n, &s, err);
  if (st) return st;
  stages_commit(s, n);
  stages_free(s, n);
  return OPL_OK;
}
int opl_h5r_load_tensors(opl_h5r *r, const char *group, opl_tensor *const *t, int n,
                         opl_err *err) {
  R_CALL(r_load_tensors(r, group, t, n, err));
}

static int r_load_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  stage *s;
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "io: NULL parameter set");
  int st = stage_params(r, group, p, &s, err);
  if (st) return st;
  stages_commit(s, p->n);
  stages_free(s, p->n);
  return OPL_OK;
}
int opl_h5r_load_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  R_CALL(r_load_params(r, group, p, err));
}
int opl_h5r_read_params(opl_h5r *r, const char *group, opl_params *p, opl_err *err) {
  R_CALL(r_read_params(r, group, p, err));
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

/* ================================================================ one-call conveniences */

int opl_h5_save_tensors(const char *path, const char *group, opl_tensor *const *t, int n,
                        opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err) {
  opl_err e;
  opl_h5w *w = opl_h5w_create(path, &e);
  if (!w) {
    if (err) *err = e;
    return e.status;
  }
  opl_h5w_attrs(w, "/", meta, nmeta, err);
  opl_h5w_put_tensors(w, group, t, n, disk, err);
  return opl_h5w_commit(&w, err);
}

int opl_h5_save_params(const char *path, const char *group, const opl_params *p,
                       opl_dtype disk, const opl_kv *meta, int nmeta, opl_err *err) {
  opl_err e;
  opl_h5w *w = opl_h5w_create(path, &e);
  if (!w) {
    if (err) *err = e;
    return e.status;
  }
  opl_h5w_attrs(w, "/", meta, nmeta, err);
  opl_h5w_put_params(w, group, p, disk, err);
  return opl_h5w_commit(&w, err);
}

/* Open path, run a reader call, close. */
#define PATH_CALL(call)                                   \
  do {                                                    \
    opl_err e_;                                           \
    opl_h5r *r = opl_h5r_open(path, &e_);                 \
    if (!r) {                                             \
      if (err) *err = e_;                                 \
      return e_.status;                                   \
    }                                                     \
    int st_ = (call);                                     \
    opl_h5r_close(&r);                                    \
    return st_;                                           \
  } while (0)

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
                shape_desc(sb, info.rank, info.shape, info.cplx));
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

int opl_h5_check(const char *path, int *origin, opl_err *err) {
  int o = OPL_H5_FOREIGN;
  if (origin) *origin = o;
  if (!path || !path[0]) return opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
  pthread_once(&io_once, io_init_once);   /* the CRC table */
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return fail(err, OPL_ERR_IO, path, "is a directory, expected an HDF5 file");
  int rc = crc_verify(path, &o, err);
  if (origin) *origin = o;
  return rc;
}

int opl_h5_verify(const char *path, int *verified, opl_err *err) {
  int o;
  int rc = opl_h5_check(path, &o, err);
  if (verified) *verified = rc == OPL_OK && o == OPL_H5_OPL;
  return rc;
}

static int ckpt_load(opl_h5r *r, opl_params *model, opl_params *optim, opl_err *err) {
  int st = ckpt_check(r, err), found;
  if (st) return st;
  hid_t g = open_typed(r->f, "/model", H5I_GROUP, &found);
  if (g < 0) return fail(err, OPL_ERR_FORMAT, r->path, "opl checkpoint without a group '/model'");
  H5Gclose(g);
  stage *sm = NULL, *so = NULL;
  opl_params filled;
  opl_params_init(&filled);
  st = stage_params(r, "/model", model, &sm, err);
  if (st == OPL_OK && optim) {
    g = open_typed(r->f, "/optim", H5I_GROUP, &found);
    if (g < 0)
      st = fail(err, OPL_ERR_NOTFOUND, r->path, "no group '/optim': the checkpoint holds no optimizer state");
    else
      H5Gclose(g);
    if (st == OPL_OK)
      st = optim->n > 0 ? stage_params(r, "/optim", optim, &so, err) : r_read_params(r, "/optim", &filled, err);
  }
  if (st == OPL_OK) {
    stages_commit(sm, model->n);
    if (optim && optim->n > 0) stages_commit(so, optim->n);
    else if (optim) {
      opl_params_free(optim);
      *optim = filled;
      opl_params_init(&filled);
    }
  }
  stages_free(sm, model->n);
  if (so) stages_free(so, optim->n);
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

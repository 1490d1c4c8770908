/* opl — the integrity check of every file opl writes: a CRC-32 in the HDF5 user block.
 *
 * Files are created with a 512-byte HDF5 user block (ignored by HDF5, h5py and h5dump, which
 * look for the HDF5 signature at 0, 512, 1024, ...). When a file is complete opl writes into it
 * "OPL-CRC32 v1\nbytes=<N>\ncrc32=<hex>\n": the length and CRC-32 (IEEE 802.3 polynomial,
 * reflected, as in zlib/PNG) of everything after the user block, then zeros (opl_h5_stamp); an
 * unfinished data set carries "OPL-PARTIAL v1\n" instead (opl_h5_mark_partial). Every reader
 * verifies it BEFORE HDF5 parses the file (opl_h5_check): HDF5 1.10 itself can crash or hang on
 * corrupted metadata (seen with single-byte flips), so a damaged file must be refused before
 * it reaches the parser (core/io.h has the rules).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/h5.h"

#define IO_USERBLOCK OPL_H5_USERBLOCK
#define IO_CRC_MAGIC "OPL-CRC32 v1\n"
#define IO_PARTIAL_MAGIC "OPL-PARTIAL v1\n"   /* user block of an unfinished data set */

/* "io: '<file>': <message>" */
#define fail(err, status, file, ...) opl_h5_fail(err, status, "io", 480, file, __VA_ARGS__)

static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static uint32_t crc_table[8][256];

static void crc_init_once(void) {
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
}

/* The CRC tables, and HDF5's set-up (this may be a process's first opl I/O call). */
static void crc_init(void) {
  opl_h5_init();
  pthread_once(&crc_once, crc_init_once);
}

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

int opl_h5_stamp(const char *path, opl_err *err) {
  crc_init();
  if (crc_stamp(path) != 0) {
    int e = errno;
    opl_err_set(err, OPL_ERR_IO, "%s: cannot write the checksum block: %s", path, strerror(e));
    errno = e;   /* for opl_h5_seal's callers */
    return OPL_ERR_IO;
  }
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

int opl_h5_check(const char *path, int *origin, opl_err *err) {
  int o = OPL_H5_FOREIGN;
  if (origin) *origin = o;
  if (!path || !path[0]) return opl_err_set(err, OPL_ERR_ARG, "io: empty file name");
  crc_init();
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

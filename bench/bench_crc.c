/* bench_crc — what opl's file integrity check costs: opl_h5_verify (the CRC-32 of the whole
 * file after its 512-byte user block, streamed once in 1 MiB reads) on a large file.
 *
 *   bench_crc [MiB] [dir]      (default 1024 MiB in $TMPDIR or /tmp)
 *
 * Writes a file of MiB mebibytes of pseudo-random bytes after a 512-byte user block, stamps it
 * with opl_h5_stamp (one read + CRC pass, as a commit does), then times opl_h5_verify three
 * times and reports the medians of the wall time and of the process CPU time, in MB/s (10^6
 * bytes). Wall time includes the reads (from the page cache when the file fits in it, else
 * from the disk); CPU time is the CRC itself and the kernel's copies. Removed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/io.h"
#include "bench/bench.h"

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 1024;
  const char *dir = argc > 2 ? argv[2] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mib < 1) mib = 1;
  char path[1024];
  snprintf(path, sizeof path, "%s/bench_crc.%ld.bin", dir, (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "bench_crc: cannot create %s\n", path);
    return 1;
  }
  static unsigned char buf[1 << 20];
  memset(buf, 0, 512);
  int okw = fwrite(buf, 1, 512, f) == 512;
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (long m = 0; m < mib && okw; m++) {
    for (size_t i = 0; i < sizeof buf; i += 8) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      memcpy(buf + i, &s, 8);
    }
    okw = fwrite(buf, 1, sizeof buf, f) == sizeof buf;
  }
  if (fclose(f) != 0 || !okw) {
    fprintf(stderr, "bench_crc: cannot write %s\n", path);
    unlink(path);
    return 1;
  }
  opl_err e;
  double t0 = now();
  if (opl_h5_stamp(path, &e)) {
    fprintf(stderr, "bench_crc: %s\n", e.msg);
    unlink(path);
    return 1;
  }
  double ts = now() - t0, tv[3], tc[3];
  for (int r = 0; r < 3; r++) {
    int v = 0;
    t0 = now();
    double c0 = cpu();
    int st = opl_h5_verify(path, &v, &e);
    tv[r] = now() - t0;
    tc[r] = cpu() - c0;
    if (st || !v) {
      fprintf(stderr, "bench_crc: verify failed: %s\n", st ? e.msg : "not verified");
      unlink(path);
      return 1;
    }
  }
  unlink(path);
  for (int i = 0; i < 3; i++)   /* medians of three */
    for (int j = i + 1; j < 3; j++) {
      if (tv[j] < tv[i]) {
        double t = tv[i];
        tv[i] = tv[j];
        tv[j] = t;
      }
      if (tc[j] < tc[i]) {
        double t = tc[i];
        tc[i] = tc[j];
        tc[j] = t;
      }
    }
  double bytes = (double)mib * (1 << 20);
  printf("file %ld MiB: stamp %.3f s (%.0f MB/s); verify, median of 3: %.3f s wall (%.0f MB/s, min %.3f s), "
         "%.3f s CPU (%.0f MB/s: the CRC and the copies from the page cache)\n",
         mib, ts, bytes / ts / 1e6, tv[1], bytes / tv[1] / 1e6, tv[0], tc[1], bytes / tc[1] / 1e6);
  return 0;
}

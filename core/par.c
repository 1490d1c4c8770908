/* opl core — deterministic parallel sums (core/par.h). */
#include "core/par.h"
#include "core/opl.h"

void opl_par_sums(int64_t nblk, int nsum, int parallel,
                  void (*f)(void *ctx, int64_t b0, int64_t b1, double *acc), void *ctx, double *out) {
  OPL_ASSERT(nsum >= 1 && nsum <= 4 && nblk >= 0 && f != NULL, "opl_par_sums: nsum %d, nblk %lld", nsum,
             (long long)nblk);
  double part[OPL_PSUM_GROUPS][4];
  const int64_t ng = nblk < OPL_PSUM_GROUPS ? nblk : OPL_PSUM_GROUPS;
#pragma omp parallel for if (parallel && ng > 1) schedule(static)
  for (int64_t g = 0; g < ng; g++) {
    double acc[4] = {0, 0, 0, 0};
    f(ctx, nblk * g / ng, nblk * (g + 1) / ng, acc);
    for (int k = 0; k < nsum; k++) part[g][k] = acc[k];
  }
  for (int k = 0; k < nsum; k++) {
    double s = 0;
    for (int64_t g = 0; g < ng; g++) s += part[g][k];
    out[k] = s;
  }
}

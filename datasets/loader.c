/* opl datasets — batched loader. See loader.h for the contract.
 *
 * Implementation notes:
 *  - A batch is assembled per selection (input, target): when the selection has no `a`
 *    channel its frames are read by one hyperslab read straight into the caller's buffer,
 *    whose (B, nt, X, Y) layout is exactly (B, C, X, Y); with an `a` channel, a and the
 *    frames go to loader scratch first and are interleaved per sample.
 *  - Cache mode keeps, for every train and test sample (rows: train first, then test), a
 *    [P] when some selection uses a, and the frames [tlo, thi) spanning both selections.
 *  - Scratch is sized at creation for one batch; the data set's own scratch grows on the first
 *    batch. Steady-state batches do no malloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "datasets/loader.h"

struct opl_loader {
  opl_ds *ds;
  opl_loader_opts o;
  opl_loader_info info;
  int64_t P;               /* points per channel: nx * ny */
  /* selections resolved */
  int64_t t0[2], nt[2];    /* [0] input, [1] target */
  int wa[2];
  /* scratch for one batch */
  opl_real *sa;            /* [batch, P] */
  opl_real *su;            /* [batch, max nt, P] */
  int64_t *idx;            /* [batch] */
  /* shuffled order of the training split for the epoch `perm_epoch` (-1: none yet) */
  int64_t *perm;           /* [ntrain] */
  int64_t perm_epoch;
  /* cache (o.cache) */
  opl_real *ca;            /* [rows, P] or NULL */
  opl_real *cu;            /* [rows, thi - tlo, P] or NULL */
  int64_t tlo, thi;
};

static const char *ds_path(const opl_ds *d) { return opl_ds_get_info(d)->path; }

/* Resolve a selection against T frames: t0 < 0 from the end; OPL_ERR_ARG when out of range. */
static int resolve_sel(const opl_ds *ds, const char *what, const opl_ds_sel *s, int64_t *t0, opl_err *err) {
  const opl_ds_info *in = opl_ds_get_info(ds);
  int64_t T = in->dims.t, a = s->t0 < 0 ? T + s->t0 : s->t0;
  if ((s->with_a != 0 && s->with_a != 1) || s->nt < 0 || s->with_a + s->nt < 1)
    return opl_err_set(err, OPL_ERR_ARG, "loader: '%s': %s selection {with_a %d, nt %lld} selects no channel", in->path,
                       what, s->with_a, (long long)s->nt);
  if (s->nt > 0 && (a < 0 || a + s->nt > T))
    return opl_err_set(err, OPL_ERR_ARG,
                       "loader: '%s': %s frames [%lld, %lld) (t0 = %lld) outside the %lld frames [0, %lld) of dataset '%s'",
                       in->path, what, (long long)a, (long long)(a + s->nt), (long long)s->t0, (long long)T,
                       (long long)T, in->u_name);
  *t0 = s->nt > 0 ? a : 0;
  return OPL_OK;
}

/* Cache row of sample s, or -1 when s is in no split. */
static int64_t cache_row(const opl_loader *l, int64_t s) {
  if (s >= 0 && s < l->info.n[0]) return s;
  if (s >= l->info.first[1] && s < l->info.first[1] + l->info.n[1]) return l->info.n[0] + (s - l->info.first[1]);
  return -1;
}

/* Fill the cache: rows [0, ntrain) = samples [0, ntrain), rows [ntrain, +ntest) = the test
 * samples, read in chunks of `batch` samples through the loader's own read path. */
static int fill_cache(opl_loader *l, opl_err *err) {
  int64_t rows = l->info.n[0] + l->info.n[1], P = l->P, nf = l->thi - l->tlo;
  int usea = l->wa[0] || l->wa[1];
  if (usea && !(l->ca = malloc(sizeof(opl_real) * (size_t)(rows * P))))
    return opl_err_set(err, OPL_ERR_NOMEM, "loader: out of memory caching %lld samples", (long long)rows);
  if (nf > 0 && !(l->cu = malloc(sizeof(opl_real) * (size_t)(rows * nf * P))))
    return opl_err_set(err, OPL_ERR_NOMEM, "loader: out of memory caching %lld samples x %lld frames", (long long)rows,
                       (long long)nf);
  if (opl_ds_get_info(l->ds)->transposed) {
    /* MATLAB order: samples are the fastest axis, a frame of all samples is one contiguous
     * block. Read a whole split per frame (reading by sample chunks would sweep the entire
     * variable once per chunk). */
    int64_t nmax = l->info.n[0] > l->info.n[1] ? l->info.n[0] : l->info.n[1];
    opl_real *tmp = nf > 0 ? malloc(sizeof(opl_real) * (size_t)(nmax * P)) : NULL;
    if (nf > 0 && !tmp) return opl_err_set(err, OPL_ERR_NOMEM, "loader: out of memory (%lld values)", (long long)(nmax * P));
    int st = OPL_OK;
    for (int sp = 0; sp < 2 && !st; sp++) {
      int64_t n = l->info.n[sp], row = sp ? l->info.n[0] : 0, first = l->info.first[sp];
      if (n == 0) continue;
      if (usea) st = opl_ds_read_a_range(l->ds, first, n, l->o.sub, l->ca + row * P, err);
      for (int64_t t = l->tlo; t < l->thi && !st; t++) {
        st = opl_ds_read_u_range(l->ds, first, n, t, 1, l->o.sub, tmp, err);
        for (int64_t j = 0; j < n && !st; j++)
          memcpy(l->cu + ((row + j) * nf + (t - l->tlo)) * P, tmp + j * P, sizeof(opl_real) * (size_t)P);
      }
    }
    free(tmp);
    return st;
  }
  for (int sp = 0; sp < 2; sp++) {
    for (int64_t s = 0; s < l->info.n[sp]; s += l->o.batch) {
      int64_t cnt = l->info.n[sp] - s < l->o.batch ? l->info.n[sp] - s : l->o.batch;
      int64_t row = (sp ? l->info.n[0] : 0) + s, first = l->info.first[sp] + s;
      int st;
      if (usea && (st = opl_ds_read_a_range(l->ds, first, cnt, l->o.sub, l->ca + row * P, err))) return st;
      if (nf > 0 && (st = opl_ds_read_u_range(l->ds, first, cnt, l->tlo, nf, l->o.sub, l->cu + row * nf * P, err)))
        return st;
    }
  }
  return OPL_OK;
}

void opl_loader_free(opl_loader **pl) {
  if (!pl || !*pl) return;
  opl_loader *l = *pl;
  free(l->sa);
  free(l->su);
  free(l->idx);
  free(l->perm);
  free(l->ca);
  free(l->cu);
  free(l);
  *pl = NULL;
}

opl_loader *opl_loader_new(opl_ds *ds, const opl_loader_opts *o, opl_err *err) {
  if (!ds || !o) {
    opl_err_set(err, OPL_ERR_ARG, "loader: NULL %s", ds ? "options" : "data set");
    return NULL;
  }
  const opl_ds_info *in = opl_ds_get_info(ds);
  const char *path = in->path;
  int64_t N = in->dims.n;
  if (o->ntrain < 0 || o->ntest < 0 || o->ntrain + o->ntest < 1 || o->ntrain + o->ntest > N) {
    opl_err_set(err, OPL_ERR_ARG, "loader: '%s': ntrain %lld + ntest %lld = %lld, expected between 1 and N = %lld",
                path, (long long)o->ntrain, (long long)o->ntest, (long long)(o->ntrain + o->ntest), (long long)N);
    return NULL;
  }
  if (o->batch < 1) {
    opl_err_set(err, OPL_ERR_ARG, "loader: '%s': batch size %lld, expected >= 1", path, (long long)o->batch);
    return NULL;
  }
  int64_t nx, ny, t0[2];
  if (opl_ds_check_sub(ds, o->sub, &nx, &ny, err) || resolve_sel(ds, "input", &o->in, &t0[0], err) ||
      resolve_sel(ds, "target", &o->out, &t0[1], err))
    return NULL;
  opl_loader *l = calloc(1, sizeof *l);
  if (!l) {
    opl_err_set(err, OPL_ERR_NOMEM, "loader: out of memory");
    return NULL;
  }
  l->ds = ds;
  l->o = *o;
  l->P = nx * ny;
  l->wa[0] = o->in.with_a;
  l->wa[1] = o->out.with_a;
  l->nt[0] = o->in.nt;
  l->nt[1] = o->out.nt;
  l->t0[0] = t0[0];
  l->t0[1] = t0[1];
  l->perm_epoch = -1;
  opl_loader_info *li = &l->info;
  li->sdim = in->dims.sdim;
  li->nx = nx;
  li->ny = ny;
  li->cin = o->in.with_a + o->in.nt;
  li->cout = o->out.with_a + o->out.nt;
  li->in_t0 = t0[0];
  li->out_t0 = t0[1];
  li->batch = o->batch;
  li->n[0] = o->ntrain;
  li->n[1] = o->ntest;
  li->first[0] = 0;
  li->first[1] = N - o->ntest;
  for (int s = 0; s < 2; s++) li->nbatch[s] = (li->n[s] + o->batch - 1) / o->batch;
  li->rank = li->sdim == 2 ? 4 : 3;
  int64_t is[4] = {o->batch, li->cin, nx, ny}, os[4] = {o->batch, li->cout, nx, ny};
  memcpy(li->in_shape, is, sizeof is);
  memcpy(li->out_shape, os, sizeof os);
  int64_t maxnt = l->nt[0] > l->nt[1] ? l->nt[0] : l->nt[1];
  l->sa = malloc(sizeof(opl_real) * (size_t)(o->batch * l->P));
  l->su = malloc(sizeof(opl_real) * (size_t)(o->batch * (maxnt ? maxnt : 1) * l->P));
  l->idx = malloc(sizeof(int64_t) * (size_t)o->batch);
  l->perm = malloc(sizeof(int64_t) * (size_t)(o->ntrain ? o->ntrain : 1));
  if (!l->sa || !l->su || !l->idx || !l->perm) {
    opl_loader_free(&l);
    opl_err_set(err, OPL_ERR_NOMEM, "loader: out of memory");
    return NULL;
  }
  if (o->cache) {
    l->tlo = INT64_MAX;
    l->thi = 0;
    for (int s = 0; s < 2; s++)
      if (l->nt[s] > 0) {
        if (l->t0[s] < l->tlo) l->tlo = l->t0[s];
        if (l->t0[s] + l->nt[s] > l->thi) l->thi = l->t0[s] + l->nt[s];
      }
    if (l->thi == 0) l->tlo = 0;
    if (fill_cache(l, err)) {
      opl_loader_free(&l);
      return NULL;
    }
  }
  return l;
}

const opl_loader_info *opl_loader_get_info(const opl_loader *l) { return l ? &l->info : NULL; }
opl_ds *opl_loader_ds(const opl_loader *l) { return l ? l->ds : NULL; }

/* Uniform integer in [0, bound) from the stream, without modulo bias (rejection). */
static uint64_t rng_below(opl_rng *r, uint64_t bound) {
  uint64_t lim = UINT64_MAX - UINT64_MAX % bound;
  uint64_t v;
  do v = opl_rng_u64(r);
  while (v >= lim);
  return v % bound;
}

/* Order of the training split for an epoch into l->perm (cached for the last epoch). */
static void train_order(opl_loader *l, int64_t epoch) {
  if (l->perm_epoch == epoch) return;
  int64_t n = l->info.n[0];
  for (int64_t i = 0; i < n; i++) l->perm[i] = i;
  if (l->o.shuffle && n > 1) {
    /* Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm 3.4.2 P) on the stream of (seed, epoch). */
    opl_rng base, r;
    opl_rng_seed(&base, l->o.seed);
    r = opl_rng_split(&base, (uint64_t)epoch);
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = (int64_t)rng_below(&r, (uint64_t)(i + 1));
      int64_t t = l->perm[i];
      l->perm[i] = l->perm[j];
      l->perm[j] = t;
    }
  }
  l->perm_epoch = epoch;
}

int opl_loader_order(opl_loader *l, int split, int64_t epoch, int64_t *order, opl_err *err) {
  if (!l || !order) return opl_err_set(err, OPL_ERR_ARG, "loader: NULL %s", l ? "order buffer" : "loader");
  if (split != OPL_SPLIT_TRAIN && split != OPL_SPLIT_TEST)
    return opl_err_set(err, OPL_ERR_ARG, "loader: unknown split %d", split);
  if (epoch < 0) return opl_err_set(err, OPL_ERR_ARG, "loader: epoch %lld < 0", (long long)epoch);
  if (split == OPL_SPLIT_TEST) {
    for (int64_t i = 0; i < l->info.n[1]; i++) order[i] = l->info.first[1] + i;
  } else {
    train_order(l, epoch);
    memcpy(order, l->perm, sizeof(int64_t) * (size_t)l->info.n[0]);
  }
  return OPL_OK;
}

/* Fill dst [count, wa + nt, P] for one selection (s: 0 input, 1 target). */
static int fill_sel(opl_loader *l, int s, const int64_t *idx, int64_t count, opl_real *dst, int from_cache,
                    opl_err *err) {
  int64_t P = l->P, nt = l->nt[s], t0 = l->t0[s], C = l->wa[s] + nt;
  if (from_cache) {
    int64_t nf = l->thi - l->tlo;
    for (int64_t j = 0; j < count; j++) {
      int64_t row = cache_row(l, idx[j]);
      opl_real *o = dst + j * C * P;
      if (l->wa[s]) memcpy(o, l->ca + row * P, sizeof(opl_real) * (size_t)P);
      if (nt) memcpy(o + l->wa[s] * P, l->cu + (row * nf + (t0 - l->tlo)) * P, sizeof(opl_real) * (size_t)(nt * P));
    }
    return OPL_OK;
  }
  int st;
  if (!l->wa[s]) return opl_ds_read_u(l->ds, idx, count, t0, nt, l->o.sub, dst, err);
  if ((st = opl_ds_read_a(l->ds, idx, count, l->o.sub, l->sa, err))) return st;
  if (nt && (st = opl_ds_read_u(l->ds, idx, count, t0, nt, l->o.sub, l->su, err))) return st;
  for (int64_t j = 0; j < count; j++) {
    opl_real *o = dst + j * C * P;
    memcpy(o, l->sa + j * P, sizeof(opl_real) * (size_t)P);
    if (nt) memcpy(o + P, l->su + j * nt * P, sizeof(opl_real) * (size_t)(nt * P));
  }
  return OPL_OK;
}

int opl_loader_read(opl_loader *l, const int64_t *idx, int64_t count, opl_real *x, opl_real *y, opl_err *err) {
  if (!l || !idx) return opl_err_set(err, OPL_ERR_ARG, "loader: NULL %s", l ? "index list" : "loader");
  const char *path = ds_path(l->ds);
  if (count < 1 || count > l->o.batch)
    return opl_err_set(err, OPL_ERR_ARG, "loader: '%s': %lld samples requested, expected 1..%lld (the batch size)",
                       path, (long long)count, (long long)l->o.batch);
  int64_t N = opl_ds_get_info(l->ds)->dims.n;
  int from_cache = l->o.cache;
  for (int64_t j = 0; j < count; j++) {
    if (idx[j] < 0 || idx[j] >= N)
      return opl_err_set(err, OPL_ERR_ARG, "loader: '%s': sample index %lld outside [0, %lld)", path,
                         (long long)idx[j], (long long)N);
    if (cache_row(l, idx[j]) < 0) from_cache = 0;
  }
  int st = OPL_OK;
  if (x) st = fill_sel(l, 0, idx, count, x, from_cache, err);
  if (!st && y) st = fill_sel(l, 1, idx, count, y, from_cache, err);
  return st;
}

int opl_loader_batch(opl_loader *l, int split, int64_t epoch, int64_t k, opl_real *x, opl_real *y,
                     int64_t *bsize, int64_t *samples, opl_err *err) {
  if (bsize) *bsize = 0;
  if (!l) return opl_err_set(err, OPL_ERR_ARG, "loader: NULL loader");
  if (split != OPL_SPLIT_TRAIN && split != OPL_SPLIT_TEST)
    return opl_err_set(err, OPL_ERR_ARG, "loader: unknown split %d", split);
  if (epoch < 0) return opl_err_set(err, OPL_ERR_ARG, "loader: epoch %lld < 0", (long long)epoch);
  if (k < 0 || k >= l->info.nbatch[split])
    return opl_err_set(err, OPL_ERR_ARG, "loader: '%s': batch %lld outside [0, %lld) of the %s split",
                       ds_path(l->ds), (long long)k, (long long)l->info.nbatch[split],
                       split ? "test" : "train");
  int64_t n = l->info.n[split], b0 = k * l->o.batch, B = n - b0 < l->o.batch ? n - b0 : l->o.batch;
  if (split == OPL_SPLIT_TRAIN) {
    train_order(l, epoch);
    memcpy(l->idx, l->perm + b0, sizeof(int64_t) * (size_t)B);
  } else {
    for (int64_t j = 0; j < B; j++) l->idx[j] = l->info.first[1] + b0 + j;
  }
  int st = opl_loader_read(l, l->idx, B, x, y, err);
  if (st) return st;
  if (bsize) *bsize = B;
  if (samples) memcpy(samples, l->idx, sizeof(int64_t) * (size_t)B);
  return OPL_OK;
}

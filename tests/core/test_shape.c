/* Shape ops (concat, split, slice, pad, crop, reshape, view_as_real, permute): gradient checks (table),
 * adjoint checks (all of them are linear), forward values against naive index loops and
 * hand-written PyTorch F.pad values, gradient routing, and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

/* ------------------------------------------------------------ op wrappers for the table */

static opl_tensor *f_concat(opl_ctx *c, opl_tensor **x, const void *o) {
  const int *nax = o; /* {n, axis} */
  return opl_concat(c, nax[0], x, nax[1]);
}
/* Concat of 5 pieces built from 2 inputs: x0, x1, x0, x1, x0 (exercises n > OPL_MAX_INPUTS
 * and gradients of an input used several times). */
static opl_tensor *f_concat5(opl_ctx *c, opl_tensor **x, const void *o) {
  opl_tensor *xs[5] = {x[0], x[1], x[0], x[1], x[0]};
  return opl_concat(c, 5, xs, *(const int *)o);
}
/* Concat of 6 arena tensors, scales of 2 inputs (n > OPL_MAX_INPUTS with gradients the tape
 * walk must provide for inputs the node does not list in in[]). */
static opl_tensor *f_concat6_arena(opl_ctx *c, opl_tensor **x, const void *o) {
  opl_tensor *xs[6];
  for (int i = 0; i < 6; i++) xs[i] = opl_scale(c, x[i % 2], 1.0 + i);
  return opl_concat(c, 6, xs, *(const int *)o);
}
/* Split along axis into 3 pieces; only pieces 2 and 0 are used (concatenated in that order). */
typedef struct split_opt { int axis; int64_t sizes[3]; } split_opt;
static opl_tensor *f_split(opl_ctx *c, opl_tensor **x, const void *o) {
  const split_opt *s = o;
  opl_tensor *outs[3];
  if (opl_split(c, x[0], s->axis, 3, s->sizes, outs) != OPL_OK) return NULL;
  opl_tensor *use[2] = {outs[2], outs[0]};
  return opl_concat(c, 2, use, s->axis);
}
/* Split and return only the middle piece. */
static opl_tensor *f_split_mid(opl_ctx *c, opl_tensor **x, const void *o) {
  const split_opt *s = o;
  opl_tensor *outs[3];
  if (opl_split(c, x[0], s->axis, 3, s->sizes, outs) != OPL_OK) return NULL;
  return outs[1];
}
typedef struct slice_opt { int axis; int64_t start, len; } slice_opt;
static opl_tensor *f_slice(opl_ctx *c, opl_tensor **x, const void *o) {
  const slice_opt *s = o;
  return opl_slice(c, x[0], s->axis, s->start, s->len);
}
typedef struct pad_opt { int nd; int64_t lo[4], hi[4]; opl_pad_mode mode; } pad_opt;
static opl_tensor *f_pad(opl_ctx *c, opl_tensor **x, const void *o) {
  const pad_opt *p = o;
  return opl_pad(c, x[0], p->nd, p->lo, p->hi, p->mode);
}
static opl_tensor *f_crop(opl_ctx *c, opl_tensor **x, const void *o) {
  const pad_opt *p = o;
  return opl_crop(c, x[0], p->nd, p->lo, p->hi);
}
static opl_tensor *f_view_as_real(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_view_as_real(c, x[0]);
}
typedef struct reshape_opt { int rank; int64_t shape[5]; } reshape_opt;
static opl_tensor *f_reshape(opl_ctx *c, opl_tensor **x, const void *o) {
  const reshape_opt *r = o;
  return opl_reshape(c, x[0], r->rank, r->shape);
}
/* reshape(x) * reshape(x): x reaches the output through two reshape nodes that share its
 * data, so each node must accumulate its own gradient buffer into x's. */
static opl_tensor *f_reshape_sq(opl_ctx *c, opl_tensor **x, const void *o) {
  const reshape_opt *r = o;
  return opl_mul(c, opl_reshape(c, x[0], r->rank, r->shape), opl_reshape(c, x[0], r->rank, r->shape));
}
static opl_tensor *f_permute(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_permute(c, x[0], (const int *)o);
}
/* A chain: pad circular then crop then permute (composition of shape ops). */
static opl_tensor *f_chain(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  const int64_t lo[2] = {2, 1}, hi[2] = {1, 3}, clo[2] = {1, 0}, chi[2] = {0, 2};
  const int perm[4] = {0, 3, 2, 1};
  opl_tensor *p = opl_pad(c, x[0], 2, lo, hi, OPL_PAD_CIRCULAR);
  return opl_permute(c, opl_crop(c, p, 2, clo, chi), perm);
}

static const int cat_n2_a0[2] = {2, 0}, cat_n2_a1[2] = {2, 1}, cat_n3_a2[2] = {3, 2},
                 cat_n3_am1[2] = {3, -1}, cat_n4_a1[2] = {4, 1}, cat_n1_a0[2] = {1, 0};
static const int ax1 = 1, axm1 = -1;
static const split_opt split_a1 = {1, {2, 1, 4}}, split_am1 = {-1, {3, 2, 4}},
                       split_a0 = {0, {1, 3, 1}};
static const slice_opt sl_a0 = {0, 1, 2}, sl_a1 = {1, 2, 3}, sl_am1 = {-1, 0, 4},
                       sl_a2 = {2, 4, 1}, sl_a3 = {3, 1, 5};
static const pad_opt pz1 = {1, {2}, {3}, OPL_PAD_ZERO}, pc1 = {1, {3}, {5}, OPL_PAD_CIRCULAR},
                     pr1 = {1, {4}, {9}, OPL_PAD_REPLICATE},
                     pcw1 = {1, {7}, {11}, OPL_PAD_CIRCULAR}, pcw2 = {2, {2, 5}, {2, 3}, OPL_PAD_CIRCULAR},
                     pz2 = {2, {1, 0}, {2, 3}, OPL_PAD_ZERO}, pc2 = {2, {3, 1}, {2, 5}, OPL_PAD_CIRCULAR},
                     pr2 = {2, {2, 3}, {3, 1}, OPL_PAD_REPLICATE},
                     pz3 = {3, {1, 2, 0}, {1, 0, 2}, OPL_PAD_ZERO}, pc3 = {3, {2, 1, 3}, {3, 1, 2}, OPL_PAD_CIRCULAR},
                     pr3 = {3, {1, 2, 2}, {2, 0, 1}, OPL_PAD_REPLICATE},
                     pf1 = {1, {4}, {3}, OPL_PAD_REFLECT}, pf2 = {2, {2, 0}, {1, 4}, OPL_PAD_REFLECT},
                     pf3 = {3, {1, 2, 2}, {2, 0, 3}, OPL_PAD_REFLECT},
                     pfbig = {2, {63, 1}, {5, 79}, OPL_PAD_REFLECT},
                     pzall = {4, {1, 0, 1, 2}, {0, 1, 2, 0}, OPL_PAD_ZERO},
                     cr1 = {1, {2}, {3}, OPL_PAD_ZERO}, cr2 = {2, {1, 0}, {2, 3}, OPL_PAD_ZERO},
                     cr3 = {3, {1, 2, 0}, {0, 1, 2}, OPL_PAD_ZERO},
                     pcbig = {2, {3, 5}, {7, 2}, OPL_PAD_CIRCULAR},
                     prbig = {2, {9, 1}, {4, 6}, OPL_PAD_REPLICATE}, crbig = {2, {3, 5}, {7, 2}, OPL_PAD_ZERO};
static const reshape_opt rs_flat = {1, {-1}}, rs_a = {3, {5, 2, 3}}, rs_b = {4, {2, -1, 3, 1}},
                         rs_c = {2, {3, 10}};
static const int perm3[3] = {2, 0, 1}, perm4[4] = {0, 2, 3, 1}, perm5[5] = {4, 1, 3, 0, 2},
                 perm2[2] = {1, 0}, perm_id[3] = {0, 1, 2};

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
/* Rows with ~4e4 outputs: the finite difference of sum(r * y) over that many terms carries
 * ~1e-12 of rounding noise, about 1e-6 relative in the double build, so those rows get a
 * looser double tolerance (the single build keeps its default). */
#ifdef OPL_DOUBLE
#define BIG_RTOL 2e-5
#else
#define BIG_RTOL 0
#endif
#define INC(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .cplx = 1}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const gc_case rows[] = {
    {"concat 2 on axis 0", f_concat, cat_n2_a0, 2, {IN(3, 2, 3, 5), IN(3, 1, 3, 5)}},
    {"concat 2 on axis 1", f_concat, cat_n2_a1, 2, {IN(3, 2, 3, 5), IN(3, 2, 4, 5)}},
    {"concat 3 on axis 2", f_concat, cat_n3_a2, 3, {IN(3, 2, 3, 1), IN(3, 2, 3, 4), IN(3, 2, 3, 2)}},
    {"concat 3 on axis -1 (rank 4)", f_concat, cat_n3_am1, 3, {IN(4, 2, 1, 3, 3), IN(4, 2, 1, 3, 5), IN(4, 2, 1, 3, 1)}},
    {"concat 4 on axis 1", f_concat, cat_n4_a1, 4, {IN(2, 3, 2), IN(2, 3, 1), IN(2, 3, 3), IN(2, 3, 2)}},
    {"concat 1 (copy)", f_concat, cat_n1_a0, 1, {IN(2, 3, 7)}},
    {"concat 2, one without grad", f_concat, cat_n2_a1, 2, {IN(3, 2, 3, 5), INNG(3, 2, 4, 5)}},
    {"concat 5 from 2 inputs on axis 1", f_concat5, &ax1, 2, {IN(3, 2, 3, 5), IN(3, 2, 2, 5)}},
    {"concat 5 from 2 inputs on axis -1", f_concat5, &axm1, 2, {IN(2, 3, 1), IN(2, 3, 4)}},
    {"concat 6 arena tensors on axis 1", f_concat6_arena, &ax1, 2, {IN(3, 2, 3, 5), IN(3, 2, 2, 5)}},
    {"concat complex on axis 1", f_concat, cat_n2_a1, 2, {INC(3, 2, 3, 5), INC(3, 2, 2, 5)}},
    {"split 3 on axis 1, use 2 of them", f_split, &split_a1, 1, {IN(3, 2, 7, 3)}},
    {"split 3 on axis -1, use 2 of them", f_split, &split_am1, 1, {IN(2, 3, 9)}},
    {"split 3 on axis 0, middle only", f_split_mid, &split_a0, 1, {IN(3, 5, 2, 3)}},
    {"split complex, middle only", f_split_mid, &split_a1, 1, {INC(3, 2, 7, 3)}},
    {"slice axis 0", f_slice, &sl_a0, 1, {IN(3, 4, 3, 5)}},
    {"slice axis 1", f_slice, &sl_a1, 1, {IN(3, 2, 6, 5)}},
    {"slice axis -1", f_slice, &sl_am1, 1, {IN(3, 2, 3, 7)}},
    {"slice axis 2 of rank 4", f_slice, &sl_a2, 1, {IN(4, 2, 3, 5, 3)}},
    {"slice axis 3 of rank 5", f_slice, &sl_a3, 1, {IN(5, 2, 1, 2, 7, 3)}},
    {"slice complex axis 1", f_slice, &sl_a1, 1, {INC(3, 2, 6, 5)}},
    {"pad zero 1-D", f_pad, &pz1, 1, {IN(3, 2, 3, 7)}},
    {"pad circular 1-D (hi wraps)", f_pad, &pc1, 1, {IN(3, 2, 3, 5)}},
    {"pad replicate 1-D (wider than axis)", f_pad, &pr1, 1, {IN(3, 2, 3, 5)}},
    {"pad zero 2-D", f_pad, &pz2, 1, {IN(4, 2, 3, 5, 4)}},
    {"pad circular 2-D (width = extent)", f_pad, &pc2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad circular 1-D wider than the axis (7, 11 on 3)", f_pad, &pcw1, 1, {IN(3, 2, 3, 3)}},
    {"pad circular 2-D wider than the axes (2 on 1, 5 on 2)", f_pad, &pcw2, 1, {IN(4, 2, 2, 1, 2)}},
    {"pad replicate 2-D", f_pad, &pr2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad zero 3-D", f_pad, &pz3, 1, {IN(5, 2, 2, 3, 4, 3)}},
    {"pad circular 3-D", f_pad, &pc3, 1, {IN(5, 1, 2, 3, 4, 3)}},
    {"pad replicate 3-D", f_pad, &pr3, 1, {IN(5, 2, 1, 3, 4, 3)}},
    {"pad reflect 1-D (width extent - 1)", f_pad, &pf1, 1, {IN(3, 2, 3, 5)}},
    {"pad reflect 2-D", f_pad, &pf2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad reflect 3-D", f_pad, &pf3, 1, {IN(5, 2, 1, 3, 4, 4)}},
    {"pad zero on all 4 axes", f_pad, &pzall, 1, {IN(4, 2, 3, 2, 3)}},
    {"crop 1-D", f_crop, &cr1, 1, {IN(3, 2, 3, 9)}},
    {"crop 2-D", f_crop, &cr2, 1, {IN(4, 2, 2, 5, 7)}},
    {"crop 3-D", f_crop, &cr3, 1, {IN(5, 2, 1, 4, 5, 5)}},
    {"reshape to flat (-1)", f_reshape, &rs_flat, 1, {IN(3, 2, 3, 5)}},
    {"reshape (2,3,5)->(5,2,3)", f_reshape, &rs_a, 1, {IN(3, 2, 3, 5)}},
    {"reshape (6,5)->(2,-1,3,1)", f_reshape, &rs_b, 1, {IN(2, 6, 5)}},
    {"reshape complex", f_reshape, &rs_c, 1, {INC(3, 2, 3, 5)}},
    {"reshape twice, multiplied", f_reshape_sq, &rs_a, 1, {IN(3, 2, 3, 5)}},
    {"view_as_real (2,3,5) complex", f_view_as_real, NULL, 1, {INC(3, 2, 3, 5)}},
    {"view_as_real rank 4 complex", f_view_as_real, NULL, 1, {INC(4, 2, 1, 3, 4)}},
    {"permute rank 2", f_permute, perm2, 1, {IN(2, 3, 7)}},
    {"permute rank 3", f_permute, perm3, 1, {IN(3, 2, 3, 5)}},
    {"permute rank 4", f_permute, perm4, 1, {IN(4, 2, 3, 4, 5)}},
    {"permute rank 5", f_permute, perm5, 1, {IN(5, 2, 3, 1, 4, 3)}},
    {"permute identity", f_permute, perm_id, 1, {IN(3, 2, 3, 5)}},
    {"permute complex rank 4", f_permute, perm4, 1, {INC(4, 2, 3, 4, 5)}},
    {"pad circular, crop, permute", f_chain, NULL, 1, {IN(4, 2, 3, 4, 5)}},
    /* large enough for the OpenMP paths */
    {"concat large", f_concat, cat_n2_a1, 2, {IN(4, 4, 8, 32, 40), IN(4, 4, 3, 32, 40)}, BIG_RTOL},
    {"pad circular large", f_pad, &pcbig, 1, {IN(4, 2, 4, 64, 80)}, BIG_RTOL},
    {"pad replicate large", f_pad, &prbig, 1, {IN(4, 2, 4, 64, 80)}, BIG_RTOL},
    {"pad reflect large", f_pad, &pfbig, 1, {IN(4, 2, 4, 64, 80)}, BIG_RTOL},
    {"crop large", f_crop, &crbig, 1, {IN(4, 2, 4, 64, 80)}, BIG_RTOL},
    {"permute large", f_permute, perm4, 1, {IN(4, 4, 8, 32, 40)}, BIG_RTOL},
    {"permute complex large", f_permute, perm3, 1, {INC(3, 8, 64, 40)}, BIG_RTOL},
};

static const gc_case adjoint_rows[] = {
    {"concat 3 on axis 2", f_concat, cat_n3_a2, 3, {IN(3, 2, 3, 1), IN(3, 2, 3, 4), IN(3, 2, 3, 2)}},
    {"concat 5 from 2 inputs", f_concat5, &ax1, 2, {IN(3, 2, 3, 5), IN(3, 2, 2, 5)}},
    {"concat complex", f_concat, cat_n2_a1, 2, {INC(3, 2, 3, 5), INC(3, 2, 2, 5)}},
    {"split, 2 pieces used", f_split, &split_a1, 1, {IN(3, 2, 7, 3)}},
    {"slice axis 1", f_slice, &sl_a1, 1, {IN(3, 2, 6, 5)}},
    {"slice complex", f_slice, &sl_a1, 1, {INC(3, 2, 6, 5)}},
    {"pad zero 1-D", f_pad, &pz1, 1, {IN(3, 2, 3, 7)}},
    {"pad circular 1-D", f_pad, &pc1, 1, {IN(3, 2, 3, 5)}},
    {"pad replicate 1-D", f_pad, &pr1, 1, {IN(3, 2, 3, 5)}},
    {"pad zero 2-D", f_pad, &pz2, 1, {IN(4, 2, 3, 5, 4)}},
    {"pad circular 2-D", f_pad, &pc2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad circular 1-D wider than the axis", f_pad, &pcw1, 1, {IN(3, 2, 3, 3)}},
    {"pad circular 2-D wider than the axes", f_pad, &pcw2, 1, {IN(4, 2, 2, 1, 2)}},
    {"pad replicate 2-D", f_pad, &pr2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad zero 3-D", f_pad, &pz3, 1, {IN(5, 2, 2, 3, 4, 3)}},
    {"pad circular 3-D", f_pad, &pc3, 1, {IN(5, 1, 2, 3, 4, 3)}},
    {"pad replicate 3-D", f_pad, &pr3, 1, {IN(5, 2, 1, 3, 4, 3)}},
    {"pad reflect 1-D", f_pad, &pf1, 1, {IN(3, 2, 3, 5)}},
    {"pad reflect 2-D", f_pad, &pf2, 1, {IN(4, 2, 2, 3, 5)}},
    {"pad reflect 3-D", f_pad, &pf3, 1, {IN(5, 2, 1, 3, 4, 4)}},
    {"crop 2-D", f_crop, &cr2, 1, {IN(4, 2, 2, 5, 7)}},
    {"crop 3-D", f_crop, &cr3, 1, {IN(5, 2, 1, 4, 5, 5)}},
    {"reshape", f_reshape, &rs_b, 1, {IN(2, 6, 5)}},
    {"reshape complex", f_reshape, &rs_c, 1, {INC(3, 2, 3, 5)}},
    {"view_as_real", f_view_as_real, NULL, 1, {INC(3, 2, 3, 5)}},
    {"permute rank 5", f_permute, perm5, 1, {IN(5, 2, 3, 1, 4, 3)}},
    {"permute complex", f_permute, perm4, 1, {INC(4, 2, 3, 4, 5)}},
    {"pad circular, crop, permute", f_chain, NULL, 1, {IN(4, 2, 3, 4, 5)}},
    {"concat large", f_concat, cat_n2_a1, 2, {IN(4, 4, 8, 32, 40), IN(4, 4, 3, 32, 40)}},
    {"slice large", f_slice, &sl_a1, 1, {IN(4, 4, 8, 32, 40)}},
    {"pad circular large", f_pad, &pcbig, 1, {IN(4, 2, 4, 64, 80)}},
    {"pad replicate large", f_pad, &prbig, 1, {IN(4, 2, 4, 64, 80)}},
    {"pad reflect large", f_pad, &pfbig, 1, {IN(4, 2, 4, 64, 80)}},
    {"crop large", f_crop, &crbig, 1, {IN(4, 2, 4, 64, 80)}},
    {"permute large", f_permute, perm4, 1, {IN(4, 4, 8, 32, 40)}},
    {"permute complex large", f_permute, perm3, 1, {INC(3, 8, 64, 40)}},
};

/* ------------------------------------------------------------ helpers */

static uint64_t rng = 42;

static void fill(opl_tensor *t) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(2 * gc_uniform(&rng) - 1);
}

/* Values of a tensor as doubles (caller frees). */
static double *to_double(const opl_tensor *t) {
  double *d = malloc((size_t)opl_nreal(t) * sizeof *d);
  for (int64_t i = 0; i < opl_nreal(t); i++) d[i] = t->data[i];
  return d;
}

static int shape_is(const opl_tensor *t, int rank, const int64_t *shape) {
  return t && opl_shape_eq(t->rank, t->shape, rank, shape);
}

/* Row-major linear index of idx in shape (rank r). */
static int64_t lin(int r, const int64_t *shape, const int64_t *idx) {
  int64_t k = 0;
  for (int i = 0; i < r; i++) k = k * shape[i] + idx[i];
  return k;
}

/* Advance a multi-index; returns 0 after the last one. */
static int next_index(int r, const int64_t *shape, int64_t *idx) {
  for (int i = r - 1; i >= 0; i--) {
    if (++idx[i] < shape[i]) return 1;
    idx[i] = 0;
  }
  return 0;
}

/* ------------------------------------------------------------ forward values */

static void test_concat_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 2, 3)), *b = opl_new(c, OPL_DIMS(2, 3, 3)),
             *d = opl_new(c, OPL_DIMS(2, 1, 3));
  fill(a), fill(b), fill(d);
  opl_tensor *xs[3] = {a, b, d};
  opl_tensor *y = opl_concat(c, 3, xs, 1);
  ok(shape_is(y, 3, (const int64_t[]){2, 6, 3}), "concat (2,2,3)+(2,3,3)+(2,1,3) on axis 1 -> (2,6,3)");
  if (y) {
    /* naive: y[n, k, x] comes from the input whose range holds k */
    double want[36], *got = to_double(y);
    for (int n = 0; n < 2; n++)
      for (int k = 0; k < 6; k++)
        for (int x = 0; x < 3; x++) {
          const opl_tensor *src = k < 2 ? a : (k < 5 ? b : d);
          int kk = k < 2 ? k : (k < 5 ? k - 2 : k - 5);
          want[(n * 6 + k) * 3 + x] = src->data[(n * src->shape[1] + kk) * 3 + x];
        }
    arrays_close(36, got, want, 0, 0, "concat values = naive loop");
    free(got);
  }
  /* complex concat on the last axis keeps (re, im) pairs together */
  opl_tensor *ca = opl_new_flags(c, OPL_DIMS(2, 2), OPL_T_COMPLEX),
             *cb = opl_new_flags(c, OPL_DIMS(2, 1), OPL_T_COMPLEX);
  for (int i = 0; i < 8; i++) ca->data[i] = (opl_real)i;
  for (int i = 0; i < 4; i++) cb->data[i] = (opl_real)(10 + i);
  opl_tensor *cxs[2] = {ca, cb};
  opl_tensor *cy = opl_concat(c, 2, cxs, -1);
  double cwant[12] = {0, 1, 2, 3, 10, 11, 4, 5, 6, 7, 12, 13};
  ok(cy && opl_is_complex(cy) && shape_is(cy, 2, (const int64_t[]){2, 3}), "complex concat shape (2,3)");
  if (cy) {
    double *got = to_double(cy);
    arrays_close(12, got, cwant, 0, 0, "complex concat values");
    free(got);
  }
  ok(opl_ctx_status(c) == OPL_OK, "concat: no error");
  opl_ctx_free(&c);
}

/* F.pad reference of one axis: source index of output j, or -1 for a zero. */
static int64_t pad_src(int64_t j, int64_t lo, int64_t n, opl_pad_mode mode) {
  int64_t s = j - lo;
  if (mode == OPL_PAD_ZERO) return s >= 0 && s < n ? s : -1;
  if (mode == OPL_PAD_REPLICATE) return s < 0 ? 0 : (s >= n ? n - 1 : s);
  if (mode == OPL_PAD_REFLECT) return s < 0 ? -s : (s >= n ? 2 * (n - 1) - s : s);
  while (s < 0) s += n;
  return s % n;
}

static void test_pad_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  /* Hand-written PyTorch F.pad results on [1, 2, 3]. */
  opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, 3));
  for (int i = 0; i < 3; i++) x->data[i] = (opl_real)(i + 1);
  const int64_t lo[1] = {2}, hi[1] = {3};
  struct { opl_pad_mode mode; const char *name; double want[8]; } cases[3] = {
      {OPL_PAD_ZERO, "zero", {0, 0, 1, 2, 3, 0, 0, 0}},
      {OPL_PAD_CIRCULAR, "circular", {2, 3, 1, 2, 3, 1, 2, 3}},
      {OPL_PAD_REPLICATE, "replicate", {1, 1, 1, 2, 3, 3, 3, 3}},
  };
  for (int k = 0; k < 3; k++) {
    opl_tensor *y = opl_pad(c, x, 1, lo, hi, cases[k].mode);
    ok(shape_is(y, 3, (const int64_t[]){1, 1, 8}), "pad %s [1,2,3] by (2,3): shape (1,1,8)", cases[k].name);
    if (!y) continue;
    double *got = to_double(y);
    arrays_close(8, got, cases[k].want, 0, 0, "pad %s [1,2,3] by (2,3) = F.pad", cases[k].name);
    free(got);
  }
  /* 3-D padding of a (2, 3, 4, 3, 5) tensor in every mode against a naive loop. */
  const int64_t xs[5] = {2, 3, 4, 3, 5}, plo[3] = {2, 1, 4}, phi[3] = {4, 3, 0};
  opl_tensor *x3 = opl_new(c, 5, xs);
  fill(x3);
  for (int k = 0; k < 3; k++) {
    opl_pad_mode mode = cases[k].mode;
    opl_tensor *y = opl_pad(c, x3, 3, plo, phi, mode);
    const int64_t ys[5] = {2, 3, 10, 7, 9};
    ok(shape_is(y, 5, ys), "pad %s 3-D shape", cases[k].name);
    if (!y) continue;
    double *want = malloc((size_t)y->numel * sizeof *want), *got = to_double(y);
    int64_t idx[5] = {0};
    do {
      int64_t src[5] = {idx[0], idx[1]};
      int zero = 0;
      for (int i = 0; i < 3; i++) {
        src[2 + i] = pad_src(idx[2 + i], plo[i], xs[2 + i], mode);
        if (src[2 + i] < 0) zero = 1;
      }
      want[lin(5, ys, idx)] = zero ? 0 : x3->data[lin(5, xs, src)];
    } while (next_index(5, ys, idx));
    arrays_close(y->numel, got, want, 0, 0, "pad %s 3-D = naive loop", cases[k].name);
    free(want), free(got);
  }
  /* Reflect: F.pad(mode='reflect') of [1, 2, 3, 4] by (3, 2) by hand, then 3-D against the loop. */
  opl_tensor *x4 = opl_new(c, OPL_DIMS(1, 1, 4));
  for (int i = 0; i < 4; i++) x4->data[i] = (opl_real)(i + 1);
  const int64_t rlo[1] = {3}, rhi[1] = {2};
  opl_tensor *yr = opl_pad(c, x4, 1, rlo, rhi, OPL_PAD_REFLECT);
  ok(shape_is(yr, 3, (const int64_t[]){1, 1, 9}), "pad reflect [1,2,3,4] by (3,2): shape (1,1,9)");
  if (yr) {
    double *got = to_double(yr), want[9] = {4, 3, 2, 1, 2, 3, 4, 3, 2};
    arrays_close(9, got, want, 0, 0, "pad reflect [1,2,3,4] by (3,2) = F.pad reflect");
    free(got);
  }
  const int64_t flo[3] = {3, 0, 2}, fhi[3] = {1, 2, 4}, fys[5] = {2, 3, 8, 5, 11};
  opl_tensor *yf = opl_pad(c, x3, 3, flo, fhi, OPL_PAD_REFLECT);
  ok(shape_is(yf, 5, fys), "pad reflect 3-D shape");
  if (yf) {
    double *want = malloc((size_t)yf->numel * sizeof *want), *got = to_double(yf);
    int64_t idx[5] = {0};
    do {
      int64_t src[5] = {idx[0], idx[1]};
      for (int i = 0; i < 3; i++) src[2 + i] = pad_src(idx[2 + i], flo[i], xs[2 + i], OPL_PAD_REFLECT);
      want[lin(5, fys, idx)] = x3->data[lin(5, xs, src)];
    } while (next_index(5, fys, idx));
    arrays_close(yf->numel, got, want, 0, 0, "pad reflect 3-D = naive loop");
    free(want), free(got);
  }
  /* Crop undoes zero padding. */
  opl_tensor *yp = opl_pad(c, x3, 3, plo, phi, OPL_PAD_ZERO);
  opl_tensor *yc = opl_crop(c, yp, 3, plo, phi);
  ok(shape_is(yc, 5, xs), "crop(pad(x)) has the shape of x");
  if (yc) {
    double *got = to_double(yc), *want = to_double(x3);
    arrays_close(x3->numel, got, want, 0, 0, "crop(pad(x)) = x");
    free(got), free(want);
  }
  ok(opl_ctx_status(c) == OPL_OK, "pad: no error");
  opl_ctx_free(&c);
}

static void test_slice_split_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  const int64_t xs[4] = {2, 3, 7, 2};
  opl_tensor *x = opl_new(c, 4, xs);
  fill(x);
  opl_tensor *y = opl_slice(c, x, 2, 3, 4);
  const int64_t ys[4] = {2, 3, 4, 2};
  ok(shape_is(y, 4, ys), "slice axis 2 [3:7] shape (2,3,4,2)");
  if (y) {
    double *got = to_double(y), want[48];
    int64_t idx[4] = {0};
    do {
      int64_t s[4] = {idx[0], idx[1], idx[2] + 3, idx[3]};
      want[lin(4, ys, idx)] = x->data[lin(4, xs, s)];
    } while (next_index(4, ys, idx));
    arrays_close(48, got, want, 0, 0, "slice values = naive loop");
    free(got);
  }
  /* split into pieces that reassemble to x */
  opl_tensor *outs[3];
  const int64_t sizes[3] = {1, 4, 2};
  int rc = opl_split(c, x, -2, 3, sizes, outs);
  ok(rc == OPL_OK && outs[0] && outs[1] && outs[2], "split (2,3,7,2) on axis -2 into 1+4+2");
  if (rc == OPL_OK) {
    opl_tensor *back = opl_concat(c, 3, outs, 2);
    double *got = to_double(back), *want = to_double(x);
    arrays_close(x->numel, got, want, 0, 0, "concat(split(x)) = x");
    free(got), free(want);
    opl_tensor *mid = opl_slice(c, x, 2, 1, 4);
    got = to_double(outs[1]), want = to_double(mid);
    arrays_close(mid->numel, got, want, 0, 0, "split piece 1 = slice [1:5]");
    free(got), free(want);
  }
  ok(opl_ctx_status(c) == OPL_OK, "slice/split: no error");
  opl_ctx_free(&c);
}

/* Only one split piece reaches the output: the gradient of x is the seed there, 0 elsewhere,
 * and the unused pieces' nodes do not disturb it. */
static void test_split_partial_grad(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 6), OPL_T_REQGRAD, NULL);
  fill(x);
  opl_tensor *outs[3];
  const int64_t sizes[3] = {2, 3, 1};
  opl_split(c, x, 1, 3, sizes, outs);
  opl_real seed[6] = {1, 2, 3, 4, 5, 6};
  int rc = opl_backward_seed(c, outs[1], seed);
  double want[12] = {0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0}, got[12];
  for (int i = 0; i < 12; i++) got[i] = x->grad[i];
  ok(rc == OPL_OK, "backward from one split piece");
  arrays_close(12, got, want, 0, 0, "gradient lands only in that piece's range");
  ok(outs[0]->grad == NULL && outs[2]->grad == NULL, "unused pieces never got a gradient buffer");
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

static void test_permute_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  const int64_t xs[4] = {2, 3, 4, 5};
  const int perm[4] = {3, 0, 2, 1};
  opl_tensor *x = opl_new(c, 4, xs);
  fill(x);
  opl_tensor *y = opl_permute(c, x, perm);
  const int64_t ys[4] = {5, 2, 4, 3};
  ok(shape_is(y, 4, ys), "permute (2,3,4,5) by (3,0,2,1) -> (5,2,4,3)");
  if (y) {
    double *got = to_double(y), want[120];
    int64_t idx[4] = {0};
    do {
      int64_t s[4];
      for (int k = 0; k < 4; k++) s[perm[k]] = idx[k];
      want[lin(4, ys, idx)] = x->data[lin(4, xs, s)];
    } while (next_index(4, ys, idx));
    arrays_close(120, got, want, 0, 0, "permute values = naive loop");
    free(got);
  }
  /* transpose of a complex matrix moves (re, im) pairs */
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(2, 3), OPL_T_COMPLEX);
  for (int i = 0; i < 12; i++) cx->data[i] = (opl_real)i;
  opl_tensor *cy = opl_permute(c, cx, (const int[]){1, 0});
  double cwant[12] = {0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11};
  if (cy) {
    double *got = to_double(cy);
    arrays_close(12, got, cwant, 0, 0, "complex transpose keeps (re, im) pairs");
    free(got);
  } else {
    ok(0, "complex transpose");
  }
  ok(opl_ctx_status(c) == OPL_OK, "permute: no error");
  opl_ctx_free(&c);
}

static void test_reshape_sharing(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, 3, 4), OPL_T_REQGRAD, NULL);
  fill(x);
  opl_tensor *y = opl_reshape(c, x, OPL_DIMS(4, -1));
  ok(shape_is(y, 2, (const int64_t[]){4, 6}), "reshape (2,3,4) to (4,-1) -> (4,6)");
  ok(y && y->data == x->data, "reshape shares the data of its input");
  opl_real seed[24];
  for (int i = 0; i < 24; i++) seed[i] = (opl_real)(i + 1);
  for (int i = 0; i < 24; i++) x->grad[i] = 1;
  int rc = opl_backward_seed(c, y, seed);
  /* Intermediate gradients are released after their node's backward; x's is kept. */
  ok(rc == OPL_OK && y->grad == NULL && x->grad != NULL, "reshape output's gradient released, input's kept");
  int same = 1;
  for (int i = 0; i < 24; i++) same &= x->grad[i] == (opl_real)(i + 2);
  ok(same, "backward accumulates the reshape gradient into x's (pre-filled) gradient");
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ bad input */

static int err_is(opl_ctx *c, const opl_tensor *y, int status, const char *a, const char *b,
                  const char *what) {
  const char *m = opl_ctx_errmsg(c);
  int pass = y == NULL && opl_ctx_status(c) == status && (!a || strstr(m, a)) && (!b || strstr(m, b));
  ok(pass, "%s -> NULL + %s: %s", what, opl_status_name(status), m);
  opl_ctx_clear_error(c);
  return pass;
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(2, 3, 5)), *b = opl_new(c, OPL_DIMS(2, 4, 6));
  opl_tensor *ab[2] = {a, b};
  err_is(c, opl_concat(c, 2, ab, 1), OPL_ERR_SHAPE, "(2, 3, 5)", "(2, 4, 6)", "concat (2,3,5)+(2,4,6) on axis 1");
  opl_tensor *r2 = opl_new(c, OPL_DIMS(2, 3));
  opl_tensor *ar[2] = {a, r2};
  err_is(c, opl_concat(c, 2, ar, 0), OPL_ERR_SHAPE, "(2, 3, 5)", "(2, 3)", "concat of different ranks");
  opl_tensor *ca = opl_new_flags(c, OPL_DIMS(2, 3, 5), OPL_T_COMPLEX);
  opl_tensor *aca[2] = {a, ca};
  err_is(c, opl_concat(c, 2, aca, 0), OPL_ERR_SHAPE, "complex", NULL, "concat of real and complex");
  err_is(c, opl_concat(c, 2, ab, 3), OPL_ERR_ARG, "axis 3", NULL, "concat axis out of range");
  opl_tensor *an[2] = {a, NULL};
  err_is(c, opl_concat(c, 2, an, 0), OPL_ERR_ARG, "input 1", NULL, "concat with a NULL input");
  err_is(c, opl_concat(c, 0, ab, 0), OPL_ERR_ARG, "concat", NULL, "concat of 0 inputs");
  err_is(c, opl_view_as_real(c, a), OPL_ERR_SHAPE, "(2, 3, 5)", "real", "view_as_real of a real tensor");
  opl_tensor *c5 = opl_new_flags(c, OPL_DIMS(1, 2, 1, 2, 3), OPL_T_COMPLEX);
  err_is(c, opl_view_as_real(c, c5), OPL_ERR_SHAPE, "rank 5", NULL, "view_as_real of a rank-5 complex tensor");
  {
    opl_tensor *v = opl_view_as_real(c, ca);
    ok(shape_is(v, 4, (const int64_t[]){2, 3, 5, 2}) && v->data == ca->data && !opl_is_complex(v) && v->numel == 60,
       "view_as_real: complex (2,3,5) -> real (2,3,5,2) on the same storage");
  }

  opl_tensor *outs[2] = {a, a};
  int rc = opl_split(c, a, 2, 2, (const int64_t[]){2, 2}, outs);
  ok(rc == OPL_ERR_SHAPE && outs[0] == NULL && outs[1] == NULL && strstr(opl_ctx_errmsg(c), "(2, 3, 5)"),
     "split sizes 2+2 of extent 5 -> ERR_SHAPE, outs NULL: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  rc = opl_split(c, a, 2, 2, (const int64_t[]){6, -1}, outs);
  ok(rc == OPL_ERR_SHAPE, "split with a negative size -> ERR_SHAPE: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  rc = opl_split(c, a, 5, 2, (const int64_t[]){2, 3}, outs);
  ok(rc == OPL_ERR_ARG, "split axis out of range -> ERR_ARG: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);

  err_is(c, opl_slice(c, a, 2, 3, 3), OPL_ERR_SHAPE, "(2, 3, 5)", "[3, 6)", "slice [3,6) of extent 5");
  err_is(c, opl_slice(c, a, 1, -1, 2), OPL_ERR_SHAPE, "(2, 3, 5)", NULL, "slice with negative start");
  err_is(c, opl_slice(c, a, 1, 0, 0), OPL_ERR_SHAPE, "(2, 3, 5)", NULL, "slice of length 0");
  err_is(c, opl_slice(c, a, -4, 0, 1), OPL_ERR_ARG, "axis -4", NULL, "slice axis out of range");

  const int64_t neg[1] = {-1}, one[1] = {1}, six[1] = {6}, five[1] = {5};
  err_is(c, opl_pad(c, a, 1, neg, one, OPL_PAD_ZERO), OPL_ERR_ARG, "(2, 3, 5)", "negative", "negative pad");
  opl_tensor *ok5 = opl_pad(c, a, 1, five, five, OPL_PAD_CIRCULAR);
  ok(ok5 && ok5->shape[2] == 15, "circular pad of exactly the extent is allowed");
  opl_tensor *ok6 = opl_pad(c, a, 1, one, six, OPL_PAD_CIRCULAR);
  ok(ok6 && ok6->shape[2] == 12, "circular pad 6 wider than extent 5 is allowed (periodic extension)");
  {
    /* [1, 2, 3] padded circularly by (4, 7): output j reads (j - 4) mod 3. */
    opl_tensor *x3 = opl_new(c, OPL_DIMS(1, 1, 3));
    for (int i = 0; i < 3; i++) x3->data[i] = (opl_real)(i + 1);
    opl_tensor *yw = opl_pad(c, x3, 1, (const int64_t[]){4}, (const int64_t[]){7}, OPL_PAD_CIRCULAR);
    double want[14] = {3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1};
    ok(shape_is(yw, 3, (const int64_t[]){1, 1, 14}), "circular pad (4, 7) of 3 points: shape (1, 1, 14)");
    if (yw) {
      double *got = to_double(yw);
      arrays_close(14, got, want, 0, 0, "circular pad (4, 7) of [1,2,3] wraps more than once");
      free(got);
    }
  }
  err_is(c, opl_pad(c, a, 1, five, one, OPL_PAD_REFLECT), OPL_ERR_SHAPE, "(2, 3, 5)", "reflect",
         "reflect pad 5 not smaller than extent 5");
  err_is(c, opl_pad(c, a, 1, one, five, OPL_PAD_REFLECT), OPL_ERR_SHAPE, "(2, 3, 5)", "reflect",
         "reflect pad hi 5 not smaller than extent 5");
  const int64_t four[1] = {4};
  opl_tensor *ok4 = opl_pad(c, a, 1, four, four, OPL_PAD_REFLECT);
  ok(ok4 && ok4->shape[2] == 13, "reflect pad of extent - 1 is allowed");
  err_is(c, opl_pad(c, a, 4, one, one, OPL_PAD_ZERO), OPL_ERR_ARG, "nd = 4", NULL, "pad nd > rank");
  err_is(c, opl_pad(c, a, 1, one, one, (opl_pad_mode)7), OPL_ERR_ARG, "mode", NULL, "pad unknown mode");
  err_is(c, opl_pad(c, ca, 1, one, one, OPL_PAD_ZERO), OPL_ERR_ARG, "complex", NULL, "pad of a complex tensor");
  const int64_t three[1] = {3}, two[1] = {2};
  err_is(c, opl_crop(c, a, 1, three, two), OPL_ERR_SHAPE, "(2, 3, 5)", NULL, "crop 3+2 of extent 5");
  err_is(c, opl_crop(c, a, 1, neg, two), OPL_ERR_ARG, "negative", NULL, "crop with a negative width");

  err_is(c, opl_reshape(c, a, OPL_DIMS(4, 4)), OPL_ERR_SHAPE, "(2, 3, 5)", "(4, 4)", "reshape 30 -> 16 elements");
  err_is(c, opl_reshape(c, a, OPL_DIMS(4, -1)), OPL_ERR_SHAPE, "(2, 3, 5)", "(4, -1)", "reshape -1 not integral");
  err_is(c, opl_reshape(c, a, OPL_DIMS(-1, -1)), OPL_ERR_SHAPE, "(-1, -1)", NULL, "reshape with two -1");
  err_is(c, opl_reshape(c, a, OPL_DIMS(0, 30)), OPL_ERR_SHAPE, "(0, 30)", NULL, "reshape with a 0 extent");

  err_is(c, opl_permute(c, a, (const int[]){0, 0, 1}), OPL_ERR_ARG, "(0, 0, 1)", "(2, 3, 5)", "permute (0,0,1)");
  err_is(c, opl_permute(c, a, (const int[]){0, 3, 1}), OPL_ERR_ARG, "(0, 3, 1)", NULL, "permute (0,3,1)");
  err_is(c, opl_permute(c, a, NULL), OPL_ERR_ARG, "NULL", NULL, "permute NULL");
  err_is(c, opl_permute(c, NULL, (const int[]){0}), OPL_ERR_ARG, "NULL", NULL, "permute of NULL x");

  /* sticky: with an error held, every op returns NULL */
  opl_ctx_error(c, OPL_ERR_ARG, "earlier");
  ok(opl_slice(c, a, 0, 0, 1) == NULL && opl_concat(c, 2, ab, 0) == NULL &&
     opl_reshape(c, a, OPL_DIMS(30)) == NULL && opl_permute(c, a, (const int[]){2, 1, 0}) == NULL &&
     opl_split(c, a, 0, 1, (const int64_t[]){2}, outs) == OPL_ERR_ARG &&
     strcmp(opl_ctx_errmsg(c), "earlier") == 0,
     "ops return NULL while an error is held, and keep the first message");
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_concat_values();
  test_pad_values();
  test_slice_split_values();
  test_split_partial_grad();
  test_permute_values();
  test_reshape_sharing();
  test_bad_input();
  return tap_end();
}

/* opl — shape ops: concat, split, slice, pad, crop, reshape, permute.
 *
 * All of them move values without arithmetic, so each is linear and its backward is the
 * adjoint data movement: a gather forward is a scatter-add backward (and the reverse).
 *
 * Error convention of this file: an argument that is invalid on its own (a NULL array, an
 * axis out of range, a negative pad width, a non-permutation, an unknown mode) is
 * OPL_ERR_ARG; an argument that does not fit the shape of a tensor (extents that differ,
 * sizes that do not sum to the extent, a slice past the end, a numel mismatch) is
 * OPL_ERR_SHAPE. Every message names the op and the shapes.
 *
 * Complex tensors are accepted by concat, split, slice, reshape and permute (an element is
 * then a (re, im) pair of reals); pad and crop take real tensors. */
#include <stdio.h>
#include "core/ops.h"
#include "core/internal.h"

/* Reals per element: 2 for a complex tensor, 1 otherwise. */
static inline int64_t elem_reals(const opl_tensor *t) { return opl_is_complex(t) ? 2 : 1; }

/* ------------------------------------------------------------ strided block copy */

/* For o < outer: dst[o*dst_stride + k] (+)= src[o*src_stride + k], k < len.
 * src [outer, src_stride] (only the first len of each row read),
 * dst [outer, dst_stride] (only the first len of each row written).
 * acc = 0 overwrites, acc = 1 accumulates. The rows must not overlap. */
static void blocks_copy(int64_t outer, int64_t len, const opl_real *src, int64_t src_stride,
                        opl_real *dst, int64_t dst_stride, int acc) {
#pragma omp parallel for if (outer * len > OPL_PAR_MIN && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    const opl_real *s = src + o * src_stride;
    opl_real *d = dst + o * dst_stride;
    if (acc)
      opl_acc(d, s, len);
    else
      memcpy(d, s, (size_t)len * sizeof *d);
  }
}

/* ------------------------------------------------------------ concat */

/* What concat keeps for backward: the inputs (all n of them, since a node holds at most
 * OPL_MAX_INPUTS) and their extents on the axis. */
typedef struct concat_saved {
  int n;
  opl_tensor **xs;   /* [n] */
  int64_t *ext;      /* [n] extent of input i on the axis */
  int64_t outer;     /* product of the axes before the axis */
  int64_t inner;     /* reals per unit of the axis (product of later axes times 1 or 2) */
  int64_t total;     /* extent of the output on the axis */
} concat_saved;

/* Forward: inputs xs[i] [outer, ext[i], inner] -> y [outer, total, inner]. */
static void concat_forward(const concat_saved *s, opl_real *y) {
  int64_t off = 0;
  for (int i = 0; i < s->n; i++) {
    int64_t len = s->ext[i] * s->inner;
    blocks_copy(s->outer, len, s->xs[i]->data, len, y + off * s->inner, s->total * s->inner, 0);
    off += s->ext[i];
  }
}

/* Backward: gy [outer, total, inner] -> gx_i [outer, ext[i], inner] accumulated, for every
 * input that requires a gradient. */
static void concat_bw(opl_node *nd) {
  const concat_saved *s = nd->saved;
  const opl_real *gy = nd->out->grad;
  int64_t off = 0;
  for (int i = 0; i < s->n; i++) {
    int64_t len = s->ext[i] * s->inner;
    opl_real *gx = opl_grad_of(nd->ctx, s->xs[i]);
    if (gx) blocks_copy(s->outer, len, gy + off * s->inner, s->total * s->inner, gx, len, 1);
    off += s->ext[i];
  }
}

/* Concatenate xs[0..n) along axis (negative counts from the end). Every input must have the
 * rank, the complex flag and the extents of xs[0] on all other axes. n >= 1 (n == 1 is a
 * copy). The output is a fresh arena tensor; one tape node covers all inputs. */
opl_tensor *opl_concat(opl_ctx *c, int n, opl_tensor *const *xs, int axis) {
  if (opl_ctx_status(c)) return NULL;
  if (n < 1 || !xs) {
    opl_ctx_error(c, OPL_ERR_ARG, "concat: need n >= 1 inputs, got n = %d%s", n,
                  xs ? "" : " and a NULL array");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    char what[32];
    snprintf(what, sizeof what, "input %d", i);
    if (!opl_check_input(c, "concat", what, xs[i], -1, 1)) return NULL;
  }
  const opl_tensor *x0 = xs[0];
  char b1[96], b2[96];
  int ax = opl_axis_norm(axis, x0->rank);
  if (ax < 0) {
    opl_ctx_error(c, OPL_ERR_ARG, "concat: axis %d out of range for input 0 %s", axis,
                  opl_shape_str(b1, x0->rank, x0->shape));
    return NULL;
  }
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const opl_tensor *xi = xs[i];
    int same = xi->rank == x0->rank && opl_is_complex(xi) == opl_is_complex(x0);
    for (int k = 0; same && k < x0->rank; k++)
      if (k != ax && xi->shape[k] != x0->shape[k]) same = 0;
    if (!same) {
      opl_ctx_error(c, OPL_ERR_SHAPE,
                    "concat: input %d %s%s does not match input 0 %s%s off axis %d", i,
                    opl_shape_str(b1, xi->rank, xi->shape), opl_is_complex(xi) ? " complex" : "",
                    opl_shape_str(b2, x0->rank, x0->shape), opl_is_complex(x0) ? " complex" : "",
                    ax);
      return NULL;
    }
    total += xi->shape[ax];
  }
  int64_t shape[OPL_MAX_RANK];
  for (int k = 0; k < x0->rank; k++) shape[k] = x0->shape[k];
  shape[ax] = total;
  opl_tensor *y = opl_new_flags(c, x0->rank, shape, x0->flags & OPL_T_COMPLEX);
  concat_saved *s = opl_arena_alloc(c, sizeof *s);
  opl_tensor **list = opl_arena_alloc(c, (size_t)n * sizeof *list);
  int64_t *ext = opl_arena_alloc(c, (size_t)n * sizeof *ext);
  if (!y || !s || !list || !ext) return NULL;
  for (int i = 0; i < n; i++) list[i] = xs[i], ext[i] = xs[i]->shape[ax];
  s->n = n;
  s->xs = list;
  s->ext = ext;
  s->outer = opl_prod(x0->shape, 0, ax);
  s->inner = opl_prod(x0->shape, ax + 1, x0->rank) * elem_reals(x0);
  s->total = total;
  concat_forward(s, y->data);
  /* The node lists the inputs when they fit; otherwise it lists (up to OPL_MAX_INPUTS) inputs
   * that require a gradient, so that recording happens; backward reads the full list. */
  opl_tensor *in[OPL_MAX_INPUTS] = {0};
  int nin = 0;
  if (n <= OPL_MAX_INPUTS) {
    for (int i = 0; i < n; i++) in[nin++] = xs[i];
  } else {
    for (int i = 0; i < n && nin < OPL_MAX_INPUTS; i++)
      if (opl_requires_grad(xs[i])) in[nin++] = xs[i];
  }
  opl_node *nd = opl_record_saves(c, "concat", concat_bw, y, nin, in, 0);
  if (nd) {
    nd->saved = s;
    if (n > OPL_MAX_INPUTS) nd->more = list, nd->nmore = n;
  }
  return y;
}

/* ------------------------------------------------------------ slice and split */

/* Forward: x [outer, D, inner] -> y [outer, len, inner] = x[:, start:start+len, :]. */
static void slice_forward(int64_t outer, int64_t D, int64_t inner, int64_t start, int64_t len,
                          const opl_real *x, opl_real *y) {
  blocks_copy(outer, len * inner, x + start * inner, D * inner, y, len * inner, 0);
}

/* Backward: gy [outer, len, inner] accumulated into gx [outer, D, inner] at start. */
static void slice_backward(int64_t outer, int64_t D, int64_t inner, int64_t start, int64_t len,
                           const opl_real *gy, opl_real *gx) {
  blocks_copy(outer, len * inner, gy, len * inner, gx + start * inner, D * inner, 1);
}

static void slice_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx)
    slice_backward(nd->iarg[0], nd->iarg[1], nd->iarg[2], nd->iarg[3], nd->iarg[4],
                   nd->out->grad, gx);
}

/* The slice without argument checks (ax normalized, 0 <= start, 1 <= len,
 * start + len <= extent); op names the tape node. */
static opl_tensor *slice_impl(opl_ctx *c, const char *op, opl_tensor *x, int ax, int64_t start,
                              int64_t len) {
  int64_t shape[OPL_MAX_RANK];
  for (int k = 0; k < x->rank; k++) shape[k] = x->shape[k];
  shape[ax] = len;
  opl_tensor *y = opl_new_flags(c, x->rank, shape, x->flags & OPL_T_COMPLEX);
  if (!y) return NULL;
  int64_t outer = opl_prod(x->shape, 0, ax), D = x->shape[ax];
  int64_t inner = opl_prod(x->shape, ax + 1, x->rank) * elem_reals(x);
  slice_forward(outer, D, inner, start, len, x->data, y->data);
  opl_node *nd = opl_record_saves(c, op, slice_bw, y, 1, &x, 0);
  if (nd) nd->iarg[0] = outer, nd->iarg[1] = D, nd->iarg[2] = inner, nd->iarg[3] = start,
          nd->iarg[4] = len;
  return y;
}

/* x[..., start:start+len, ...] on one axis (negative counts from the end). Requires
 * 0 <= start, len >= 1 and start + len <= extent (OPL_ERR_SHAPE otherwise). Real or complex.
 * The output is a copy in the arena. */
opl_tensor *opl_slice(opl_ctx *c, opl_tensor *x, int axis, int64_t start, int64_t len) {
  if (!opl_check_input(c, "slice", "x", x, -1, 1)) return NULL;
  char b[96];
  int ax = opl_axis_norm(axis, x->rank);
  if (ax < 0) {
    opl_ctx_error(c, OPL_ERR_ARG, "slice: axis %d out of range for x %s", axis,
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  if (start < 0 || len < 1 || start > x->shape[ax] - len) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "slice: range [%lld, %lld) out of range for axis %d of x %s",
                  (long long)start, (long long)(start + len), ax,
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  return slice_impl(c, "slice", x, ax, start, len);
}

/* Split x along axis into n consecutive pieces of extents sizes[0..n), each >= 1 and summing
 * to the extent of the axis. Fills outs[0..n) and returns OPL_OK; on error every outs[i] is
 * NULL and the (sticky) status is returned. Each piece is its own slice node, so gradients
 * are right when only some pieces are used. */
int opl_split(opl_ctx *c, opl_tensor *x, int axis, int n, const int64_t *sizes, opl_tensor **outs) {
  if (outs && n > 0)
    for (int i = 0; i < n; i++) outs[i] = NULL;
  if (!opl_check_input(c, "split", "x", x, -1, 1)) return opl_ctx_status(c);
  char b[96];
  if (n < 1 || !sizes || !outs)
    return opl_ctx_error(c, OPL_ERR_ARG, "split: need n >= 1, sizes and outs, got n = %d%s%s", n,
                         sizes ? "" : ", sizes NULL", outs ? "" : ", outs NULL");
  int ax = opl_axis_norm(axis, x->rank);
  if (ax < 0)
    return opl_ctx_error(c, OPL_ERR_ARG, "split: axis %d out of range for x %s", axis,
                         opl_shape_str(b, x->rank, x->shape));
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    if (sizes[i] < 1)
      return opl_ctx_error(c, OPL_ERR_SHAPE, "split: size %d is %lld (must be >= 1) for x %s", i,
                           (long long)sizes[i], opl_shape_str(b, x->rank, x->shape));
    sum += sizes[i];
  }
  if (sum != x->shape[ax])
    return opl_ctx_error(c, OPL_ERR_SHAPE,
                         "split: sizes sum to %lld but axis %d of x %s has extent %lld",
                         (long long)sum, ax, opl_shape_str(b, x->rank, x->shape),
                         (long long)x->shape[ax]);
  int64_t start = 0;
  for (int i = 0; i < n; i++) {
    outs[i] = slice_impl(c, "split", x, ax, start, sizes[i]);
    if (!outs[i]) {
      for (int k = 0; k < n; k++) outs[k] = NULL;
      return opl_ctx_status(c);
    }
    start += sizes[i];
  }
  return OPL_OK;
}

/* ------------------------------------------------------------ pad and crop: index maps */

/* A gather on the trailing nd axes: out [outer, m[0], ..., m[nd-1]] takes, at index
 * (j_0, ..., j_{nd-1}), the input [outer, n[0], ..., n[nd-1]] at (map_0[j_0], ...), or 0
 * when some map_i[j_i] is -1. Pad (zero, circular, replicate) and crop are such gathers. */
typedef struct gmap {
  int nd;
  int64_t outer;
  int64_t m[OPL_MAX_RANK];     /* output extents of the trailing axes */
  int64_t n[OPL_MAX_RANK];     /* input extents of the trailing axes */
  int64_t *map[OPL_MAX_RANK];  /* [m[i]] source index on axis i, or -1 */
} gmap;

/* Source offset (within one outer block of the input) of output row r, where a row is one
 * index of the first nd-1 trailing axes; -1 when the row maps outside the input. */
static inline int64_t gmap_row(const gmap *g, int64_t r) {
  int64_t base = 0, stride = g->n[g->nd - 1];
  for (int i = g->nd - 2; i >= 0; i--) {
    int64_t j = r % g->m[i];
    r /= g->m[i];
    int64_t s = g->map[i][j];
    if (s < 0) return -1;
    base += s * stride;
    stride *= g->n[i];
  }
  return base;
}

/* Forward gather: x [outer, prod n] -> y [outer, prod m]. */
static void gmap_forward(const gmap *g, const opl_real *x, opl_real *y) {
  int64_t nin = opl_prod(g->n, 0, g->nd), last = g->m[g->nd - 1];
  int64_t rows = opl_prod(g->m, 0, g->nd - 1);
  const int64_t *lmap = g->map[g->nd - 1];
#pragma omp parallel for collapse(2) if (g->outer * rows * last > OPL_PAR_MIN) schedule(static)
  for (int64_t o = 0; o < g->outer; o++)
    for (int64_t r = 0; r < rows; r++) {
      int64_t base = gmap_row(g, r);
      opl_real *ys = y + (o * rows + r) * last;
      if (base < 0) {
        for (int64_t k = 0; k < last; k++) ys[k] = 0;
        continue;
      }
      const opl_real *xs = x + o * nin + base;
      for (int64_t k = 0; k < last; k++) ys[k] = lmap[k] >= 0 ? xs[lmap[k]] : 0;
    }
}

/* Backward scatter-add: gy [outer, prod m] accumulated into gx [outer, prod n]. Several
 * outputs may share a source (circular, replicate), so only the outer loop is parallel. */
static void gmap_backward(const gmap *g, const opl_real *gy, opl_real *gx) {
  int64_t nin = opl_prod(g->n, 0, g->nd), last = g->m[g->nd - 1];
  int64_t rows = opl_prod(g->m, 0, g->nd - 1);
  const int64_t *lmap = g->map[g->nd - 1];
#pragma omp parallel for if (g->outer * rows * last > OPL_PAR_MIN && g->outer > 1) schedule(static)
  for (int64_t o = 0; o < g->outer; o++)
    for (int64_t r = 0; r < rows; r++) {
      int64_t base = gmap_row(g, r);
      if (base < 0) continue;
      const opl_real *gys = gy + (o * rows + r) * last;
      opl_real *gxs = gx + o * nin + base;
      for (int64_t k = 0; k < last; k++)
        if (lmap[k] >= 0) gxs[lmap[k]] += gys[k];
    }
}

static void gmap_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx) gmap_backward(nd->saved, nd->out->grad, gx);
}

/* Check nd, lo, hi against x (real); on success fill g's nd/outer/n. */
static int gmap_check(opl_ctx *c, const char *op, const opl_tensor *x, int nd, const int64_t *lo,
                      const int64_t *hi, gmap *g) {
  char b[96];
  if (nd < 1 || nd > x->rank) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: nd = %d trailing axes, x %s has rank %d", op, nd,
                  opl_shape_str(b, x->rank, x->shape), x->rank);
    return 0;
  }
  if (!lo || !hi) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: lo and hi widths must not be NULL", op);
    return 0;
  }
  for (int i = 0; i < nd; i++)
    if (lo[i] < 0 || hi[i] < 0) {
      opl_ctx_error(c, OPL_ERR_ARG, "%s: negative width lo %lld, hi %lld on trailing axis %d of x %s",
                    op, (long long)lo[i], (long long)hi[i], i, opl_shape_str(b, x->rank, x->shape));
      return 0;
    }
  memset(g, 0, sizeof *g);
  g->nd = nd;
  g->outer = opl_prod(x->shape, 0, x->rank - nd);
  for (int i = 0; i < nd; i++) g->n[i] = x->shape[x->rank - nd + i];
  return 1;
}

/* Allocate the saved gmap and its maps in the arena; the caller fills the maps. */
static gmap *gmap_alloc(opl_ctx *c, const gmap *g) {
  gmap *s = opl_arena_alloc(c, sizeof *s);
  if (!s) return NULL;
  *s = *g;
  for (int i = 0; i < g->nd; i++) {
    s->map[i] = opl_arena_alloc(c, (size_t)g->m[i] * sizeof(int64_t));
    if (!s->map[i]) return NULL;
  }
  return s;
}

/* Run a filled gmap on x: output of shape (leading axes of x, m[...]) plus the tape node. */
static opl_tensor *gmap_apply(opl_ctx *c, const char *op, opl_tensor *x, gmap *g) {
  int64_t shape[OPL_MAX_RANK];
  int lead = x->rank - g->nd;
  for (int k = 0; k < lead; k++) shape[k] = x->shape[k];
  for (int i = 0; i < g->nd; i++) shape[lead + i] = g->m[i];
  opl_tensor *y = opl_new(c, x->rank, shape);
  if (!y) return NULL;
  gmap_forward(g, x->data, y->data);
  opl_node *nd = opl_record_saves(c, op, gmap_bw, y, 1, &x, 0);
  if (nd) nd->saved = g;
  return y;
}

/* Pad the trailing nd axes of real x (1 <= nd <= rank) by lo[i] before and hi[i] after
 * (both >= 0) on trailing axis i, like PyTorch F.pad with mode constant 0 / circular /
 * replicate / reflect. Circular padding is the periodic extension: output j reads input
 * (j - lo) mod extent, for any width (PyTorch allows at most the extent; within that the
 * values are the same); reflect mirrors about the first and last entries without repeating them
 * ([1, 2, 3] by 2 -> [3, 2, 1, 2, 3, 2, 1]), so it needs lo[i], hi[i] < extent (as PyTorch);
 * zero and replicate take any width. Backward accumulates every output position into the
 * input position it was copied from (wrapped, clamped or mirrored). */
opl_tensor *opl_pad(opl_ctx *c, opl_tensor *x, int nd, const int64_t *lo, const int64_t *hi,
                    opl_pad_mode mode) {
  if (!opl_check_input(c, "pad", "x", x, -1, 0)) return NULL;
  char b[96];
  if (mode != OPL_PAD_ZERO && mode != OPL_PAD_CIRCULAR && mode != OPL_PAD_REPLICATE && mode != OPL_PAD_REFLECT) {
    opl_ctx_error(c, OPL_ERR_ARG, "pad: unknown mode %d", (int)mode);
    return NULL;
  }
  gmap g;
  if (!gmap_check(c, "pad", x, nd, lo, hi, &g)) return NULL;
  for (int i = 0; i < nd; i++) {
    if (mode == OPL_PAD_REFLECT && (lo[i] >= g.n[i] || hi[i] >= g.n[i])) {
      opl_ctx_error(c, OPL_ERR_SHAPE,
                    "pad: reflect widths lo %lld, hi %lld must be smaller than extent %lld of trailing axis %d of x %s",
                    (long long)lo[i], (long long)hi[i], (long long)g.n[i], i,
                    opl_shape_str(b, x->rank, x->shape));
      return NULL;
    }
    if (g.n[i] > INT64_MAX / 8 - lo[i] - hi[i]) {
      opl_ctx_error(c, OPL_ERR_ARG, "pad: widths too large for x %s", opl_shape_str(b, x->rank, x->shape));
      return NULL;
    }
    g.m[i] = g.n[i] + lo[i] + hi[i];
  }
  gmap *s = gmap_alloc(c, &g);
  if (!s) return NULL;
  for (int i = 0; i < nd; i++) {
    int64_t n = s->n[i];
    for (int64_t j = 0; j < s->m[i]; j++) {
      int64_t src = j - lo[i];
      switch (mode) {
        case OPL_PAD_ZERO: src = (src >= 0 && src < n) ? src : -1; break;
        case OPL_PAD_CIRCULAR: src = ((src % n) + n) % n; break; /* any width: wraps again */
        case OPL_PAD_REFLECT: src = src < 0 ? -src : (src >= n ? 2 * (n - 1) - src : src); break; /* |src| < n */
        default: src = src < 0 ? 0 : (src >= n ? n - 1 : src); break;
      }
      s->map[i][j] = src;
    }
  }
  static const char *names[] = {"pad", "pad circular", "pad replicate", "pad reflect"};
  return gmap_apply(c, names[mode], x, s);
}

/* Drop lo[i] entries at the start and hi[i] at the end of trailing axis i of real x
 * (1 <= nd <= rank, widths >= 0, at least one entry left on every axis). The adjoint of
 * zero padding. */
opl_tensor *opl_crop(opl_ctx *c, opl_tensor *x, int nd, const int64_t *lo, const int64_t *hi) {
  if (!opl_check_input(c, "crop", "x", x, -1, 0)) return NULL;
  char b[96];
  gmap g;
  if (!gmap_check(c, "crop", x, nd, lo, hi, &g)) return NULL;
  for (int i = 0; i < nd; i++) {
    if (lo[i] >= g.n[i] || hi[i] >= g.n[i] - lo[i]) {
      opl_ctx_error(c, OPL_ERR_SHAPE,
                    "crop: widths lo %lld, hi %lld leave nothing of extent %lld on trailing axis %d of x %s",
                    (long long)lo[i], (long long)hi[i], (long long)g.n[i], i,
                    opl_shape_str(b, x->rank, x->shape));
      return NULL;
    }
    g.m[i] = g.n[i] - lo[i] - hi[i];
  }
  gmap *s = gmap_alloc(c, &g);
  if (!s) return NULL;
  for (int i = 0; i < nd; i++)
    for (int64_t j = 0; j < s->m[i]; j++) s->map[i][j] = j + lo[i];
  return gmap_apply(c, "crop", x, s);
}

/* ------------------------------------------------------------ reshape */

static void reshape_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx) opl_acc(gx, nd->out->grad, opl_nreal(nd->out));
}

/* The same values under another shape of the same numel (real or complex). One extent may be
 * -1: it is inferred. The output shares x's data (no copy), so writing into either changes
 * both; it has its own gradient buffer, which backward adds into x's gradient. */
opl_tensor *opl_reshape(opl_ctx *c, opl_tensor *x, int rank, const int64_t *shape) {
  if (!opl_check_input(c, "reshape", "x", x, -1, 1)) return NULL;
  char b1[96], b2[96];
  if (rank < 0 || rank > OPL_MAX_RANK || (rank > 0 && !shape)) {
    opl_ctx_error(c, OPL_ERR_ARG, "reshape: rank %d outside [0, %d] or NULL shape for x %s", rank,
                  OPL_MAX_RANK, opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  int64_t s[OPL_MAX_RANK];
  int infer = -1, fits = 1;
  int64_t known = 1; /* product of the given extents, kept <= numel (else it cannot fit) */
  for (int i = 0; i < rank && fits; i++) {
    s[i] = shape[i];
    if (s[i] == -1 && infer < 0)
      infer = i;
    else if (s[i] < 1 || s[i] > x->numel / known)
      fits = 0;
    else
      known *= s[i];
  }
  if (fits && infer >= 0) {
    s[infer] = x->numel / known;
    known *= s[infer];
  }
  fits = fits && known == x->numel;
  if (!fits) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "reshape: cannot reshape x %s (%lld elements) to %s",
                  opl_shape_str(b1, x->rank, x->shape), (long long)x->numel,
                  opl_shape_str(b2, rank, shape));
    return NULL;
  }
  opl_tensor *y = opl_view(c, x, rank, s);
  if (!y) return NULL;
  opl_record(c, "reshape", reshape_bw, y, 1, &x);
  return y;
}

/* ------------------------------------------------------------ view_as_real */

/* The real view of a complex tensor (torch.view_as_real): x complex (...) -> real (..., 2), the
 * same interleaved (re, im) storage (no copy); backward adds the gradient into x's (complex
 * gradients are stored interleaved too, so it is reshape's). x of rank <= OPL_MAX_RANK - 1. */
opl_tensor *opl_view_as_real(opl_ctx *c, opl_tensor *x) {
  if (!opl_check_input(c, "view_as_real", "x", x, -1, 1)) return NULL;
  char b1[96];
  if (!opl_is_complex(x) || x->rank >= OPL_MAX_RANK) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "view_as_real: x %s must be complex of rank < %d (got %s, rank %d)",
                  opl_shape_str(b1, x->rank, x->shape), OPL_MAX_RANK, opl_is_complex(x) ? "complex" : "real",
                  x->rank);
    return NULL;
  }
  opl_tensor *y = opl_view(c, x, x->rank, x->shape);
  if (!y) return NULL;
  y->flags &= ~OPL_T_COMPLEX;
  y->shape[y->rank++] = 2;
  y->numel *= 2;
  opl_record(c, "view_as_real", reshape_bw, y, 1, &x);
  return y;
}

/* ------------------------------------------------------------ permute */

/* dst[i0, i1, i2, i3, i4] (+)= src[sum_k i_k st[k]]: dst [e0, e1, e2, e3, e4] contiguous,
 * elements of es reals (1 real, 2 complex), st in elements. acc = 0 overwrites, 1 adds.
 * Each dst element is written once, so every loop may run in parallel. */
static void strided_gather(const int64_t e[5], const int64_t st[5], int64_t es, const opl_real *src,
                           opl_real *dst, int acc) {
  int64_t total = e[0] * e[1] * e[2] * e[3] * e[4] * es;
#pragma omp parallel for collapse(3) if (total > OPL_PAR_MIN) schedule(static)
  for (int64_t i0 = 0; i0 < e[0]; i0++)
    for (int64_t i1 = 0; i1 < e[1]; i1++)
      for (int64_t i2 = 0; i2 < e[2]; i2++)
        for (int64_t i3 = 0; i3 < e[3]; i3++) {
          const opl_real *s = src + (i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3]) * es;
          opl_real *d = dst + ((((i0 * e[1] + i1) * e[2] + i2) * e[3] + i3) * e[4]) * es;
          int64_t s4 = st[4] * es;
          if (es == 1) {
            if (acc)
              for (int64_t i4 = 0; i4 < e[4]; i4++) d[i4] += s[i4 * s4];
            else
              for (int64_t i4 = 0; i4 < e[4]; i4++) d[i4] = s[i4 * s4];
          } else {
            for (int64_t i4 = 0; i4 < e[4]; i4++)
              for (int64_t r = 0; r < es; r++)
                d[i4 * es + r] = (acc ? d[i4 * es + r] : 0) + s[i4 * s4 + r];
          }
        }
}

/* Permutation of a tensor of shape xs (rank r) into out axes perm: fills the padded extents
 * and source strides for strided_gather so that dst = permuted src. */
static void permute_plan(int r, const int64_t *xs, const int *perm, int64_t e[5], int64_t st[5]) {
  int64_t xstride[OPL_MAX_RANK];
  int64_t s = 1;
  for (int k = r - 1; k >= 0; k--) xstride[k] = s, s *= xs[k];
  for (int k = 0; k < 5; k++) e[k] = 1, st[k] = 0;
  for (int k = 0; k < r; k++) e[5 - r + k] = xs[perm[k]], st[5 - r + k] = xstride[perm[k]];
}

static void permute_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (!gx) return;
  /* gx = inverse permutation of gy: axis k of x is axis inv[k] of y. */
  const opl_tensor *y = nd->out;
  int r = y->rank, inv[OPL_MAX_RANK];
  for (int k = 0; k < r; k++) inv[nd->iarg[k]] = k;
  int64_t e[5], st[5];
  permute_plan(r, y->shape, inv, e, st);
  strided_gather(e, st, elem_reals(y), y->grad, gx, 1);
}

/* out.shape[i] = x.shape[perm[i]] and out[i_0, ...] = x at index i_k on axis perm[k], for a
 * permutation perm of 0..rank-1 (OPL_ERR_ARG otherwise). Real or complex. A copy. */
opl_tensor *opl_permute(opl_ctx *c, opl_tensor *x, const int *perm) {
  if (!opl_check_input(c, "permute", "x", x, -1, 1)) return NULL;
  char b[96];
  int r = x->rank, seen[OPL_MAX_RANK] = {0}, valid = perm != NULL;
  for (int k = 0; valid && k < r; k++) {
    if (perm[k] < 0 || perm[k] >= r || seen[perm[k]])
      valid = 0;
    else
      seen[perm[k]] = 1;
  }
  if (!valid) {
    char p[64] = "NULL";
    if (perm) {
      int n = snprintf(p, sizeof p, "(");
      for (int k = 0; k < r; k++) n += snprintf(p + n, sizeof p - n, k ? ", %d" : "%d", perm[k]);
      snprintf(p + n, sizeof p - n, ")");
    }
    opl_ctx_error(c, OPL_ERR_ARG, "permute: %s is not a permutation of the %d axes of x %s", p, r,
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  int64_t shape[OPL_MAX_RANK];
  for (int k = 0; k < r; k++) shape[k] = x->shape[perm[k]];
  opl_tensor *y = opl_new_flags(c, r, shape, x->flags & OPL_T_COMPLEX);
  if (!y) return NULL;
  int64_t e[5], st[5];
  permute_plan(r, x->shape, perm, e, st);
  strided_gather(e, st, elem_reals(x), x->data, y->data, 0);
  opl_node *nd = opl_record_saves(c, "permute", permute_bw, y, 1, &x, 0);
  if (nd)
    for (int k = 0; k < r; k++) nd->iarg[k] = perm[k];
  return y;
}

/* opl — elementwise ops: broadcasting binary ops, scale, axpby, bias, unary activations.
 * Each op: constructor (shape checks, arena output, tape node), forward kernel, backward
 * kernel that accumulates into the inputs' gradients. */
#include <tgmath.h>
#include "core/ops.h"
#include "core/internal.h"
#ifdef _OPENMP
#include <omp.h>
static inline int opl_omp_nthreads(void) { return omp_get_num_threads(); }
static inline int opl_omp_thread(void) { return omp_get_thread_num(); }
#else
static inline int opl_omp_nthreads(void) { return 1; }
static inline int opl_omp_thread(void) { return 0; }
#endif

/* ------------------------------------------------------------ broadcasting */

/* Shapes padded to rank 5 from the left, with element strides (0 on broadcast axes). */
typedef struct bcast {
  int64_t n[5];       /* output extents */
  int64_t sa[5], sb[5];
  int same;           /* a, b and out have identical shapes */
} bcast;

static int bcast_make(opl_ctx *c, const char *op, const opl_tensor *a, const opl_tensor *b,
                      bcast *bc, int *rank, int64_t *shape) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  int64_t ea[5], eb[5];
  for (int i = 0; i < 5; i++) {
    int ia = i - (5 - a->rank), ib = i - (5 - b->rank);
    ea[i] = ia >= 0 ? a->shape[ia] : 1;
    eb[i] = ib >= 0 ? b->shape[ib] : 1;
    if (ea[i] != eb[i] && ea[i] != 1 && eb[i] != 1) {
      char b1[96], b2[96];
      opl_ctx_error(c, OPL_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                    op, opl_shape_str(b1, a->rank, a->shape), opl_shape_str(b2, b->rank, b->shape),
                    i - (5 - r), (long long)ea[i], (long long)eb[i]);
      return 0;
    }
    bc->n[i] = ea[i] > eb[i] ? ea[i] : eb[i];
  }
  int64_t sa = 1, sb = 1;
  for (int i = 4; i >= 0; i--) {
    bc->sa[i] = ea[i] == 1 ? 0 : sa;
    bc->sb[i] = eb[i] == 1 ? 0 : sb;
    sa *= ea[i];
    sb *= eb[i];
  }
  *rank = r;
  for (int i = 0; i < r; i++) shape[i] = bc->n[5 - r + i];
  bc->same = opl_shape_eq(a->rank, a->shape, b->rank, b->shape);
  return 1;
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } bin_kind;
static const char *bin_name[] = {"add", "sub", "mul", "div"};

static inline opl_real bin_apply(bin_kind k, opl_real x, opl_real y) {
  switch (k) {
    case BIN_ADD: return x + y;
    case BIN_SUB: return x - y;
    case BIN_MUL: return x * y;
    default: return x / y;
  }
}

/* Forward: a, b (broadcast by bc) -> y [prod(bc->n)]. */
static void bin_forward(bin_kind k, const bcast *bc, const opl_real *a, const opl_real *b,
                        opl_real *y) {
  if (bc->same) {
    /* One loop per kind (no switch inside) so each vectorizes. */
    int64_t n = bc->n[0] * bc->n[1] * bc->n[2] * bc->n[3] * bc->n[4];
    switch (k) {
      case BIN_ADD: OPL_PFOR(i, n, n, y[i] = a[i] + b[i];); break;
      case BIN_SUB: OPL_PFOR(i, n, n, y[i] = a[i] - b[i];); break;
      case BIN_MUL: OPL_PFOR(i, n, n, y[i] = a[i] * b[i];); break;
      case BIN_DIV: OPL_PFOR(i, n, n, y[i] = a[i] / b[i];); break;
    }
    return;
  }
  int64_t o = 0;
  for (int64_t i0 = 0; i0 < bc->n[0]; i0++)
    for (int64_t i1 = 0; i1 < bc->n[1]; i1++)
      for (int64_t i2 = 0; i2 < bc->n[2]; i2++)
        for (int64_t i3 = 0; i3 < bc->n[3]; i3++) {
          int64_t ja = i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2] + i3 * bc->sa[3];
          int64_t jb = i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2] + i3 * bc->sb[3];
          for (int64_t i4 = 0; i4 < bc->n[4]; i4++, o++)
            y[o] = bin_apply(k, a[ja + i4 * bc->sa[4]], b[jb + i4 * bc->sb[4]]);
        }
}

/* Backward: gy [prod(n)] -> ga, gb accumulated (either may be NULL). */
static void bin_backward(bin_kind k, const bcast *bc, const opl_real *a, const opl_real *b,
                         const opl_real *gy, opl_real *ga, opl_real *gb) {
  if (bc->same) {
    /* One loop per (kind, gradient) with no branch inside, so each vectorizes. */
    int64_t n = bc->n[0] * bc->n[1] * bc->n[2] * bc->n[3] * bc->n[4];
    const opl_real sg = k == BIN_SUB ? -1 : 1;
    switch (k) {
      case BIN_ADD:
      case BIN_SUB:
        if (ga) OPL_PFOR(i, n, n, ga[i] += gy[i];);
        if (gb) OPL_PFOR(i, n, n, gb[i] += sg * gy[i];);
        break;
      case BIN_MUL:
        if (ga) OPL_PFOR(i, n, n, ga[i] += gy[i] * b[i];);
        if (gb) OPL_PFOR(i, n, n, gb[i] += gy[i] * a[i];);
        break;
      case BIN_DIV:
        if (ga) OPL_PFOR(i, n, n, ga[i] += gy[i] / b[i];);
        /* (gy / b)(a / b), not gy a / b^2: b^2 underflows to 0 for |b| < ~1e-19 in float, and
         * a zero gy then gave 0 / 0 = NaN */
        if (gb) OPL_PFOR(i, n, n, gb[i] -= (gy[i] / b[i]) * (a[i] / b[i]););
        break;
    }
    return;
  }
  int64_t o = 0;
  for (int64_t i0 = 0; i0 < bc->n[0]; i0++)
    for (int64_t i1 = 0; i1 < bc->n[1]; i1++)
      for (int64_t i2 = 0; i2 < bc->n[2]; i2++)
        for (int64_t i3 = 0; i3 < bc->n[3]; i3++) {
          int64_t ja = i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2] + i3 * bc->sa[3];
          int64_t jb = i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2] + i3 * bc->sb[3];
          for (int64_t i4 = 0; i4 < bc->n[4]; i4++, o++) {
            int64_t ia = ja + i4 * bc->sa[4], ib = jb + i4 * bc->sb[4];
            opl_real g = gy[o];
            switch (k) {
              case BIN_ADD: if (ga) ga[ia] += g; if (gb) gb[ib] += g; break;
              case BIN_SUB: if (ga) ga[ia] += g; if (gb) gb[ib] -= g; break;
              case BIN_MUL: if (ga) ga[ia] += g * b[ib]; if (gb) gb[ib] += g * a[ia]; break;
              case BIN_DIV:
                if (ga) ga[ia] += g / b[ib];
                if (gb) gb[ib] -= (g / b[ib]) * (a[ia] / b[ib]);
                break;
            }
          }
        }
}

static void bin_bw(opl_node *nd) {
  bcast *bc = nd->saved;
  bin_backward((bin_kind)nd->iarg[0], bc, nd->in[0]->data, nd->in[1]->data, nd->out->grad,
               opl_node_grad(nd, 0), opl_node_grad(nd, 1));
}

static opl_tensor *binary(opl_ctx *c, bin_kind k, opl_tensor *a, opl_tensor *b) {
  const char *op = bin_name[k];
  if (!opl_check_input(c, op, "a", a, -1, 0) || !opl_check_input(c, op, "b", b, -1, 0))
    return NULL;
  bcast bc;
  int rank;
  int64_t shape[5];
  if (!bcast_make(c, op, a, b, &bc, &rank, shape)) return NULL;
  opl_tensor *y = opl_new(c, rank, shape);
  if (!y) return NULL;
  bin_forward(k, &bc, a->data, b->data, y->data);
  opl_tensor *in[2] = {a, b};
  /* add and sub read no values in backward; mul and div read both inputs */
  const unsigned saves = k == BIN_ADD || k == BIN_SUB ? 0 : OPL_SAVES_IN(0) | OPL_SAVES_IN(1);
  opl_node *nd = opl_record_saves(c, op, bin_bw, y, 2, in, saves);
  if (nd) {
    nd->iarg[0] = k;
    bcast *s = opl_arena_alloc(c, sizeof *s);
    if (!s) return NULL;
    *s = bc;
    nd->saved = s;
  }
  return y;
}

opl_tensor *opl_add(opl_ctx *c, opl_tensor *a, opl_tensor *b) { return binary(c, BIN_ADD, a, b); }
opl_tensor *opl_sub(opl_ctx *c, opl_tensor *a, opl_tensor *b) { return binary(c, BIN_SUB, a, b); }
opl_tensor *opl_mul(opl_ctx *c, opl_tensor *a, opl_tensor *b) { return binary(c, BIN_MUL, a, b); }
opl_tensor *opl_div(opl_ctx *c, opl_tensor *a, opl_tensor *b) { return binary(c, BIN_DIV, a, b); }

/* ------------------------------------------------------------ axpby, scale, add_scalar */

/* y = alpha a + beta b: a, b, y [n] reals. */
static void axpby_forward(int64_t n, opl_real alpha, const opl_real *a, opl_real beta,
                          const opl_real *b, opl_real *y) {
  OPL_PFOR(i, n, n, y[i] = alpha * a[i] + (b ? beta * b[i] : beta););
}

static void axpby_bw(opl_node *nd) {
  int64_t n = opl_nreal(nd->out);
  const opl_real *g = nd->out->grad;
  opl_real alpha = (opl_real)nd->farg[0], beta = (opl_real)nd->farg[1];
  opl_real *ga = opl_node_grad(nd, 0);
  opl_real *gb = nd->nin > 1 ? opl_node_grad(nd, 1) : NULL;
  if (ga)
    for (int64_t i = 0; i < n; i++) ga[i] += alpha * g[i];
  if (gb)
    for (int64_t i = 0; i < n; i++) gb[i] += beta * g[i];
}

opl_tensor *opl_axpby(opl_ctx *c, double alpha, opl_tensor *a, double beta, opl_tensor *b) {
  if (!opl_check_input(c, "axpby", "a", a, -1, 1) || !opl_check_input(c, "axpby", "b", b, -1, 1))
    return NULL;
  if (!opl_shape_eq(a->rank, a->shape, b->rank, b->shape) || opl_is_complex(a) != opl_is_complex(b)) {
    char b1[96], b2[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "axpby: a %s%s and b %s%s differ",
                  opl_shape_str(b1, a->rank, a->shape), opl_is_complex(a) ? " complex" : "",
                  opl_shape_str(b2, b->rank, b->shape), opl_is_complex(b) ? " complex" : "");
    return NULL;
  }
  opl_tensor *y = opl_new_like(c, a);
  if (!y) return NULL;
  axpby_forward(opl_nreal(a), (opl_real)alpha, a->data, (opl_real)beta, b->data, y->data);
  opl_tensor *in[2] = {a, b};
  opl_node *nd = opl_record_saves(c, "axpby", axpby_bw, y, 2, in, 0);
  if (nd) nd->farg[0] = alpha, nd->farg[1] = beta;
  return y;
}

static opl_tensor *affine(opl_ctx *c, const char *op, opl_tensor *x, double alpha, double beta) {
  if (!opl_check_input(c, op, "x", x, -1, beta == 0)) return NULL;
  opl_tensor *y = opl_new_like(c, x);
  if (!y) return NULL;
  axpby_forward(opl_nreal(x), (opl_real)alpha, x->data, (opl_real)beta, NULL, y->data);
  opl_node *nd = opl_record_saves(c, op, axpby_bw, y, 1, &x, 0);
  if (nd) nd->farg[0] = alpha, nd->farg[1] = 0;
  return y;
}

opl_tensor *opl_scale(opl_ctx *c, opl_tensor *x, double alpha) { return affine(c, "scale", x, alpha, 0); }
opl_tensor *opl_add_scalar(opl_ctx *c, opl_tensor *x, double s) { return affine(c, "add_scalar", x, 1, s); }

/* ------------------------------------------------------------ bias along an axis */

/* y[o, d, i] = x[o, d, i] + b[d]: x, y [outer, D, inner], b [D]. */
static void bias_forward(int64_t outer, int64_t D, int64_t inner, const opl_real *x,
                         const opl_real *b, opl_real *y) {
  OPL_PFOR(od, outer * D, outer * D * inner, {
    const opl_real *xs = x + od * inner;
    opl_real *ys = y + od * inner, bd = b[od % D];
    for (int64_t i = 0; i < inner; i++) ys[i] = xs[i] + bd;
  });
}

static void bias_bw(opl_node *nd) {
  int64_t outer = nd->iarg[0], D = nd->iarg[1], inner = nd->iarg[2];
  const opl_real *g = nd->out->grad;
  opl_real *gx = opl_node_grad(nd, 0), *gb = opl_node_grad(nd, 1);
  if (gx) opl_acc(gx, g, outer * D * inner);
  if (gb)
    for (int64_t o = 0; o < outer; o++)
      for (int64_t d = 0; d < D; d++) {
        const opl_real *gs = g + (o * D + d) * inner;
        double s = 0;
        for (int64_t i = 0; i < inner; i++) s += gs[i];
        gb[d] += (opl_real)s;
      }
}

opl_tensor *opl_bias(opl_ctx *c, opl_tensor *x, opl_tensor *b, int axis) {
  if (!opl_check_input(c, "bias", "x", x, -1, 0) || !opl_check_input(c, "bias", "b", b, 1, 0))
    return NULL;
  int ax = opl_axis_norm(axis, x->rank);
  char b1[96], b2[96];
  if (ax < 0) {
    opl_ctx_error(c, OPL_ERR_ARG, "bias: axis %d out of range for x %s", axis,
                  opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  if (b->shape[0] != x->shape[ax]) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "bias: b %s does not match axis %d of x %s",
                  opl_shape_str(b1, b->rank, b->shape), ax, opl_shape_str(b2, x->rank, x->shape));
    return NULL;
  }
  opl_tensor *y = opl_new_like(c, x);
  if (!y) return NULL;
  int64_t outer = opl_prod(x->shape, 0, ax), D = x->shape[ax], inner = opl_prod(x->shape, ax + 1, x->rank);
  bias_forward(outer, D, inner, x->data, b->data, y->data);
  opl_tensor *in[2] = {x, b};
  opl_node *nd = opl_record_saves(c, "bias", bias_bw, y, 2, in, 0);
  if (nd) nd->iarg[0] = outer, nd->iarg[1] = D, nd->iarg[2] = inner;
  return y;
}

/* ------------------------------------------------------------ unary */

static const char *unary_names[OPL_UNARY_COUNT] = {
    "square", "sqrt", "exp", "log", "sin", "cos", "tanh", "relu",
    "gelu", "silu", "softplus", "abs", "sigmoid"};

const char *opl_unary_name(opl_unary_kind k) {
  return (k >= 0 && k < OPL_UNARY_COUNT) ? unary_names[k] : "unknown";
}

static inline opl_real sigm(opl_real x) {
  return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

#define INV_SQRT2 ((opl_real)0.70710678118654752440)
#define INV_SQRT2PI ((opl_real)0.39894228040143267794)

static inline opl_real unary_f(opl_unary_kind k, opl_real x) {
  switch (k) {
    case OPL_SQUARE: return x * x;
    case OPL_SQRT: return sqrt(x);
    case OPL_EXP: return exp(x);
    case OPL_LOG: return log(x);
    case OPL_SIN: return sin(x);
    case OPL_COS: return cos(x);
    case OPL_TANH: return tanh(x);
    case OPL_RELU: return x > 0 ? x : 0;
    case OPL_GELU: return (opl_real)0.5 * x * (1 + erf(x * INV_SQRT2));
    case OPL_SILU: return x * sigm(x);
    case OPL_SOFTPLUS: return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
    case OPL_ABS: return fabs(x);
    case OPL_SIGMOID: return sigm(x);
    default: return 0;
  }
}

/* dy/dx from x and y = f(x). */
static inline opl_real unary_df(opl_unary_kind k, opl_real x, opl_real y) {
  switch (k) {
    case OPL_SQUARE: return 2 * x;
    case OPL_SQRT: return (opl_real)0.5 / y;
    case OPL_EXP: return y;
    case OPL_LOG: return 1 / x;
    case OPL_SIN: return cos(x);
    case OPL_COS: return -sin(x);
    case OPL_TANH: return 1 - y * y;
    case OPL_RELU: return x > 0 ? 1 : 0;
    case OPL_GELU:
      return (opl_real)0.5 * (1 + erf(x * INV_SQRT2)) + x * INV_SQRT2PI * exp((opl_real)-0.5 * x * x);
    case OPL_SILU: {
      opl_real s = sigm(x);
      return s * (1 + x * (1 - s));
    }
    case OPL_SOFTPLUS: return sigm(x);
    case OPL_ABS: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case OPL_SIGMOID: return y * (1 - y);
    default: return 0;
  }
}

/* x, y [n]. */
/* Split [0, n) into chunks for the threads (only above the parallel threshold) and run a
 * kernel f(len, offset) on each. */
#define OPL_CHUNKED(n, work, call)                                                   \
  do {                                                                               \
    const int64_t n_ = (n);                                                          \
    if ((work) > OPL_PAR_MIN) {                                                      \
      _Pragma("omp parallel")                                                        \
      {                                                                              \
        int nt_ = opl_omp_nthreads(), t_ = opl_omp_thread();                        \
        int64_t lo_ = n_ * t_ / nt_, hi_ = n_ * (t_ + 1) / nt_;                      \
        int64_t off = lo_, len = hi_ - lo_;                                          \
        if (len > 0) call;                                                           \
      }                                                                              \
    } else {                                                                         \
      int64_t off = 0, len = n_;                                                     \
      call;                                                                          \
    }                                                                                \
  } while (0)

/* The activation kernels on the calling thread (internal.h): y = f(x); gx += gy * f'(x, y).
 * x, y, gy, gx [n]. Float GELU and tanh go to the vectorized kernels of core/fastmath.c. */
void opl_unary_forward_1t(int kind, int64_t n, const opl_real *x, opl_real *y) {
  const opl_unary_kind k = (opl_unary_kind)kind;
#ifndef OPL_DOUBLE
  if (k == OPL_GELU) {
    opl_gelu_forward_f32(n, x, y);
    return;
  }
  if (k == OPL_TANH) {
    opl_tanh_forward_f32(n, x, y);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++) y[i] = unary_f(k, x[i]);
}

void opl_unary_backward_1t(int kind, int64_t n, const opl_real *x, const opl_real *y,
                           const opl_real *gy, opl_real *gx) {
  const opl_unary_kind k = (opl_unary_kind)kind;
#ifndef OPL_DOUBLE
  if (k == OPL_GELU) {
    opl_gelu_backward_f32(n, x, gy, gx);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * unary_df(k, x[i], y[i]);
}

/* The kernels above over chunks of [0, n), one per thread above the parallel threshold. */
void opl_unary_forward(int kind, int64_t n, const opl_real *x, opl_real *y) {
  OPL_CHUNKED(n, 4 * n, opl_unary_forward_1t(kind, len, x + off, y + off));
}

/* x, y, gy, gx [n]; gx accumulated. */
void opl_unary_backward(int kind, int64_t n, const opl_real *x, const opl_real *y,
                        const opl_real *gy, opl_real *gx) {
  OPL_CHUNKED(n, 4 * n, opl_unary_backward_1t(kind, len, x + off, y + off, gy + off, gx + off));
}

/* The kinds whose derivative is written with y = f(x) (unary_df): their backward reads the
 * output's values as well as the input's. */
static int unary_reads_y(opl_unary_kind k) {
  return k == OPL_SQRT || k == OPL_EXP || k == OPL_TANH || k == OPL_SIGMOID;
}

static void unary_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  /* the other kinds do not save y, which may have been released: pass x in its place */
  const opl_real *y = unary_reads_y((opl_unary_kind)nd->iarg[0]) ? nd->out->data : nd->in[0]->data;
  if (gx) opl_unary_backward((int)nd->iarg[0], nd->out->numel, nd->in[0]->data, y, nd->out->grad, gx);
}

opl_tensor *opl_unary(opl_ctx *c, opl_tensor *x, opl_unary_kind kind) {
  if (kind < 0 || kind >= OPL_UNARY_COUNT) {
    opl_ctx_error(c, OPL_ERR_ARG, "unary: unknown kind %d", (int)kind);
    return NULL;
  }
  const char *op = unary_names[kind];
  if (!opl_check_input(c, op, "x", x, -1, 0)) return NULL;
  opl_tensor *y = opl_new_like(c, x);
  if (!y) return NULL;
  opl_unary_forward(kind, x->numel, x->data, y->data);
  opl_node *nd = opl_record_saves(c, op, unary_bw, y, 1, &x,
                                  OPL_SAVES_IN(0) | (unary_reads_y(kind) ? OPL_SAVES_OUT : 0));
  if (nd) nd->iarg[0] = kind;
  return y;
}

/* opl — context (arena + sticky error), tensors and parameter sets.
 *
 * The arena is a list of large chunks handed out by bumping a pointer. opl_ctx_reset
 * rewinds it without returning memory to the system: on this kind of machine a first
 * touch of a fresh 4 KiB page costs ~30x a pass over warm memory, so a training step must
 * reuse the pages of the previous one. Chunks ask for transparent huge pages.
 *
 * Within a step, memory that dies early is reused through one free list of exactly-sized blocks:
 * the gradient of an intermediate tensor once its producer's backward has run, and the values of
 * a tensor its owner gives up (opl_release) when no recorded backward reads them (each op
 * declares what its backward reads: opl_record_saves). Then a step keeps what PyTorch keeps: the
 * values saved for backward, plus the gradients live at one time. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/opl.h"
#include "core/internal.h"

#define ARENA_ALIGN 64
#define CHUNK_ALIGN (2u << 20)
#define DEFAULT_CHUNK ((size_t)64 << 20)

typedef struct chunk {
  char *base;
  size_t size, used;
} chunk;

struct opl_ctx {
  chunk *chunks;
  int nchunks, capchunks, cur;
  size_t first_chunk;
  size_t used, high;
  int64_t sys_allocs;
  opl_node **tape;
  int64_t ntape, captape;
  int grad_enabled;
  int status;
  char msg[512];
  struct free_block *free_blocks; /* released blocks: dead gradients, opl_release */
  size_t grad_live, grad_high;    /* bytes of arena gradient buffers live now / at most */
  size_t reused;                  /* bytes handed out from free_blocks since the last reset */
  int in_backward;               /* inside one node's backward: its arena use is scratch */
  int grad_check;                /* opl_ctx_set_grad_check */
  int no_release;                /* opl_ctx_set_release(c, 0) */
  opl_grad_fault fault;          /* what the last checked backward found */
  opl_backward_hook hook;        /* opl_ctx_set_backward_hook */
  void *hook_user;
};

/* A released block (a dead gradient buffer, or the data of a tensor given up by opl_release),
 * reused for a later gradient or tensor of exactly the same size. The header lives in the block
 * itself (arena blocks are at least 64 bytes). */
typedef struct free_block {
  struct free_block *next;
  size_t bytes;
} free_block;

/* ------------------------------------------------------------ context */

opl_ctx *opl_ctx_new(size_t arena_bytes) {
  opl_ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->first_chunk = arena_bytes ? arena_bytes : DEFAULT_CHUNK;
  c->grad_enabled = 1;
  c->sys_allocs = 1;
  return c;
}

void opl_ctx_free(opl_ctx **pc) {
  if (!pc || !*pc) return;
  opl_ctx *c = *pc;
  for (int i = 0; i < c->nchunks; i++) free(c->chunks[i].base);
  free(c->chunks);
  free(c->tape);
  free(c);
  *pc = NULL;
}

void opl_ctx_reset(opl_ctx *c) {
  for (int i = 0; i < c->nchunks; i++) c->chunks[i].used = 0;
  c->cur = 0;
  c->used = 0;
  c->ntape = 0;
  c->free_blocks = NULL;
  c->grad_live = c->grad_high = c->reused = 0;
}

int opl_ctx_set_grad_enabled(opl_ctx *c, int enabled) {
  int old = c->grad_enabled;
  c->grad_enabled = enabled != 0;
  return old;
}
int opl_ctx_grad_enabled(const opl_ctx *c) { return c->grad_enabled; }

int opl_ctx_set_grad_check(opl_ctx *c, int on) {
  int old = c->grad_check;
  c->grad_check = on != 0;
  return old;
}

void opl_ctx_set_backward_hook(opl_ctx *c, opl_backward_hook fn, void *user) {
  c->hook = fn;
  c->hook_user = user;
}

opl_node *const *opl_ctx_tape(const opl_ctx *c, int64_t *n) {
  *n = c->ntape;
  return c->tape;
}

void opl_ctx_grad_fault(const opl_ctx *c, opl_grad_fault *f) {
  if (c->fault.op) *f = c->fault;
  else *f = (opl_grad_fault){.kind = OPL_GRAD_FAULT_NONE, .op = "", .node = -1};
}

int opl_ctx_status(const opl_ctx *c) { return c->status; }
const char *opl_ctx_errmsg(const opl_ctx *c) { return c->msg; }

int opl_ctx_error(opl_ctx *c, int status, const char *fmt, ...) {
  if (c->status == OPL_OK && status != OPL_OK) {
    va_list ap;
    va_start(ap, fmt);
    c->status = status;
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
  }
  return status;
}

void opl_ctx_clear_error(opl_ctx *c) {
  c->status = OPL_OK;
  c->msg[0] = 0;
}

int opl_ctx_take_error(const opl_ctx *c, opl_err *err) {
  if (err) {
    err->status = c->status;
    snprintf(err->msg, sizeof err->msg, "%s", c->msg);
  }
  return c->status;
}

void opl_ctx_get_stats(const opl_ctx *c, opl_ctx_stats *s) {
  size_t cap = 0;
  for (int i = 0; i < c->nchunks; i++) cap += c->chunks[i].size;
  s->arena_used = c->used;
  s->arena_high = c->high;
  s->arena_capacity = cap;
  s->sys_allocs = c->sys_allocs;
  s->tape_nodes = c->ntape;
  s->grad_high = c->grad_high;
  s->reused = c->reused;
}

/* ------------------------------------------------------------ arena */

static int arena_new_chunk(opl_ctx *c, size_t need) {
  if (c->nchunks == c->capchunks) {
    int cap = c->capchunks ? 2 * c->capchunks : 8;
    chunk *nc = realloc(c->chunks, (size_t)cap * sizeof *nc);
    c->sys_allocs++;
    if (!nc) return 0;
    c->chunks = nc;
    c->capchunks = cap;
  }
  size_t size = c->nchunks ? c->chunks[c->nchunks - 1].size * 2 : c->first_chunk;
  if (size < need) size = need;
  size = (size + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
  void *p = NULL;
  c->sys_allocs++;
  if (posix_memalign(&p, CHUNK_ALIGN, size) != 0) return 0;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  c->chunks[c->nchunks].base = p;
  c->chunks[c->nchunks].size = size;
  c->chunks[c->nchunks].used = 0;
  c->nchunks++;
  return 1;
}

void *opl_arena_alloc(opl_ctx *c, size_t bytes) {
  size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  if (need == 0) need = ARENA_ALIGN;
  for (;;) {
    if (c->cur < c->nchunks) {
      chunk *k = &c->chunks[c->cur];
      if (k->size - k->used >= need) {
        void *p = k->base + k->used;
        k->used += need;
        c->used += need;
        if (c->used > c->high) c->high = c->used;
        return p;
      }
      /* Skip to a later chunk that was already allocated, if any fits. */
      if (c->cur + 1 < c->nchunks) {
        c->cur++;
        continue;
      }
    }
    if (!arena_new_chunk(c, need)) {
      opl_ctx_error(c, OPL_ERR_NOMEM, "arena: out of memory allocating %zu bytes", bytes);
      return NULL;
    }
    c->cur = c->nchunks - 1;
  }
}

opl_arena_mark_t opl_arena_mark(const opl_ctx *c) {
  opl_arena_mark_t m = {c->cur, c->cur < c->nchunks ? c->chunks[c->cur].used : 0, c->used};
  return m;
}

/* Drop the released blocks that lie at or after mark m from the free list: the rewind hands
 * that memory out again from the bump pointer. */
static void prune_free_blocks(opl_ctx *c, opl_arena_mark_t m) {
  for (struct free_block **pb = &c->free_blocks; *pb;) {
    const char *p = (const char *)*pb;
    int after = 0;
    for (int i = 0; i < c->nchunks; i++) {
      const chunk *k = &c->chunks[i];
      if (p >= k->base && p < k->base + k->size) {
        after = i > m.chunk || (i == m.chunk && (size_t)(p - k->base) >= m.chunk_used);
        break;
      }
    }
    if (after) *pb = (*pb)->next;
    else pb = &(*pb)->next;
  }
}

void opl_arena_rewind(opl_ctx *c, opl_arena_mark_t m) {
  OPL_ASSERT(m.chunk <= c->nchunks && m.used <= c->used, "arena rewind to a mark from after a reset");
  if (c->free_blocks) prune_free_blocks(c, m);
  for (int i = m.chunk + 1; i < c->nchunks; i++) c->chunks[i].used = 0;
  if (m.chunk < c->nchunks) c->chunks[m.chunk].used = m.chunk_used;
  c->cur = m.chunk;
  c->used = m.used;
}

opl_tape_mark_t opl_tape_mark(const opl_ctx *c) {
  opl_tape_mark_t m = {opl_arena_mark(c), c->ntape};
  return m;
}

void opl_tape_rewind(opl_ctx *c, opl_tape_mark_t m) {
  OPL_ASSERT(!c->in_backward && m.ntape <= c->ntape, "tape rewind during backward or to a mark from after a reset");
  c->ntape = m.ntape;
  opl_arena_rewind(c, m.arena);
}

void *opl_arena_calloc(opl_ctx *c, size_t bytes) {
  void *p = opl_arena_alloc(c, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* bytes from a released block of exactly that size if there is one, else from the arena. */
static void *block_alloc(opl_ctx *c, size_t bytes) {
  for (free_block **pb = &c->free_blocks; *pb; pb = &(*pb)->next)
    if ((*pb)->bytes == bytes) {
      free_block *b = *pb;
      *pb = b->next;
      c->reused += bytes;
      return b;
    }
  return opl_arena_alloc(c, bytes);
}

/* Give a dead block of bytes (from block_alloc or opl_arena_alloc) back for reuse. */
static void block_release(opl_ctx *c, void *p, size_t bytes) {
  if (!p || bytes < sizeof(free_block)) return;
  free_block *b = p;
  b->bytes = bytes;
  b->next = c->free_blocks;
  c->free_blocks = b;
}

void *opl_grad_alloc(opl_ctx *c, size_t bytes) {
  void *p = block_alloc(c, bytes);
  if (p) {
    c->grad_live += bytes;
    if (c->grad_live > c->grad_high) c->grad_high = c->grad_live;
  }
  return p;
}

/* Give a dead gradient buffer of bytes (from opl_grad_alloc) back for reuse. */
static void grad_release(opl_ctx *c, void *p, size_t bytes) {
  if (!p) return;
  c->grad_live -= bytes;
  block_release(c, p, bytes);
}

/* ------------------------------------------------------------ shapes */

char *opl_shape_str(char *buf, int rank, const int64_t *shape) {
  int n = snprintf(buf, 96, "(");
  for (int i = 0; i < rank && n < 90; i++)
    n += snprintf(buf + n, 96 - n, i ? ", %lld" : "%lld", (long long)shape[i]);
  snprintf(buf + n, 96 - n, ")");
  return buf;
}

int opl_shape_eq(int ra, const int64_t *a, int rb, const int64_t *b) {
  if (ra != rb) return 0;
  for (int i = 0; i < ra; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* 0 and a message in msg if the shape is invalid; numel in *numel otherwise. */
static int shape_ok(int rank, const int64_t *shape, int64_t *numel, char *msg, size_t len) {
  if (rank < 0 || rank > OPL_MAX_RANK) {
    snprintf(msg, len, "rank %d outside [0, %d]", rank, OPL_MAX_RANK);
    return 0;
  }
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] <= 0) {
      char b[96];
      snprintf(msg, len, "shape %s has a non-positive extent on axis %d",
               opl_shape_str(b, rank, shape), i);
      return 0;
    }
    if (n > INT64_MAX / 4 / shape[i]) {
      snprintf(msg, len, "shape too large");
      return 0;
    }
    n *= shape[i];
  }
  *numel = n;
  return 1;
}

/* ------------------------------------------------------------ arena tensors */

opl_tensor *opl_new_flags(opl_ctx *c, int rank, const int64_t *shape, int flags) {
  if (c->status) return NULL;
  int64_t numel;
  char msg[256];
  if (!shape_ok(rank, shape, &numel, msg, sizeof msg)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "new tensor: %s", msg);
    return NULL;
  }
  opl_tensor *t = opl_arena_alloc(c, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->rank = rank;
  for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->flags = OPL_T_ARENA | OPL_T_BLOCK | (flags & OPL_T_COMPLEX);
  /* Inside a node's backward everything is scratch, rewound after it: fresh memory only. */
  const size_t bytes = (size_t)opl_nreal(t) * sizeof(opl_real);
  t->data = c->in_backward ? opl_arena_alloc(c, bytes) : block_alloc(c, bytes);
  if (!t->data) return NULL;
  return t;
}

opl_tensor *opl_new(opl_ctx *c, int rank, const int64_t *shape) {
  return opl_new_flags(c, rank, shape, 0);
}

opl_tensor *opl_zeros(opl_ctx *c, int rank, const int64_t *shape) {
  opl_tensor *t = opl_new(c, rank, shape);
  if (t) memset(t->data, 0, (size_t)opl_nreal(t) * sizeof(opl_real));
  return t;
}

opl_tensor *opl_full(opl_ctx *c, int rank, const int64_t *shape, double value) {
  opl_tensor *t = opl_new(c, rank, shape);
  if (t)
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (opl_real)value;
  return t;
}

opl_tensor *opl_new_like(opl_ctx *c, const opl_tensor *t) {
  if (!t) return NULL;
  return opl_new_flags(c, t->rank, t->shape, t->flags & OPL_T_COMPLEX);
}

opl_tensor *opl_zeros_like(opl_ctx *c, const opl_tensor *t) {
  opl_tensor *o = opl_new_like(c, t);
  if (o) memset(o->data, 0, (size_t)opl_nreal(o) * sizeof(opl_real));
  return o;
}

opl_tensor *opl_view(opl_ctx *c, opl_tensor *t, int rank, const int64_t *shape) {
  if (c->status || !t) return NULL;
  int64_t numel;
  char msg[256], b1[96], b2[96];
  if (!shape_ok(rank, shape, &numel, msg, sizeof msg)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "view: %s", msg);
    return NULL;
  }
  if (numel != t->numel) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "view: cannot view %s as %s (different number of elements)",
                  opl_shape_str(b1, t->rank, t->shape), opl_shape_str(b2, rank, shape));
    return NULL;
  }
  opl_tensor *v = opl_arena_alloc(c, sizeof *v);
  if (!v) return NULL;
  *v = *t;
  v->rank = rank;
  for (int i = 0; i < OPL_MAX_RANK; i++) v->shape[i] = i < rank ? shape[i] : 0;
  v->flags = OPL_T_ARENA | (t->flags & OPL_T_COMPLEX);
  v->grad = NULL;
  v->node = NULL;
  t->flags |= OPL_T_VIEWED;
  return v;
}

void opl_set_requires_grad(opl_tensor *t) {
  if (t) t->flags |= OPL_T_REQGRAD;
}

int opl_ctx_set_release(opl_ctx *c, int on) {
  int old = !c->no_release;
  c->no_release = !on;
  return old;
}

void opl_release(opl_ctx *c, opl_tensor *t) {
  if (!c || !t || !t->data || c->in_backward || c->no_release) return;
  if ((t->flags & (OPL_T_ARENA | OPL_T_BLOCK | OPL_T_SAVED | OPL_T_VIEWED)) != (OPL_T_ARENA | OPL_T_BLOCK)) return;
  block_release(c, t->data, (size_t)opl_nreal(t) * sizeof(opl_real));
  t->data = NULL;
  t->flags &= ~OPL_T_BLOCK;
}

int opl_check_input(opl_ctx *c, const char *op, const char *what, const opl_tensor *t,
                    int rank, int allow_complex) {
  if (c->status) return 0;
  if (!t) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: %s is NULL", op, what);
    return 0;
  }
  char b[96];
  if (!t->data) {
    opl_ctx_error(c, OPL_ERR_STATE, "%s: %s %s was released (opl_release) and has no values", op, what,
                  opl_shape_str(b, t->rank, t->shape));
    return 0;
  }
  if (!allow_complex && opl_is_complex(t)) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: %s %s must be real, got a complex tensor", op, what,
                  opl_shape_str(b, t->rank, t->shape));
    return 0;
  }
  if (rank >= 0 && t->rank != rank) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: %s must have rank %d, got shape %s", op, what, rank,
                  opl_shape_str(b, t->rank, t->shape));
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ heap tensors */

opl_tensor *opl_tensor_alloc(int rank, const int64_t *shape, int flags, opl_err *err) {
  int64_t numel;
  char msg[256];
  if (!shape_ok(rank, shape, &numel, msg, sizeof msg)) {
    opl_err_set(err, OPL_ERR_SHAPE, "tensor: %s", msg);
    return NULL;
  }
  opl_tensor *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  t->rank = rank;
  for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->flags = OPL_T_OWNED | (flags & (OPL_T_COMPLEX | OPL_T_REQGRAD | OPL_T_PARAM));
  size_t bytes = (size_t)opl_nreal(t) * sizeof(opl_real);
  t->data = opl_aligned_calloc(bytes);
  if (!t->data) goto oom;
  if (t->flags & OPL_T_REQGRAD) {
    t->grad = opl_aligned_calloc(bytes);
    if (!t->grad) goto oom;
  }
  return t;
oom:
  opl_tensor_free(&t);
  opl_err_set(err, OPL_ERR_NOMEM, "tensor: out of memory for %lld elements", (long long)numel);
  return NULL;
}

void opl_tensor_free(opl_tensor **pt) {
  if (!pt || !*pt) return;
  opl_tensor *t = *pt;
  OPL_ASSERT(!(t->flags & OPL_T_ARENA), "opl_tensor_free on an arena tensor");
  free(t->data);
  free(t->grad);
  free(t);
  *pt = NULL;
}

void opl_tensor_zero_grad(opl_tensor *t) {
  if (t && t->grad) memset(t->grad, 0, (size_t)opl_nreal(t) * sizeof(opl_real));
}

void *opl_aligned_calloc(size_t bytes) {
  void *p = NULL;
  if (bytes == 0) bytes = ARENA_ALIGN;
  if (posix_memalign(&p, ARENA_ALIGN, bytes) != 0) return NULL;
  memset(p, 0, bytes);
  return p;
}

/* ------------------------------------------------------------ parameters */

void opl_params_init(opl_params *p) { memset(p, 0, sizeof *p); }

void opl_params_free(opl_params *p) {
  for (int i = 0; i < p->n; i++) opl_tensor_free(&p->t[i]);
  free(p->t);
  memset(p, 0, sizeof *p);
}

opl_tensor *opl_params_add(opl_params *p, const char *name, int rank, const int64_t *shape,
                           int flags, opl_err *err) {
  if (!name || !*name || strlen(name) >= sizeof(((opl_tensor *)0)->name)) {
    opl_err_set(err, OPL_ERR_ARG, "parameter name must have 1..63 characters");
    return NULL;
  }
  if (opl_params_find(p, name)) {
    opl_err_set(err, OPL_ERR_ARG, "parameter '%s' added twice", name);
    return NULL;
  }
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 16;
    opl_tensor **nt = realloc(p->t, (size_t)cap * sizeof *nt);
    if (!nt) {
      opl_err_set(err, OPL_ERR_NOMEM, "parameters: out of memory");
      return NULL;
    }
    p->t = nt;
    p->cap = cap;
  }
  opl_tensor *t = opl_tensor_alloc(rank, shape, (flags & OPL_T_COMPLEX) | OPL_T_REQGRAD | OPL_T_PARAM, err);
  if (!t) return NULL;
  snprintf(t->name, sizeof t->name, "%s", name);
  p->t[p->n++] = t;
  return t;
}

opl_tensor *opl_params_find(const opl_params *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->t[i]->name, name) == 0) return p->t[i];
  return NULL;
}

int64_t opl_params_count(const opl_params *p) {
  int64_t n = 0;
  for (int i = 0; i < p->n; i++) n += opl_nreal(p->t[i]);
  return n;
}

void opl_params_zero_grad(opl_params *p) {
  for (int i = 0; i < p->n; i++) opl_tensor_zero_grad(p->t[i]);
}

double opl_params_grad_norm(const opl_params *p) {
  double s = 0;
  for (int i = 0; i < p->n; i++) {
    const opl_tensor *t = p->t[i];
    if (!t->grad) continue;
    int64_t n = opl_nreal(t);
    for (int64_t j = 0; j < n; j++) s += (double)t->grad[j] * t->grad[j];
  }
  return sqrt(s);
}

double opl_params_clip_grad_norm(opl_params *p, double max_norm) {
  double norm = opl_params_grad_norm(p);
  if (norm > max_norm && norm > 0) {
    double scale = max_norm / (norm + 1e-6);
    for (int i = 0; i < p->n; i++) {
      opl_tensor *t = p->t[i];
      if (!t->grad) continue;
      int64_t n = opl_nreal(t);
      for (int64_t j = 0; j < n; j++) t->grad[j] = (opl_real)(t->grad[j] * scale);
    }
  }
  return norm;
}

static int check_finite(const opl_params *p, int grad, opl_err *err) {
  for (int i = 0; i < p->n; i++) {
    const opl_tensor *t = p->t[i];
    const opl_real *a = grad ? t->grad : t->data;
    if (!a) continue;
    int64_t n = opl_nreal(t);
    for (int64_t j = 0; j < n; j++)
      if (!isfinite(a[j]))
        return opl_err_set(err, OPL_ERR_NONFINITE, "%s of parameter '%s' has %s at index %lld",
                           grad ? "gradient" : "value", t->name, isnan(a[j]) ? "NaN" : "Inf",
                           (long long)j);
  }
  return OPL_OK;
}

int opl_params_check_finite_grad(const opl_params *p, opl_err *err) { return check_finite(p, 1, err); }
int opl_params_check_finite(const opl_params *p, opl_err *err) { return check_finite(p, 0, err); }

/* ------------------------------------------------------------ tape */

opl_node *opl_record(opl_ctx *c, const char *op, opl_backward_fn backward, opl_tensor *out,
                     int nin, opl_tensor *const *in) {
  return opl_record_saves(c, op, backward, out, nin, in, OPL_SAVES_ALL);
}

opl_node *opl_record_saves(opl_ctx *c, const char *op, opl_backward_fn backward, opl_tensor *out,
                           int nin, opl_tensor *const *in, unsigned saves) {
  OPL_ASSERT(nin >= 0 && nin <= OPL_MAX_INPUTS, "op %s has %d inputs", op, nin);
  if (c->status || !out || !c->grad_enabled) return NULL;
  int need = 0;
  for (int i = 0; i < nin; i++)
    if (in[i] && opl_requires_grad(in[i])) need = 1;
  if (!need) return NULL;
  if (c->ntape == c->captape) {
    int64_t cap = c->captape ? 2 * c->captape : 1024;
    opl_node **nt = realloc(c->tape, (size_t)cap * sizeof *nt);
    c->sys_allocs++;
    if (!nt) {
      opl_ctx_error(c, OPL_ERR_NOMEM, "tape: out of memory");
      return NULL;
    }
    c->tape = nt;
    c->captape = cap;
  }
  opl_node *nd = opl_arena_alloc(c, sizeof *nd);
  if (!nd) return NULL;
  memset(nd, 0, sizeof *nd);
  nd->backward = backward;
  nd->op = op;
  nd->ctx = c;
  nd->out = out;
  nd->nin = nin;
  for (int i = 0; i < nin; i++) {
    nd->in[i] = in[i];
    if (in[i] && (saves & OPL_SAVES_IN(i))) in[i]->flags |= OPL_T_SAVED;
  }
  out->node = nd;
  out->flags |= OPL_T_REQGRAD;
  if (saves & OPL_SAVES_OUT) out->flags |= OPL_T_SAVED;
  c->tape[c->ntape++] = nd;
  return nd;
}

opl_real *opl_grad_of(opl_ctx *c, opl_tensor *t) {
  if (!t || !opl_requires_grad(t)) return NULL;
  if (t->flags & OPL_T_GRAD_UNSET) { /* provided by the tape walk, not yet written */
    memset(t->grad, 0, (size_t)opl_nreal(t) * sizeof(opl_real));
    t->flags &= ~OPL_T_GRAD_UNSET;
  }
  if (!t->grad) {
    OPL_ASSERT(!c->in_backward, "a backward pass asked for the gradient of '%s', which is not an "
               "input of its node (backward may only write its inputs' gradients)", t->name);
    OPL_ASSERT(t->flags & OPL_T_ARENA, "tensor '%s' requires grad but has no gradient buffer",
               t->name);
    size_t bytes = (size_t)opl_nreal(t) * sizeof(opl_real);
    t->grad = opl_grad_alloc(c, bytes);
    if (t->grad) memset(t->grad, 0, bytes);
  }
  return t->grad;
}

opl_real *opl_node_grad(opl_node *nd, int i) {
  OPL_ASSERT(i >= 0 && i < nd->nin, "op %s: input %d of %d", nd->op, i, nd->nin);
  return opl_grad_of(nd->ctx, nd->in[i]);
}

/* Walk the tape in reverse. A node's output gradient is dead once the node's backward has run
 * (every consumer of the output comes later on the tape and has already accumulated into it),
 * so it is released for reuse by later gradients of the same size: peak memory then holds the
 * activations plus the gradients live at one time, not a gradient for every activation.
 * Gradients of intermediate tensors are therefore not kept after backward (as in PyTorch);
 * leaves and parameters keep theirs. */
opl_real *opl_node_grad_write(opl_node *nd, int i, int *fresh) {
  OPL_ASSERT(i >= 0 && i < nd->nin, "op %s: input %d of %d", nd->op, i, nd->nin);
  opl_tensor *t = nd->in[i];
  *fresh = 0;
  if (!t || !opl_requires_grad(t)) return NULL;
  if (t->flags & OPL_T_GRAD_UNSET) {
    t->flags &= ~OPL_T_GRAD_UNSET;
    *fresh = 1;
    return t->grad;
  }
  if (!t->grad && (t->flags & OPL_T_ARENA)) {
    OPL_ASSERT(!nd->ctx->in_backward, "op %s: gradient of input %d allocated inside backward", nd->op, i);
    t->grad = opl_grad_alloc(nd->ctx, (size_t)opl_nreal(t) * sizeof(opl_real));
    *fresh = t->grad != NULL;
    return t->grad;
  }
  return opl_node_grad(nd, i);
}

/* Each node's backward runs between an arena mark and a rewind, so whatever it allocates is
 * scratch, dead when it returns: peak memory holds one node's scratch, not every node's. The
 * gradients of its inputs, which must outlive it, are provided before the mark (uninitialized,
 * flagged OPL_T_GRAD_UNSET: the first opl_node_grad_write gets them as fresh, opl_node_grad /
 * opl_grad_of zero them first); one the backward left untouched is zeroed after it. */
/* Scan a[0..n): 0 when every value is finite, 1 when some are Inf and none NaN, 2 when some
 * are NaN; *amax (if not NULL) is raised to the largest finite |value|. */
static int scan_finite(const opl_real *a, int64_t n, double *amax) {
  int bad = 0;
  double m = amax ? *amax : 0;
  for (int64_t i = 0; i < n; i++) {
    double v = fabs((double)a[i]);
    if (v <= m) continue;
    if (isfinite(v)) m = v;
    else if (isnan(v)) bad = 2;
    else if (!bad) bad = 1;
  }
  if (amax) *amax = m;
  return bad;
}

/* The grad check after node nd's backward (opl_ctx_set_grad_check): until a fault is recorded,
 * every gradient written so far is finite (each was checked by the node that wrote it), so the
 * first node whose input gradients are not finite made them. */
static void check_node_grads(opl_ctx *c, opl_node *nd, int64_t k, opl_tensor *const *ins, int nins,
                             double gout_max) {
  int bad = 0;
  for (int i = 0; i < nins; i++)
    if (ins[i] && ins[i]->grad) {
      int b = scan_finite(ins[i]->grad, opl_nreal(ins[i]), NULL);
      if (b > bad) bad = b;
    }
  if (!bad) return;
  double vmax = 0;
  int fwd = nd->out->data && scan_finite(nd->out->data, opl_nreal(nd->out), NULL);
  for (int i = 0; i < nins; i++)
    if (ins[i] && ins[i]->data && scan_finite(ins[i]->data, opl_nreal(ins[i]), &vmax)) fwd = 1;
  c->fault = (opl_grad_fault){.kind = fwd ? OPL_GRAD_FAULT_FORWARD : bad == 2 ? OPL_GRAD_FAULT_NAN : OPL_GRAD_FAULT_INF,
                              .op = nd->op, .node = k, .grad_out_max = gout_max, .value_max = vmax};
}

static int run_backward(opl_ctx *c) {
  int checking = c->grad_check;
  for (int64_t k = c->ntape - 1; k >= 0; k--) {
    opl_node *nd = c->tape[k];
    opl_tensor *out = nd->out;
    if (!out->grad) continue; /* nothing flows through this node */
    opl_tensor **ins = nd->more ? nd->more : nd->in;
    const int nins = nd->more ? nd->nmore : nd->nin;
    for (int i = 0; i < nins; i++) {
      opl_tensor *t = ins[i];
      if (!t || !opl_requires_grad(t) || t->grad || !(t->flags & OPL_T_ARENA)) continue;
      t->grad = opl_grad_alloc(c, (size_t)opl_nreal(t) * sizeof(opl_real));
      if (!t->grad) return c->status;
      t->flags |= OPL_T_GRAD_UNSET;
    }
    double gout_max = 0;
    if (checking && scan_finite(out->grad, opl_nreal(out), &gout_max)) {
      /* only a non-finite seed can reach an unchecked output gradient */
      c->fault = (opl_grad_fault){.kind = OPL_GRAD_FAULT_SEED, .op = "", .node = -1};
      checking = 0;
    }
    opl_arena_mark_t m = opl_arena_mark(c);
    c->in_backward = 1;
    nd->backward(nd);
    c->in_backward = 0;
    opl_arena_rewind(c, m);
    for (int i = 0; i < nins; i++) {
      opl_tensor *t = ins[i];
      if (t && (t->flags & OPL_T_GRAD_UNSET)) {
        memset(t->grad, 0, (size_t)opl_nreal(t) * sizeof(opl_real));
        t->flags &= ~OPL_T_GRAD_UNSET;
      }
    }
    if (checking) {
      check_node_grads(c, nd, k, ins, nins, gout_max);
      if (c->fault.op) checking = 0;
    }
    if (c->status) return c->status;
    if (out->flags & OPL_T_ARENA) {
      grad_release(c, out->grad, (size_t)opl_nreal(out) * sizeof(opl_real));
      out->grad = NULL;
    }
    if (c->hook) c->hook(c->hook_user, k);
  }
  return c->status;
}

int opl_backward(opl_ctx *c, opl_tensor *loss) {
  if (c->status) return c->status;
  if (!loss) return opl_ctx_error(c, OPL_ERR_ARG, "backward: loss is NULL");
  if (loss->numel != 1 || opl_is_complex(loss)) {
    char b[96];
    return opl_ctx_error(c, OPL_ERR_SHAPE, "backward: loss must be a real scalar, got shape %s",
                         opl_shape_str(b, loss->rank, loss->shape));
  }
  if (!opl_requires_grad(loss))
    return opl_ctx_error(c, OPL_ERR_STATE,
                         "backward: loss does not depend on anything that requires a gradient");
  opl_real *g = opl_grad_of(c, loss);
  if (!g) return c->status;
  g[0] += 1;
  c->fault = (opl_grad_fault){0};
  return run_backward(c);
}

int opl_backward_seed(opl_ctx *c, opl_tensor *out, const opl_real *seed) {
  if (c->status) return c->status;
  if (!out || !seed) return opl_ctx_error(c, OPL_ERR_ARG, "backward: output or seed is NULL");
  if (!opl_requires_grad(out))
    return opl_ctx_error(c, OPL_ERR_STATE,
                         "backward: output does not depend on anything that requires a gradient");
  int64_t n = opl_nreal(out);
  if (!out->grad && (out->flags & OPL_T_ARENA)) {
    /* A fresh gradient: copy the seed instead of zeroing and adding. */
    out->grad = opl_grad_alloc(c, (size_t)n * sizeof(opl_real));
    if (!out->grad) return c->status;
    memcpy(out->grad, seed, (size_t)n * sizeof(opl_real));
  } else {
    opl_real *g = opl_grad_of(c, out);
    if (!g) return c->status;
    for (int64_t i = 0; i < n; i++) g[i] += seed[i];
  }
  c->fault = (opl_grad_fault){0};
  return run_backward(c);
}

int opl_tape_memory(const opl_ctx *c, opl_tape_mem *rows, int cap) {
  int n = 0;
  for (int64_t k = 0; k < c->ntape; k++) {
    const opl_node *nd = c->tape[k];
    int r = 0;
    while (r < n && r < cap && strcmp(rows[r].op, nd->op)) r++;
    if (r >= cap) { /* not among the rows written: count a kind seen for the first time */
      int64_t j = 0;
      while (j < k && strcmp(c->tape[j]->op, nd->op)) j++;
      if (j == k) n++;
      continue;
    }
    if (r == n) rows[n++] = (opl_tape_mem){.op = nd->op};
    const opl_tensor *y = nd->out;
    const size_t bytes = (size_t)opl_nreal(y) * sizeof(opl_real);
    rows[r].nodes++;
    if (!y->data) {
      rows[r].out_bytes += bytes;
      rows[r].released_bytes += bytes;
    } else if (y->flags & OPL_T_BLOCK) {
      rows[r].out_bytes += bytes;
      if (y->flags & OPL_T_SAVED) rows[r].saved_bytes += bytes;
    }
  }
  return n;
}

/* ------------------------------------------------------------ threads */

void opl_set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int opl_get_num_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/* opl — the engine: status, context (arena + tape), tensors, parameters.
 *
 * Conventions (see DESIGN.md, "The engine"):
 *  - A tensor is a contiguous array of opl_real with a shape of rank <= 5, batch first:
 *    (N, C, X[, Y[, Z]]). A complex tensor stores interleaved (re, im) pairs: its shape
 *    counts complex elements and its storage is 2*numel reals.
 *  - Op constructors (core/ops.h) take an opl_ctx, compute eagerly, take their output from
 *    the context's arena and, when an input requires a gradient, record one tape node.
 *    opl_backward() walks the tape in reverse; backward kernels ACCUMULATE into .grad.
 *  - Errors chain through one sticky status held by the context (SQLite-style): the first
 *    error is kept with its message, every later constructor returns NULL, and NULL inputs
 *    propagate. Check opl_ctx_status() once after building a graph.
 *  - Programmer errors (corrupted state, impossible internal conditions) trip OPL_ASSERT,
 *    which is always on and names the file, line and condition.
 *  - The library never prints and never exits except through OPL_ASSERT.
 */
#ifndef OPL_H
#define OPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include "core/real.h"

#define OPL_VERSION "0.1.0"
#define OPL_MAX_RANK 5
#define OPL_MAX_INPUTS 6

/* ---------------------------------------------------------------- status */

/* One table of status codes: X(NAME, value, description). */
#define OPL_STATUS_TABLE(X)                                                   \
  X(OK, 0, "ok")                                                               \
  X(ERR_NOMEM, 1, "out of memory")                                             \
  X(ERR_SHAPE, 2, "shape mismatch")                                            \
  X(ERR_ARG, 3, "invalid argument")                                            \
  X(ERR_IO, 4, "input/output error")                                           \
  X(ERR_FORMAT, 5, "malformed or foreign file")                                \
  X(ERR_NOTFOUND, 6, "not found")                                              \
  X(ERR_NONFINITE, 7, "non-finite value (NaN or Inf)")                         \
  X(ERR_STATE, 8, "invalid state")                                             \
  X(ERR_CONVERGENCE, 9, "did not converge")                                    \
  X(ERR_UNSUPPORTED, 10, "unsupported")

typedef enum {
#define OPL_X(name, val, desc) OPL_##name = val,
  OPL_STATUS_TABLE(OPL_X)
#undef OPL_X
} opl_status;

/* Name of a status code ("ERR_SHAPE"), or "UNKNOWN". */
const char *opl_status_name(int status);
/* One-line description of a status code. */
const char *opl_status_desc(int status);

/* An error report usable where there is no context (file I/O, solvers, config):
 * a status and a message. Functions that take an opl_err* fill it on failure and
 * return the status; a NULL opl_err* is allowed (the message is dropped). */
typedef struct opl_err {
  int status;
  char msg[512];
} opl_err;

/* Set err (if not NULL) to status with a printf-style message; returns status. A library
 * message starts with the tag of the module that reports it ("train: ", "generate: ", "ds: "),
 * followed by the reason. */
int opl_err_set(opl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reason of e's message: the message without its leading module tag (a lowercase word of
 * letters, digits and '_' followed by ": "), for a caller that names the module itself (the
 * CLI prints "opl train: " + the reason); the whole message when it has no tag. Points into
 * e->msg. */
const char *opl_err_text(const opl_err *e);

/* Always-on assert for programmer errors: prints file:line and the condition to stderr
 * and aborts. Never used for bad input, which gets a status. */
#define OPL_ASSERT(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) opl_assert_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);    \
  } while (0)
void opl_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn));

/* ---------------------------------------------------------------- tensors */

enum {
  OPL_T_COMPLEX = 1 << 0,  /* interleaved (re, im); shape counts complex elements */
  OPL_T_REQGRAD = 1 << 1,  /* gradients flow into this tensor */
  OPL_T_PARAM = 1 << 2,    /* a parameter: data and grad live outside the arena */
  OPL_T_ARENA = 1 << 3,    /* struct and data live in a context's arena */
  OPL_T_OWNED = 1 << 4,    /* heap tensor owning data and grad (opl_tensor_alloc) */
  OPL_T_GRAD_UNSET = 1 << 5, /* grad allocated by the tape walk but not yet written (internal) */
  OPL_T_SAVED = 1 << 6,    /* a recorded backward reads its values (internal; opl_release) */
  OPL_T_VIEWED = 1 << 7,   /* another tensor shares its data (opl_view) (internal) */
  OPL_T_BLOCK = 1 << 8,    /* an arena tensor whose data is its own block (internal) */
};

struct opl_node;
struct opl_ctx;

typedef struct opl_tensor {
  opl_real *data;          /* [nreal] contiguous, row-major */
  opl_real *grad;          /* [nreal] or NULL; accumulated by backward */
  int64_t shape[OPL_MAX_RANK];
  int rank;
  int flags;
  int64_t numel;           /* product of shape (complex elements if complex) */
  struct opl_node *node;   /* the op that produced it, if recorded */
  char name[64];           /* parameters and I/O: the name used in checkpoints */
} opl_tensor;

/* Number of reals stored: numel, or 2*numel for a complex tensor. */
static inline int64_t opl_nreal(const opl_tensor *t) {
  return (t->flags & OPL_T_COMPLEX) ? 2 * t->numel : t->numel;
}
static inline int opl_is_complex(const opl_tensor *t) { return (t->flags & OPL_T_COMPLEX) != 0; }
static inline int opl_requires_grad(const opl_tensor *t) { return (t->flags & OPL_T_REQGRAD) != 0; }

/* Count arguments (1..5) so shapes can be written inline: opl_new(c, OPL_DIMS(n, c, x)). */
#define OPL_NARGS_(a, b, c, d, e, N, ...) N
#define OPL_NARGS(...) OPL_NARGS_(__VA_ARGS__, 5, 4, 3, 2, 1, 0)
#define OPL_DIMS(...) OPL_NARGS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__}

/* Format a shape as "(2, 3, 64)" into buf (at least 96 bytes); returns buf. */
char *opl_shape_str(char *buf, int rank, const int64_t *shape);
/* 1 if two shapes are equal. */
int opl_shape_eq(int ra, const int64_t *a, int rb, const int64_t *b);

/* A heap tensor outside any arena (inputs, datasets, tests). Data zeroed; grad NULL
 * unless flags has OPL_T_REQGRAD, then a zeroed grad is allocated too. Returns NULL
 * and fills err on bad shape or out of memory. Free with opl_tensor_free. */
opl_tensor *opl_tensor_alloc(int rank, const int64_t *shape, int flags, opl_err *err);
/* Free a heap tensor and set *t to NULL. Accepts NULL and *t == NULL. */
void opl_tensor_free(opl_tensor **t);
/* Zero the gradient of a heap or parameter tensor (no-op if none). */
void opl_tensor_zero_grad(opl_tensor *t);

/* ---------------------------------------------------------------- context */

typedef struct opl_ctx opl_ctx;

typedef struct opl_ctx_stats {
  size_t arena_used;       /* bytes handed out since the last reset */
  size_t arena_high;       /* high-water mark over the context's life */
  size_t arena_capacity;   /* bytes held by the arena (never returned until free) */
  int64_t sys_allocs;      /* number of malloc/realloc calls the context has made */
  int64_t tape_nodes;      /* nodes currently on the tape */
  size_t grad_high;        /* most bytes of arena gradient buffers live at once since the last
                            * reset (the backward pass's share of the arena) */
  size_t reused;           /* bytes handed out since the last reset from released blocks
                            * (opl_release, dead gradients) instead of fresh arena memory */
} opl_ctx_stats;

/* Create a context whose arena starts with at least arena_bytes (0: a default). The
 * first chunk is allocated and touched lazily. Returns NULL only when out of memory. */
opl_ctx *opl_ctx_new(size_t arena_bytes);
/* Free the context, its arena and tape; sets *c to NULL. Tensors from its arena die. */
void opl_ctx_free(opl_ctx **c);
/* Forget the tape and reset the arena (memory is kept for reuse: no free, no malloc).
 * Every arena tensor becomes invalid. The sticky error is kept. */
void opl_ctx_reset(opl_ctx *c);
/* Enable (1) or disable (0) recording of tape nodes; returns the previous setting. */
int opl_ctx_set_grad_enabled(opl_ctx *c, int enabled);
int opl_ctx_grad_enabled(const opl_ctx *c);

/* Fault finding for a non-finite gradient (off by default). With on = 1, every later backward
 * pass on c (opl_backward, opl_backward_seed) also checks, after each tape node's backward, the
 * gradients it wrote, and records the first node that turned finite gradients into a non-finite
 * one: an Inf made from finite values means the gradient overflowed the floating-point range
 * (an Inf times a zero derivative, e.g. of a saturated tanh, then gives the NaN seen
 * downstream); a NaN made from finite values points at the op itself. Costs a pass over every
 * gradient and value a node touches: meant for rerunning a failed step (the trainer's divergence
 * guard does). Returns the previous setting. */
int opl_ctx_set_grad_check(opl_ctx *c, int on);

typedef enum {
  OPL_GRAD_FAULT_NONE = 0,    /* every gradient of the last checked backward was finite */
  OPL_GRAD_FAULT_INF = 1,     /* the node made an Inf from finite inputs and gradients: overflow */
  OPL_GRAD_FAULT_NAN = 2,     /* the node made a NaN from finite inputs and gradients */
  OPL_GRAD_FAULT_FORWARD = 3, /* the node's own forward values (inputs or output) are not finite */
  OPL_GRAD_FAULT_SEED = 4     /* the gradient given to opl_backward_seed is not finite */
} opl_grad_fault_kind;

typedef struct opl_grad_fault {
  opl_grad_fault_kind kind;
  const char *op;        /* the node's op name ("" for NONE and SEED) */
  int64_t node;          /* its position on the tape (-1 for NONE and SEED) */
  double grad_out_max;   /* largest |gradient| of the node's output that entered its backward */
  double value_max;      /* largest |value| among the node's inputs (finite ones) */
} opl_grad_fault;

/* The fault found by the last backward pass run with the check on (kind NONE when there was
 * none, or when no backward ran with the check on since opl_ctx_new). */
void opl_ctx_grad_fault(const opl_ctx *c, opl_grad_fault *f);

/* The sticky status (OPL_OK when no error) and its message ("" when none). */
int opl_ctx_status(const opl_ctx *c);
const char *opl_ctx_errmsg(const opl_ctx *c);
/* Record an error if none is recorded yet (the first error wins). Returns status. */
int opl_ctx_error(opl_ctx *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clear the sticky error. */
void opl_ctx_clear_error(opl_ctx *c);
/* Copy the context error into err (if err != NULL); returns the status. */
int opl_ctx_take_error(const opl_ctx *c, opl_err *err);
void opl_ctx_get_stats(const opl_ctx *c, opl_ctx_stats *s);

/* Raw arena memory: bytes, 64-byte aligned, uninitialized; NULL (and a sticky error) when
 * out of memory. Valid until opl_ctx_reset. */
void *opl_arena_alloc(opl_ctx *c, size_t bytes);
/* Same, zeroed. */
void *opl_arena_calloc(opl_ctx *c, size_t bytes);

/* A position in the arena. opl_arena_rewind(c, m) frees everything allocated after
 * opl_arena_mark returned m (without returning memory to the system). Only for code that
 * records no tape node in between (grad disabled): tensors made after the mark die. */
typedef struct opl_arena_mark_t {
  int chunk;
  size_t chunk_used, used;
} opl_arena_mark_t;
opl_arena_mark_t opl_arena_mark(const opl_ctx *c);
void opl_arena_rewind(opl_ctx *c, opl_arena_mark_t m);

/* A position on the tape and in the arena together. opl_tape_rewind(c, m) drops the tape nodes
 * recorded and frees the arena memory allocated after opl_tape_mark returned m, so ops recorded
 * in between leave no trace (an adaptive solver discarding a rejected step). Tensors made after
 * the mark die; tensors made before it are untouched (recording never modifies an op's inputs).
 * Not during backward, and not across opl_ctx_reset. */
typedef struct opl_tape_mark_t {
  opl_arena_mark_t arena;
  int64_t ntape;
} opl_tape_mark_t;
opl_tape_mark_t opl_tape_mark(const opl_ctx *c);
void opl_tape_rewind(opl_ctx *c, opl_tape_mark_t m);

/* Arena tensors: uninitialized (opl_new), zeroed (opl_zeros), filled (opl_full).
 * flags may contain OPL_T_COMPLEX. Shape errors set the sticky status and return NULL. */
opl_tensor *opl_new(opl_ctx *c, int rank, const int64_t *shape);
opl_tensor *opl_new_flags(opl_ctx *c, int rank, const int64_t *shape, int flags);
opl_tensor *opl_zeros(opl_ctx *c, int rank, const int64_t *shape);
opl_tensor *opl_full(opl_ctx *c, int rank, const int64_t *shape, double value);
/* An arena tensor with the same shape and complex flag as t, uninitialized / zeroed. */
opl_tensor *opl_new_like(opl_ctx *c, const opl_tensor *t);
opl_tensor *opl_zeros_like(opl_ctx *c, const opl_tensor *t);
/* A view of t with another shape of the same numel sharing data (no tape node: use
 * opl_reshape in ops.h when gradients must flow). t can no longer be released (opl_release). */
opl_tensor *opl_view(opl_ctx *c, opl_tensor *t, int rank, const int64_t *shape);
/* Mark an arena or heap tensor as a leaf that receives gradients. */
void opl_set_requires_grad(opl_tensor *t);

/* Declare that the caller will not read t's values again (as dropping the last reference to a
 * tensor in PyTorch). When t is an arena tensor made by opl_new* (not a view, not viewed by
 * another tensor) and no backward recorded so far reads its values (each op declares what its
 * backward reads: opl_record_saves), its memory is given back at once and reused by the next
 * tensor or gradient of exactly the same size, and t->data becomes NULL; its shape, gradient
 * and place on the tape stay, so backward passes through it as before. Otherwise (heap tensor,
 * parameter, view, values saved for backward, NULL) nothing happens. Passing t to an op
 * afterwards is an error naming it as released. A block reused after an opl_arena_mark /
 * opl_tape_mark is not given back by rewinding to that mark (only by opl_ctx_reset). */
void opl_release(opl_ctx *c, opl_tensor *t);
/* Make opl_release a no-op on c (on = 0) or not (on = 1, the default); returns the previous
 * setting. For measuring what releasing saves, and for tests comparing the two. */
int opl_ctx_set_release(opl_ctx *c, int on);

/* Check that t is not NULL, is not complex unless allowed, and has the given rank
 * (rank < 0: any). On failure records "op: what ..." and returns 0. For op constructors. */
int opl_check_input(opl_ctx *c, const char *op, const char *what, const opl_tensor *t,
                    int rank, int allow_complex);

/* ---------------------------------------------------------------- tape */

typedef struct opl_node opl_node;
/* Backward kernel of one op: reads nd->out->grad, accumulates into inputs' gradients
 * (obtained with opl_node_grad, which is NULL for inputs that need none). */
typedef void (*opl_backward_fn)(opl_node *nd);

struct opl_node {
  opl_backward_fn backward;
  const char *op;                    /* op name, for messages */
  opl_ctx *ctx;
  opl_tensor *out;
  opl_tensor *in[OPL_MAX_INPUTS];
  int nin;
  int64_t iarg[8];                   /* integer options of the op */
  double farg[4];                    /* real options of the op */
  void *saved;                       /* arena memory the op keeps for backward */
  void *aux;                         /* op-specific pointer (e.g. a cached FFT plan) */
  opl_tensor **more;                 /* [nmore] every input, for an op with more than
                                      * OPL_MAX_INPUTS (concat); NULL otherwise */
  int nmore;
};

/* Called by an op constructor after computing out: if recording is enabled and some input
 * requires a gradient, allocate a node in the arena, push it on the tape, mark out as
 * requiring grad and return the node (the caller fills iarg/farg/saved). Otherwise NULL.
 * The backward is taken to read the values of every input and of out: none of them can be
 * released (opl_release) while the tape lives. */
opl_node *opl_record(opl_ctx *c, const char *op, opl_backward_fn backward, opl_tensor *out,
                     int nin, opl_tensor *const *in);
/* The same for a backward that reads only the values named by saves: OPL_SAVES_IN(i) for input
 * i, OPL_SAVES_OUT for out (0: only gradients and shapes, as for add). The others can be
 * released by their owner once the op is recorded. Every op that declares this has its release
 * checked by the gradient-check table (tests/gradcheck.c releases the op's inputs and output
 * before backward). */
#define OPL_SAVES_IN(i) (1u << (i))
#define OPL_SAVES_OUT (1u << OPL_MAX_INPUTS)
#define OPL_SAVES_ALL (~0u)
opl_node *opl_record_saves(opl_ctx *c, const char *op, opl_backward_fn backward, opl_tensor *out,
                           int nin, opl_tensor *const *in, unsigned saves);

/* Memory of the tape by op kind (where a step's activations go): per kind, the nodes recorded,
 * the bytes of their outputs (views, which own no memory, excluded), the part some backward reads (kept until opl_ctx_reset) and the
 * part released for reuse (opl_release). Complex outputs count 2 reals per element. */
typedef struct opl_tape_mem {
  const char *op;
  int64_t nodes;
  size_t out_bytes, saved_bytes, released_bytes;
} opl_tape_mem;
/* Fill rows[0..cap) with one row per op kind on c's tape, in order of first appearance, and
 * return the number of kinds (which may exceed cap; rows beyond cap are not written). */
int opl_tape_memory(const opl_ctx *c, opl_tape_mem *rows, int cap);
/* Gradient buffer of input i of a node: allocated zeroed in the arena on first use for
 * arena tensors; NULL if that input does not require a gradient. */
opl_real *opl_node_grad(opl_node *nd, int i);
/* Gradient buffer of any tensor requiring grad (allocates zeroed in c's arena if needed). */
opl_real *opl_grad_of(opl_ctx *c, opl_tensor *t);

/* Reverse pass: loss must be a real scalar (numel 1) that requires grad; its gradient is
 * seeded with 1 (added to any existing). Walks the tape in reverse and accumulates into
 * every tensor that requires grad, parameters included. Returns a status (also sticky). */
int opl_backward(opl_ctx *c, opl_tensor *loss);
/* Same with an explicit seed gradient for a non-scalar output: seed [nreal(out)]. */
int opl_backward_seed(opl_ctx *c, opl_tensor *out, const opl_real *seed);

/* Called by the reverse pass after tape node k's backward has run (nodes no gradient flows
 * through are skipped), on the calling thread. Every gradient a parameter receives comes from
 * the backward of a node that takes it as an input, so once the walk has passed the earliest
 * such node (opl_ctx_tape) the parameter's gradient is final: data-parallel training
 * (core/dist.h) starts summing it across processes there while the walk goes on. */
typedef void (*opl_backward_hook)(void *user, int64_t k);
/* Install fn (NULL: none) for the following reverse passes on c. */
void opl_ctx_set_backward_hook(opl_ctx *c, opl_backward_hook fn, void *user);
/* The tape of c: *n nodes in recording order (valid until the next op or reset). */
opl_node *const *opl_ctx_tape(const opl_ctx *c, int64_t *n);

/* ---------------------------------------------------------------- parameters */

/* A set of parameters (data and grad on the heap, never in an arena), in the order added.
 * Names are unique and are the keys of checkpoints. */
typedef struct opl_params {
  opl_tensor **t;
  int n, cap;
} opl_params;

/* Initialize an empty set. */
void opl_params_init(opl_params *p);
/* Free every parameter and the set's table; p can be reused after opl_params_init. */
void opl_params_free(opl_params *p);
/* Add a zeroed parameter with a zeroed gradient. flags may contain OPL_T_COMPLEX.
 * Returns NULL and fills err on a duplicate name, bad shape or out of memory. */
opl_tensor *opl_params_add(opl_params *p, const char *name, int rank, const int64_t *shape,
                           int flags, opl_err *err);
/* Parameter by name, or NULL. */
opl_tensor *opl_params_find(const opl_params *p, const char *name);
/* Number of real scalars (a complex parameter counts 2 per element, as the FNO
 * reference implementation counts them). */
int64_t opl_params_count(const opl_params *p);
void opl_params_zero_grad(opl_params *p);
/* Global L2 norm of all gradients (double accumulation). */
double opl_params_grad_norm(const opl_params *p);
/* Scale all gradients so their global norm is at most max_norm (PyTorch
 * clip_grad_norm_ semantics); returns the norm before clipping. */
double opl_params_clip_grad_norm(opl_params *p, double max_norm);
/* OPL_OK if every gradient is finite; otherwise OPL_ERR_NONFINITE with the name of the
 * first parameter whose gradient has a NaN or Inf in err. */
int opl_params_check_finite_grad(const opl_params *p, opl_err *err);
/* Same for the parameter values. */
int opl_params_check_finite(const opl_params *p, opl_err *err);

/* ---------------------------------------------------------------- threads */

/* Number of threads used by opl's loops (OpenMP), FFTW and OpenBLAS (OpenMP build):
 * one pool. n <= 0 means the OpenMP default. */
void opl_set_num_threads(int n);
int opl_get_num_threads(void);

#endif

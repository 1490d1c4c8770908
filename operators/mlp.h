/* opl operators — multilayer perceptron on the last axis.
 *
 * x (..., widths[0]) -> linear -> act -> ... -> linear -> (..., widths[nlayers]); no activation
 * after the last layer. Weights follow PyTorch nn.Linear: w (Out, In), b (Out), initialized
 * with its defaults (Kaiming-uniform weights, U(+-1/sqrt(In)) biases). Built only from core ops. */
#ifndef OPL_MLP_H
#define OPL_MLP_H

#include "core/ops.h"
#include "core/rng.h"
#include "operators/model.h"

#define OPL_MLP_MAX_LAYERS 16

typedef struct opl_mlp {
  int nlayers;
  int64_t widths[OPL_MLP_MAX_LAYERS + 1];
  opl_unary_kind act;
  opl_tensor *w[OPL_MLP_MAX_LAYERS], *b[OPL_MLP_MAX_LAYERS]; /* owned by the params set */
} opl_mlp;

/* Add the layers' parameters to p, named "<prefix>.<i>.weight" / "<prefix>.<i>.bias" (PyTorch
 * state-dict style) and initialize them from rng. widths[0..nlayers], each >= 1; 1 <= nlayers
 * <= OPL_MLP_MAX_LAYERS. Returns OPL_OK or a status with a message in err. */
int opl_mlp_init(opl_mlp *m, opl_params *p, const char *prefix, int nlayers, const int64_t *widths,
                 opl_unary_kind act, opl_rng *rng, opl_err *err);

/* Forward pass: x (..., widths[0]) -> (..., widths[nlayers]); NULL on error (sticky in c). */
opl_tensor *opl_mlp_forward(opl_ctx *c, const opl_mlp *m, opl_tensor *x);

/* ------------------------------------------------------------------ the model interface */

/* The configuration of an MLP as a model: widths[0..nlayers], each >= 1, the activation. */
typedef struct opl_mlp_config {
  int nlayers;
  int64_t widths[OPL_MLP_MAX_LAYERS + 1];
  opl_unary_kind act;
} opl_mlp_config;

/* The MLP as an opl_model (operators/model.h): kind "mlp". create = opl_mlp_init with prefix
 * "mlp" (parameters "mlp.<i>.weight", "mlp.<i>.bias"); forward = opl_mlp_forward on the last
 * axis, so sdim = 0, in_channels = widths[0], out_channels = widths[nlayers]; attributes
 * "model" = "mlp", "mlp.version" (1), "mlp.layers", "mlp.width0".."mlp.width<nlayers>",
 * "mlp.activation" (opl_unary_name) and "mlp.param_count"; summary rows linear0..; set_io
 * accepts only sdim = 0 (the tasks' channels-first fields are OPL_ERR_UNSUPPORTED: a pointwise
 * MLP on fields needs a channels-last view). */
extern const opl_model_kind opl_mlp_kind;
extern const opl_model_ops opl_mlp_ops;

#endif

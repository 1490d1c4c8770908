/* A short fit shared by the operator tests: Adam on the mean squared error of a model's forward
 * against fixed targets. */
#ifndef OPL_TESTS_OPERATORS_FIT_H
#define OPL_TESTS_OPERATORS_FIT_H

#include "operators/model.h"

/* steps Adam steps (learning rate lr, the other settings PyTorch's defaults) on m's parameters,
 * each on the MSE of opl_model_forward(c, m, x) against y (c reset before each step). *first and
 * *last: the loss of the first and the last step taken (0 when none). Returns 1 when every step
 * ran and the last prediction has y's shape, else 0. */
int test_adam_fit(opl_ctx *c, opl_model *m, opl_tensor *x, opl_tensor *y, int steps, double lr, double *first,
                  double *last);

/* 1 when b is a model of a's kind (the same ops) with the same parameters: count, names and
 * values bit for bit (a checkpoint round trip), else 0. */
int test_same_params(const opl_model *a, const opl_model *b);

#endif

/* opl command line — plots of evaluated samples (opl eval --plot), drawn with cairo.
 *
 * Built with cairo when meson finds it (OPL_HAVE_CAIRO); otherwise every function returns
 * non-zero with a message saying that plotting is not built in. */
#ifndef OPL_CLI_PLOT_H
#define OPL_CLI_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include "core/opl.h"

/* One evaluated sample: the fields to draw (1-D: [nx]; 2-D: [nx, ny], x index slow). */
typedef struct cli_plot_sample {
  const char *label;        /* e.g. "sample 236, rel. L2 1.2e-02" */
  const opl_real *input;    /* the input shown (1-D: a; 2-D: the last input frame) */
  const opl_real *truth;    /* the target shown */
  const opl_real *pred;     /* the prediction shown */
} cli_plot_sample;

/* 1 if this build can plot. */
int cli_plot_available(void);

/* 1-D: for each sample a panel with input, truth and prediction as curves over x in [0, 1)
 * (with a legend) and below it the error prediction - truth; up to two panels per row.
 * title: the figure's title. Writes a PNG at path (under a temporary name, renamed into place when
 * complete: path never holds a partial PNG). Returns 0, or non-zero with a message in
 * err[errsz]. */
int cli_plot_1d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx,
                const char *input_name, char *err, size_t errsz);

/* 2-D: one row per sample with four colour maps — input, truth, prediction (truth and prediction
 * on one colour scale) and error (a diverging scale symmetric about 0) — each with a colour bar;
 * the panels are titled input_name, "truth <target_name>", "prediction <target_name>" and
 * "error (prediction - truth)", the first index of a field runs across (axis "x"), the second
 * up (axis "y"). Returns 0, or non-zero with a message. */
int cli_plot_2d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                const char *input_name, const char *target_name, char *err, size_t errsz);

/* The panel titles and axis names of cli_plot_2d_styled. */
typedef struct cli_plot_2d_style {
  const char *input_name;  /* title of the input column; NULL: no input column (three panels) */
  const char *truth_name;  /* title of the truth column */
  const char *pred_name;   /* title of the prediction column */
  const char *err_name;    /* title of the error column */
  const char *across, *up; /* names of the axes of the first (across) and second (up) index */
} cli_plot_2d_style;

/* cli_plot_2d with the titles and axis names of st: a row per sample of [input,] truth,
 * prediction and error colour maps; the figure is 150 + 300 c pixels wide for c columns and
 * 60 + 262 n high. Returns 0, or non-zero with a message. */
int cli_plot_2d_styled(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                       const cli_plot_2d_style *st, char *err, size_t errsz);

#endif

/* opl command line — plots of evaluated samples with cairo (see plot.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/plot.h"

#ifndef OPL_HAVE_CAIRO

int cli_plot_available(void) { return 0; }

static int unavailable(char *err, size_t errsz) {
  snprintf(err, errsz, "plotting is not built in: opl was built without cairo (install libcairo2-dev and "
                       "reconfigure the build)");
  return 1;
}
int cli_plot_1d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx,
                const char *input_name, char *err, size_t errsz) {
  (void)path, (void)title, (void)n, (void)s, (void)nx, (void)input_name;
  return unavailable(err, errsz);
}
int cli_plot_2d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                const char *input_name, const char *target_name, char *err, size_t errsz) {
  (void)path, (void)title, (void)n, (void)s, (void)nx, (void)ny, (void)input_name, (void)target_name;
  return unavailable(err, errsz);
}
int cli_plot_2d_styled(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                       const cli_plot_2d_style *st, char *err, size_t errsz) {
  (void)path, (void)title, (void)n, (void)s, (void)nx, (void)ny, (void)st;
  return unavailable(err, errsz);
}

#else

#include <cairo.h>
#include "core/files.h"
#include <dlfcn.h>

int cli_plot_available(void) { return 1; }

#define FONT "DejaVu Sans"

typedef struct rgb { double r, g, b; } rgb;

static const rgb C_TEXT = {0.1, 0.1, 0.1}, C_GRID = {0.88, 0.88, 0.88}, C_AXIS = {0.25, 0.25, 0.25};
static const rgb C_INPUT = {0.09, 0.52, 0.42}, C_TRUTH = {0.0, 0.0, 0.0}, C_PRED = {0.84, 0.15, 0.16},
                 C_ERR = {0.12, 0.39, 0.71};

static void set_rgb(cairo_t *cr, rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

/* Text anchored at (x, y): ha 0 left, 0.5 centre, 1 right; va 0 baseline-top... va is the
 * fraction of the text height above y (0: y is the top, 1: y is the baseline). */
static void text(cairo_t *cr, double x, double y, double size, int bold, double ha, double va, const char *s) {
  cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t te;
  cairo_text_extents(cr, s, &te);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, x - ha * te.x_advance, y + (1 - va) * fe.ascent);
  cairo_show_text(cr, s);
}

/* Rotated text (90 degrees counter-clockwise) centred at (x, y). */
static void text_vertical(cairo_t *cr, double x, double y, double size, const char *s) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, size, 0, 0.5, 0.5, s);
  cairo_restore(cr);
}

/* "Nice" tick step for a range of length span with about n ticks: 1, 2 or 5 times 10^k. */
static double nice_step(double span, int n) {
  if (!(span > 0)) return 1;
  double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *b, size_t n, double v, double step) {
  if (fabs(v) < step * 1e-6) {
    snprintf(b, n, "0");
    return;
  }
  double a = fabs(v);
  if (a != 0 && (a >= 1e4 || a < 1e-3)) snprintf(b, n, "%.1e", v);
  else {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(b, n, "%.*f", dec > 6 ? 6 : dec, v);
  }
}

/* Data range of up to three arrays (NULL skipped), widened when flat. */
static void range_of(const opl_real *const *a, int na, int64_t n, double *lo, double *hi) {
  double l = INFINITY, h = -INFINITY;
  for (int k = 0; k < na; k++)
    for (int64_t i = 0; a[k] && i < n; i++) {
      double v = (double)a[k][i];
      if (isfinite(v)) l = fmin(l, v), h = fmax(h, v);
    }
  if (!isfinite(l)) l = 0, h = 1;
  if (h - l < 1e-12 * fmax(1, fabs(h))) l -= 0.5, h += 0.5;
  *lo = l;
  *hi = h;
}

/* A plot area: pixel box and data box. */
typedef struct axes {
  double x0, y0, w, h;        /* pixels: top-left and size */
  double xl, xh, yl, yh;      /* data */
} axes;

static double ax_px(const axes *a, double x) { return a->x0 + (x - a->xl) / (a->xh - a->xl) * a->w; }
static double ax_py(const axes *a, double y) { return a->y0 + a->h - (y - a->yl) / (a->yh - a->yl) * a->h; }

/* Frame, grid, ticks and labels of an axes; yl/yh are padded to nice ticks first. */
static void draw_axes(cairo_t *cr, axes *a, const char *xlabel, const char *ylabel, int xticks) {
  double ys = nice_step(a->yh - a->yl, a->h < 100 ? 2 : a->h < 150 ? 3 : 4);
  a->yl = floor(a->yl / ys) * ys;
  a->yh = ceil(a->yh / ys) * ys;
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, a->x0, a->y0, a->w, a->h);
  cairo_fill(cr);
  cairo_set_line_width(cr, 1);
  char b[32];
  double tick_w = 0;
  cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);
  for (double y = a->yl; y <= a->yh + ys * 1e-6; y += ys) {
    cairo_text_extents_t te;
    fmt_tick(b, sizeof b, y, ys);
    cairo_text_extents(cr, b, &te);
    tick_w = fmax(tick_w, te.x_advance);
  }
  for (double y = a->yl; y <= a->yh + ys * 1e-6; y += ys) {
    double py = round(ax_py(a, y)) + 0.5;
    set_rgb(cr, C_GRID);
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
    cairo_stroke(cr);
    set_rgb(cr, C_TEXT);
    fmt_tick(b, sizeof b, y, ys);
    text(cr, a->x0 - 6, py, 11, 0, 1, 0.5, b);
  }
  double xs = nice_step(a->xh - a->xl, 5);
  for (double x = ceil(a->xl / xs) * xs; x <= a->xh + xs * 1e-6; x += xs) {
    double px = round(ax_px(a, x)) + 0.5;
    set_rgb(cr, C_GRID);
    cairo_move_to(cr, px, a->y0);
    cairo_line_to(cr, px, a->y0 + a->h);
    cairo_stroke(cr);
    if (xticks) {
      set_rgb(cr, C_TEXT);
      fmt_tick(b, sizeof b, x, xs);
      text(cr, px, a->y0 + a->h + 4, 11, 0, 0.5, 0, b);
    }
  }
  set_rgb(cr, C_AXIS);
  cairo_rectangle(cr, a->x0 + 0.5, a->y0 + 0.5, a->w - 1, a->h - 1);
  cairo_stroke(cr);
  set_rgb(cr, C_TEXT);
  if (xlabel) text(cr, a->x0 + a->w / 2, a->y0 + a->h + 20, 12, 0, 0.5, 0, xlabel);
  if (ylabel) text_vertical(cr, a->x0 - tick_w - 18, a->y0 + a->h / 2, 12, ylabel);
}

/* A curve y[0..n) at x_i = i / n, clipped to the axes. */
static void curve(cairo_t *cr, const axes *a, const opl_real *y, int64_t n, rgb c, double width, int dashed) {
  cairo_save(cr);
  cairo_rectangle(cr, a->x0, a->y0, a->w, a->h);
  cairo_clip(cr);
  set_rgb(cr, c);
  cairo_set_line_width(cr, width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  if (dashed) {
    double d[2] = {7, 4};
    cairo_set_dash(cr, d, 2, 0);
  }
  int started = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = (double)y[i];
    if (!isfinite(v)) {
      started = 0;
      continue;
    }
    double px = ax_px(a, (double)i / (double)n), py = ax_py(a, v);
    if (started) cairo_line_to(cr, px, py);
    else cairo_move_to(cr, px, py), started = 1;
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

/* cairo's PNG writer into an opl_atomic stream. */
static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int length) {
  return fwrite(data, 1, length, (FILE *)closure) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Encode the surface as PNG into "<path>.tmp.<pid>" and rename it onto path when complete
 * (core/files.h): path never holds a partial PNG, and on failure it is left as it was. */
static int finish_png(cairo_surface_t *sf, cairo_t *cr, const char *path, char *err, size_t errsz) {
  cairo_destroy(cr);
  opl_err e = {0};
  opl_atomic *a = opl_atomic_open(path, &e);
  cairo_status_t st = a ? cairo_surface_write_to_png_stream(sf, png_write, opl_atomic_stream(a)) : CAIRO_STATUS_SUCCESS;
  cairo_surface_destroy(sf);
  /* Release cairo's font caches (and with them fontconfig's patterns), so that leak checkers
   * see nothing left behind; a later plot rebuilds them. */
  cairo_debug_reset_static_data();
  /* fontconfig (loaded by cairo, not linked by opl) keeps its own caches: FcFini frees them. */
  void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
  if (fc_fini) fc_fini();
  if (!a) {
    snprintf(err, errsz, "%s", e.msg);
    return 1;
  }
  if (st != CAIRO_STATUS_SUCCESS) {
    snprintf(err, errsz, "cannot write '%s': %s", opl_atomic_tmp_path(a), cairo_status_to_string(st));
    opl_atomic_abort(&a);
    return 1;
  }
  if (opl_atomic_commit(&a, &e)) {
    snprintf(err, errsz, "%s", e.msg);
    return 1;
  }
  return 0;
}

static cairo_t *canvas(int W, int H, cairo_surface_t **sf, char *err, size_t errsz) {
  *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
  if (cairo_surface_status(*sf) != CAIRO_STATUS_SUCCESS) {
    snprintf(err, errsz, "cairo: %s", cairo_status_to_string(cairo_surface_status(*sf)));
    cairo_surface_destroy(*sf);
    return NULL;
  }
  cairo_t *cr = cairo_create(*sf);
  cairo_set_source_rgb(cr, 0.97, 0.97, 0.97);
  cairo_paint(cr);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_BEST);
  return cr;
}

int cli_plot_1d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx,
                const char *input_name, char *err, size_t errsz) {
  if (n < 1 || nx < 2) {
    snprintf(err, errsz, "nothing to plot (%d samples of %lld points)", n, (long long)nx);
    return 1;
  }
  int cols = n < 2 ? 1 : 2, rows = (n + cols - 1) / cols;
  const int CW = 620, CH = 470, TOP = 72;
  int W = cols * CW, H = TOP + rows * CH;
  cairo_surface_t *sf;
  cairo_t *cr = canvas(W, H, &sf, err, errsz);
  if (!cr) return 1;
  set_rgb(cr, C_TEXT);
  text(cr, W / 2.0, 12, 17, 1, 0.5, 0, title);
  /* One legend for the figure, under the title. */
  const char *names[4] = {input_name, "truth", "FNO prediction", "error (prediction - truth)"};
  rgb lc[4] = {C_INPUT, C_TRUTH, C_PRED, C_ERR};
  double lx = W / 2.0 - 330;
  for (int j = 0; j < 4; j++) {
    double yy = 48;
    set_rgb(cr, lc[j]);
    cairo_set_line_width(cr, 2.2);
    if (j == 2) {
      double d[2] = {7, 4};
      cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, lx, yy);
    cairo_line_to(cr, lx + 32, yy);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    set_rgb(cr, C_TEXT);
    text(cr, lx + 40, yy, 12.5, 0, 0, 0.5, names[j]);
    cairo_text_extents_t te;
    cairo_text_extents(cr, names[j], &te);
    lx += 40 + te.x_advance + 36;
  }
  opl_real *e = malloc(sizeof(opl_real) * (size_t)nx);
  if (!e) {
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    snprintf(err, errsz, "out of memory");
    return 1;
  }
  for (int k = 0; k < n; k++) {
    double cx = (k % cols) * CW, cy = TOP + (k / cols) * CH;
    set_rgb(cr, C_TEXT);
    text(cr, cx + CW / 2.0 + 24, cy + 2, 13, 1, 0.5, 0, s[k].label);
    /* The input. */
    const opl_real *fi[1] = {s[k].input};
    axes ai = {.x0 = cx + 88, .y0 = cy + 24, .w = CW - 112, .h = 84, .xl = 0, .xh = 1};
    range_of(fi, 1, nx, &ai.yl, &ai.yh);
    draw_axes(cr, &ai, NULL, input_name, 1);
    curve(cr, &ai, s[k].input, nx, C_INPUT, 1.6, 0);
    /* Truth and prediction on one scale, with a legend. */
    const opl_real *f[2] = {s[k].truth, s[k].pred};
    axes a = {.x0 = ai.x0, .y0 = ai.y0 + ai.h + 26, .w = ai.w, .h = 170, .xl = 0, .xh = 1};
    range_of(f, 2, nx, &a.yl, &a.yh);
    draw_axes(cr, &a, NULL, "solution u", 1);
    curve(cr, &a, s[k].truth, nx, C_TRUTH, 2.2, 0);
    curve(cr, &a, s[k].pred, nx, C_PRED, 2.0, 1);
    /* The error. */
    for (int64_t i = 0; i < nx; i++) e[i] = s[k].pred[i] - s[k].truth[i];
    const opl_real *fe[1] = {e};
    axes b = {.x0 = a.x0, .y0 = a.y0 + a.h + 26, .w = a.w, .h = 90, .xl = 0, .xh = 1};
    range_of(fe, 1, nx, &b.yl, &b.yh);
    double m = fmax(fabs(b.yl), fabs(b.yh));
    b.yl = -m, b.yh = m;
    draw_axes(cr, &b, "x", "error", 1);
    curve(cr, &b, e, nx, C_ERR, 1.5, 0);
    set_rgb(cr, C_TEXT);
  }
  free(e);
  return finish_png(sf, cr, path, err, errsz);
}

/* ---------------------------------------------------------------- 2-D colour maps */

/* Viridis, sampled at 9 points (van der Walt and Smith, matplotlib's default colour map). */
static rgb viridis(double t) {
  static const double c[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                 {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  t = fmin(1, fmax(0, t)) * 8;
  int i = (int)fmin(7, floor(t));
  double f = t - i;
  return (rgb){((1 - f) * c[i][0] + f * c[i + 1][0]) / 255, ((1 - f) * c[i][1] + f * c[i + 1][1]) / 255,
               ((1 - f) * c[i][2] + f * c[i + 1][2]) / 255};
}
/* Diverging blue - white - red for t in [0, 1] (0.5 = white). */
static rgb diverging(double t) {
  static const double c[5][3] = {{33, 102, 172}, {146, 197, 222}, {247, 247, 247}, {244, 165, 130}, {178, 24, 43}};
  t = fmin(1, fmax(0, t)) * 4;
  int i = (int)fmin(3, floor(t));
  double f = t - i;
  return (rgb){((1 - f) * c[i][0] + f * c[i + 1][0]) / 255, ((1 - f) * c[i][1] + f * c[i + 1][1]) / 255,
               ((1 - f) * c[i][2] + f * c[i + 1][2]) / 255};
}

/* One colour map of f [nx, ny] in the box (x0, y0, size, size) plus its colour bar. */
static void colour_map(cairo_t *cr, double x0, double y0, double size, const opl_real *f, int64_t nx, int64_t ny,
                       double lo, double hi, int div, const char *name, const char *across, const char *up) {
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)nx, (int)ny);
  unsigned char *px = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  cairo_surface_flush(img);
  for (int64_t i = 0; i < nx; i++)
    for (int64_t j = 0; j < ny; j++) {
      double v = (double)f[i * ny + j], t = (v - lo) / (hi - lo);
      rgb c = isfinite(v) ? (div ? diverging(t) : viridis(t)) : (rgb){1, 0, 1};
      /* x to the right, y up */
      uint32_t *p = (uint32_t *)(px + (ny - 1 - j) * stride) + i;
      *p = ((uint32_t)(c.r * 255 + 0.5) << 16) | ((uint32_t)(c.g * 255 + 0.5) << 8) | (uint32_t)(c.b * 255 + 0.5);
    }
  cairo_surface_mark_dirty(img);
  cairo_save(cr);
  cairo_translate(cr, x0, y0);
  cairo_scale(cr, size / (double)nx, size / (double)ny);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), nx >= 128 ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, (double)nx, (double)ny);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
  set_rgb(cr, C_AXIS);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, size + 1, size + 1);
  cairo_stroke(cr);
  set_rgb(cr, C_TEXT);
  text(cr, x0 + size / 2, y0 - 20, 13, 1, 0.5, 0, name);
  text(cr, x0 + size / 2, y0 + size + 3, 10, 0, 0.5, 0, across);
  text(cr, x0 - 10, y0 + size / 2, 10, 0, 0.5, 0.5, up);
  /* Colour bar. */
  double bx = x0 + size + 10, bw = 14;
  for (int k = 0; k < (int)size; k++) {
    double t = 1 - (k + 0.5) / size;
    set_rgb(cr, div ? diverging(t) : viridis(t));
    cairo_rectangle(cr, bx, y0 + k, bw, 1.2);
    cairo_fill(cr);
  }
  set_rgb(cr, C_AXIS);
  cairo_rectangle(cr, bx - 0.5, y0 - 0.5, bw + 1, size + 1);
  cairo_stroke(cr);
  double st = nice_step(hi - lo, 4);
  char b[32];
  for (double v = ceil(lo / st) * st; v <= hi + st * 1e-6; v += st) {
    double py = y0 + (hi - v) / (hi - lo) * size;
    set_rgb(cr, C_AXIS);
    cairo_move_to(cr, bx + bw, round(py) + 0.5);
    cairo_line_to(cr, bx + bw + 4, round(py) + 0.5);
    cairo_stroke(cr);
    set_rgb(cr, C_TEXT);
    fmt_tick(b, sizeof b, v, st);
    text(cr, bx + bw + 6, py, 10, 0, 0, 0.5, b);
  }
}

int cli_plot_2d(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                const char *input_name, const char *target_name, char *err, size_t errsz) {
  char tname[96], pname[96];
  snprintf(tname, sizeof tname, "truth %s", target_name);
  snprintf(pname, sizeof pname, "prediction %s", target_name);
  cli_plot_2d_style st = {.input_name = input_name, .truth_name = tname, .pred_name = pname,
                          .err_name = "error (prediction - truth)", .across = "x", .up = "y"};
  return cli_plot_2d_styled(path, title, n, s, nx, ny, &st, err, errsz);
}

int cli_plot_2d_styled(const char *path, const char *title, int n, const cli_plot_sample *s, int64_t nx, int64_t ny,
                       const cli_plot_2d_style *st, char *err, size_t errsz) {
  if (n < 1 || nx < 1 || ny < 1 || nx > 32767 || ny > 32767) {
    snprintf(err, errsz, "nothing to plot (%d samples of %lld x %lld points)", n, (long long)nx, (long long)ny);
    return 1;
  }
  const double SZ = 200, PW = 300, LEFT = 150, TOP = 60, RH = 262;
  int with_input = st->input_name != NULL, ncol = with_input ? 4 : 3;
  int W = (int)(LEFT + ncol * PW), H = (int)(TOP + n * RH);
  cairo_surface_t *sf;
  cairo_t *cr = canvas(W, H, &sf, err, errsz);
  if (!cr) return 1;
  set_rgb(cr, C_TEXT);
  text(cr, W / 2.0, 14, 17, 1, 0.5, 0, title);
  int64_t P = nx * ny;
  opl_real *e = malloc(sizeof(opl_real) * (size_t)P);
  if (!e) {
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    snprintf(err, errsz, "out of memory");
    return 1;
  }
  for (int k = 0; k < n; k++) {
    double y0 = TOP + k * RH + 26;
    /* row label: split "sample N, rel. L2 X" at the comma onto two lines */
    char l1[128], l2[128] = "";
    snprintf(l1, sizeof l1, "%s", s[k].label);
    char *comma = strchr(l1, ',');
    if (comma) {
      snprintf(l2, sizeof l2, "%s", comma + 2 <= l1 + strlen(l1) ? comma + 2 : "");
      *comma = 0;
    }
    set_rgb(cr, C_TEXT);
    text(cr, 14, y0 + SZ / 2 - 10, 13, 1, 0, 0.5, l1);
    text(cr, 14, y0 + SZ / 2 + 10, 12, 0, 0, 0.5, l2);
    double lo = 0, hi = 1, tl, th, el, eh;
    const opl_real *in1[1] = {s[k].input}, *tp[2] = {s[k].truth, s[k].pred};
    if (with_input) range_of(in1, 1, P, &lo, &hi);
    range_of(tp, 2, P, &tl, &th);
    for (int64_t i = 0; i < P; i++) e[i] = s[k].pred[i] - s[k].truth[i];
    const opl_real *ee[1] = {e};
    range_of(ee, 1, P, &el, &eh);
    double m = fmax(fabs(el), fabs(eh));
    double x0 = LEFT;
    if (with_input) {
      colour_map(cr, x0, y0, SZ, s[k].input, nx, ny, lo, hi, 0, st->input_name, st->across, st->up);
      x0 += PW;
    }
    colour_map(cr, x0, y0, SZ, s[k].truth, nx, ny, tl, th, 0, st->truth_name, st->across, st->up);
    colour_map(cr, x0 + PW, y0, SZ, s[k].pred, nx, ny, tl, th, 0, st->pred_name, st->across, st->up);
    colour_map(cr, x0 + 2 * PW, y0, SZ, e, nx, ny, -m, m, 1, st->err_name, st->across, st->up);
  }
  free(e);
  return finish_png(sf, cr, path, err, errsz);
}

#endif

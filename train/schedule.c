/* opl train — learning-rate schedules (see schedule.h). */
#include <math.h>
#include <string.h>
#include "train/schedule.h"

const char *opl_schedule_name(int k) {
  static const char *const names[] = {"step", "onecycle", "cosine", "warmup-cosine"};
  return k >= 0 && k <= OPL_SCHEDULE_WARMUP_COSINE ? names[k] : "unknown";
}

int opl_schedule_parse(const char *s) {
  for (int k = 0; k <= OPL_SCHEDULE_WARMUP_COSINE; k++)
    if (s && !strcmp(s, opl_schedule_name(k))) return k;
  return -1;
}

static double cos_anneal(double a, double b, double p) { return b + (a - b) * (cos(M_PI * p) + 1) / 2; }

double opl_onecycle_lr(double max_lr, int64_t total, double pct_start, double div_factor, double final_div_factor,
                       int64_t s) {
  double initial = max_lr / div_factor, lo = initial / final_div_factor;
  double e1 = pct_start * (double)total - 1, e2 = (double)total - 1;
  double t = (double)s;
  if (t <= e1) return cos_anneal(initial, max_lr, t / e1);
  if (t >= e2) return lo;
  return cos_anneal(max_lr, lo, (t - e1) / (e2 - e1));
}

double opl_cosine_warmup_lr(double base_lr, int64_t warmup, int64_t total, int64_t s) {
  if (s < warmup) return base_lr * (double)s / (double)warmup;
  double den = (double)(total - warmup > 1 ? total - warmup : 1), p = (double)(s - warmup) / den;
  return base_lr * (1 + cos(M_PI * (p < 1 ? p : 1))) / 2;
}

double opl_warmup_cosine_lr(double base_lr, int64_t warmup, int64_t total, double start_lr, double eta_min, int64_t s) {
  if (s < warmup) return start_lr + (double)s * (base_lr - start_lr) / (double)(warmup > 1 ? warmup - 1 : 1);
  double den = (double)(total - warmup > 1 ? total - warmup : 1), p = (double)(s - warmup) / den;
  return p >= 1 ? eta_min : cos_anneal(base_lr, eta_min, p);
}

/* opl train — learning-rate schedules as pure functions of the step count, so that a resumed run
 * recomputes the rate from the counter alone.
 *
 * OneCycleLR (Smith & Topin, "Super-Convergence", 2019), as torch.optim.lr_scheduler.OneCycleLR
 * defines it with anneal_strategy 'cos', three_phase False: with total steps T, initial rate
 * max_lr / div_factor (25), minimum initial / final_div_factor (1e4), e1 = pct_start T - 1 and
 * e2 = T - 1, the rate at step s (the scheduler's last_epoch, 0 right after construction) is
 *   s <= e1:  cos_anneal(initial, max_lr, s / e1)
 *   else:     cos_anneal(max_lr, min, (s - e1) / (e2 - e1)),
 *   cos_anneal(a, b, p) = b + (a - b) (cos(pi p) + 1) / 2.
 * Steps past e2 keep the minimum (PyTorch raises instead).
 *
 * Cosine with linear warmup (get_cosine_schedule_with_warmup of Hugging Face transformers,
 * num_cycles 0.5): warmup W, total T, base rate b:
 *   s < W:   b s / W
 *   else:    b (1 + cos(pi min(1, (s - W) / max(1, T - W)))) / 2.
 *
 * Linear warmup from a start rate, then cosine to a floor (LinearWarmupCosineAnnealingLR of
 * PyTorch Lightning Bolts, pl_bolts.optimizers.lr_scheduler, as the SineNet authors use it:
 * Zhang et al., "SineNet", ICLR 2024, divelab/AIRS OpenPDE/SineNet, configs/navierstokes2d.yaml,
 * warmup 5 and 50 epochs from 1e-7 to the floor 1e-7, stepped once per epoch): warmup W, total
 * T, base rate b, start rate s0, floor m:
 *   s < W:   s0 + s (b - s0) / max(1, W - 1)     (W >= 2: step W - 1 is at b, and so is step W)
 *   else:    m + (b - m) (1 + cos(pi (s - W) / max(1, T - W))) / 2,
 * which is the scheduler's closed form (_get_closed_form_lr); its chainable per-step update gives
 * the same rates up to rounding. Steps past T keep m (the scheduler's cosine would rise again).
 *
 * StepLR is core's (core/optim.h); these sit beside it in the trainer. */
#ifndef OPL_TRAIN_SCHEDULE_H
#define OPL_TRAIN_SCHEDULE_H

#include <stdint.h>

typedef enum {
  OPL_SCHEDULE_STEP = 0,
  OPL_SCHEDULE_ONECYCLE = 1,
  OPL_SCHEDULE_COSINE = 2,
  OPL_SCHEDULE_WARMUP_COSINE = 3
} opl_schedule_kind;

/* "step", "onecycle", "cosine", "warmup-cosine"; parse returns -1 for another name. */
const char *opl_schedule_name(int k);
int opl_schedule_parse(const char *s);

/* OneCycleLR's rate at step s of T (T >= 1, 0 < pct_start < 1). */
double opl_onecycle_lr(double max_lr, int64_t total, double pct_start, double div_factor, double final_div_factor,
                       int64_t s);
/* Cosine-with-warmup's rate at step s (warmup >= 0, total >= 1). */
double opl_cosine_warmup_lr(double base_lr, int64_t warmup, int64_t total, int64_t s);
/* LinearWarmupCosineAnnealingLR's rate at step s >= 0 (warmup >= 0, total >= 1; base_lr, start_lr
 * and eta_min finite >= 0): from start_lr up to base_lr over the warmup, then down to eta_min at
 * step total, eta_min after it. */
double opl_warmup_cosine_lr(double base_lr, int64_t warmup, int64_t total, double start_lr, double eta_min, int64_t s);

#endif

/* Learning-rate schedules (train/schedule.h) against their formulas: OneCycleLR's two cosine
 * phases as PyTorch defines them (values of torch 1.13's OneCycleLR for max_lr 1e-3, 10 steps,
 * pct_start 0.3, printed by Debian's python3-torch), cosine with warmup. */
#include <math.h>
#include "tests/tap.h"
#include "train/schedule.h"

int main(void) {
  tap_begin();
  /* T = 10, pct 0.3: e1 = 2, e2 = 9; initial 4e-5, min 4e-9 */
  double init = 1e-3 / 25, lo = init / 1e4;
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 0), init, 1e-14, 0, "onecycle step 0: max_lr / div_factor");
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 1), 1e-3 + (init - 1e-3) * (cos(M_PI * 0.5) + 1) / 2, 1e-14, 0,
           "onecycle step 1: halfway up the first cosine");
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 2), 1e-3, 1e-14, 0, "onecycle step 2 = pct_start T - 1: max_lr");
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 5), lo + (1e-3 - lo) * (cos(M_PI * 3.0 / 7.0) + 1) / 2, 1e-14, 0,
           "onecycle step 5: second phase at (5 - 2) / (9 - 2)");
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 9), lo, 1e-14, 0, "onecycle last step: max_lr / 25 / 1e4");
  is_close(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, 12), lo, 1e-14, 0, "onecycle past the end: the minimum");
  /* torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=10) (pct_start 0.3), the
   * rates at steps 0..9 as printed by torch 1.13 */
  static const double torch_ref[10] = {3.9999999999999996e-05, 0.0005200000000000001, 0.001, 0.0009504846320134736,
                                       0.000811745653949763, 0.0006112620219362892, 0.00038874197806371076,
                                       0.00018825834605023698, 4.9519367986526286e-05, 4e-09};
  int same = 1;
  for (int s = 0; s < 10; s++) same &= fabs(opl_onecycle_lr(1e-3, 10, 0.3, 25, 1e4, s) - torch_ref[s]) <= 1e-15;
  ok(same, "onecycle steps 0..9 equal torch's to 1e-15");

  is_close(opl_cosine_warmup_lr(1e-3, 4, 20, 0), 0, 0, 0, "cosine warmup step 0: 0");
  is_close(opl_cosine_warmup_lr(1e-3, 4, 20, 2), 5e-4, 1e-14, 0, "cosine warmup step 2 of 4: half");
  is_close(opl_cosine_warmup_lr(1e-3, 4, 20, 4), 1e-3, 1e-14, 0, "cosine step 4: the base rate");
  is_close(opl_cosine_warmup_lr(1e-3, 4, 20, 12), 5e-4, 1e-12, 0, "cosine halfway through the decay: half");
  is_close(opl_cosine_warmup_lr(1e-3, 4, 20, 20), 0, 0, 1e-18, "cosine at the end: 0");
  is_close(opl_cosine_warmup_lr(1e-3, 0, 10, 0), 1e-3, 1e-14, 0, "no warmup: starts at the base rate");
  ok(opl_schedule_parse("onecycle") == OPL_SCHEDULE_ONECYCLE && opl_schedule_parse("cosine") == OPL_SCHEDULE_COSINE &&
         opl_schedule_parse("step") == OPL_SCHEDULE_STEP && opl_schedule_parse("linear") == -1,
     "schedule names");
  return tap_end();
}

/* Learning-rate schedules (train/schedule.h) against their formulas: OneCycleLR's two cosine
 * phases as PyTorch defines them (values of torch 1.13's OneCycleLR for max_lr 1e-3, 10 steps,
 * pct_start 0.3, printed by Debian's python3-torch), cosine with warmup, and the warmup-cosine
 * schedule against the rates printed by the SineNet authors' LinearWarmupCosineAnnealingLR. */
#include <math.h>
#include <string.h>
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
         opl_schedule_parse("step") == OPL_SCHEDULE_STEP && opl_schedule_parse("linear") == -1 &&
         opl_schedule_parse("warmup-cosine") == OPL_SCHEDULE_WARMUP_COSINE && opl_schedule_parse(NULL) == -1 &&
         !strcmp(opl_schedule_name(OPL_SCHEDULE_WARMUP_COSINE), "warmup-cosine") && !strcmp(opl_schedule_name(4), "unknown"),
     "schedule names");

  /* Printed by the authors' scheduler: LinearWarmupCosineAnnealingLR of the SineNet code
   * (divelab/AIRS, OpenPDE/SineNet/pdearena/pdearena/lr_scheduler.py, imported unchanged) under
   * Debian's python3-torch 1.13: an SGD optimizer at lr b, the scheduler built with
   * (warmup_epochs W, max_epochs E, warmup_start_lr s0, eta_min m), the optimizer's
   * param_groups[0]['lr'] printed (repr) before each optimizer.step(); scheduler.step(), for
   * e = 0 .. E. The scheduler updates the rate step by step (its chainable form), so it agrees
   * with the closed form to rounding: 1e-13 relative. The first row is the authors'
   * navierstokes2d.yaml (2e-4, 5 warmup of 50 epochs, 1e-7 to 1e-7). */
  static const struct { int64_t W, E; double b, s0, m; int n; double lr[51]; } authors[] = {
      {5, 50, 0.0002, 1e-07, 1e-07, 51,
       {1e-07, 5.0075000000000004e-05, 0.00010005, 0.000150025, 0.0002, 0.0002, 0.00019975652682346944,
        0.00019902729347071995, 0.0001978158526933439, 0.000196128106509035, 0.00019397227744755158,
        0.00019135886849137797, 0.00018830061190624976, 0.00018481240721083476, 0.000180911248587776,
        0.00017661614208974185, 0.00017194801304384817, 0.00016692960410556788, 0.00016158536445879954,
        0.00015594133070190116, 0.00015002500000000003, 0.00014386519612156833, 0.00013749192901192045,
        0.00013093624858777605, 0.00012423009346518684, 0.00011740613535780974, 0.00011049761990360201,
        0.00010353820469541503, 9.65617953045851e-05, 8.96023800963981e-05, 8.269386464219035e-05,
        7.586990653481323e-05, 6.916375141222404e-05, 6.260807098807961e-05, 5.623480387843172e-05,
        5.007500000000004e-05, 4.415866929809888e-05, 3.851463554120047e-05, 3.317039589443213e-05,
        2.815198695615182e-05, 2.3483857910258166e-05, 1.9188751412224018e-05, 1.528759278916523e-05,
        1.1799388093750272e-05, 8.741131508622056e-06, 6.127722552448464e-06, 3.971893490965049e-06,
        2.2841473066561216e-06, 1.0727065292800534e-06, 3.4347317653057146e-07, 1e-07}},
      {1, 3, 0.001, 1e-07, 1e-07, 4, {1e-07, 0.001, 0.0005000499999999999, 1e-07}},
      {3, 10, 0.001, 1e-05, 0.0, 11,
       {1e-05, 0.000505, 0.001, 0.001, 0.0009504844339512095, 0.0008117449009293668, 0.0006112604669781572,
        0.00038873953302184284, 0.00018825509907063325, 4.951556604879048e-05, 0.0}},
      {0, 6, 0.01, 0.0, 0.0001, 7,
       {0.01, 0.009336825748732971, 0.0075250000000000004, 0.00505, 0.002575000000000001, 0.0007631742512670285,
        0.0001}},
      /* the step count as the unit (--schedule-unit step): 3 epochs of 4 batches = 12 steps,
       * 6 of them warmup (tests/train/test_trainer.c trains this one) */
      {6, 12, 0.001, 1e-07, 1e-07, 13,
       {1e-07, 0.00020008, 0.00040006, 0.00060004, 0.00080002, 0.001, 0.001, 0.0009330194006220301, 0.000750025,
        0.0005000499999999999, 0.0002500750000000001, 6.708059937796987e-05, 1e-07}},
  };
  for (size_t c = 0; c < sizeof authors / sizeof authors[0]; c++) {
    double worst = 0;
    int at = 0;
    for (int s = 0; s < authors[c].n; s++) {
      double want = authors[c].lr[s],
             got = opl_warmup_cosine_lr(authors[c].b, authors[c].W, authors[c].E, authors[c].s0, authors[c].m, s),
             d = fabs(got - want) / (want > 0 ? want : 1);
      if (!(d <= worst)) worst = d, at = s;
    }
    ok(worst <= 1e-13, "warmup-cosine W %lld, E %lld, b %g, from %g to %g: steps 0..%d equal the authors' scheduler "
       "(worst relative difference %.2g at step %d)", (long long)authors[c].W, (long long)authors[c].E, authors[c].b,
       authors[c].s0, authors[c].m, authors[c].n - 1, worst, at);
  }
  /* the formula's landmarks, exactly */
  ok(opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 1e-7, 0) == 1e-7, "warmup-cosine step 0: the start rate");
  ok(opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 1e-7, 4) == 2e-4 && opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 1e-7, 5) == 2e-4,
     "warmup-cosine steps W - 1 and W: the base rate");
  is_close(opl_warmup_cosine_lr(2e-4, 5, 45, 1e-7, 1e-7, 25), (2e-4 + 1e-7) / 2, 1e-15, 0,
           "warmup-cosine halfway through the decay: the mean of base and floor");
  ok(opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 3e-6, 50) == 3e-6 && opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 3e-6, 51) == 3e-6 &&
         opl_warmup_cosine_lr(2e-4, 5, 50, 1e-7, 3e-6, 1000) == 3e-6,
     "warmup-cosine at and past the end: eta_min (the authors' cosine would rise again)");
  ok(opl_warmup_cosine_lr(1e-3, 1, 3, 0, 0, 0) == 0 && opl_warmup_cosine_lr(1e-3, 1, 3, 0, 0, 1) == 1e-3,
     "warmup-cosine W = 1: the start rate, then the base rate");
  ok(opl_warmup_cosine_lr(1e-3, 4, 4, 1e-7, 2e-7, 4) == 1e-3 && opl_warmup_cosine_lr(1e-3, 4, 4, 1e-7, 2e-7, 5) == 2e-7,
     "warmup-cosine W = E: the base rate at step W, then eta_min (no division by zero)");
  is_close(opl_warmup_cosine_lr(1e-3, 8, 4, 1e-7, 2e-7, 3), 1e-7 + 3 * (1e-3 - 1e-7) / 7, 1e-15, 0,
           "warmup-cosine W > E: still rising at step 3 (the warmup outlasts the span)");
  return tap_end();
}

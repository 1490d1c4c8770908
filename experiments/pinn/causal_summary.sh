#!/bin/sh
# causal_summary.sh -- the causal-weighting trajectory of an `opl train pinn --causal` run, read
# from its metrics CSV (columns iteration,optimizer,loss,residual,ic,bc,min_w,eps,lr,seconds,window):
# min w, eps, the sum of the unweighted chunk losses before the last chunk (-ln(min w) / eps) and
# the loss every STEP iterations and at the end; then, for each eps of the schedule, the
# iteration it came into use and the first iteration at which min w exceeded delta (0.99).
#
# usage: experiments/pinn/causal_summary.sh RUN.csv [STEP]   (STEP default 1000)
set -eu
csv=$1
step=${2:-1000}
[ -f "$csv" ] || { echo "causal_summary.sh: no file '$csv'" >&2; exit 1; }
awk -F, -v step="$step" '
# the unweighted chunk losses before the last chunk: min w = exp(-eps sum_{k<M} L_k)
function cum(w, e) { return w > 0 ? sprintf("%.3g", -log(w) / e) : "> " sprintf("%.3g", 745 / e) }
NR == 1 { next }
$7 == "" { plain = 1; next }
NF < 10 || $10 == "" { next }   # a row still being written
{
    it = $1; w = $7 + 0; e = $8   # + 0: numeric (mawk compares subnormals such as 2e-319 as strings)
    if (!(e in first)) { first[e] = it; order[++n] = e }
    if (w > 0.99 && !(e in reached)) reached[e] = it
    if (it % step == 0)
        printf "  iteration %6d  min w %.2e  eps %-6g  sum_{k<M} L_k %s  loss %.3e  (%s s)\n", it, w, e, cum(w, e), $3, $10
    last = $0
}
END {
    if (plain && !n) { print "  (no causal weighting in this run)"; exit }
    split(last, f, ",")
    printf "  last %6d       min w %.2e  eps %-6g  sum_{k<M} L_k %s  loss %.3e  (%s s)\n", f[1], f[7], f[8],
           cum(f[7] + 0, f[8]), f[3], f[10]
    for (i = 1; i <= n; i++)
        printf "  eps %-6g from iteration %6d; min w > 0.99 first at %s\n", order[i], first[order[i]],
               (order[i] in reached) ? reached[order[i]] : "never"
}' "$csv"

#!/bin/sh
# The spiral experiment's program (experiments/node/spiral.c) runs end to end (TAP on stdout):
# a short training run of each variant and adjoint prints one table row with finite numbers;
# peer-export writes a complete peer file; peer reads it back and times steps (JSON line with the
# first step's forward NFE = 2 + 6 x steps, no backward evaluations for the discrete adjoint, a
# decreasing loss); bad options exit 2; a damaged peer file exits 1 naming the field.
# usage: sh tests/experiments/test_node_spiral.sh path/to/node_spiral
set -u
bin=${1:?usage: test_node_spiral.sh path/to/node_spiral}
case "$bin" in /*) ;; *) bin=$(pwd)/$bin ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_node_spiral.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
run() { "$@" > out.txt 2> err.txt; rc=$?; }

for v in "vanilla discrete" "global discrete" "local discrete" "local-biased checkpoint" "local backsolve" "vanilla interp"; do
    set -- $v
    run "$bin" train --variant "$1" --adjoint "$2" --iters 30 --lambda 10
    # | variant | adjoint | lambda | time | loss | nfe / nfe | test loss | test nfe | ms | traj loss | traj nfe |
    good=$(awk -F'|' -v v="$1" -v a="$2" 'NF == 13 && $2 == " " v " " && $3 == " " a " " && $6 + 0 > 0 && $6 + 0 < 1 &&
             $8 + 0 > 0 && $9 + 0 >= 20 && $11 + 0 > 0 && $11 !~ /nan/ && $12 + 0 >= 20 { print "yes" }' out.txt)
    ok $([ $rc -eq 0 ] && [ "$good" = yes ] && echo 0 || echo 1) "train --variant $1 --adjoint $2: one row, finite losses and NFE ($(cat out.txt err.txt | tr '\n' ' '))"
done
run "$bin" train --variant nope
ok $([ $rc -eq 2 ] && grep -q "variant nope" err.txt && echo 0 || echo 1) "unknown variant: exit 2 naming it"
run "$bin" train --adjoint sideways
ok $([ $rc -eq 2 ] && grep -q "adjoint sideways" err.txt && echo 0 || echo 1) "unknown adjoint: exit 2 naming it"
run "$bin" train --rtol 0
ok $([ $rc -eq 2 ] && echo 0 || echo 1) "--rtol 0: exit 2"

run "$bin" peer-export --out peer.txt
ok $([ $rc -eq 0 ] && [ "$(awk '{print $1}' peer.txt | tr '\n' ' ')" = "opl-node-spiral-peer rtol atol batch t y0 y net.0.weight net.0.bias net.2.weight net.2.bias " ] &&
     ! [ -e peer.txt.tmp ] && echo 0 || echo 1) "peer-export writes every field and no temporary file"
run "$bin" peer --in peer.txt --steps 3 --warmup 1 --threads 1
nfe=$(sed 's/.*"nfe_first": \([0-9]*\).*"accepted_first": \([0-9]*\).*/\1 \2/' out.txt)
set -- $nfe
good=$(awk -F'"loss_first": |, "loss_last": |}' '{ if ($2 + 0 > $3 + 0 && $3 + 0 > 0) print "yes" }' out.txt)
ok $([ $rc -eq 0 ] && [ "${1:-0}" -eq $((2 + 6 * ${2:-0})) ] && grep -q '"nfe_backward_per_step": 0.00' out.txt &&
     [ "$good" = yes ] && echo 0 || echo 1) "peer: JSON with NFE = 2 + 6 x accepted steps and a decreasing loss ($(cat out.txt err.txt))"
# Dense output: the first step's solve takes the steps of a solve to the window's end alone
# (nfe_span), fewer than stepping onto the 10 output times.
steps_nfe=${1:-0}
run "$bin" peer --in peer.txt --steps 2 --warmup 0 --threads 1 --saveat dense
dn=$(sed 's/.*"nfe_first": \([0-9]*\).*"nfe_span": \([0-9]*\).*/\1 \2/' out.txt)
set -- $dn
ok $([ $rc -eq 0 ] && grep -q '"saveat": "dense"' out.txt && [ "${1:-0}" -eq "${2:-1}" ] && [ "${1:-0}" -lt "$steps_nfe" ] &&
     echo 0 || echo 1) "peer --saveat dense: first-step NFE ${1:-?} = a solve to the window's end alone (${2:-?}) < stepping onto the outputs ($steps_nfe)"
run "$bin" peer --in peer.txt --steps 1 --saveat sometimes
ok $([ $rc -eq 2 ] && grep -q "saveat sometimes" err.txt && echo 0 || echo 1) "unknown --saveat: exit 2 naming it"
sed 's/^net.2.bias 2 .*/net.2.bias 2 0.5/' peer.txt > bad.txt
run "$bin" peer --in bad.txt --steps 1
ok $([ $rc -eq 1 ] && grep -q "net.2.bias" err.txt && echo 0 || echo 1) "a short vector in the peer file: exit 1 naming it ($(cat err.txt))"
run "$bin" peer --in missing.txt
ok $([ $rc -eq 1 ] && grep -q "missing.txt" err.txt && echo 0 || echo 1) "a missing peer file: exit 1 naming it"
echo "1..$n"

#!/bin/sh
# `opl summary`: the layer table and parameter count of a model kind with its architecture flags
# (the reference configurations' counts) and bad input (TAP on stdout). The summary of a
# trained MODEL.h5 is tested in test_cli_train.sh, beside the file it trains.
# usage: sh tests/cli/test_cli_summary.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_summary.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_summary.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
last() { tail -n 1 "$1"; }
# the sum of the last column of the layer rows (lines between the header and the totals)
rowsum() { awk '/^  layer /{on=1; next} /^(reference|note|parameters)/{on=0} on {s += $NF} END {print s}' "$1"; }

run "$opl" summary --help
[ $rc -eq 0 ] && has "--preset" out.txt && has "--modes" out.txt; ok $? "summary --help lists --preset and --modes"
run "$opl" --help
has "summary" out.txt; ok $? "opl --help lists summary"

run "$opl" summary fno
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 549569" ] && [ "$(rowsum out.txt)" = 549569 ]
ok $? "fno (FNO-1d, modes 16, width 64): last line 'parameters: 549569', rows add up"
has "fc0" out.txt && has "fourier3" out.txt && has "(N, 64, X)" out.txt; ok $? "fno: layer names and symbolic shapes"
run "$opl" summary fno --dim 1 --modes 16 --width 64
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 549569" ]; ok $? "fno --dim 1 --modes 16 --width 64: 549569"

run "$opl" summary fno --preset fno2d_time
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 926357" ] && has "count_params: 926517" out.txt &&
    [ "$(rowsum out.txt)" = 926357 ]
ok $? "fno2d_time (modes 12, width 20, 10 frames): 926357 here, fourier_2d_time.py's count_params 926517"
run "$opl" summary fno --dim 2 --modes 12 --width 20 --T-in 10
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 926357" ] && has "926517" out.txt
ok $? "fno --dim 2 --modes 12 --width 20 --T-in 10: the same"
run "$opl" summary fno --preset fno3d
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 6558377" ] && has "count_params: 6558537" out.txt
ok $? "fno3d (modes 8, width 20, 10 frames, pad 6 in time): 6558377 here, fourier_3d.py's 6558537"
run "$opl" summary fno --preset fno2d
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 2368001" ] && has "(N, 32, X+9, Y+9)" out.txt && has "crop" out.txt
ok $? "fno2d (Darcy, width 32, pad 9): 2368001, padded shapes"
run "$opl" summary fno --modes 8 --width 16 --layers 2 --proj 32
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: $(rowsum out.txt)" ] && has "fourier1" out.txt && ! has "fourier2" out.txt
ok $? "flags change the table: 2 layers, rows add up to the total ($(last out.txt))"

run "$opl" summary fno --preset fno5d
[ $rc -eq 2 ] && has "fno5d" err.txt && has "fno2d_time" err.txt; ok $? "unknown preset: exit 2 naming it and the presets"
run "$opl" summary fno --width 0
[ $rc -eq 2 ] && has "width" err.txt; ok $? "--width 0: exit 2 naming it"
run "$opl" summary fno --preset fno3d --dim 1
[ $rc -eq 2 ] && has "contradicts" err.txt; ok $? "--dim contradicting --preset: exit 2"
run "$opl" summary unet
[ $rc -eq 2 ] && has "unet" err.txt && has "fno, mlp" err.txt; ok $? "unknown model: exit 2 naming the kinds"
run "$opl" summary missing.h5
[ $rc -eq 1 ] && has "missing.h5" err.txt; ok $? "missing model file: exit 1 naming it"
echo "not hdf5" > bad.h5
run "$opl" summary bad.h5
[ $rc -eq 1 ] && has "bad.h5" err.txt; ok $? "a file that is no checkpoint: exit 1 naming it"
run "$opl" summary
[ $rc -eq 2 ]; ok $? "no model: exit 2"

# MgNO (He, Liu, Xu, ICLR 2024): the authors' MgNO_DC counts (count_params of their models.py)
run "$opl" summary mgno --preset darcy-rough
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 572661" ] && [ "$(rowsum out.txt)" = 572661 ] && has "mgconv3" out.txt
ok $? "mgno darcy-rough (4 layers, Cu 24, 6 levels, [[1,0]x5,[2,0]]): last line 'parameters: 572661', rows add up"
run "$opl" summary mgno --preset darcy-smooth
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 645828" ]; ok $? "mgno darcy-smooth (darcy.py defaults): 645828"
run "$opl" summary mgno --layers 4 --num-iteration "1,0;1,0;1,0;1,0;1,0;2,0"
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 572661" ]; ok $? "mgno flags spelling out darcy-rough: 572661"
run "$opl" summary mgno --num-iteration "1,0;1,1" --padding circular
[ $rc -eq 2 ] && has "coarsest" err.txt; ok $? "mgno post-smoothing on the coarsest level: exit 2 saying why"
run "$opl" summary mgno --num-iteration "1,0;2"
[ $rc -eq 2 ] && has "pre,post" err.txt; ok $? "mgno malformed --num-iteration: exit 2 naming the expected form"
run "$opl" summary mgno --preset darcy
[ $rc -eq 2 ] && has "darcy-rough" err.txt; ok $? "mgno unknown preset: exit 2 naming the presets"
run "$opl" summary mgno --padding replicate
[ $rc -eq 2 ] && has "reflect" err.txt; ok $? "mgno --padding replicate: exit 2 naming zeros, circular, reflect"

# SineNet: the counts of the authors' class in torch (sinenet_dual.py, 3 fields x 4 frames in, 3 out, hidden 64)
run "$opl" summary sinenet --preset ins-k8
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 35490219" ] && [ "$(rowsum out.txt)" = 35490219 ]
ok $? "sinenet ins-k8 (K 8, m 1.425): last line 'parameters: 35490219', rows add up"
has "64-91-129-185-263" out.txt && has "wave 7 up" out.txt; ok $? "sinenet ins-k8: widths and one row per wave half"
run "$opl" summary sinenet
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 35490219" ]; ok $? "sinenet default preset is ins-k8"
run "$opl" summary sinenet --waves 4 --mult 1.611
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 35493699" ]; ok $? "sinenet --waves 4 --mult 1.611: 35493699"
run "$opl" summary sinenet --preset ins-k1 --padding circular
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 33788099" ] && has "circular" out.txt
ok $? "sinenet ins-k1 circular: 33788099 (padding adds no parameters)"
run "$opl" summary sinenet --preset ns-k4
[ $rc -eq 0 ] && [ "$(last out.txt)" = "parameters: 2126877" ]; ok $? "sinenet ns-k4: 2126877"
run "$opl" summary sinenet --waves 0
[ $rc -eq 2 ] && has "waves" err.txt; ok $? "sinenet --waves 0: exit 2 naming waves"
run "$opl" summary sinenet --preset ins-k3
[ $rc -eq 2 ] && has "ins-k8" err.txt; ok $? "sinenet unknown preset: exit 2 naming the presets"
run "$opl" summary sinenet --padding reflect
[ $rc -eq 2 ] && has "reflect" err.txt; ok $? "sinenet --padding reflect: exit 2"

echo "1..$n"

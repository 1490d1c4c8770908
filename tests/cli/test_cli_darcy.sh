#!/bin/sh
# `opl generate darcy` (TAP on stdout): a tiny set, its shapes, provenance and checksum (opl info,
# h5ls / h5dump when present), the same set at two thread counts, a run interrupted by SIGINT and
# resumed equal to the uninterrupted one, bad input (s < 3, tau <= 0, a store resolution that does
# not fit, a time flag), and `opl train fno --dim 2` for 2 epochs on the tiny set (the static
# task a -> u).
# usage: sh tests/cli/test_cli_darcy.sh path/to/opl
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_darcy.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_darcy.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

run "$opl" generate --help
has "darcy" out.txt && has "rough" out.txt; ok $? "generate --help describes darcy and its presets"

# --------------------------------------------------------------- a tiny set
run "$opl" generate darcy --n 12 --res 33 --store-res 17 --seed 3 -o d.h5
ok $rc "generate darcy (12 samples, 33^2 -> 17^2) exits 0"
[ $rc -eq 0 ] || show_err
[ -f d.h5 ] && [ ! -e d.h5.partial ]; ok $? "d.h5 written, no partial file left"
has "a \[12, 17, 17\]" out.txt && has "u \[12, 17, 17\]" out.txt; ok $? "shapes reported: a [12, 17, 17], u [12, 17, 17]"
run "$opl" info d.h5
has "checksum   verified" out.txt && grep -q "equation  *darcy" out.txt && grep -q "solve_res  *33" out.txt \
    && grep -q "stride  *2" out.txt && grep -q "discretization" out.txt
ok $? "info: checksum verified; equation darcy, solve_res 33, stride 2, discretization stated"
if have h5ls; then
    h5ls d.h5 > ls.txt 2>&1
    grep -q "^a  *Dataset {12, 17, 17}" ls.txt && grep -q "^u  *Dataset {12, 17, 17}" ls.txt \
        && grep -q "^x  *Dataset {17}" ls.txt && grep -q "^y  *Dataset {17}" ls.txt && ! grep -q "^done" ls.txt
    ok $? "h5ls: a {12, 17, 17}, u {12, 17, 17} (no time axis), x, y {17}, no done"
else
    skip "no h5ls" "h5ls structure"
fi

# the same command at one thread gives the same values
run "$opl" generate darcy --n 12 --res 33 --store-res 17 --seed 3 --threads 1 -o d1.h5
if have h5dump; then
    h5dump -d u -d a d.h5 | grep -v "HDF5 \"" > v.txt; h5dump -d u -d a d1.h5 | grep -v "HDF5 \"" > v1.txt
    [ $rc -eq 0 ] && cmp -s v.txt v1.txt; ok $? "one thread: the same a and u as two"
else
    skip "no h5dump" "thread-count independence"
fi

# --------------------------------------------------------------- interrupt and resume
"$opl" generate darcy --n 40 --res 129 --store-res 65 --seed 5 --threads 1 -o r.h5 > bg.out 2> bg.err &
pid=$!
i=0
while [ $i -lt 100 ] && [ ! -e r.h5.partial ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.3
kill -INT $pid 2> /dev/null
wait $pid
st=$?
if [ -e r.h5 ]; then
    skip "the run finished before the signal" "SIGINT leaves only the partial file"
else
    [ $st -eq 1 ] && grep -q "interrupted" bg.err && [ -e r.h5.partial ]
    ok $? "SIGINT stops the run: exit 1, 'interrupted', only r.h5.partial"
fi
run "$opl" generate darcy --n 40 --res 129 --store-res 65 --seed 6 -o r.h5
[ -e r.h5 ] || { [ $rc -eq 1 ] && has "seed" err.txt; }; ok $? "resuming with another seed is refused naming it"
run "$opl" generate darcy --n 40 --res 129 --store-res 65 --seed 5 -o r.h5
ok $rc "the same command resumes and finishes"
run "$opl" generate darcy --n 40 --res 129 --store-res 65 --seed 5 -o full.h5
if have h5dump; then
    h5dump -d u -d a r.h5 | grep -v "HDF5 \"" > v.txt; h5dump -d u -d a full.h5 | grep -v "HDF5 \"" > v1.txt
    cmp -s v.txt v1.txt; ok $? "the resumed set equals an uninterrupted run"
else
    skip "no h5dump" "resumed = uninterrupted"
fi

# --------------------------------------------------------------- bad input
run "$opl" generate darcy --n 2 --res 2 --seed 1 -o x.h5
[ $rc -eq 2 ] && has "resolution 2" err.txt; ok $? "s < 3: exit 2 naming the resolution"
run "$opl" generate darcy --n 2 --res 17 --tau 0 --seed 1 -o x.h5
[ $rc -eq 2 ] && has "tau = 0" err.txt; ok $? "tau <= 0: exit 2 naming tau"
run "$opl" generate darcy --n 2 --res 17 --store-res 6 --seed 1 -o x.h5
[ $rc -eq 2 ] && has "store resolution 6" err.txt; ok $? "store resolution not fitting: exit 2"
run "$opl" generate darcy --n 2 --res 17 --nt 4 --seed 1 -o x.h5
[ $rc -eq 2 ] && has "\-\-nt" err.txt; ok $? "a time flag (--nt) is refused for darcy"
run "$opl" generate darcy --n 2 --preset smooth --seed 1 -o x.h5
[ $rc -eq 2 ] && has "smooth" err.txt; ok $? "unknown preset refused by name"
[ ! -e x.h5 ] && [ ! -e x.h5.partial ]; ok $? "no file appears after usage errors"

# --------------------------------------------------------------- training on it
run "$opl" train fno --data d.h5 --dim 2 --ntrain 8 --ntest 4 --epochs 2 --batch 4 --modes 4 --width 8 --proj 16 -o m.h5
ok $rc "train fno --dim 2 on the darcy set runs 2 epochs"
[ $rc -eq 0 ] || show_err
[ -f m.h5 ]; ok $? "the model file is written"

# --normalize scalar-u: a raw, u by one scalar mean and std (MgNO's rough set)
small="--dim 2 --ntrain 8 --ntest 4 --batch 4 --modes 4 --width 8 --proj 16 --normalize scalar-u"
run "$opl" train fno --data d.h5 $small --epochs 2 -o s.h5
[ $rc -eq 0 ] && has "the target normalized by one scalar mean and std" out.txt
ok $? "train --normalize scalar-u: named in the header"
l2=$(sed -n 's/.*test relative L2 \([0-9.e+-]*\)$/\1/p' out.txt)
run "$opl" eval s.h5 d.h5
[ $rc -eq 0 ] && [ -n "$l2" ] && has "test relative L2: mean $l2 " out.txt
ok $? "opl eval decodes with the stored normalizer: the training's test L2 ($l2)"
run "$opl" train fno --data d.h5 $small --epochs 1 -o s1.h5
run "$opl" train fno --resume --epochs 2 -o s1.h5
[ $rc -eq 0 ] && cmp -s s.h5 s1.h5; ok $? "scalar-u: 1 epoch + resume to 2, the same checkpoint byte for byte"
if have h5dump && have h5ls; then
    h5ls -r s.h5 > ls.txt
    grep -q "^/normalizer_y/mean  *Dataset {1}" ls.txt && ! grep -q normalizer_x ls.txt
    ok $? "the checkpoint keeps one scalar normalizer, the target's, none for the input"
    h5dump -d u -s "0,0,0" -c "8,17,17" -y -w 0 -O /dev/null -o u.txt d.h5 > /dev/null 2>&1
    want=$(tr ', ' '\n\n' < u.txt | grep -v '^$' | awk '{ x[NR] = $1; s += $1 }
        END { m = s / NR; for (i = 1; i <= NR; i++) v += (x[i] - m) ^ 2; printf "%.9g %.9g", m, sqrt(v / (NR - 1)) }')
    got=$(for q in mean std; do h5dump -d normalizer_y/$q s.h5 | sed -n 's/^ *(0): //p'; done | tr '\n' ' ')
    awk -v w="$want" -v g="$got" 'BEGIN { split(w, a, " "); split(g, b, " ");
        exit !(a[1] > 0 && a[2] > 0 && (b[1] - a[1]) ^ 2 < (1e-5 * a[1]) ^ 2 && (b[2] - a[2]) ^ 2 < (1e-5 * a[2]) ^ 2) }'
    ok $? "its mean and std are those of every u value of the 8 training samples ($got; computed $want)"
else
    skip "no h5dump" "scalar-u normalizer statistics"
fi

echo "1..$n"

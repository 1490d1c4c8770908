#!/bin/sh
# The data verbs of the opl command: `opl generate`, `opl solve`, `opl info` (TAP on stdout).
# usage: sh tests/cli/test_cli_generate.sh path/to/opl
# A tiny Burgers set and its info, the HDF5 structure (h5ls / h5dump / h5diff when installed),
# --config, bad flags (exit 2 with the flag and the expected value named), store-res not
# dividing res, solve from a seed and from a data set, info on bad files, an interrupted run
# (SIGINT) resumed and compared with an uninterrupted run value for value, a blow-up.
# Smaller sizes when OPL_SANITIZED=1.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_generate.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_gen.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"

san=${OPL_SANITIZED:-0}
if [ "$san" = 1 ]; then nres=12; else nres=24; fi

# --------------------------------------------------------------- help
run "$opl" generate --help
ok $(( rc != 0 )) "generate --help exits 0"
has "--store-res" out.txt && has "burgers|kdv|ns" out.txt; ok $? "generate --help lists the flags and equations"
run "$opl" --help
has generate out.txt && has solve out.txt && has info out.txt; ok $? "opl --help lists generate, solve, info"
run "$opl" solve --help
ok $(( rc != 0 )) "solve --help exits 0"
run "$opl" info --help
ok $(( rc != 0 )) "info --help exits 0"

# --------------------------------------------------------------- a tiny set
tiny="--res 128 --store-res 32 --nt 3 --T 0.05 --dt 1e-3"
run "$opl" generate burgers --n 6 $tiny --seed 7 -o tiny.h5
ok $rc "generate a tiny burgers set exits 0"
[ -f tiny.h5 ] && [ ! -e tiny.h5.partial ]; ok $? "tiny.h5 written, no partial file left"
has "wrote tiny.h5" out.txt && has "a \[6, 32\]" out.txt && has "u \[6, 3, 32\]" out.txt
ok $? "generate reports the shapes"
has "burgers (preset fno)" err.txt; ok $? "the settings are logged on stderr"

run "$opl" info tiny.h5
ok $rc "info on the set exits 0"
has "opl-dataset" out.txt && has "N = 6" out.txt && has "T = 3" out.txt && has "1-D, 32 points" out.txt
ok $? "info: layout, N, T, resolution"
has "checksum   verified" out.txt; ok $? "info: the checksum verifies"
grep -q "equation  *burgers" out.txt && grep -q "seed  *7" out.txt && grep -q "solve_res  *128" out.txt && grep -q "dt  *0.001" out.txt
ok $? "info: provenance attributes (equation, seed, solve_res, dt)"
has "float32" out.txt && has "#2" out.txt && ! has "#3" out.txt; ok $? "info: dtype and value ranges of 3 samples"

if have h5ls; then
    h5ls tiny.h5 > ls.txt 2>&1
    grep -q "^a  *Dataset {6, 32}" ls.txt && grep -q "^u  *Dataset {6, 3, 32}" ls.txt && grep -q "^x  *Dataset {32}" ls.txt \
        && grep -q "^t  *Dataset {3}" ls.txt && ! grep -q "^done" ls.txt
    ok $? "h5ls: a {6, 32}, u {6, 3, 32}, x {32}, t {3}, no done"
else
    skip "no h5ls" "h5ls structure"
fi
if have h5dump; then
    h5dump -A tiny.h5 > attrs.txt 2>&1
    grep -q 'ATTRIBUTE "equation"' attrs.txt && grep -q 'ATTRIBUTE "layout"' attrs.txt && grep -q '"burgers"' attrs.txt
    ok $? "h5dump: provenance attributes readable without opl"
else
    skip "no h5dump" "h5dump attributes"
fi

# --------------------------------------------------------------- --config
cat > gen.ini <<EOF
# the tiny set again
[generate]
n = 6
res = 128
store-res = 32
nt = 3
T = 0.05
dt = 1e-3
seed = 7
out = cfg.h5
EOF
run "$opl" generate burgers --config gen.ini --quiet
ok $rc "generate --config gen.ini exits 0"
if have h5diff; then
    h5diff tiny.h5 cfg.h5 /u /u > /dev/null 2>&1 && h5diff tiny.h5 cfg.h5 /a /a > /dev/null 2>&1
    ok $? "the config file gives the same data as the flags"
else
    skip "no h5diff" "config data"
fi
grep -v '^out' gen.ini > gen2.ini
run "$opl" generate burgers --config gen2.ini --seed 8 -o cfg8.h5 --quiet
st=$rc
"$opl" info cfg8.h5 > i8.txt 2>&1
[ $st -eq 0 ] && grep -q "seed  *8" i8.txt
ok $? "flags override the config file (--seed)"
printf 'n = 2\nfrobnicate = 3\n' > bad.ini
run "$opl" generate burgers --config bad.ini --seed 1 -o x.h5
[ $rc -eq 2 ] && has "bad.ini:2" err.txt && has "frobnicate" err.txt; ok $? "unknown config key: exit 2 naming file:line and key"
printf 'n = many\n' > bad2.ini
run "$opl" generate burgers --config bad2.ini --seed 1 -o x.h5
[ $rc -eq 2 ] && has "bad2.ini:1" err.txt && has "integer" err.txt; ok $? "bad config value: exit 2 naming the expected type"

# --------------------------------------------------------------- bad flags
expect2() { # description pattern... -- args
    desc=$1; shift
    pats=""
    while [ "$1" != "--" ]; do pats="$pats
$1"; shift; done
    shift
    run "$opl" "$@"
    st=0
    [ $rc -eq 2 ] || st=1
    oldifs=$IFS; IFS='
'
    set -f
    for p in $pats; do [ -n "$p" ] && { grep -q -- "$p" err.txt || st=1; }; done
    set +f
    IFS=$oldifs
    [ $st -eq 0 ] || diag "exit $rc; stderr: $(cat err.txt)"
    ok $st "$desc"
}
expect2 "unknown option: exit 2 naming it" "--frobnicate" -- generate burgers --n 2 --seed 1 -o x.h5 --frobnicate 3
expect2 "--n 0: exit 2" "--n" ">= 1" -- generate burgers --n 0 --seed 1 -o x.h5
expect2 "missing --seed: exit 2" "--seed" -- generate burgers --n 2 -o x.h5
expect2 "missing -o: exit 2" "-o FILE.h5" -- generate burgers --n 2 --seed 1
expect2 "missing equation: exit 2" "burgers, kdv, ns or darcy" -- generate --n 2 --seed 1 -o x.h5
expect2 "unknown equation: exit 2 naming it" "heat" "burgers" -- generate heat --n 2 --seed 1 -o x.h5
expect2 "unknown preset: exit 2 naming it and the known ones" "nope" "chebfun" -- generate burgers --preset nope --n 2 --seed 1 -o x.h5
expect2 "--dtype float16: exit 2 naming the expected values" "float16" "float32 or float64" -- generate burgers --dtype float16 --n 2 --seed 1 -o x.h5
expect2 "--nu abc: exit 2" "--nu" "abc" -- generate burgers --nu abc --n 2 --seed 1 -o x.h5
expect2 "--dt -1: exit 2" "dt = -1" -- generate burgers --dt -1 --n 2 --seed 1 -o x.h5
expect2 "--a for burgers: exit 2" "does not apply" -- generate burgers --a 6 --n 2 --seed 1 -o x.h5
expect2 "--scheme cn-heun for kdv: exit 2" "cn-heun" -- generate kdv --scheme cn-heun --n 2 --seed 1 -o x.h5
expect2 "store-res not dividing res: exit 2 naming both" "store resolution 100" "solve resolution 1024" -- generate burgers --res 1024 --store-res 100 --n 2 --seed 1 -o x.h5
[ ! -e x.h5 ] && [ ! -e x.h5.partial ]; ok $? "no file appears after usage errors"

# --------------------------------------------------------------- solve
run "$opl" solve burgers $tiny --seed 7 -o one.h5
ok $rc "solve burgers --seed 7 exits 0"
has "wrote one.h5" out.txt && has "steps" out.txt; ok $? "solve reports steps"
if have h5dump; then
    # the values of a hyperslab, without h5dump's index labels
    sample0() { h5dump -w 0 -d "$2" -s "$3" -c "$4" "$1" 2> /dev/null | sed -n '/DATA {/,/}/p' | sed 's/([0-9,]*)://'; }
    [ -n "$(sample0 one.h5 /u 0,0,0 1,3,32)" ] && [ "$(sample0 one.h5 /u 0,0,0 1,3,32)" = "$(sample0 tiny.h5 /u 0,0,0 1,3,32)" ] \
        && [ "$(sample0 one.h5 /a 0,0 1,32)" = "$(sample0 tiny.h5 /a 0,0 1,32)" ]
    ok $? "solve --seed 7 = sample 0 of generate --seed 7"
else
    skip "no h5dump" "solve = sample 0"
fi
run "$opl" solve burgers $tiny --ic tiny.h5 --ic-index 2 -o fromic.h5
ok $rc "solve from sample 2 of a data set exits 0"
"$opl" info fromic.h5 > info2.txt 2>&1
grep -q "ic_source  *tiny.h5 sample 2" info2.txt && grep -q "N = 1" info2.txt; ok $? "the one-trajectory file (N = 1) records its initial condition"
if have h5dump; then
    [ "$(sample0 fromic.h5 /a 0,0 1,32)" = "$(sample0 tiny.h5 /a 2,0 1,32)" ]
    ok $? "its a equals sample 2's a (resampled 32 -> 128 -> stored at 32)"
else
    skip "no h5dump" "ic a"
fi
expect2 "solve with --ic and --seed: exit 2" "--ic and --seed" -- solve burgers --ic tiny.h5 --seed 1 -o y.h5
expect2 "solve without an initial condition: exit 2" "--seed K" -- solve burgers -o y.h5
expect2 "solve --ic-index out of range: exit 2 naming the range" "--ic-index is 99" "0 .. 5" -- solve burgers --ic tiny.h5 --ic-index 99 -o y.h5
run "$opl" solve burgers --ic missing.h5 -o y.h5
[ $rc -eq 1 ] && has "missing.h5" err.txt; ok $? "solve --ic of a missing file: exit 1 naming it"
run "$opl" solve ns --ic tiny.h5 -o y.h5
[ $rc -eq 1 ] && has "1-D" err.txt && has "2-D" err.txt; ok $? "solve ns from a 1-D set: exit 1 naming both dimensions"

# --------------------------------------------------------------- info on bad input
run "$opl" info
[ $rc -eq 2 ]; ok $? "info without a file: exit 2"
run "$opl" info nothere.h5
[ $rc -eq 1 ] && has "nothere.h5" err.txt; ok $? "info on a missing file: exit 1 naming it"
echo "not hdf5" > text.h5
run "$opl" info text.h5
[ $rc -eq 1 ] && has "text.h5" err.txt; ok $? "info on a non-HDF5 file: exit 1 naming it"
size=$(wc -c < tiny.h5)
head -c $((size - 100)) tiny.h5 > trunc.h5
run "$opl" info trunc.h5
[ $rc -eq 1 ] && has "MISMATCH" out.txt; ok $? "info on a truncated file: checksum mismatch, exit 1"

# --------------------------------------------------------------- 2-D and KdV
run "$opl" generate ns --n 2 --res 32 --store-res 16 --nt 2 --T 0.01 --dt 1e-3 --seed 1 -o ns.h5
ok $rc "generate a tiny ns set"
cou=$(sed -n 's/.*max Courant number \([0-9.e+-]*\).*/\1/p' out.txt)
awk -v c="$cou" 'BEGIN { exit !(c != "" && c + 0 > 0 && c + 0 < 1) }'
ok $? "generate ns reports its largest Courant number under the limit 1 (got '$cou')"
"$opl" info ns.h5 > ns.txt 2>&1 && grep -q "2-D, 16 x 16" ns.txt && grep -q "u \[2, 2, 16, 16\]" ns.txt
ok $? "info: 2-D shapes"
run "$opl" generate kdv --n 2 --res 64 --nt 2 --T 1 --dt 0.01 --seed 1 -o kdv.h5 --quiet
ok $rc "generate a tiny kdv set"

run "$opl" generate burgers --preset chebfun --n 2 --res 128 --store-res 64 --nt 2 --T 0.02 --dt 1e-4 --nu 0.01 --seed 1 -o cheb.h5
st=$rc
"$opl" info cheb.h5 > cheb.txt 2>&1
[ $st -eq 0 ] && has "refinement check" out.txt && grep -q "refine_samples  *2" cheb.txt && grep -q "refine_maxdiff  *[0-9]" cheb.txt \
    && grep -q "preset  *chebfun" cheb.txt
ok $? "burgers chebfun: the refinement check is stored as attributes (refine_samples, refine_maxdiff)"

# --------------------------------------------------------------- blow-up
run "$opl" generate burgers --n 2 $tiny --seed 1 --cfl 1e-3 -o blow.h5 --quiet
[ $rc -eq 1 ] && has "blow-up at t =" err.txt && has "sample" err.txt; ok $? "a blow-up: exit 1 naming the sample and time"
[ ! -e blow.h5 ] && [ -e blow.h5.partial ]; ok $? "after a blow-up only blow.h5.partial exists"

# --------------------------------------------------------------- interrupt and resume
big="burgers --n $nres --res 1024 --store-res 64 --nt 2 --T 0.1 --dt 1e-4 --seed 3 --threads 2"
run "$opl" generate $big -o full.h5 --quiet
ok $rc "uninterrupted reference run"
"$opl" generate $big -o res.h5 > bg.out 2> bg.err &
pid=$!
# interrupt once the progress log (stderr is not a terminal: a line every 10 %) shows samples done
i=0
while ! grep -q " [1-9][0-9]*/$nres samples" bg.err 2> /dev/null && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid 2> /dev/null
wait $pid
st=$?
[ $st -eq 1 ] && grep -q "interrupted" bg.err && [ -e res.h5.partial ] && [ ! -e res.h5 ]
ok $? "SIGINT stops the run: exit 1, 'interrupted', only res.h5.partial"
[ $st -eq 1 ] || diag "exit $st; stderr: $(cat bg.err)"
run "$opl" generate $big --seed 4 -o res.h5 --quiet
[ $rc -eq 1 ] && has "seed" err.txt && has "restart" err.txt && [ -e res.h5.partial ]
ok $? "resuming with another seed is refused naming the attribute; the partial file stays"
run "$opl" generate $big -o res.h5 --quiet
resumed=$(sed -n 's/.*solved now, \([0-9]*\) resumed.*/\1/p' out.txt)
[ $rc -eq 0 ] && [ -n "$resumed" ] && [ "$resumed" -gt 0 ] && [ -e res.h5 ] && [ ! -e res.h5.partial ]
ok $? "rerunning the same command resumes ($resumed samples kept) and finishes"
if have h5diff; then
    h5diff full.h5 res.h5 /u /u > /dev/null 2>&1 && h5diff full.h5 res.h5 /a /a > /dev/null 2>&1
    ok $? "the resumed data equal the uninterrupted run's (h5diff, exact)"
else
    skip "no h5diff" "resumed data"
fi

echo "1..$n"
[ $failed -eq 0 ]

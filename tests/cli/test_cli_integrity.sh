#!/bin/sh
# File integrity through the opl command (TAP on stdout).
# usage: sh tests/cli/test_cli_integrity.sh path/to/opl
# Damaged copies of an opl data set and checkpoint (a flipped bit in the raw data, in the
# metadata, in the checksum header) are refused by train, eval, solve --ic, info and
# train --resume: exit 1, one error line naming the file, the damaged file never overwritten.
# Then a full disk (a 1 MiB tmpfs mounted in a user and mount namespace: `unshare -rm`):
# generate, train, --checkpoint-every and --resume fail with exit 1 and one error line (never
# a crash at exit), and leave no damaged output. Skipped with a reason where the namespace or
# the mount is not allowed.
set -u
tap=$(cd "$(dirname "$0")" && pwd)/tap.sh
opl=${1:?usage: test_cli_integrity.sh path/to/opl}
case "$opl" in /*) ;; *) opl=$(pwd)/$opl ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opl_cli_integrity.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

. "$tap"
# flip BYTE_OFFSET MASK FILE: xor one byte in place
flip() {
    b=$(od -An -tu1 -j "$1" -N1 "$3" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ $2 )))" | dd of="$3" bs=1 seek="$1" conv=notrunc 2>/dev/null
}
size() { wc -c < "$1" | tr -d ' '; }
# refused VERB-DESCRIPTION FILE: exit 1, and the error is one line naming FILE
refused() {
    [ $rc -eq 1 ] && has "$2" err.txt && ! grep -q '^, ' err.txt
    ok $? "$1: exit 1 (got $rc), the error names $2 on one line"
    [ $rc -eq 1 ] || show_err
}

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
common="--ntrain 16 --ntest 8 --sub 2 --modes 8 --width 16 --layers 2 --proj 16 --batch 5 --seed 1"

# --------------------------------------------------------------- originals
run "$opl" generate burgers --preset fno --n 24 --res 128 --store-res 64 --seed 5 --quiet -o d.h5
if [ $rc -ne 0 ]; then show_err; echo "Bail out! cannot make the data set (exit $rc)"; exit 1; fi
run "$opl" train fno --data d.h5 $common --epochs 1 -o m.h5
if [ $rc -ne 0 ]; then show_err; echo "Bail out! cannot train the model (exit $rc)"; exit 1; fi
ok 0 "a data set and a checkpoint written by opl"

# --------------------------------------------------------------- damaged data set
ds=$(size d.h5)
cp d.h5 bad_raw.h5; flip $((ds / 2)) 64 bad_raw.h5        # inside the sample chunks
cp d.h5 bad_meta.h5; flip 600 1 bad_meta.h5               # the root object header
cp d.h5 bad_head.h5; flip 0 1 bad_head.h5                 # the header's first byte
for f in bad_raw.h5 bad_meta.h5 bad_head.h5; do
    run "$opl" train fno --data $f $common --epochs 1 -o m_$f
    refused "train --data $f" $f
    [ ! -e m_$f ]; ok $? "train --data $f writes no model"
    run "$opl" eval m.h5 $f --ntest 8
    refused "eval m.h5 $f" $f
    run "$opl" solve burgers --ic $f --ic-index 0 -o s_$f
    refused "solve --ic $f" $f
    run "$opl" info $f
    refused "info $f" $f
done
has "checksum mismatch" err.txt || run "$opl" info bad_raw.h5
has "checksum mismatch" err.txt; ok $? "a flipped bit in the data: 'checksum mismatch'"
run "$opl" info bad_head.h5
has "damaged header" err.txt; ok $? "a changed header byte: 'damaged header', not taken for a foreign file"

# --------------------------------------------------------------- damaged checkpoint
ms=$(size m.h5)
cp m.h5 badm_raw.h5; flip $((ms * 3 / 4)) 16 badm_raw.h5
cp m.h5 badm_head.h5; flip 0 1 badm_head.h5
for f in badm_raw.h5 badm_head.h5; do
    run "$opl" eval $f d.h5 --ntest 8
    refused "eval $f" $f
    cp $f keep.h5
    run "$opl" train fno --data d.h5 $common --epochs 2 --resume -o $f
    refused "train --resume -o $f" $f
    cmp -s $f keep.h5; ok $? "train --resume leaves the damaged $f untouched"
    run "$opl" info $f
    refused "info $f" $f
done

# --------------------------------------------------------------- full disk
if ! unshare -rm true 2> /dev/null; then
    skip "no user and mount namespaces here (unshare -rm failed)" "full disk: generate, train, --checkpoint-every, --resume"
    echo "1..$n"
    exit 0
fi
mkdir mnt
cp m.h5 resume.h5
cat > inner.sh <<EOF
mount -t tmpfs -o size=1m tmpfs "$tmp/mnt" || exit 77
cd "$tmp/mnt" || exit 77
# fill FREE_KB: fill the disk, then free FREE_KB kilobytes
fill() { for f in "$tmp"/mnt/*; do [ "\$f" = "$tmp/mnt/\${keep:-}" ] || rm -f "\$f"; done; dd if=/dev/zero of=fill bs=4k 2>/dev/null; truncate -s -\${1}k fill; }
# chk FILE: v = none (no file), or the exit status of opl info on it (0: a complete, verified file)
chk() { if [ -e "\$1" ]; then "$opl" info "\$1" > /dev/null 2>&1; v=\$?; else v=none; fi; }
for kb in 8 24 64; do
    fill \$kb
    "$opl" generate burgers --preset fno --n 24 --res 128 --store-res 64 --seed 5 --quiet -o g.h5 > /dev/null 2> "$tmp/err_generate_\$kb"
    st=\$?; chk g.h5; echo "generate \$kb \$st \$v" >> "$tmp/results"
    fill \$kb
    "$opl" train fno --data "$tmp/d.h5" $common --epochs 2 --checkpoint-every 1 -o t.h5 > /dev/null 2> "$tmp/err_train_\$kb"
    st=\$?; chk t.h5; echo "train \$kb \$st \$v" >> "$tmp/results"
    rm -f "$tmp"/mnt/*
    cp "$tmp/resume.h5" r.h5
    keep=r.h5 fill \$kb
    "$opl" train fno --data "$tmp/d.h5" $common --epochs 3 --resume -o r.h5 > /dev/null 2> "$tmp/err_resume_\$kb"
    st=\$?
    cmp -s r.h5 "$tmp/resume.h5"; same=\$?
    echo "resume \$kb \$st \$same" >> "$tmp/results"
done
EOF
unshare -rm sh inner.sh > /dev/null 2>&1
mrc=$?
if [ $mrc -eq 77 ] || [ ! -f results ]; then
    skip "cannot mount a tmpfs in a user namespace here (exit $mrc)" "full disk: generate, train, --checkpoint-every, --resume"
    echo "1..$n"
    exit 0
fi
while read -r verb kb st extra; do
    e=err_${verb}_$kb
    if [ "$st" -eq 0 ]; then
        # it fitted: then the output must be complete
        ok 0 "full disk ($kb KiB free): $verb succeeded (it fitted)"
        continue
    fi
    [ "$st" -eq 1 ] && [ -s "$e" ] && ! grep -q '^, ' "$e" && [ "$(grep -c . "$e")" -le 3 ]
    r=$?
    ok $r "full disk ($kb KiB free): $verb exits 1 (got $st, never a crash) with its error on one line"
    [ $r -eq 0 ] || sed 's/^/#   /' "$e" | head -n 5
    case $verb in
        generate|train) [ "$extra" = none ] || [ "$extra" = 0 ]
            ok $? "full disk ($kb KiB free): $verb leaves no output, or a complete one that verifies ($extra)" ;;
        resume) [ "$extra" = 0 ]; ok $? "full disk ($kb KiB free): the checkpoint being resumed is left intact" ;;
    esac
done < results
echo "1..$n"

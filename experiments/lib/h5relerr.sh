#!/bin/sh
# h5relerr.sh A.h5 "A-SELECTION" B.h5 "B-SELECTION" [DATASET]
#
# Compares one dataset (default u) of two HDF5 files over a selection of each, given as h5dump
# hyperslab options in one word each ("-s START -S STRIDE -c COUNT"; "" = the whole dataset),
# and prints
#   rel_l2 X max_abs Y n COUNT
# with X = ||A - B||_2 / ||B||_2 over the selected values (in h5dump's order) and Y the largest
# absolute difference. Values are read by h5dump at 9 significant digits (exact for float32).
# The experiments use it to check data sets against each other (the same samples stored at two
# resolutions, a solve against a finer one). Needs only h5dump (Debian hdf5-tools).
# Exit status: 0; 1 when the two selections hold different numbers of values; 2 usage.
set -eu
if [ $# -lt 4 ]; then
    echo "usage: h5relerr.sh A.h5 \"A-SELECTION\" B.h5 \"B-SELECTION\" [DATASET]" >&2
    exit 2
fi
a=$1 sa=$2 b=$3 sb=$4 ds=${5:-u}
vals() { # file selection: one value per line
    # shellcheck disable=SC2086 # the selection is meant to split into options
    h5dump -m '%.9g' -y -w 0 -d "$ds" $2 "$1" | sed -n '/DATA {/,/}/p' | tr ',' '\n' |
        grep -v 'DATA\|}' | tr -d ' ' | grep .
}
tmp=${TMPDIR:-/tmp}/h5relerr.$$
trap 'rm -f "$tmp.a" "$tmp.b"' EXIT
vals "$a" "$sa" > "$tmp.a"
vals "$b" "$sb" > "$tmp.b"
na=$(wc -l < "$tmp.a")
nb=$(wc -l < "$tmp.b")
if [ "$na" != "$nb" ] || [ "$na" = 0 ]; then
    echo "h5relerr: the selection of $a holds $na values of '$ds', the one of $b holds $nb" >&2
    exit 1
fi
paste "$tmp.a" "$tmp.b" | awk '{ d = $1 - $2; s += d * d; v += $2 * $2; if (d < 0) d = -d; if (d > m) m = d }
    END { printf "rel_l2 %.4e max_abs %.4e n %d\n", (v > 0 ? sqrt(s / v) : 0), m, NR }'

# tap.sh -- the TAP helpers every tests/cli/*.sh script sources (before it leaves its own folder):
#   ok STATUS DESCRIPTION   prints "ok N - ..." when STATUS is 0, else "not ok N - ..." (counts failed)
#   skip WHY DESCRIPTION    a skipped case
#   diag TEXT...            a "# " comment line
#   run CMD...              stdout -> out.txt, stderr -> err.txt, status -> $rc
#   has PATTERN FILE        grep -q of a fixed-position pattern (-- protects a leading dash)
#   have CMD                CMD is on the PATH
#   lines FILE              its line count
#   show_err                the first lines of err.txt as TAP comments
#   field FILE KEY          the value of the numeric JSON field KEY in FILE (opl bench's lines)
#   usage_error MSG DESC CMD...  CMD exits 2 with MSG in its stderr (a case named "DESC: exit 2 naming it")
# The script ends with: echo "1..$n"
n=0
failed=0
ok() { # status description
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
skip() { n=$((n + 1)); echo "ok $n - $2 # SKIP $1"; }
diag() { echo "# $*"; }
run() { "$@" > out.txt 2> err.txt; rc=$?; }
has() { grep -q -- "$1" "$2"; }
have() { command -v "$1" > /dev/null 2>&1; }
lines() { wc -l < "$1" | tr -d ' '; }
show_err() { sed 's/^/#   /' err.txt | head -n 5; }
field() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1"; }
usage_error() {
    _msg=$1 _desc=$2
    shift 2
    run "$@"
    [ $rc -eq 2 ] && has "$_msg" err.txt
    ok $? "$_desc: exit 2 naming it (exit $rc)"
    [ $rc -eq 2 ] || show_err
}

#!/bin/sh
# Install, build and test opl in three configurations (release single precision, double precision
# for gradient checks, AddressSanitizer + UndefinedBehaviorSanitizer), then print one line
# "N passed, N failed" counted over every test case of every configuration.
# The double-precision build exists for the finite-difference gradient checks: it runs the C test
# programs only; the command-line and experiment scripts (meson suite "scripts") run in the
# release and sanitizer builds, which is where their code paths differ; the experiment scripts
# (suite "experiments": end-to-end runs of experiments/ at tiny sizes, over the same code as the
# command-line tests) run in the release build. Meson runs as many tests at a time as there are
# cores, the longest first (their priorities in meson.build).
set -e
cd "$(dirname "$0")/.."
sh scripts/setup.sh
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
configs="${OPL_TEST_CONFIGS:-release double asan}"
status=0
for cfg in $configs; do
  echo "== $cfg: build"
  sh scripts/build.sh "$cfg"
  echo "== $cfg: test"
  skip=""
  [ "$cfg" = double ] && skip="--no-suite scripts"
  [ "$cfg" = asan ] && skip="--no-suite experiments"
  meson test -C "build/$cfg" --print-errorlogs --no-rebuild -q $skip || status=1
done
python3 scripts/count_tap.py $(for cfg in $configs; do echo "build/$cfg/meson-logs/testlog.json"; done) || status=1
exit $status

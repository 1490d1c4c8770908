#!/bin/sh
# Configure (once) and build one configuration: scripts/build.sh release|double|asan
set -e
cd "$(dirname "$0")/.."
cfg="${1:-release}"
case "$cfg" in
  release) opts="-Dprecision=single -Dbuildtype=release" ;;
  double)  opts="-Dprecision=double -Dbuildtype=release" ;;
  asan)    opts="-Dprecision=single -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false" ;;
  *) echo "build.sh: unknown configuration '$cfg' (release, double, asan)" >&2; exit 2 ;;
esac
if [ ! -f "build/$cfg/build.ninja" ]; then
  meson setup "build/$cfg" $opts >/dev/null
else
  meson setup --reconfigure "build/$cfg" $opts >/dev/null
fi
ninja -C "build/$cfg" >/dev/null

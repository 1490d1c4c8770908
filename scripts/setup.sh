#!/bin/sh
# Install what opl needs to build and test (Debian 12 packages), only when something is missing.
set -e
PKGS="gcc meson ninja-build pkg-config python3 libfftw3-dev libopenblas-openmp-dev libhdf5-dev hdf5-tools libcairo2-dev libsuitesparse-dev openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi

#!/bin/sh
# Install what is missing, build opl (release, single precision) and run the main job on its
# built-in default. Extra arguments are passed to `opl demo`.
set -e
cd "$(dirname "$0")/.."
sh scripts/setup.sh
sh scripts/build.sh release
exec sh experiments/quickstart/run.sh "$@"

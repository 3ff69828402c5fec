#!/usr/bin/env bash
# Configures and builds into build/ (or $BUILD_DIR) with Ninja.
# Usage: scripts/build.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
"$PWD/scripts/install-deps.sh"
build_dir="${BUILD_DIR:-build}"
# ccache: paths relative to the checkout, so any clone (CI's fresh one too)
# shares the cache.
export CCACHE_NOHASHDIR=true CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
# Beast and Asio are heavy: two parallel jobs keep a 2-core machine responsive.
ninja -C "$build_dir" -j "${JOBS:-2}"

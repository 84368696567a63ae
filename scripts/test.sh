#!/usr/bin/env bash
# Runs the test suite, installing the system libraries first when they are missing.
#
# Optimized (-c release) with testing enabled, in its own build folder (.build-test) so it does not
# rebuild setup.sh's release build: the package sets no compiler flags (it can be depended on by
# version), so a debug build runs the SIMD kernels unoptimized and the suite takes many times longer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --deps-only
swift test -c release -Xswiftc -enable-testing --scratch-path .build-test "$@"

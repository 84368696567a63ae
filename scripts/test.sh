#!/usr/bin/env bash
# Runs the test suite, installing the system libraries first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --deps-only
swift test "$@"

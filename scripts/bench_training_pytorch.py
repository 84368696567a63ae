"""PyTorch + PEFT side of the training benchmark: LoRA training steps of the LLM2Vec recipe on CPU
with SmolLM2-135M's shapes, float32, the reference that Unmask's LoRA training is compared with.

Run with the reference venv (torch 2.4.1 CPU, transformers 4.44.2, peft 0.12.0, llm2vec 0.2.3):
    .venv-ref/bin/python scripts/bench_training_pytorch.py [--threads 2] [--warmup 2] [--steps 5] \
        [--modes mntp-full,mntp-masked,simcse] [--mntp-batch 8] [--mntp-length 128] \
        [--simcse-batch 8,32] [--simcse-length 64] [--gradient-checkpointing] [--gguf PATH | --hf DIR] [--json PATH]
Prints a Markdown table; --json also writes the numbers (for a side-by-side with Unmask's benchmark).

What one step is (model.train(), AdamW lr 5e-5, betas (0.9, 0.999), eps 1e-8, weight decay 0 and
gradient-norm clipping at 1.0, i.e. Hugging Face Trainer's defaults that llm2vec's scripts run with):
  LoRA  r=16, alpha=32, dropout 0.05 on q,k,v,o,gate,up,down of every layer, task_type None, on
        llm2vec's bidirectional LlamaBiModel (as llm2vec's run_mntp/run_simcse `initialize_peft`);
        only the LoRA matrices train (4.9M parameters for SmolLM2-135M), the tied embedding/LM head is frozen.
  mntp-full    "llm2vec as shipped": LlamaBiForMNTP(input_ids, labels), i.e. the LM head over all
               B x L positions and HF's shifted cross-entropy (logits at i-1 predict token i, labels
               -100 except at masked positions), exactly what run_mntp trains.
  mntp-masked  "head at masked positions only": the same loss, but the LM head is applied only to the
               hidden states at i-1 for masked i (the same work as Unmask's MNTP step).
               MNTP batches: B rows of L random token ids; round(0.2 L) positions per row, drawn from
               1..L-1 (position 0 has no predecessor), are masked: input id replaced by a mask id,
               label = the original id.
  simcse       unsupervised SimCSE as llm2vec's run_simcse: config.attention_dropout 0.3 plus LoRA
               dropout 0.05, B sentences of L random tokens each encoded twice (two forwards, different
               dropout), mean pooling, llm2vec's HardNegativeNLLLoss (cosine x 20, cross-entropy with
               labels arange(B)), backward, AdamW step.
Token convention: tokens/step = B x L for MNTP, 2 x B x L for SimCSE (each sentence is encoded twice).
Each mode runs in its own subprocess so that peak RSS (getrusage ru_maxrss of that process: weights,
activations, gradients, optimizer state, and ~440 MB of python + torch + transformers + llm2vec
imports, shown separately with the peak after building the model) belongs to that mode alone.
Memory: PyTorch saves ~2.4 MB of activations per token forwarded without gradient checkpointing
(~0.2 MB with it), but with glibc's default malloc the process keeps one step's freed activations
in its heap (the dynamic mmap threshold rises to 32 MB and large blocks stop going back to the OS),
so from the second step on peak RSS is about 9 MB per token without checkpointing and 3.6 MB with
it (SimCSE 8 x 64: ~10 GB / 4.8 GB). MALLOC_MMAP_THRESHOLD_=131072 in the environment returns the
memory (3.5 GB / 1.3 GB) but makes steps ~1.6x slower; the JSON records the variable. A run whose
estimate exceeds 85% of MemAvailable is skipped with a note instead of being OOM-killed (SimCSE
32 x 64 without checkpointing needs ~38 GB; llm2vec's own SimCSE/MNTP train configs turn gradient
checkpointing on).
Weights are random with SmolLM2-135M's shapes (speed does not depend on their values; with random
weights the SimCSE loss is ~0 because random-token sentences are already far apart); --gguf
(SmolLM2's GGUF, converted once to a cached HF folder by scripts/peft_roundtrip.py) or --hf DIR
loads real weights, with which the losses mean something (peak RSS then also counts the mapped
safetensors file, ~+0.4 GB).
PyTorch runs its own BLAS (MKL / oneDNN): OPENBLAS_CORETYPE only reaches the OpenBLAS that numpy
bundles, which no step here uses; the JSON records the variable and whether an OpenBLAS is mapped.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

MODES = {
    "mntp-full": "MNTP, llm2vec as shipped (LM head over all positions)",
    "mntp-masked": "MNTP, LM head at masked positions only",
    "simcse": "SimCSE (two dropout forwards)",
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def smollm2_config(attention_dropout=0.0):
    from transformers import LlamaConfig
    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, attention_dropout=attention_dropout,
    )
    config._attn_implementation = "sdpa"  # llm2vec's default attn_implementation
    return config


def build(mode, args):
    """The PEFT-wrapped model for a mode, in train mode, and its trainable parameters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from llm2vec.models import LlamaBiModel
    from llm2vec.models.bidirectional_llama import LlamaBiForMNTP

    attention_dropout = args.simcse_attention_dropout if mode == "simcse" else 0.0
    cls = LlamaBiModel if mode == "simcse" else LlamaBiForMNTP  # LlamaBiForMNTP: lm_head tied to embed_tokens
    folder = args.hf
    if args.gguf:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from peft_roundtrip import hf_folder
        folder = hf_folder(args.gguf)
    if folder:
        model = cls.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="sdpa",
                                    attention_dropout=attention_dropout, use_cache=False)
    else:
        model = cls(smollm2_config(attention_dropout))
    config = model.config
    config.use_cache = False  # training: no key/value cache
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=args.lora_dropout,
                      target_modules=TARGETS, bias="none", task_type=None)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if mode == "simcse":
        model = get_peft_model(model, lora)
    else:
        model.set_model_for_peft(get_peft_model(model.get_model_for_peft(), lora))  # as run_mntp does
    if mode != "simcse":
        assert model.lm_head.weight is model.model.get_input_embeddings().weight  # tied, hence frozen
    model.train()
    trainable = [p for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in names), [n for n in names if "lora_" not in n][:3]
    assert len(trainable) == 2 * len(TARGETS) * config.num_hidden_layers, len(trainable)
    return model, config, trainable


def mntp_batches(args, config, count):
    """(input_ids, attention_mask, labels) with round(mask_fraction * L) masked positions per row."""
    import torch
    g = torch.Generator().manual_seed(args.seed)
    B, L = args.batch, args.length
    k = max(1, round(args.mask_fraction * L))
    mask_id = args.mask_id
    batches = []
    for _ in range(count):
        ids = torch.randint(0, config.vocab_size, (B, L), generator=g)
        labels = torch.full((B, L), -100, dtype=torch.long)
        for b in range(B):
            positions = 1 + torch.randperm(L - 1, generator=g)[:k]
            labels[b, positions] = ids[b, positions]
            ids[b, positions] = mask_id
        batches.append((ids, torch.ones_like(ids), labels))
    return batches


def mntp_loss_full(model, ids, mask, labels):
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def mntp_loss_masked(model, ids, mask, labels):
    import torch
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, L, H]
    rows, cols = (labels[:, 1:] != -100).nonzero(as_tuple=True)  # label at cols+1, predicted from cols
    logits = model.lm_head(hidden[rows, cols])  # [masked, V]
    return torch.nn.functional.cross_entropy(logits, labels[rows, cols + 1])


def simcse_loss(model, ids, mask, loss_fn):
    def encode():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)  # llm2vec "mean" pooling (no padding here)
    return loss_fn(encode(), encode())


# Peak memory per token forwarded, measured on this recipe (torch 2.4.1, SmolLM2-135M shapes), by
# (gradient checkpointing, MALLOC_MMAP_THRESHOLD_ set). With glibc's defaults the process keeps the
# freed activations of one step in its heap (the dynamic mmap threshold rises to 32 MB, so large
# blocks stop going back to the OS): from the second step on it holds about twice what one step
# needs. A fixed threshold (MALLOC_MMAP_THRESHOLD_=131072) returns them, at a cost in speed.
BYTES_PER_TOKEN = {(False, False): 9.0e6, (True, False): 3.7e6, (False, True): 2.5e6, (True, True): 0.3e6}
BASE_BYTES = 1.1e9  # imports + weights


def estimated_peak_bytes(mode, batch, length, checkpointing, vocab=49152):
    tokens = batch * length * (2 if mode == "simcse" else 1)
    per_token = BYTES_PER_TOKEN[(checkpointing, "MALLOC_MMAP_THRESHOLD_" in os.environ)]
    logits = 3 * 4 * batch * length * vocab if mode == "mntp-full" else 0  # full LM head: B*L*V logits, ~3 copies
    return BASE_BYTES + tokens * per_token + logits


def available_bytes():
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info.get("MemAvailable")
    except OSError:
        return None


def current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def openblas_mapped():
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return []


def run_one(args):
    """One mode in this process; prints its result as JSON on the last line."""
    import torch
    from llm2vec.loss.HardNegativeNLLLoss import HardNegativeNLLLoss

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    imports_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # python + torch + transformers + llm2vec
    start = time.perf_counter()
    model, config, trainable = build(args.mode, args)
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total = args.warmup + args.steps
    if args.mode == "simcse":
        g = torch.Generator().manual_seed(args.seed)
        batches = [(ids, torch.ones_like(ids)) for ids in
                   (torch.randint(0, config.vocab_size, (args.batch, args.length), generator=g) for _ in range(total))]
        loss_fn = HardNegativeNLLLoss(scale=20.0)
        step_loss = lambda batch: simcse_loss(model, *batch, loss_fn)
        tokens_per_step = 2 * args.batch * args.length
    else:
        batches = mntp_batches(args, config, total)
        compute = mntp_loss_full if args.mode == "mntp-full" else mntp_loss_masked
        step_loss = lambda batch: compute(model, *batch)
        tokens_per_step = args.batch * args.length
        # Both MNTP losses are the same quantity: check on the first batch without dropout.
        model.eval()
        with torch.no_grad():
            full, masked = mntp_loss_full(model, *batches[0]).item(), mntp_loss_masked(model, *batches[0]).item()
        model.train()
        assert abs(full - masked) <= 1e-4 * max(1.0, abs(full)), (full, masked)
    setup_seconds = time.perf_counter() - start
    setup_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    times, losses, rss = [], [], []
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        loss = step_loss(batch)
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - t0
        losses.append(loss.item())
        rss.append(current_rss_bytes())
        if i >= args.warmup:
            times.append(elapsed)
        print(f"  {args.mode} {args.batch}x{args.length} step {i + 1}/{total}{' (warmup)' if i < args.warmup else ''}: "
              f"{elapsed:.3f} s, loss {losses[-1]:.4f}, RSS {rss[-1] / 1e6:.0f} MB, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB", file=sys.stderr, flush=True)
    seconds = sum(times)
    result = {
        "mode": args.mode, "label": MODES[args.mode], "batch": args.batch, "length": args.length,
        "tokens_per_step": tokens_per_step, "warmup_steps": args.warmup, "timed_steps": args.steps,
        "step_seconds": times, "mean_step_seconds": seconds / len(times), "min_step_seconds": min(times),
        "steps_per_s": len(times) / seconds, "tokens_per_s": tokens_per_step * len(times) / seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "imports_peak_rss_bytes": imports_rss, "setup_peak_rss_bytes": setup_rss, "setup_seconds": setup_seconds,
        "losses": losses, "rss_after_step_bytes": rss, "trainable_parameters": sum(p.numel() for p in trainable),
        "masked_per_row": max(1, round(args.mask_fraction * args.length)) if args.mode != "simcse" else None,
        "openblas_mapped": openblas_mapped(),
    }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--modes", default="mntp-full,mntp-masked,simcse")
    parser.add_argument("--mntp-batch", type=int, default=8)
    parser.add_argument("--mntp-length", type=int, default=128)
    parser.add_argument("--simcse-batch", default="8,32", help="comma-separated batch sizes, one run each")
    parser.add_argument("--simcse-length", type=int, default=64)
    parser.add_argument("--mask-fraction", type=float, default=0.2)
    parser.add_argument("--mask-id", type=int, default=79, help="input id put at masked positions (79 = '_' in SmolLM2's vocabulary, llm2vec's 'blank' mask)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--simcse-attention-dropout", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--hf", help="take the weights from this Hugging Face folder")
    parser.add_argument("--gguf", help="take the weights from SmolLM2's GGUF, via the HF folder peft_roundtrip.py converts it to (cached)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    # Internal: run a single mode in this process.
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        return run_one(args)

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            parser.error(f"unknown mode {m!r} (known: {', '.join(MODES)})")
    runs = []
    for m in modes:
        if m == "simcse":
            runs += [(m, int(b), args.simcse_length) for b in args.simcse_batch.split(",")]
        else:
            runs.append((m, args.mntp_batch, args.mntp_length))
    passthrough = sys.argv[1:]
    import torch
    meta = {
        "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": "MKL" if torch.backends.mkl.is_available() else "other", "threads": args.threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_"), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "model": f"{args.gguf} (dequantized, cached HF folder)" if args.gguf else args.hf if args.hf else "random weights, SmolLM2-135M shapes (30 layers, hidden 576, 9/3 heads, ffn 1536, vocab 49152, tied)",
        "lora": {"r": args.rank, "alpha": args.alpha, "dropout": args.lora_dropout, "targets": TARGETS},
        "gradient_checkpointing": args.gradient_checkpointing, "warmup": args.warmup, "steps": args.steps,
        "optimizer": f"AdamW lr {args.lr}, weight decay 0, clip {args.max_grad_norm}",
        "token_convention": "tokens/step = B*L for MNTP, 2*B*L for SimCSE (each sentence encoded twice)",
        "attn_implementation": "sdpa", "dtype": "float32",
    }
    results, skipped = [], []
    for mode, batch, length in runs:
        need, free = estimated_peak_bytes(mode, batch, length, args.gradient_checkpointing), available_bytes()
        if free is not None and need > 0.85 * free:
            note = (f"{MODES[mode]} {batch} x {length}: skipped, needs about {need / 1e9:.1f} GB and "
                    f"{free / 1e9:.1f} GB are available (try --gradient-checkpointing or MALLOC_MMAP_THRESHOLD_=131072)")
            print(note, file=sys.stderr)
            skipped.append(note)
            continue
        command = [sys.executable, os.path.abspath(__file__), *passthrough, "--mode", mode, "--batch", str(batch), "--length", str(length)]
        out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    meta["loadavg_end"] = os.getloadavg()

    print(f"\ntorch {meta['torch']} ({meta['blas']}, {meta['cpu_capability']}), {args.threads} threads, float32, sdpa; "
          f"{meta['model']}; LoRA r={args.rank} alpha={args.alpha:g} on {','.join(t.removesuffix('_proj') for t in TARGETS)}; "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}; {args.warmup} warmup + {args.steps} timed steps; "
          f"OPENBLAS_CORETYPE={meta['OPENBLAS_CORETYPE'] or 'unset'}; "
          f"MALLOC_MMAP_THRESHOLD_={meta['MALLOC_MMAP_THRESHOLD_'] or 'unset (glibc default)'}; load average {meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f}\n")
    print("| mode | B x L | tokens/step | s/step (mean, min) | steps/s | tokens/s | peak RSS (after imports / model) | loss first -> last |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['label']} | {r['batch']} x {r['length']} | {r['tokens_per_step']} | {r['mean_step_seconds']:.3f}, {r['min_step_seconds']:.3f} | "
              f"{r['steps_per_s']:.3f} | {r['tokens_per_s']:.0f} | {r['peak_rss_bytes'] / 1e6:.0f} MB ({r['imports_peak_rss_bytes'] / 1e6:.0f} / {r['setup_peak_rss_bytes'] / 1e6:.0f}) | {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f} |")
    for note in skipped:
        print(f"| {note} |")
    print("\ntokens/step: B x L for MNTP, 2 x B x L for SimCSE (each sentence encoded twice).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results, "skipped": skipped}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

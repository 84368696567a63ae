"""PyTorch CPU side of the Gemma benchmark (scripts/benchmark_gemma.sh): the same batch shape as
`unmask-bench` (32 texts x 128 tokens, bidirectional, 2 threads) through
  - EmbeddingGemma-300M as sentence-transformers loads it (its Gemma3TextModel; --model embeddinggemma),
    plus SentenceTransformer.encode of a text file end to end (--texts FILE);
  - Gemma 3 270M from its Q4_K_M GGUF, dequantized by the gguf package into transformers'
    Gemma3 (--model gemma3-270m).
Run with the second reference venv (scripts/setup_reference_envs.sh st):
    .venv-st/bin/python scripts/bench_pytorch_gemma.py --model embeddinggemma [--texts FILE]
Prints a Markdown table. One model per process, so peak RSS is that model's.
"""
import argparse
import os
import resource
import sys
import time

os.environ["CUDA_VISIBLE_DEVICES"] = ""
import torch  # noqa: E402

HOME = os.environ.get("UNMASK_HOME", os.path.expanduser("~/.cache/unmask"))


def timed_forward(model, vocab, batch, length, repeats):
    ids = torch.randint(3, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["embeddinggemma", "gemma3-270m"], required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", help="a .txt file (one text a line) to encode end to end (embeddinggemma)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [("torch", f"{torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")]

    start = time.perf_counter()
    if args.model == "embeddinggemma":
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(os.path.join(HOME, "models", "embeddinggemma"), device="cpu")
        model, vocab = st[0].auto_model.eval(), st[0].auto_model.config.vocab_size
        rows.append(("model", f"EmbeddingGemma-300M, sentence-transformers {__import__('sentence_transformers').__version__}, "
                              f"{model.config._attn_implementation} attention, bidirectional as shipped"))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from make_gemma3_gguf_reference import build, make_model
        path = os.path.join(HOME, "models", "gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
        _, _, config_args, state, _, _ = build(path)
        config_args["attn_implementation"] = "sdpa"
        model = make_model(config_args, state, bidirectional=True).model
        vocab = config_args["vocab_size"]
        rows.append(("model", "Gemma 3 270M Q4_K_M GGUF dequantized by gguf, transformers Gemma3TextModel, sdpa, bidirectional"))
    rows.append(("load", f"{time.perf_counter() - start:.2f} s"))
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    best = timed_forward(model, vocab, args.batch, args.length, args.repeats)
    rows.append((f"forward {args.batch}x{args.length} bidirectional, best of {args.repeats}", f"{best:.3f} s"))
    rows.append(("tokens/s", f"{args.batch * args.length / best:.0f}"))
    if args.texts and args.model == "embeddinggemma":
        texts = [line.rstrip("\n") for line in open(args.texts, encoding="utf-8") if line.strip()]
        tokens = sum(len(st.tokenize([t])["input_ids"][0]) for t in texts)
        start = time.perf_counter()
        st.encode(texts, batch_size=args.batch, prompt_name="document")
        elapsed = time.perf_counter() - start
        rows.append((f"encode {len(texts)} texts ({tokens} tokens, prompt document)", f"{elapsed:.2f} s, {tokens / elapsed:.0f} tokens/s"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows.append(("weights (F32)", f"{weight_bytes / 1e6:.0f} MB"))
    rows.append(("peak RSS", f"{rss / 1e6:.0f} MB"))
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()

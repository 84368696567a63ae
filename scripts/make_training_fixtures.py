#!/usr/bin/env python3
"""Makes Tests/Fixtures/training/: loss and every LoRA gradient of PyTorch + PEFT on the tiny
Llama fixture (float32, bidirectional as llm2vec's LlamaBiForMNTP / LlamaBiModel), for the Swift
LoRA training parity tests (Tests/UnmaskTests/TrainingParityTests.swift).

LoRA: r=4, alpha=8, dropout 0, on q,k,v,o,gate,up,down of every layer, with seeded non-zero A and B.
Run with the reference venv:  .venv-ref/bin/python scripts/make_training_fixtures.py
Outputs (tensor names `layers.{i}.{self_attn|mlp}.{proj}.lora_{A|B}`):
  lora.safetensors              the LoRA weights
  mntp_gradients.safetensors    gradients of the MNTP loss
  contrastive_gradients.safetensors gradients of the contrastive loss
  batches.json                  token ids, labels and the two losses
"""
import json, os
import torch
from safetensors.torch import save_file
from peft import LoraConfig, get_peft_model
from llm2vec.models.bidirectional_llama import LlamaBiForMNTP, LlamaBiModel
from llm2vec.loss.HardNegativeNLLLoss import HardNegativeNLLLoss
from fixture_support import LORA_TARGETS, grads, left_pad, seed_lora

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "Tests/Fixtures/models/llama2-bf16")
OUT = os.path.join(ROOT, "Tests/Fixtures/training")
PAD = 0
torch.manual_seed(0)
g = torch.Generator().manual_seed(1234)
vocab = 1259


def rand_ids(n):
    return torch.randint(3, vocab, (n,), generator=g).tolist()


def wrap(model):
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
    peft = get_peft_model(model, config)
    return peft, seed_lora(peft)


# MNTP: 2 left-padded rows; labels at masked positions (the collator replaced them with the mask id).
mask_id = 5
rows = [rand_ids(7), rand_ids(5)]
labels_rows = [[-100] * 7 for _ in rows]
for b, positions in [(0, [2, 4, 6]), (1, [1, 3])]:
    for p in positions:
        labels_rows[b][p] = rows[b][p]
        rows[b][p] = mask_id
ids, mask = left_pad(rows, PAD)
length = ids.shape[1]
labels = torch.tensor([[-100] * (length - len(l)) + l for l in labels_rows])

mntp = LlamaBiForMNTP.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
peft, lora = wrap(mntp)
out = peft(input_ids=ids, attention_mask=mask, labels=labels)
out.loss.backward()
mntp_loss = out.loss.item()
mntp_grads = grads(peft)

# Contrastive: 3 query/document pairs, mean pooling over non-padding tokens, scale 20.
queries = [rand_ids(n) for n in (4, 6, 3)]
documents = [rand_ids(n) for n in (7, 5, 8)]
bi = LlamaBiModel.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
peft2, lora2 = wrap(bi)
for k in lora:
    assert torch.equal(lora[k], lora2[k]), k


def embed(rows):
    ids, mask = left_pad(rows, PAD)
    h = peft2(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)


loss = HardNegativeNLLLoss(scale=20.0)(embed(queries), embed(documents))
loss.backward()
contrastive_loss = loss.item()
contrastive_grads = grads(peft2)

save_file(lora, os.path.join(OUT, "lora.safetensors"))
save_file(mntp_grads, os.path.join(OUT, "mntp_gradients.safetensors"))
save_file(contrastive_grads, os.path.join(OUT, "contrastive_gradients.safetensors"))
with open(os.path.join(OUT, "batches.json"), "w") as f:
    json.dump({
        "rank": 4, "alpha": 8, "pad": PAD, "scale": 20.0,
        "mntp": {"rows": rows, "labels": labels_rows, "loss": mntp_loss},
        "contrastive": {"queries": queries, "documents": documents, "loss": contrastive_loss},
    }, f, indent=1)
print("mntp loss", mntp_loss, "contrastive loss", contrastive_loss)

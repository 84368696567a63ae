"""sentence-transformers' quantize_embeddings on fixed vectors: the reference for Unmask's
EmbeddingPrecision (Tests/Fixtures/corpus/quantization.json).

Run in the sentence-transformers environment: .venv-st/bin/python scripts/make_quantization_fixture.py
"""
import json
import os

import numpy as np
import sentence_transformers
from sentence_transformers.quantization import quantize_embeddings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "corpus", "quantization.json")

rng = np.random.default_rng(12)
# 16 dimensions (ST packs bits over the flattened array, so it needs a multiple of 8). Calibration vectors set the int8 ranges; the
# embeddings stay inside them (outside, numpy's cast wraps where Unmask clamps).
calibration = rng.normal(size=(40, 16)).astype(np.float32)
low, high = calibration.min(axis=0), calibration.max(axis=0)
embeddings = (low + (high - low) * rng.uniform(0.0, 1.0, size=(6, 16))).astype(np.float32)
embeddings[0, :4] = [0.0, -0.0, 1e-8, -1e-8]  # the sign boundary of binary

result = {
    "sentence_transformers": sentence_transformers.__version__,
    "embeddings": embeddings.tolist(),
    "calibration": calibration.tolist(),
}
for precision in ["float32", "int8", "uint8", "binary", "ubinary"]:
    quantized = quantize_embeddings(embeddings, precision=precision, calibration_embeddings=calibration)
    result[precision] = quantized.astype(np.float64).tolist()
with open(OUT, "w") as f:
    json.dump(result, f, indent=1)
print("wrote", OUT)

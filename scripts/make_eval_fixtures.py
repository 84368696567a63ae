#!/usr/bin/env python3
"""Reference values for the evaluation metrics, from scipy and scikit-learn.

Writes Tests/Fixtures/eval/metrics.json, which Tests/UnmaskTests/EvaluationMetricsTests.swift
checks the Swift implementations against. Run with the reference venv:
    .venv-ref/bin/python scripts/make_eval_fixtures.py
"""
import json
import os

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, homogeneity_completeness_v_measure, ndcg_score

rng = np.random.default_rng(20261125)
out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}}

# Correlation: continuous values and values with many ties (average ranks).
correlation = []
for n, tied in [(40, False), (60, True), (7, True)]:
    x = rng.normal(size=n)
    y = x * 0.6 + rng.normal(size=n)
    if tied:
        x, y = np.round(x * 2) / 2, np.round(y)
    correlation.append({
        "x": x.tolist(), "y": y.tolist(),
        "ranks_x": scipy.stats.rankdata(x).tolist(),
        "spearman": float(scipy.stats.spearmanr(x, y).statistic),
        "pearson": float(scipy.stats.pearsonr(x, y).statistic),
    })
out["correlation"] = correlation

# Retrieval: graded judgements; nDCG@k from sklearn (every judged document is in the corpus);
# MRR@10, Recall@k and MAP@k by their trec_eval definitions.
retrieval = []
for q in range(6):
    n_docs = 150
    scores = rng.normal(size=n_docs)
    relevance = np.zeros(n_docs)
    relevant = rng.choice(n_docs, size=int(rng.integers(1, 5)), replace=False)
    relevance[relevant] = rng.integers(1, 3, size=len(relevant))
    order = np.argsort(-scores, kind="stable")
    hits = relevance[order] > 0
    entry = {"scores": scores.tolist(), "relevance": relevance.tolist()}
    for k in [1, 3, 5, 10, 100]:
        entry[f"ndcg_at_{k}"] = float(ndcg_score([relevance], [scores], k=k))
        entry[f"recall_at_{k}"] = float(hits[:k].sum() / hits.sum())
        precisions = np.cumsum(hits[:k]) / np.arange(1, k + 1)
        entry[f"map_at_{k}"] = float((precisions * hits[:k]).sum() / hits.sum())
    first = np.argmax(hits[:10]) if hits[:10].any() else None
    entry["mrr_at_10"] = 0.0 if first is None else 1.0 / (first + 1)
    retrieval.append(entry)
out["retrieval"] = retrieval

# V-measure.
clustering = []
for n, classes, clusters in [(200, 5, 5), (100, 3, 7), (50, 4, 1), (30, 1, 3)]:
    labels = rng.integers(0, classes, size=n)
    found = np.where(rng.random(n) < 0.6, labels % clusters, rng.integers(0, clusters, size=n))
    h, c, v = homogeneity_completeness_v_measure(labels, found)
    clustering.append({"labels": labels.tolist(), "clusters": found.tolist(), "homogeneity": h, "completeness": c, "v_measure": v})
out["v_measure"] = clustering

# Mini-batch k-means on well-separated blobs: sklearn's V-measure (Swift should also reach it).
centers = rng.normal(size=(4, 8)) * 10
points = np.concatenate([c + rng.normal(size=(50, 8)) for c in centers])
truth = np.repeat(np.arange(4), 50)
found = MiniBatchKMeans(n_clusters=4, batch_size=512, n_init=1, random_state=0).fit_predict(points)
out["kmeans"] = {"points": points.tolist(), "labels": truth.tolist(), "sklearn_v_measure": float(homogeneity_completeness_v_measure(truth, found)[2])}

# Classification metrics.
classification = []
for n, k in [(100, 4), (57, 2), (30, 6)]:
    truth = rng.integers(0, k, size=n)
    predicted = np.where(rng.random(n) < 0.6, truth, rng.integers(0, k + 1, size=n))
    classification.append({
        "truth": truth.tolist(), "predicted": predicted.tolist(),
        "accuracy": accuracy_score(truth, predicted),
        "f1_macro": f1_score(truth, predicted, average="macro", zero_division=0),
        "f1_weighted": f1_score(truth, predicted, average="weighted", zero_division=0),
    })
out["classification"] = classification

# Logistic regression, run to convergence so the optimum (not the path) is compared.
logistic = []
for classes, n, d in [(2, 80, 6), (3, 90, 5), (5, 60, 12)]:
    means = rng.normal(size=(classes, d)) * 1.5
    y = rng.integers(0, classes, size=n)
    x = means[y] + rng.normal(size=(n, d)) * 2
    test = rng.normal(size=(15, d)) * 2
    model = LogisticRegression(max_iter=10000, tol=1e-12).fit(x, y)
    logistic.append({
        "classes": classes, "x": x.tolist(), "y": y.tolist(), "test": test.tolist(),
        "coef": model.coef_.tolist(), "intercept": model.intercept_.tolist(),
        "probabilities": model.predict_proba(test).tolist(),
    })
out["logistic_regression"] = logistic

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "eval", "metrics.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))

"""Fit the confidence of aligned sentences (`index.align.LINK_MODEL`) on parallel news.

Alignment scores are cosines of sentence vectors, which are high for any two sentences of one
topic; a confidence must say how likely a link is the published translation (features:
`index.align.link_features`). For each Chinese variant of `../shared/parallel-dev`, the articles
are aligned as ingest aligns them: as published; with a run of about a fifth of each Chinese
article's sentences dropped (versions that are not parallel there); and with a fifth of the
Chinese sentences joined to the next (two English sentences translated by one Chinese
sentence). Every English sentence link is judged against the gold alignment; a logistic model
is fitted on the first variant and checked on the others. Prints a table and the weights to put
in `index/align.py` (LINK_MODEL).

    .venv/bin/python scripts/calibrate_alignment.py [--parallel-dir ../shared/parallel-dev]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.optimize import minimize  # type: ignore[import-untyped]

from index import (
    LINK_MODEL,
    Analyzer,
    ChunkPlan,
    IndexSettings,
    LinkExamples,
    LinkModel,
    link_examples,
    load_embedder,
    load_parallel,
    prepare_segments,
    prepared_parallel,
    with_dropped_sentences,
    with_merged_sentences,
)

REPO = Path(__file__).resolve().parents[1]


L2 = 1e-5  # about scikit-learn's C=40 at this many links: the margin needs a large weight


def _loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = x @ w[:-1] + w[-1]
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    eps = 1e-9
    loss = -float(np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    loss += L2 * float(w[:-1] @ w[:-1]) / 2
    d = (p - y) / len(y)
    grad = np.concatenate([x.T @ d + L2 * w[:-1], [d.sum()]])
    return loss, grad


def fit(examples: LinkExamples) -> LinkModel:
    """The logistic model P(right | the link's features)."""
    x, y = examples.features, examples.correct.astype(np.float64)
    w = minimize(_loss, np.zeros(x.shape[1] + 1), args=(x, y), jac=True,
                 method="L-BFGS-B").x
    return LinkModel(*(round(float(v), 2) for v in w))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def summary(examples: LinkExamples, model: LinkModel) -> dict[str, float]:
    conf = model.confidence(examples.features)
    right = examples.correct
    return {
        "links": float(len(right)), "wrong": float((~right).sum()),
        "auc": auc(conf, right),
        "confidence_right": float(conf[right].mean()) if right.any() else float("nan"),
        "confidence_wrong": float(conf[~right].mean()) if (~right).any() else float("nan"),
        "wrong_at_or_above_0.5": float((conf[~right] >= 0.5).sum()),
        "right_below_0.5": float((conf[right] < 0.5).sum()),
        "brier": float(np.mean((conf - right) ** 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parallel-dir", type=Path,
                        default=REPO.parent / "shared" / "parallel-dev")
    parser.add_argument("--variants", nargs="+", default=["zh-cn", "zh-tw"],
                        help="the first is fitted on, the others check the fit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = IndexSettings()
    embedder = load_embedder(settings)
    analyzer = Analyzer(settings.user_dict)
    plan = ChunkPlan.from_settings(settings)
    examples: dict[str, LinkExamples] = {}
    for variant in args.variants:
        data = load_parallel(args.parallel_dir, variant)
        for label, version in (("published", data), ("dropped", with_dropped_sentences(data)),
                               ("joined", with_merged_sentences(data))):
            print(f"{variant} {label}: aligning", file=sys.stderr)
            docs = prepared_parallel(
                version, lambda d: prepare_segments(d, embedder, analyzer, plan))
            examples[f"{variant} {label}"] = link_examples(docs, version)

    def joined(prefix: str) -> LinkExamples:
        parts = [e for k, e in examples.items() if k.startswith(prefix)]
        return LinkExamples(np.concatenate([p.features for p in parts]),
                            np.concatenate([p.correct for p in parts]))

    model = fit(joined(args.variants[0]))
    report: dict[str, object] = {"fitted_on": args.variants[0], "fitted": asdict(model),
                                 "in_use": asdict(LINK_MODEL), "sets": {}}
    print(f"fitted on {args.variants[0]}: {model}  (in use: {LINK_MODEL})")
    header = ("set", "model", "links", "wrong", "AUC", "conf right", "conf wrong", "wrong ≥.5",
              "right <.5", "Brier")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key, ex in examples.items():
        for label, m in (("fitted", model), ("in use", LINK_MODEL)):
            row = summary(ex, m)
            report["sets"][f"{key} {label}"] = row  # type: ignore[index]
            print(f"| {key} | {label} | {row['links']:.0f} | {row['wrong']:.0f} | "
                  f"{row['auc']:.3f} | {row['confidence_right']:.3f} | "
                  f"{row['confidence_wrong']:.3f} | {row['wrong_at_or_above_0.5']:.0f} | "
                  f"{row['right_below_0.5']:.0f} | {row['brier']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

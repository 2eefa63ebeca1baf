"""Train the answer-sentence model on XQuAD dev and report it by cross-validation, in one run.

The model is a conditional logit over `ANSWER_FEATURES`: within each gold passage, a softmax
over its sentences, fitted to pick the one holding the gold answer; one set of weights from
same-language questions (en→en, zh→zh), one from cross-language ones (en→zh, zh→en, both
versions indexed). Cross-validation trains on articles 0–11 and measures answer-sentence hit@1
on 12–23, and the other way round, next to today's rule (similarity + 0.3 × term overlap) and
the shipped model; then it fits on all articles and, with `--write`, saves the weights to
`index/search/answer_model.json`. Needs scipy (a dev dependency).

    .venv/bin/python scripts/train_answer_model.py [--l2 1.0] [--write] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize  # type: ignore[import-untyped]

from index import (
    ANSWER_FEATURES,
    ANSWER_MODEL_FILE,
    AnswerExample,
    AnswerModel,
    IndexSettings,
    answer_examples,
    answer_hit_rate,
    default_answer_model,
    load_embedder,
    prepare_bench,
)

REPO = Path(__file__).resolve().parents[1]
SAME_SETTINGS = ("en→en", "zh→zh")
CROSS_SETTINGS = ("en→zh", "zh→en")
REPORT_SETTINGS = ("en→en", "zh→zh", "en→zh", "zh→en")
HALVES = {"A (articles 0–11)": range(0, 12), "B (articles 12–23)": range(12, 24)}


def _loss(weights: np.ndarray, groups: Sequence[tuple[np.ndarray, int]], l2: float
          ) -> tuple[float, np.ndarray]:
    loss, grad = l2 * float(weights @ weights), 2 * l2 * weights
    for features, gold in groups:
        scores = features @ weights
        top = scores.max()
        exp = np.exp(scores - top)
        total = exp.sum()
        loss -= scores[gold] - (top + math.log(total))
        grad = grad - (features[gold] - (exp / total) @ features)
    return loss, grad


def _fit_weights(examples: Sequence[AnswerExample], settings: Sequence[str], l2: float
                 ) -> tuple[float, ...]:
    groups = [(e.gold.features, int(np.argmax(e.gold.labels))) for e in examples
              if e.gold is not None and e.setting in settings]
    found = minimize(_loss, np.zeros(len(ANSWER_FEATURES)), args=(groups, l2), jac=True,
                     method="L-BFGS-B")
    return tuple(float(w) for w in found.x)


def fit(examples: Sequence[AnswerExample], l2: float) -> AnswerModel:
    return AnswerModel(_fit_weights(examples, SAME_SETTINGS, l2),
                       _fit_weights(examples, CROSS_SETTINGS, l2))


def today() -> AnswerModel:
    """The rule before the model: similarity + 0.3 × share of query terms."""
    weights = dict.fromkeys(ANSWER_FEATURES, 0.0)
    weights["similarity"] = 1.0
    weights["overlap"] = 0.3 * 20.0  # similarity is scaled ×20 in the features
    return AnswerModel(tuple(weights.values()), tuple(weights.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=REPO.parent / "shared" / "xquad")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--write", action="store_true", help="save the model fitted on all")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = IndexSettings()
    bench = prepare_bench(args.xquad_dir, load_embedder(settings), settings,
                          log=lambda m: print(m, file=sys.stderr))
    examples = answer_examples(bench, REPORT_SETTINGS)
    table: dict[str, dict[str, float]] = {}
    for held_out, articles in HALVES.items():
        trained = fit([e for e in examples if e.article not in articles], args.l2)
        for setting in REPORT_SETTINGS:
            test = [e for e in examples if e.article in articles and e.setting == setting]
            row = table.setdefault(f"{setting}, {held_out}", {})
            row["today"] = answer_hit_rate(today(), test)
            row["shipped"] = answer_hit_rate(default_answer_model(), test)
            row["trained on the other half"] = answer_hit_rate(trained, test)
    print(f"{'answer-sentence hit@1':<34}" + "".join(f"{c:>28}" for c in next(iter(
        table.values()))))
    for name, row in table.items():
        print(f"{name:<34}" + "".join(f"{v:>28.3f}" for v in row.values()))
    final = fit(examples, args.l2)
    print(f"weights fitted on all articles:{'same language':>20}{'cross-language':>16}")
    for name, same, cross in zip(ANSWER_FEATURES, final.same, final.cross, strict=True):
        print(f"  {name:<30} {same:>+18.3f}{cross:>+16.3f}")
    if args.write:
        ANSWER_MODEL_FILE.write_text(json.dumps(final.to_json(), indent=2) + "\n",
                                     encoding="utf-8")
        print(f"wrote {ANSWER_MODEL_FILE}")
    if args.json:
        args.json.write_text(json.dumps({"l2": args.l2, "hit1": table,
                                         "weights": final.to_json()}, indent=2))


if __name__ == "__main__":
    main()

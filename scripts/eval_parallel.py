"""Counterpart precision/recall and translation lookup@1 on parallel news, in one run.

For each Chinese variant of `../shared/parallel-dev` (zh-cn, zh-tw): the articles are indexed in
both languages (aligned as ingest aligns them) and the counterpart of every passage is checked
against the gold sentence alignment; then every gold sentence is looked up in the other
language, with both versions indexed and with only the other language indexed (cross-lingual
search alone); then a fifth of each Chinese article is dropped and the counterparts are checked
again, with the confidence they carry. See `index/eval/parallel.py` for the definitions.

With --fit-margin it also fits the logistic curve that turns a cross-lingual lookup's margin
into its confidence (`SEARCH_MODEL` in index/search/lookup.py) on the first variant, and prints
the Brier score of the fitted and the shipped curve on each.

    .venv/bin/python scripts/eval_parallel.py [--parallel-dir ../shared/parallel-dev] [--json F]
        [--fit-margin]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from logistic import fit_logistic  # a sibling script: the shared logistic fit

from index import (
    SEARCH_MODEL,
    Analyzer,
    ChunkPlan,
    IndexSettings,
    LookupOutcome,
    MarginModel,
    counterpart_quality,
    load_embedder,
    load_parallel,
    lookup_quality,
    lost_pairs,
    parallel_build_info,
    prepare_segments,
    prepared_parallel,
    snapshot_of,
    with_dropped_sentences,
)

REPO = Path(__file__).resolve().parents[1]


def summary(outcomes: list[LookupOutcome]) -> dict[str, float]:
    right = [o for o in outcomes if o.right]
    wrong = [o for o in outcomes if not o.right and o.method is not None]
    return {
        "lookup_at_1": len(right) / max(1, len(outcomes)),
        "alignment": sum(o.method == "alignment" for o in outcomes),
        "search": sum(o.method == "search" for o in outcomes),
        "none": sum(o.method is None for o in outcomes),
        "confidence_right": sum(o.confidence for o in right) / max(1, len(right)),
        "confidence_wrong": sum(o.confidence for o in wrong) / max(1, len(wrong)),
        "wrong_confident": sum(o.confidence >= 0.5 for o in wrong),
    }


# Confidence = sigmoid(margin): with this curve a lookup's margin can be read back.
IDENTITY = MarginModel(slope=1.0, midpoint=0.0)


def margins(outcomes: list[LookupOutcome]) -> tuple[np.ndarray, np.ndarray]:
    """(margins, right) of the lookups answered by search under IDENTITY."""
    searched = [o for o in outcomes if o.method == "search"]
    confidence = np.clip([o.confidence for o in searched], 1e-4, 1 - 1e-4)
    return np.log(confidence / (1 - confidence)), np.array([o.right for o in searched])


def fit_margin(x: np.ndarray, y: np.ndarray) -> MarginModel:
    w = fit_logistic(np.column_stack([x, np.ones_like(x)]), y.astype(np.float64))
    return MarginModel(slope=round(float(w[0]), 1), midpoint=round(float(-w[1] / w[0]), 3))


def brier(model: MarginModel, x: np.ndarray, y: np.ndarray) -> float:
    p = np.array([model.probability(float(m)) for m in x])
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parallel-dir", type=Path,
                        default=REPO.parent / "shared" / "parallel-dev")
    parser.add_argument("--variants", nargs="+", default=["zh-cn", "zh-tw"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--fit-margin", action="store_true",
                        help="fit the cross-lingual lookup confidence curve (see above)")
    args = parser.parse_args()

    settings = IndexSettings()
    embedder = load_embedder(settings)
    analyzer = Analyzer(settings.user_dict)
    plan = ChunkPlan.from_settings(settings)
    report: dict[str, object] = {}
    read_margins: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for variant in args.variants:
        print(f"{variant}: preparing", file=sys.stderr)
        data = load_parallel(args.parallel_dir, variant)
        docs = prepared_parallel(
            data, lambda d: prepare_segments(d, embedder, analyzer, plan))
        info = parallel_build_info(embedder, analyzer)
        both = snapshot_of(list(docs.values()), info)
        quality = counterpart_quality(both, data.pairs)
        dropped = with_dropped_sentences(data)
        cut = prepared_parallel(
            dropped, lambda d: prepare_segments(d, embedder, analyzer, plan))
        cut_quality = counterpart_quality(snapshot_of(list(cut.values()), info), dropped.pairs,
                                          lost_pairs(data, dropped))
        lookups = {"both indexed": lookup_quality(both, embedder, analyzer, data)}
        cross: dict[str, list[LookupOutcome]] = {}
        for source, target in (("en", "zh"), ("zh", "en")):
            only = snapshot_of(list(docs.values()), info, lang=target)
            cross |= lookup_quality(only, embedder, analyzer, data, [(source, target)])
            if args.fit_margin:
                for direction, outcomes in lookup_quality(
                        only, embedder, analyzer, data, [(source, target)],
                        margin_model=IDENTITY).items():
                    read_margins[(variant, direction)] = margins(outcomes)
        lookups["cross-lingual only"] = cross
        report[variant] = {"counterparts": asdict(quality),
                           "counterparts_sentences_dropped": asdict(cut_quality),
                           "lookup": {k: {d: summary(o) for d, o in v.items()}
                                      for k, v in lookups.items()}}
        print(f"\n{variant}: counterparts precision {quality.precision:.3f} recall "
              f"{quality.recall:.3f} ({quality.with_counterpart} of {quality.passages} passages "
              "with one)")
        print(f"{variant}, a fifth of each Chinese article dropped: counterparts precision "
              f"{cut_quality.precision:.3f} recall {cut_quality.recall:.3f}; mean confidence "
              f"of English passages: intact {cut_quality.confidence_intact:.3f}, lost some "
              f"partners {cut_quality.confidence_partly_lost:.3f}, lost all "
              f"{cut_quality.confidence_all_lost:.3f} ({cut_quality.all_lost_confident} of "
              f"{cut_quality.all_lost} shown at confidence ≥ 0.5)")
        print("| lookup | direction | lookup@1 | by alignment | by search | none | "
              "confidence right | confidence wrong | wrong ≥ .5 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for setting, by_direction in lookups.items():
            for direction, outcomes in by_direction.items():
                row = summary(outcomes)
                print(f"| {setting} | {direction} | {row['lookup_at_1']:.3f} | "
                      f"{row['alignment']:.0f} | {row['search']:.0f} | {row['none']:.0f} | "
                      f"{row['confidence_right']:.3f} | {row['confidence_wrong']:.3f} | "
                      f"{row['wrong_confident']:.0f} |")
    if read_margins:
        first = [v for k, v in read_margins.items() if k[0] == args.variants[0]]
        fitted = fit_margin(np.concatenate([x for x, _ in first]),
                            np.concatenate([y for _, y in first]))
        print(f"\nmargin curve fitted on {args.variants[0]}: {fitted} (shipped: {SEARCH_MODEL})")
        print("| variant | direction | lookups by search | Brier fitted | Brier shipped |")
        print("|---|---|---|---|---|")
        for (variant, direction), (x, y) in read_margins.items():
            print(f"| {variant} | {direction} | {len(y)} | {brier(fitted, x, y):.4f} | "
                  f"{brier(SEARCH_MODEL, x, y):.4f} |")
        report["margin_fit"] = {"fitted_on": args.variants[0], "fitted": asdict(fitted)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

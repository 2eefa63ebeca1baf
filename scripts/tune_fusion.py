"""Choose the fusion method and weights by measurement on the XQuAD dev split.

Embeds XQuAD once, then scores a grid of SearchParams (no baselines) and prints hit@1 per
setting for each; the defaults in index/search.py come from this table.

    .venv/bin/python scripts/tune_fusion.py [--xquad-dir ../shared/xquad] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

from index import SETTINGS, IndexSettings, SearchParams, load_embedder, prepare_bench, run_bench

GRID = {
    "fusion": ["minmax", "rrf"],
    "lexical_weight": [0.2, 0.3, 0.4],
    "sentence_weight": [0.0, 0.2, 0.35, 0.5],
    "pivot_weight": [0.5, 0.7, 0.85],
    "cross_lexical_weight": [0.0, 0.1],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=Path("../shared/xquad"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--grid", type=json.loads, default=GRID, help="JSON {param: [values]}")
    args = parser.parse_args()
    grid: dict[str, list[object]] = args.grid
    embedder = load_embedder(IndexSettings())
    bench = prepare_bench(args.xquad_dir, embedder, log=lambda m: print(m, file=sys.stderr))
    print(f"passage chars {bench.report.passage_chars}, passages {bench.report.passages}")
    names = [s.name for s in SETTINGS]
    print(" ".join(f"{k[:8]:>8}" for k in grid) + " " + " ".join(f"{n[:9]:>9}" for n in names))
    rows = []
    for values in itertools.product(*grid.values()):
        params = replace(SearchParams(), **dict(zip(grid, values, strict=True)))  # type: ignore[arg-type]
        report = run_bench(bench, params, baselines=False)
        hit1 = [report.results[n]["qiao"].hit1 for n in names]
        rows.append(
            {
                "params": dict(zip(grid, values, strict=True)),
                "hit1": dict(zip(names, hit1, strict=True)),
            }
        )
        print(
            " ".join(f"{v!s:>8}" for v in values) + " " + " ".join(f"{h:>9.3f}" for h in hit1),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

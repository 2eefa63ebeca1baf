"""Counterpart precision/recall and translation lookup@1 on parallel news, in one run.

For each Chinese variant of `../shared/parallel-dev` (zh-cn, zh-tw): the articles are indexed in
both languages (aligned as ingest aligns them) and the counterpart of every passage is checked
against the gold sentence alignment; then every gold sentence is looked up in the other
language, with both versions indexed and with only the other language indexed (cross-lingual
search alone). See `index/eval/parallel.py` for the definitions.

    .venv/bin/python scripts/eval_parallel.py [--parallel-dir ../shared/parallel-dev] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from index import (
    Analyzer,
    ChunkPlan,
    IndexSettings,
    counterpart_quality,
    load_embedder,
    load_parallel,
    lookup_quality,
    parallel_build_info,
    prepare_segments,
    prepared_parallel,
    snapshot_of,
)

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parallel-dir", type=Path,
                        default=REPO.parent / "shared" / "parallel-dev")
    parser.add_argument("--variants", nargs="+", default=["zh-cn", "zh-tw"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = IndexSettings()
    embedder = load_embedder(settings)
    analyzer = Analyzer(settings.user_dict)
    plan = ChunkPlan.from_settings(settings)
    report: dict[str, object] = {}
    for variant in args.variants:
        print(f"{variant}: preparing", file=sys.stderr)
        data = load_parallel(args.parallel_dir, variant)
        docs = prepared_parallel(
            data, lambda d: prepare_segments(d, embedder, analyzer, plan))
        info = parallel_build_info(embedder, analyzer)
        both = snapshot_of(list(docs.values()), info)
        quality = counterpart_quality(both, data.pairs)
        lookup_both = lookup_quality(both, embedder, analyzer, data)
        lookup_cross = {}
        for source, target in (("en", "zh"), ("zh", "en")):
            only = snapshot_of(list(docs.values()), info, lang=target)
            lookup_cross |= lookup_quality(only, embedder, analyzer, data, [(source, target)])
        report[variant] = {"counterparts": asdict(quality), "lookup_both_indexed": lookup_both,
                           "lookup_cross_lingual_only": lookup_cross}
        print(f"{variant}: counterparts precision {quality.precision:.3f} recall "
              f"{quality.recall:.3f} ({quality.with_counterpart} of {quality.passages} passages "
              f"with one); lookup@1 both indexed {lookup_both}, cross-lingual only "
              f"{lookup_cross}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

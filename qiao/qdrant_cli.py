"""`qiao qdrant …` and the Qdrant side of the shared commands (QIAO_BACKEND=qdrant)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from index import IndexSettings, QiaoError, load_index_settings

if TYPE_CHECKING:
    from index import Embedder, EvalReport, SearchParams

qdrant_app = typer.Typer(no_args_is_help=True,
                         help="The Qdrant backend: create the collections, show what they hold.")
out = Console()
err = Console(stderr=True)


def _settings() -> IndexSettings:
    return load_index_settings(backend="qdrant")


F = TypeVar("F", bound=Callable[..., None])


def _friendly(command: F) -> F:
    from qiao.cli import friendly  # imported once cli has defined it (cli imports this last)

    return friendly(command)


@qdrant_app.command("init")
@_friendly
def init() -> None:
    """Create the collections and payload indexes ($QIAO_QDRANT_COLLECTION and its
    _documents twin) if they are missing."""
    from index import init_qdrant

    settings = _settings()
    store, created = init_qdrant(settings)
    try:
        what = "created" if created else "already there"
        out.print(f"{store.collection} and {store.documents} at {store.where}: {what}",
                  highlight=False, soft_wrap=True)
    finally:
        store.close()


@qdrant_app.command("status")
@_friendly
def status() -> None:
    """Documents and passages the collections hold."""
    from index import connect, model_info

    settings = _settings()
    store = connect(settings, model_info(settings).dim)
    try:
        store.require()
        documents, passages = store.count()
        out.print(f"{store.collection} at {store.where}: {documents} documents, "
                  f"{passages} passages", highlight=False, soft_wrap=True)
    finally:
        store.close()


@qdrant_app.command("import")
@_friendly
def import_embedded(
    data_dir: Annotated[Path, typer.Argument(
        help="An embedded index (a Qiao data directory).")],
    batch: Annotated[int, typer.Option(help="Documents per write.")] = 200,
) -> None:
    """Copy an embedded index into the Qdrant collections without embedding again (vectors,
    terms and alignment as they are); documents Qdrant already holds unchanged are skipped."""
    from index import DataDirError, Retriever, connect, has_index, model_info

    settings = _settings()
    if batch < 1:
        raise QiaoError(f"--batch must be at least 1, got {batch}")
    if not has_index(data_dir):
        raise DataDirError(f"{data_dir} holds no index: give the data directory to copy")
    embedded = Retriever.open(settings=settings.model_copy(update={"data_dir": data_dir,
                                                                    "backend": "embedded"}))
    built = embedded.manifest.info if embedded.manifest else None
    configured = model_info(settings)
    if built is not None and (built.model_id, built.dim) != (configured.model_id,
                                                             configured.dim):
        raise DataDirError(f"{data_dir} was built with {built.model_id} (dim {built.dim}) but "
                           f"Qiao is configured for {configured.model_id}: set QIAO_MODEL "
                           "to the index's model")
    store = connect(settings, configured.dim)
    copied = skipped = passages = 0
    try:
        store.require()
        pending: list[Any] = []

        def flush() -> None:
            nonlocal copied, skipped, passages
            held = store.content_hashes(p.doc_id for p in pending)
            fresh = [p for p in pending if held.get(p.doc_id) != p.content_hash]
            store.write(fresh)
            copied += len(fresh)
            skipped += len(pending) - len(fresh)
            passages += sum(len(p.spans) for p in fresh)
            pending.clear()
            err.print(f"import: {copied:,} documents copied, {skipped:,} unchanged",
                      highlight=False, soft_wrap=True)

        for prepared in embedded.export_prepared():
            pending.append(prepared)
            if len(pending) >= batch:
                flush()
        flush()
    finally:
        store.close()
    out.print(f"{copied} documents ({passages} passages) copied from {data_dir} to "
              f"{store.collection} at {store.where}, {skipped} unchanged",
              highlight=False, soft_wrap=True)


def eval_table(embedded: EvalReport, qdrant: EvalReport, json_out: Path | None) -> None:
    """The embedded and the Qdrant figures of one run, side by side."""
    from index import hit_gaps

    table = Table(title="XQuAD: embedded against Qdrant (same passages, same questions)")
    for column in ("setting", "embedded @1", "qdrant @1", "Δ @1", "embedded answer @1",
                   "qdrant answer @1"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    gaps = hit_gaps(embedded, qdrant)
    for name, row in qdrant.results.items():
        mine, base = row["qiao"], embedded.results[name]["qiao"]
        table.add_row(name, f"{base.hit1:.4f}", f"{mine.hit1:.4f}", f"{gaps[name]:+.4f}",
                      f"{base.answer_hit1 or 0:.4f}", f"{mine.answer_hit1 or 0:.4f}")
    out.print(table)
    out.print(f"Qdrant timings: {qdrant.timings}", highlight=False)
    if json_out:
        json_out.write_text(json.dumps({"embedded": embedded.as_json(),
                                        "qdrant": qdrant.as_json(), "hit1_gap": gaps},
                                       indent=2, ensure_ascii=False))
        out.print(f"wrote {json_out}")


def eval_xquad_qdrant(xquad_dir: Path, embedder: Embedder, settings: IndexSettings,
                      params: SearchParams, articles: int | None, json_out: Path | None) -> None:
    """XQuAD through the embedded index and through Qdrant, in one run on one embedding."""
    import tempfile

    from index import QdrantTarget, prepare_bench, run_bench, run_qdrant

    def log(message: str) -> None:
        err.print(f"[dim]{message}…[/]")

    bench = prepare_bench(xquad_dir, embedder, settings, articles, log)
    embedded = run_bench(bench, params, baselines=False, log=log)
    with tempfile.TemporaryDirectory(prefix="qiao-xquad-qdrant-") as folder:
        def target(index: str) -> QdrantTarget:
            name = f"{settings.qdrant_collection}_xquad_{index}"
            if settings.qdrant_url:
                return QdrantTarget(name, url=settings.qdrant_url,
                                    api_key=settings.qdrant_api_key)
            return QdrantTarget(name, path=f"{folder}/{index}", edge=settings.qdrant_edge)

        qdrant = run_qdrant(bench, params, target, log)
    eval_table(embedded, qdrant, json_out)

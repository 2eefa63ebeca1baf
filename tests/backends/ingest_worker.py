"""One ingest worker process for the concurrency test: `python -m tests.backends.ingest_worker
QDRANT_FOLDER FIRST LAST VERSIONS` ingests releases FIRST..LAST-1 (VERSIONS: en, zh or
en,zh) into a local-mode Qdrant folder with the fake embedder, one release per batch."""

from __future__ import annotations

import sys
from pathlib import Path

from index.backend import QdrantOpener
from index.config import IndexSettings
from index.records import Document
from tests.fakes import FakeEmbedder

EN = ("Release {n}. The harbour ferry number {n} now runs every {n} minutes. "
      "Tickets for line {n} cost {n} yuan. Volunteers cleaned beach {n} on Sunday.")
ZH = "第{n}号通知。第{n}号渡轮现在每{n}分钟一班。第{n}号线票价{n}元。志愿者周日清理了第{n}号海滩。"


def release(n: int, lang: str) -> Document:
    text = (EN if lang == "en" else ZH).format(n=n)
    return Document(f"r{n}.{lang}", f"r{n}", lang, f"Release {n}", text)  # type: ignore[arg-type]


def main() -> None:
    folder, first, last, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    settings = IndexSettings(backend="qdrant", qdrant_path=Path(folder),
                             data_dir=Path(folder).parent / "data")
    opener = QdrantOpener(settings, embedder=FakeEmbedder())
    docs = [release(n, lang) for n in range(first, last) for lang in versions.split(",")]
    for _ in opener.ingest(docs, batch_docs=2):
        pass


if __name__ == "__main__":
    main()

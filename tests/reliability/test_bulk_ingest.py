"""A long ingest commits as it goes: killed half-way, it has lost at most one batch, and run
again it embeds only what was not committed."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from index.config import ChunkPlan, IndexSettings
from index.embed import Matrix
from index.indexes.analyze import Analyzer
from index.ingest.prepare import prepare_segments
from index.records import Document
from index.store.commit import set_write_step_hook
from index.store.verify import verify_data_dir
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder

BATCH = 5


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, counting the texts it embeds for passages."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_passages(self, texts: list[str]) -> Matrix:
        self.embedded += len(texts)
        return super().embed_passages(texts)


def corpus(n: int) -> list[Document]:
    return [
        Document(f"r{i:03d}.{lang}", f"r{i:03d}", lang,
                 f"Notice {i}" if lang == "en" else f"通知{i}",
                 f"The ferry {i} runs every {i % 7 + 2} minutes. Tickets cost {i} yuan."
                 if lang == "en" else f"{i}号渡轮每{i % 7 + 2}分钟一班。票价{i}元。")
        for i in range(n // 2) for lang in ("en", "zh")
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the test forks the killed ingest")
def test_a_killed_bulk_ingest_resumes_without_re_embedding_committed_documents(
    tmp_path: Path, analyzer: Analyzer
) -> None:
    docs = corpus(40)
    data_dir = tmp_path / "data"
    pid = os.fork()
    if pid == 0:  # the ingest, killed once its third commit has landed
        switches: Counter[str] = Counter()

        def kill_after_three(step: str) -> None:
            switches[step] += 1
            if step == "cleanup" and switches[step] == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        set_write_step_hook(kill_after_three)
        retriever = open_retriever(data_dir, FakeEmbedder(), Analyzer())
        for _ in retriever.upsert_many(docs, batch_docs=BATCH):
            pass
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert verify_data_dir(data_dir).violations == []

    counting = CountingEmbedder()
    resumed = open_retriever(data_dir, counting, analyzer)
    committed = {d.doc_id for d in resumed.documents()}
    assert len(committed) == 3 * BATCH  # three commits landed, nothing else
    reports = list(resumed.upsert_many(docs, batch_docs=BATCH))
    assert sum(len(r.unchanged) for r in reports) == len(committed)
    assert sum(len(r.added) for r in reports) == len(docs) - len(committed)
    # Embedded now: exactly what preparing the uncommitted documents alone embeds.
    alone = CountingEmbedder()
    prepare_segments([d for d in docs if d.doc_id not in committed], alone, analyzer,
                     ChunkPlan.from_settings(IndexSettings()))
    assert counting.embedded == alone.embedded > 0
    assert {d.doc_id for d in resumed.documents()} == {d.doc_id for d in docs}
    assert verify_data_dir(data_dir).violations == []

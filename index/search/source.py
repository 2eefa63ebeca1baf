"""The seam between ranking and storage: what a search asks of the passages it ranks.

`rank.search_rows` fuses, pivots and restricts by language the same way over any
`SearchSource`: the embedded segments (`SnapshotSource`) or a Qdrant collection
(`index.backends.qdrant`). A source names passages by integer rows of its own choosing (global
snapshot rows, Qdrant point ids) and answers three questions: the candidates of a batch of
queries, which rows pass a filter, and which rows a row is aligned with in the other version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from index.embed import Matrix

Mode = Literal["hybrid", "dense", "lexical"]
RankedList = dict[int, float]


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict results; all given conditions must hold. Dates are inclusive."""

    release_id: str | None = None
    doc_id: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Where:
    """The passages a search may return: live ones in `lang` (None: any) passing `filters`."""

    lang: str | None = None
    filters: Filters = field(default_factory=Filters)

    @property
    def everything(self) -> bool:
        return self.lang is None and self.filters == Filters()


@dataclass(frozen=True, slots=True)
class Candidates:
    """One query's candidate lists, each {row: score} best first.

    `dense`: the best rows by passage vector (a pool of `pool` rows; fusion uses its first
    `k`); `lexical`: the best rows by BM25 (k); `sentences`: among the dense pool and the
    lexical rows, the k whose best-matching sentence is closest to the query."""

    dense: RankedList
    lexical: RankedList
    sentences: RankedList


@dataclass(frozen=True, slots=True)
class Ask:
    """Queries whose candidates are wanted among the rows passing `where`."""

    vectors: Matrix
    terms: Sequence[Sequence[str]]
    where: Where


class SearchSource(Protocol):
    """Passages a search ranks, by integer row."""

    def is_empty(self, where: Where) -> bool:
        """True when no live passage passes `where`."""
        ...

    def candidates(
        self, asks: Sequence[Ask], mode: Mode, k: int, pool: int, sentences: bool,
    ) -> list[list[Candidates]]:
        """Per ask, per query, its candidates among the rows passing the ask's `where`: dense
        (a pool of `pool`) unless `mode` is lexical, lexical (k) unless it is dense, and with
        `sentences` the k best by sentence over the dense pool and the lexical rows. Asks are
        independent: a remote source answers them all in one round trip."""
        ...

    def passing(self, rows: Iterable[int], where: Where) -> set[int]:
        """The rows among `rows` that pass `where`."""
        ...

    def aligned(self, rows: Iterable[int]) -> dict[int, list[int]]:
        """Each row's aligned rows in its document's other language version (absent: none)."""
        ...

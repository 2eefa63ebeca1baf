"""Writes: turning an upsert or a delete into one commit of only what changed.

An upsert embeds the new or changed documents into one new segment, marks the versions they
replace as deleted, and realigns the releases it touched: documents of the new segment carry
their links, documents of older segments get theirs in a link overlay. A delete only marks and
relinks. After each commit the merge policy may merge small segments into one (another
commit). The caller holds the write locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.records import Document, PreparedDocument
from index.store.commit import Change, commit
from index.store.manifest import BuildInfo, Manifest
from index.store.merge import MergePolicy, merge_segments
from index.store.reader import snapshot_of
from index.store.realign import realign_releases
from index.store.segment import DocLinks, build_segment
from index.store.snapshot import DocKey, Snapshot

log = logging.getLogger(__name__)

Prepare = Callable[[list[Document]], list[PreparedDocument]]


@dataclass(frozen=True, slots=True)
class UpsertReport:
    """What an upsert did, by doc_id."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    passages: int = 0
    # Passages of each added or replaced document (a caller that batched several requests into
    # one upsert splits the report by these).
    passage_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexState:
    """The committed manifest (None: nothing yet) and its snapshot, as a writer sees them."""

    data_dir: Path
    manifest: Manifest | None
    snapshot: Snapshot


def _after(state: IndexState, change: Change, info: BuildInfo, switch: bool) -> IndexState:
    """Commit `change` on `state` and open the result, reusing the segments already open."""
    opened = {s.name: (s, d) for s, d in zip(state.snapshot.segments, state.snapshot.deleted,
                                              strict=True)}
    manifest, _ = commit(state.data_dir, state.manifest, opened, change, info, switch=switch)
    reuse = {s.name: s for s in state.snapshot.segments}
    return IndexState(state.data_dir, manifest, snapshot_of(state.data_dir, manifest, reuse))


def _relinked(
    snapshot: Snapshot, releases: set[str], fresh: Sequence[PreparedDocument],
    gone: set[DocKey],
) -> tuple[dict[str, PreparedDocument], dict[tuple[str, int], DocLinks]]:
    """Realign `releases` as they will be after the commit: `fresh` documents (new versions)
    and the live ones of older segments not in `gone`. Returns the fresh documents with their
    links, and the newer links of the older documents."""
    fresh_ids = {p.doc_id for p in fresh}
    versions: dict[str, PreparedDocument] = {p.doc_id: p for p in fresh}
    older: dict[str, DocKey] = {}
    for release in releases:
        for key in snapshot.release_keys(release):
            doc_id = snapshot.segments[key[0]].doc_ids[key[1]]
            if doc_id not in fresh_ids and key not in gone:
                older[doc_id] = key
                versions[doc_id] = snapshot.prepared(key)
    aligned = realign_releases(versions, releases)
    links = {
        (snapshot.segments[key[0]].name, key[1]): DocLinks(
            aligned[doc_id].counterpart_doc, aligned[doc_id].counterparts.astype(np.float32),
            aligned[doc_id].sentence_counterparts.astype(np.float32),
        )
        for doc_id, key in older.items()
    }
    return {d: aligned[d] for d in fresh_ids}, links


def upsert(
    state: IndexState, documents: Sequence[Document], prepare: Prepare,
    info: Callable[[], BuildInfo], ann_min_rows: int, *, switch: bool = True,
) -> tuple[UpsertReport, IndexState]:
    """Add or replace `documents` (the last of a doc_id wins) in one commit; unchanged content
    is skipped. `info` is asked only when something is to be written (it may load the model).
    Returns the report and the state after the commit (`state` if nothing changed).
    """
    snapshot = state.snapshot
    latest = {doc.doc_id: doc for doc in documents}
    report = UpsertReport()
    todo: list[Document] = []
    gone: set[DocKey] = set()
    for doc in latest.values():
        key = snapshot.key_of(doc.doc_id)
        if key is not None and snapshot.content_hash(key) == doc.content_hash:
            report.unchanged.append(doc.doc_id)
            continue
        (report.replaced if key is not None else report.added).append(doc.doc_id)
        todo.append(doc)
        if key is not None:
            gone.add(key)
    if not todo:
        return report, state
    built = info()
    prepared = prepare(todo)
    releases = {doc.release_id for doc in todo} | {snapshot.release_of(k) for k in gone}
    fresh, links = _relinked(snapshot, releases, prepared, gone)
    segment = build_segment("new", [fresh[p.doc_id] for p in prepared], built.dim, ann_min_rows)
    change = Change(add=[segment], delete=_by_segment(snapshot, gone), links=links)
    after = _after(state, change, built, switch)
    counts = {p.doc_id: len(p.spans) for p in prepared}
    return (
        UpsertReport(report.added, report.replaced, report.unchanged, sum(counts.values()),
                     counts),
        after,
    )


def delete(
    state: IndexState, doc_ids: Sequence[str], info: BuildInfo
) -> tuple[list[str], IndexState]:
    """Mark documents deleted and relink what is left of their releases, in one commit."""
    snapshot = state.snapshot
    keys = {d: snapshot.key_of(d) for d in dict.fromkeys(doc_ids)}
    gone = {key for key in keys.values() if key is not None}
    removed = [d for d, key in keys.items() if key is not None]
    if not removed:
        return [], state
    releases = {snapshot.release_of(k) for k in gone}
    _, links = _relinked(snapshot, releases, [], gone)
    change = Change(delete=_by_segment(snapshot, gone), links=links)
    return removed, _after(state, change, info, switch=True)


def _by_segment(snapshot: Snapshot, keys: set[DocKey]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for seg, doc in sorted(keys):
        out.setdefault(snapshot.segments[seg].name, []).append(doc)
    return out


def merge_as_needed(
    state: IndexState, policy: MergePolicy, info: BuildInfo, ann_min_rows: int,
    *, switch: bool = True, limit: int = 8,
) -> IndexState:
    """Merge while the policy asks for it (at most `limit` merges), one commit each."""
    for _ in range(limit):
        if state.manifest is None:
            return state
        plan = policy.plan(state.manifest.segments)
        if plan is None:
            return state
        state = merge(state, plan, info, ann_min_rows, switch=switch)
    return state


def merge(
    state: IndexState, names: Sequence[str], info: BuildInfo, ann_min_rows: int,
    *, switch: bool = True,
) -> IndexState:
    """Merge the named segments' live documents into one new segment, in one commit."""
    snapshot = state.snapshot
    wanted = set(names)
    parts = [(s, d) for s, d in zip(snapshot.segments, snapshot.deleted, strict=True)
             if s.name in wanted]
    merged = merge_segments(parts, snapshot.overlays, ann_min_rows)
    log.info("merging %d segments (%d passages)", len(parts), merged.n_rows)
    return _after(state, Change(add=[merged], drop=frozenset(wanted)), info, switch)

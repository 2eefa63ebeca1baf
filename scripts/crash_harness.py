"""Kill ingest with SIGKILL at many moments; after each kill the index must show exactly the
documents of the last completed commit (or of the commit in flight, if CURRENT had switched).

Each trial forks a child from this process (the libraries and jieba's dictionary are already
loaded, so a kill costs no Python start-up) that runs a few commits on the same data directory,
which every trial inherits from the one before, leftovers included: upserts of a corpus of a
few hundred synthetic bilingual documents (a large one as a bulk ingest, committed in small
batches as `qiao ingest` does), replacements, deletions and merges of every segment. The child
is killed either by itself at the N-th occurrence of a write step (`set_write_step_hook`), or
by this process after a random delay. The child appends the document set (doc_id → content
hash) it is about to commit ("intent") and, once the commit has returned, the one it committed
("done") to a side file. After the kill, `verify_data_dir` must find no violation and a fresh
`Retriever` must show the last "done" set — or the "intent" after it, when the kill came after
the CURRENT switch. A disk-full round then injects OSError(ENOSPC) before each write step
in-process.

    .venv/bin/python scripts/crash_harness.py [--step-rounds 4] [--random-kills 50]
        [--docs 300] [--seed 7] [--json reports/crash.json]

The embedder is the tests' deterministic fake: crash safety does not depend on the model, and
each kill then costs milliseconds instead of a model load.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import mmap
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import faiss

# Run as a script, the repository root is not on sys.path; the fake embedder lives in tests/.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from index import (  # noqa: E402
    WRITE_STEPS,
    Analyzer,
    CommitFailed,
    Document,
    IndexSettings,
    QiaoError,
    Retriever,
    current_name,
    set_write_step_hook,
    verify_data_dir,
)
from tests.fakes import FakeEmbedder  # noqa: E402

DocSet = dict[str, str]  # doc_id → content hash
COMMIT_STEPS = WRITE_STEPS
BEFORE_SWITCH = set(COMMIT_STEPS[: COMMIT_STEPS.index("switch") + 1])
OPS_PER_TRIAL = 2

_EN = (
    "The district opened a new {0} service near the river on Monday.",
    "Officials said the {0} programme will reach {1} residents by the end of the year.",
    "Funding for the {0} project comes from the municipal budget and private partners.",
    "Residents can apply online or at the service centre in the {0} building.",
    "The next briefing on {0} is planned for the autumn, the spokesperson said.",
)
_ZH = (
    "本区周一在河边开通了新的{0}服务。",
    "官员表示，{0}项目到年底将惠及{1}名居民。",
    "{0}项目的资金来自市级预算和社会合作伙伴。",
    "居民可以在线申请，也可以到{0}大楼的服务中心办理。",
    "发言人说，下一次关于{0}的新闻发布会计划在秋季举行。",
)
_TOPICS_EN = ("ferry", "library", "clinic", "metro", "park", "school", "market", "bridge")
_TOPICS_ZH = ("渡轮", "图书馆", "诊所", "地铁", "公园", "学校", "市场", "桥梁")


@dataclass(frozen=True, slots=True)
class Op:
    """One commit: upsert `documents`, delete `doc_ids`, or merge every segment (`merge`)."""

    documents: tuple[Document, ...] = ()
    doc_ids: tuple[str, ...] = ()
    merge: bool = False

    @property
    def kind(self) -> str:
        return "merge" if self.merge else "upsert" if self.documents else "delete"

    def apply(self, retriever: Retriever) -> None:
        if self.merge:
            assert retriever.manifest is not None
            names = [s.name for s in retriever.manifest.segments]
            if len(names) > 1:
                retriever.merge(names)
        elif self.documents:
            retriever.upsert(self.documents)
        else:
            retriever.delete(self.doc_ids)

    def after(self, state: DocSet) -> DocSet:
        """The document set once this commit is done."""
        out = {d: h for d, h in state.items() if d not in self.doc_ids}
        out.update({doc.doc_id: doc.content_hash for doc in self.documents})
        return out


BULK_BATCH = 6  # documents per commit of a bulk ingest in the harness


def as_commits(ops: list[Op]) -> list[Op]:
    """Each op as the commits it makes: a large upsert is a bulk ingest, one commit per batch
    of BULK_BATCH documents (what `Retriever.upsert_many` does)."""
    out: list[Op] = []
    for op in ops:
        if len(op.documents) > 2 * BULK_BATCH:
            docs = op.documents
            out += [Op(documents=docs[i : i + BULK_BATCH]) for i in range(0, len(docs),
                                                                         BULK_BATCH)]
        else:
            out.append(op)
    return out


def make_corpus(n_docs: int, seed: int) -> list[Document]:
    """`n_docs` documents: releases in English and Chinese, a few sentences each."""
    rng = random.Random(seed)
    docs: list[Document] = []
    for i in range((n_docs + 1) // 2):
        topic = rng.randrange(len(_TOPICS_EN))
        people = rng.randrange(100, 90000)
        picks = rng.sample(range(len(_EN)), k=rng.randint(2, len(_EN)))
        en = " ".join(_EN[p].format(_TOPICS_EN[topic], people) for p in picks)
        zh = "".join(_ZH[p].format(_TOPICS_ZH[topic], people) for p in picks)
        release = f"release-{i:04d}"
        docs.append(Document(f"{release}.en", release, "en", f"Notice {i}", en, "2024-05-01"))
        docs.append(Document(f"{release}.zh", release, "zh", f"通知{i}", zh, "2024-05-01"))
    return docs[:n_docs]


def plan_ops(rng: random.Random, state: DocSet, corpus: list[Document], n: int) -> list[Op]:
    """The next `n` commits: add unseen documents while there are any, then replace or delete."""
    ops: list[Op] = []
    present = set(state)
    for _ in range(n):
        unseen = [d for d in corpus if d.doc_id not in present]
        if present and rng.random() < 0.15:
            ops.append(Op(merge=True))
            continue
        if unseen and rng.random() < 0.8:
            batch = unseen[: rng.randint(15, 40)]
        elif present and rng.random() < 0.3:
            gone = rng.sample(sorted(present), k=min(len(present), rng.randint(1, 6)))
            ops.append(Op(doc_ids=tuple(gone)))
            present -= set(gone)
            continue
        else:
            chosen = rng.sample(corpus, k=rng.randint(3, 12))
            batch = [replace(d, text=f"{d.text} Update {rng.randrange(10**6)}.") for d in chosen]
        ops.append(Op(documents=tuple(batch)))
        present |= {d.doc_id for d in batch}
    return ops


@dataclass(frozen=True, slots=True)
class KillPlan:
    """Kill at the `occurrence`-th time the child reaches write step `step`, or (step None)
    after `delay` seconds."""

    step: str | None
    occurrence: int = 1
    delay: float = 0.0


@dataclass
class HarnessReport:
    kills: int = 0
    step_kills: Counter[str] = field(default_factory=Counter)
    random_landed: Counter[str] = field(default_factory=Counter)  # where random kills hit
    outcomes: Counter[str] = field(default_factory=Counter)  # "last done" / "in flight"
    op_kills: Counter[str] = field(default_factory=Counter)  # kills by kind of commit
    unkilled: int = 0  # random delays longer than the child's work
    max_leftover_dirs: int = 0
    disk_full_steps: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        # asdict would rebuild each Counter from (key, value) pairs, counting the pairs.
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Harness:
    """One data directory, the corpus, and the state every check compares against."""

    def __init__(self, data_dir: Path, n_docs: int, seed: int) -> None:
        self.data_dir = data_dir
        self.embedder = FakeEmbedder()
        self.analyzer = Analyzer()
        self.analyzer.terms("warm up jieba 预热分词")  # load the dictionary before forking
        self.settings = IndexSettings(data_dir=data_dir, model_dir=data_dir.parent / "models")
        self.corpus = make_corpus(n_docs, seed)
        self.rng = random.Random(seed)
        self.state: DocSet = {}
        self.report = HarnessReport()
        self.log_path = data_dir.parent / "commits.jsonl"
        # Where the child is (step name), readable after it died: shared anonymous memory.
        self.where = mmap.mmap(-1, 64)

    def open(self) -> Retriever:
        return Retriever.open(
            settings=self.settings, embedder=self.embedder, analyzer=self.analyzer
        )

    def seed_index(self) -> None:
        first = self.corpus[:20]
        self.retriever = self.open()
        self.retriever.upsert(first)
        self.state = {d.doc_id: d.content_hash for d in first}

    # -- the child ---------------------------------------------------------------------------

    def _mark(self, label: str) -> None:
        self.where.seek(0)
        self.where.write(label.encode().ljust(64)[:64])

    def _run_child(self, ops: list[Op], plan: KillPlan | None) -> None:
        """In the forked child: run the commits, reporting each; never returns."""
        code = 0
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        seen: Counter[str] = Counter()

        def on_step(step: str) -> None:
            self._mark(step)
            seen[step] += 1
            if step == "cleanup":  # CURRENT has switched: this commit is visible from now on
                os.write(log, b'{"switched": true}\n')
            if plan is not None and step == plan.step and seen[step] == plan.occurrence:
                os.kill(os.getpid(), signal.SIGKILL)

        def report(kind: str, docs: DocSet) -> None:
            # One write() of a whole line to an O_APPEND file survives the process being killed.
            os.write(log, (json.dumps({kind: docs}) + "\n").encode())

        try:
            set_write_step_hook(on_step)
            retriever = self.retriever  # opened by the parent's check: no load per kill
            state = dict(self.state)
            for op in as_commits(ops):
                state = op.after(state)
                report("intent", state)
                os.write(log, (json.dumps({"op": op.kind}) + "\n").encode())
                self._mark("prepare")
                op.apply(retriever)
                self._mark("returned")
                report("done", {d.doc_id: d.content_hash for d in retriever.documents()})
        except BaseException as exc:  # anything at all must reach the parent, not pytest
            os.write(log, (json.dumps({"error": repr(exc)}) + "\n").encode())
            code = 3
        finally:
            os._exit(code)

    # -- one trial ---------------------------------------------------------------------------

    def trial(self, plan: KillPlan | None) -> None:
        """Fork a child running the next commits, kill it as planned (None: let it finish),
        and check the data directory."""
        ops = plan_ops(self.rng, self.state, self.corpus, OPS_PER_TRIAL)
        self._mark("fork")
        pid = os.fork()
        if pid == 0:
            self._run_child(ops, plan)
        if plan is not None and plan.step is None:
            time.sleep(plan.delay)
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        landed = bytes(self.where[:64]).decode().strip()
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        label = "unkilled" if plan is None else f"{plan.step or 'random'}#{plan.occurrence}"
        events = read_events(self.log_path)
        errors = [e["error"] for e in events if "error" in e]
        if errors:
            self.report.violations.append(f"{label}: the child failed: {errors[0]}")
        if plan is None:
            pass
        elif not killed:
            # A step the commits of this trial never reached (a delete writes no segment):
            # the plan is tried again later.
            self.report.unkilled += 1
        else:
            self.report.kills += 1
            kinds = [e["op"] for e in events if "op" in e]
            self.report.op_kills[kinds[-1] if kinds else "none"] += 1
            if plan.step is None:
                self.report.random_landed[landed] += 1
            else:
                self.report.step_kills[plan.step] += 1
        self._check(label, plan, events, killed)

    def _check(
        self, label: str, plan: KillPlan | None, events: list[dict[str, DocSet]], killed: bool
    ) -> None:
        last_done, in_flight, switched = self.state, None, False
        for event in events:
            if "done" in event:
                last_done, in_flight, switched = event["done"], None, False
            elif "intent" in event:
                in_flight, switched = event["intent"], False
            elif "switched" in event:
                # An upsert's own commit landed; a merge it runs next may still be killed.
                switched = True
        report = verify_data_dir(self.data_dir)
        self.report.violations += [f"{label}: {v}" for v in report.violations]
        self.report.max_leftover_dirs = max(self.report.max_leftover_dirs,
                                            len(leftovers(self.data_dir)))
        try:
            retriever = self.retriever = self.open()
        except QiaoError as exc:
            self.report.violations.append(f"{label}: cannot open after the kill: {exc}")
            return
        shown = {d.doc_id: d.content_hash for d in retriever.documents()}
        for doc in retriever.documents():
            for p in retriever.passages(doc.doc_id):
                if doc.text[p.start : p.end] != p.text or not p.text:
                    self.report.violations.append(f"{label}: bad span in {doc.doc_id}")
        if shown == last_done:
            outcome = "last done"
        elif in_flight is not None and shown == in_flight:
            outcome = "in flight"
        else:
            self.report.violations.append(
                f"{label}: shows {len(shown)} documents, neither the last completed commit "
                f"({len(last_done)}) nor the one in flight"
            )
            outcome = "wrong"
        # A kill at or before the switch of CURRENT must leave the old state; after it, the new.
        step = plan.step if plan is not None and killed else None
        if step in BEFORE_SWITCH and not switched and outcome != "last done":
            self.report.violations.append(f"{label}: the commit became visible before CURRENT")
        if (step == "cleanup" or switched) and killed and outcome != "in flight" and (
            in_flight is not None and in_flight != last_done
        ):
            self.report.violations.append(f"{label}: the switched commit was lost")
        if killed:
            self.report.outcomes[outcome] += 1
        self.state = shown

    # -- disk full ---------------------------------------------------------------------------

    def disk_full_round(self) -> None:
        """OSError(ENOSPC) before each step up to the switch: old state intact, nothing left."""
        for step in [s for s in COMMIT_STEPS if s in BEFORE_SWITCH]:

            def full(name: str, step: str = step) -> None:
                if name == step:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            retriever = self.open()
            generation = retriever.generation
            ops = [Op(documents=tuple(
                replace(d, text=f"{d.text} Full {step}.") for d in self.corpus[:3]))]
            before = listing(self.data_dir)
            set_write_step_hook(full)
            try:
                ops[0].apply(retriever)
                self.report.violations.append(f"ENOSPC at {step}: the commit did not fail")
            except CommitFailed as exc:
                if "No space left" not in str(exc) or "\n" in str(exc):
                    self.report.violations.append(f"ENOSPC at {step}: unclear error {exc}")
            finally:
                set_write_step_hook(None)
            after = listing(self.data_dir)
            # Nothing new may remain. Files may go: a killed writer's garbage (files of the
            # generation it never committed) has the names this attempt writes, and the
            # attempt removes what it wrote when it fails. That nothing committed went is
            # checked below: the index reopens to the same documents and verifies clean.
            added = sorted(set(after) - set(before))
            if added or current_name(self.data_dir) != generation:
                self.report.violations.append(f"ENOSPC at {step}: left {added}")
            reopened = {d.doc_id: d.content_hash for d in self.open().documents()}
            if reopened != self.state or verify_data_dir(self.data_dir).violations:
                self.report.violations.append(f"ENOSPC at {step}: the old state is not intact")
            self.report.disk_full_steps.append(step)

    def final_commit(self) -> None:
        """One clean commit removes every leftover and keeps at most two generations."""
        retriever = self.open()
        ops = plan_ops(self.rng, self.state, self.corpus, 1)
        ops[0].apply(retriever)
        self.state = ops[0].after(self.state)
        manifests = sorted(p.name for p in (self.data_dir / "manifests").iterdir())
        if leftovers(self.data_dir) or len(manifests) > 2:
            self.report.violations.append(
                f"after a clean commit the directory holds {leftovers(self.data_dir)} and "
                f"manifests {manifests}")


def read_events(path: Path) -> list[dict[str, DocSet]]:
    """The child's log. A kill can cut its last line short (a write of several pages stops at a
    page when a fatal signal is pending): that line was not reported, and is left out."""
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return events


def listing(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))


def leftovers(data_dir: Path) -> list[str]:
    """Temporary files and folders a killed writer left (its unnamed finished files are not
    told apart here: `verify` and the final clean commit check those)."""
    return [n for n in listing(data_dir) if any(part.startswith(".") and part != ".lock"
                                                   for part in Path(n).parts)]


def run_harness(
    data_dir: Path,
    *,
    step_rounds: int = 4,
    random_kills: int = 50,
    n_docs: int = 300,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
) -> HarnessReport:
    """Run the kills (every write step `step_rounds` times, alternating the first and second
    commit of a trial, plus `random_kills` random delays), the disk-full round and a final clean
    commit on a new `data_dir`; returns counts and any violations."""
    faiss.omp_set_num_threads(1)  # no OpenMP thread pool in a process that forks
    started = time.perf_counter()
    harness = Harness(data_dir, n_docs, seed)
    harness.seed_index()
    t0 = time.perf_counter()
    harness.trial(None)  # calibration: how long a whole trial takes
    span = time.perf_counter() - t0
    plans = [
        KillPlan(step, occurrence=1 + (r % 2)) for r in range(step_rounds) for step in COMMIT_STEPS
    ]
    plans += [KillPlan(None, delay=harness.rng.uniform(0.0, span)) for _ in range(random_kills)]
    harness.rng.shuffle(plans)
    retries = 0
    while plans and retries < 10 * len(COMMIT_STEPS) * step_rounds:
        plan = plans.pop()
        kills = harness.report.kills
        harness.trial(plan)
        if plan.step is not None and harness.report.kills == kills:
            plans.insert(0, KillPlan(plan.step))  # not reached this time: again, later
            retries += 1
        done = harness.report.kills
        if progress and done % 20 == 0:
            progress(f"{done} kills, {len(plans)} trials to go")
    for step in COMMIT_STEPS:
        if harness.report.step_kills[step] < step_rounds:
            harness.report.violations.append(f"write step {step} was never reached enough")
    # A random delay may outlive the child's work; make up for those with shorter delays.
    for _ in range(2 * random_kills):
        if sum(harness.report.random_landed.values()) >= random_kills:
            break
        harness.trial(KillPlan(None, delay=harness.rng.uniform(0.0, span / 2)))
    if verify_data_dir(data_dir).ok:  # a broken directory was reported above; stop there
        harness.disk_full_round()
        harness.final_commit()
    harness.report.seconds = round(time.perf_counter() - started, 1)
    return harness.report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step-rounds", type=int, default=4, help="kills per write step")
    parser.add_argument("--random-kills", type=int, default=50)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qiao-crash-") as tmp:
        report = run_harness(
            Path(tmp) / "data",
            step_rounds=args.step_rounds,
            random_kills=args.random_kills,
            n_docs=args.docs,
            seed=args.seed,
            progress=lambda msg: print(msg, file=sys.stderr),
        )
    print(f"kills: {report.kills} in {report.seconds} s", end=" ")
    print(f"({report.unkilled} random delays outlived the child)")
    print(f"at write steps: {dict(sorted(report.step_kills.items()))}")
    print(f"random kills landed in: {dict(report.random_landed.most_common())}")
    print(f"kills by commit: {dict(report.op_kills)}")
    print(f"state after a kill: {dict(report.outcomes)}", end="; ")
    print(f"most leftover dirs at once: {report.max_leftover_dirs}")
    print(f"disk full injected before: {', '.join(report.disk_full_steps)}")
    print(f"violations: {len(report.violations)}")
    for violation in report.violations:
        print(f"  {violation}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_json(), indent=2))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()

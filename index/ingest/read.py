"""Files → `Document`s: decoding, per-format reading, metadata defaults and validation.

`read_paths` never raises for bad input: it returns every valid document and one `Problem`
per thing it could not use, so one bad file never stops a batch. `Document.text` is the
file's text exactly as given (only CRLF / lone CR become LF); for HTML it is the main text
extracted by trafilatura. All later offsets refer to that text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import trafilatura
import yaml
from trafilatura.settings import Document as TrafilaturaDocument

from index.errors import DocumentError
from index.ingest.langdetect import detect_lang
from index.records import LANGS, Document, Lang

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "Problem",
    "decode_text",
    "detect_lang",
    "read_paths",
    "read_text_file",
    "title_from_text",
    "validate_id",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 2**20
MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 200
SIDECAR_SUFFIX = ".meta.json"

Kind = Literal["text", "markdown", "html", "jsonl"]
SUPPORTED_SUFFIXES: dict[str, Kind] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
}
_SUFFIX_LIST = ", ".join(SUPPORTED_SUFFIXES)

# Which metadata keys each source may carry. Front matter and JSONL lines often hold extra
# keys of other tools (tags, author): those are ignored. The sidecar is Qiao's own format,
# so an unknown key there is a typo and is reported.
_FRONT_MATTER_KEYS = frozenset({"release_id", "doc_id", "lang", "title", "date", "url"})
_JSONL_KEYS = _FRONT_MATTER_KEYS | {"text"}
_JSONL_REQUIRED = ("release_id", "title", "text")
_SIDECAR_KEYS = frozenset({"release_id", "title", "date", "url"})
_SIDECAR_LANG_KEYS = frozenset({"title", "date", "url"})

# Bytes that never occur in text files (all C0 controls except tab, LF, VT, FF, CR; DEL).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\v\f\r") + b"\x7f"
BINARY_CONTROL_SHARE = 0.1
_UTF8_BOM = b"\xef\xbb\xbf"

_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S | re.M)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ATX_HEADING = re.compile(r"#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
# A line of short cells between pipes, e.g. "| 中文版 |" or "| Home | About |": navigation
# links or a table rule left over from a web page, never a title.
_NAV_LINE = re.compile(r"\|(?:[^|]{0,20}\|)+")
_TITLE_SCAN_LINES = 100


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that was not read: `message` says what is wrong and what to do, in one line."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class _Rejected(DocumentError):
    """One file, line or document is unusable; carries the 1-based line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _show(value: str) -> str:
    # repr() escapes control characters, so a message always stays on one line.
    return repr(value if len(value) <= 60 else value[:60] + "…")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


# --- bytes → str --------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 bytes (BOM optional, dropped) → str with CRLF and lone CR turned into LF.

    Raises `DocumentError` for empty, binary, UTF-16, non-UTF-8 or whitespace-only input.
    """
    if not data:
        raise _Rejected("empty file (0 bytes): add text to it or remove it")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _Rejected("UTF-16 text: save it as UTF-8")
    if b"\x00" in data:
        raise _Rejected("binary file, not text (it contains NUL bytes): convert it to .txt or .md")
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if controls > BINARY_CONTROL_SHARE * len(data):
        raise _Rejected(
            f"binary file, not text ({controls} of {len(data)} bytes are control characters): "
            "convert it to .txt or .md"
        )
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        text = str(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise _Rejected(f"not UTF-8 text (byte {offset}): convert it to UTF-8", line) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():
        raise _Rejected("the file contains only whitespace: add text to it or remove it")
    return text


def read_text_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The decoded text of `path` (see `decode_text`); files over `max_bytes` are not read."""
    if not path.is_file():
        raise _Rejected("not a regular file: give a file or a directory")
    size = path.stat().st_size
    too_big = (
        f"too large ({_size(size)}; the limit is {_size(max_bytes)}): split it into smaller files"
    )
    if size > max_bytes:
        raise _Rejected(too_big)
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise _Rejected(too_big)
    return decode_text(data)


# --- metadata fields ----------------------------------------------------------------------


def _string_fields(
    raw: Mapping[str, object], allowed: frozenset[str], *, strict: bool, context: str = ""
) -> dict[str, str]:
    """Keep the allowed keys of `raw` as strings; None means absent. YAML dates become ISO text."""
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if key not in allowed:
            if strict:
                raise _Rejected(f"unknown field {_show(str(key))}{context}: use {sorted(allowed)}")
            log.debug("ignoring metadata field %r", key)
            continue
        if value is None:
            continue
        if isinstance(value, dt.date):  # YAML turns 2023-09-05 into a date; datetimes too
            value = value.isoformat()
        if not isinstance(value, str):
            kind = {bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
                type(value), "an object"
            )
            raise _Rejected(
                f"field {key!r}{context} must be a string, not {kind}: put it in quotes"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Rejected(
                f"field {key!r}{context} contains an unpaired surrogate escape"
            ) from None
        if "\x00" in value:  # as in a file, where a NUL byte means binary data, not text
            raise _Rejected(
                f"field {key!r}{context} contains NUL characters (\\u0000): remove them"
            )
        fields[key] = value
    return fields


def validate_id(value: str, what: str = "doc_id") -> str:
    """Return `value` if it is safe as an id in URLs and file names, else raise `DocumentError`."""
    bad = ""
    if not value:
        bad = "is empty"
    elif len(value) > MAX_ID_CHARS:
        bad = f"is longer than {MAX_ID_CHARS} characters"
    elif value in (".", "..") or "/" in value or "\\" in value:
        bad = "must not be '.' or '..' or contain '/' or '\\'"
    elif value != value.strip():
        bad = "must not start or end with whitespace"
    elif any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        bad = "must not contain control characters"
    if bad:
        raise _Rejected(f"{what} {_show(value)} {bad}: choose another {what}")
    return value


def _validate_lang(value: str) -> Lang:
    for lang in LANGS:
        if value == lang:
            return lang
    raise _Rejected(f'lang {_show(value)} is not supported: use "en" or "zh"')


def _validate_date(value: str) -> str:
    try:
        if _ISO_DATE.fullmatch(value):
            dt.date.fromisoformat(value)
            return value
    except ValueError:
        pass  # a well-formed but impossible date such as 2023-02-30: same message below
    raise _Rejected(f"date {_show(value)} is not a valid date YYYY-MM-DD: write it like 2023-09-05")


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.isprintable()


def _validate_url(value: str) -> str:
    # The URL becomes a link on the search page: only web addresses, never javascript: etc.
    if not _is_web_url(value) or any(ch.isspace() for ch in value):
        raise _Rejected(f"url {_show(value)} is not an http(s) address: write it like https://…")
    return value


def title_from_text(text: str) -> str | None:
    """The first line of `text` that reads like a title, without Markdown '#', ≤ 200 chars.

    Lines without letters or digits ("---") and pipe-delimited navigation ("| 中文版 |") are
    skipped. Only the first 100 lines are looked at; None when none qualifies.
    """
    pos = 0
    for _ in range(_TITLE_SCAN_LINES):
        end = text.find("\n", pos)
        line = (text[pos:] if end < 0 else text[pos:end]).strip()
        heading = _ATX_HEADING.fullmatch(line)
        if heading:
            line = (heading.group(1) or "").strip()
        if any(ch.isalnum() for ch in line) and not _NAV_LINE.fullmatch(line):
            if len(line) > MAX_TITLE_CHARS:
                line = line[: MAX_TITLE_CHARS - 1].rstrip() + "…"
            return line
        if end < 0:
            break
        pos = end + 1
    return None


# --- the file-name convention and sidecars -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FileName:
    """`NAME.en.EXT` / `NAME.zh.EXT` → (NAME, lang); any other `NAME.EXT` → (NAME, None)."""

    release: str
    lang: Lang | None
    sidecar: Path

    @classmethod
    def of(cls, path: Path) -> _FileName:
        stem = path.name[: len(path.name) - len(path.suffix)]
        base, dot, marker = stem.rpartition(".")
        lang = next((lang for lang in LANGS if lang == marker.lower()), None)
        if dot and base and lang:
            return cls(base, lang, path.with_name(base + SIDECAR_SUFFIX))
        return cls(stem, None, path.with_name(stem + SIDECAR_SUFFIX))


@dataclass(frozen=True, slots=True)
class _Sidecar:
    """Release metadata from `NAME.meta.json`; a per-language block overrides the top level."""

    common: dict[str, str]
    per_lang: dict[str, dict[str, str]]

    def fields_for(self, lang: Lang) -> dict[str, str]:
        return {**self.common, **self.per_lang.get(lang, {})}


def _load_sidecar(path: Path, max_bytes: int) -> _Sidecar:
    text = read_text_file(path, max_bytes)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Rejected(f"invalid JSON in metadata file ({err.msg}): fix it", err.lineno) from None
    if not isinstance(raw, dict):
        raise _Rejected('metadata file must be a JSON object like {"title": …, "en": {…}}')
    common = {key: value for key, value in raw.items() if key not in LANGS}
    per_lang: dict[str, dict[str, str]] = {}
    for lang in LANGS:
        block = raw.get(lang)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise _Rejected(f'"{lang}" in the metadata file must be an object like {{"title": …}}')
        per_lang[lang] = _string_fields(
            block, _SIDECAR_LANG_KEYS, strict=True, context=f' in "{lang}"'
        )
    return _Sidecar(_string_fields(common, _SIDECAR_KEYS, strict=True), per_lang)


# --- one document from text and metadata ----------------------------------------------------


def _assemble(
    text: str,
    *,
    given: Mapping[str, str],
    sidecar: _Sidecar | None = None,
    guessed: Mapping[str, str] | None = None,
    name: _FileName | None = None,
    lang_hint: Lang | None = None,
) -> Document:
    """Resolve metadata (given > sidecar > guessed > file name > derived) and validate it."""
    if not text or text.isspace():
        raise _Rejected("the document has no text: add text or remove it")
    if "lang" in given:
        lang = _validate_lang(given["lang"])
    else:
        lang = (name.lang if name else None) or lang_hint or detect_lang(text)
    fields = {**(guessed or {}), **(sidecar.fields_for(lang) if sidecar else {}), **given}
    default_release = name.release if name else ""
    release_id = validate_id(fields.get("release_id", default_release), "release_id")
    doc_id = validate_id(fields.get("doc_id", f"{release_id}.{lang}"), "doc_id")
    if "title" in fields:
        title = fields["title"]
        if not title.strip():
            raise _Rejected("title is empty: give a title or remove the field")
    else:
        title = title_from_text(text) or release_id
    date = _validate_date(fields["date"]) if "date" in fields else None
    url = _validate_url(fields["url"]) if "url" in fields else None
    return Document(doc_id, release_id, lang, title, text, date, url)


def _split_front_matter(text: str) -> tuple[str, dict[str, str]]:
    """Markdown → (body exactly as in the file after the front matter, front-matter fields)."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return text, {}
    try:
        raw = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None  # +1 for the '---' line, +1 for 1-based
        detail = getattr(err, "problem", None) or type(err).__name__
        raise _Rejected(
            f"bad YAML front matter ({detail}): fix the lines between '---'", line
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _Rejected("front matter must be 'key: value' lines between '---' lines: fix it")
    fields = _string_fields(raw, _FRONT_MATTER_KEYS, strict=False)
    return text[match.end() :], fields


def _lang_of_tag(value: object) -> Lang | None:
    primary = str(value or "").split("-")[0].split("_")[0].strip().lower()
    return next((lang for lang in LANGS if lang == primary), None)


def _extract_html(source: str) -> tuple[str, dict[str, str], Lang | None]:
    """HTML → (main text, metadata trafilatura found, language of <html lang>)."""
    tree = trafilatura.utils.load_html(source)
    if tree is None:
        raise _Rejected("could not parse the HTML: check that the file is a web page")
    lang = _lang_of_tag(tree.getroottree().getroot().get("lang"))
    result = trafilatura.bare_extraction(
        tree,
        with_metadata=True,
        include_comments=False,
        # Only dates written in the markup: the "extensive" search guesses from any number.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if not isinstance(result, TrafilaturaDocument) or not result.text or result.text.isspace():
        raise _Rejected("no main text found in the HTML: save the article text as .txt or .md")
    text: str = result.text
    # What trafilatura found is a guess: keep the values that are valid, drop the rest.
    guessed: dict[str, str] = {}
    title = str(result.title or "").strip()
    if title:
        guessed["title"] = title[:MAX_TITLE_CHARS]
    date = str(result.date or "")
    if _ISO_DATE.fullmatch(date):
        guessed["date"] = date
    url = str(result.url or "")
    if _is_web_url(url):
        guessed["url"] = url
    return text, guessed, lang


def _documents_from_jsonl(
    path: Path, text: str
) -> tuple[list[tuple[Document, int]], list[Problem]]:
    """One document per non-blank line; a bad line is a `Problem` and the others are kept."""
    documents: list[tuple[Document, int]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise _Rejected(
                    f"invalid JSON ({err.msg} at column {err.colno}): fix the line"
                ) from None
            if not isinstance(raw, dict):
                raise _Rejected('each line must be a JSON object like {"release_id": …}')
            missing = [key for key in _JSONL_REQUIRED if raw.get(key) is None]
            if missing:
                raise _Rejected(
                    f"missing field {', '.join(missing)}: each line needs release_id, title, text"
                )
            fields = _string_fields(raw, _JSONL_KEYS, strict=False)
            body = fields.pop("text")
            if "\r" in body:
                body = body.replace("\r\n", "\n").replace("\r", "\n")
            documents.append((_assemble(body, given=fields), number))
        except _Rejected as err:
            problems.append(Problem(str(path), number, str(err)))
    return documents, problems


# --- walking the inputs --------------------------------------------------------------------


def _is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIX)


def _walk(root: Path, problems: list[Problem]) -> list[Path]:
    """Files under `root`, sorted, without hidden files or directories."""

    def unreadable(err: OSError) -> None:
        problems.append(Problem(str(err.filename or root), None, f"cannot read: {err.strerror}"))

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return found


def _collect(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[Problem]]:
    """Expand `paths` → (document files, sidecar files, problems), each file once."""
    documents: list[Path] = []
    sidecars: list[Path] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            entries = _walk(path, problems)
            if not entries:
                problems.append(Problem(str(path), None, "no files found in this directory"))
        elif path.exists():
            entries = [path]
        else:
            problems.append(Problem(str(path), None, "no such file or directory: check the path"))
            continue
        for entry in entries:
            key = os.path.realpath(entry)
            if key in seen:
                continue
            seen.add(key)
            if _is_sidecar(entry):
                sidecars.append(entry)
            elif entry.suffix.lower() in SUPPORTED_SUFFIXES:
                documents.append(entry)
            else:
                problems.append(Problem(str(entry), None, _unsupported(entry)))
    return documents, sidecars, problems


def _unsupported(path: Path) -> str:
    suffix = path.suffix or "(no extension)"
    return f"unsupported file type {suffix}: Qiao reads {_SUFFIX_LIST}; convert it or move it away"


class _SidecarCache:
    """Reads each `NAME.meta.json` once and remembers which ones some document claimed."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._loaded: dict[str, _Sidecar | _Rejected | None] = {}
        self.claimed: set[str] = set()

    def get(self, path: Path) -> _Sidecar | None:
        key = os.path.realpath(path)
        self.claimed.add(key)
        if key not in self._loaded:
            try:
                self._loaded[key] = _load_sidecar(path, self._max_bytes) if path.is_file() else None
            except _Rejected as err:
                self._loaded[key] = err
        loaded = self._loaded[key]
        if isinstance(loaded, _Rejected):
            raise loaded
        return loaded


def _read_file(
    path: Path, kind: Kind, max_bytes: int, sidecars: _SidecarCache
) -> tuple[list[tuple[Document, int | None]], list[Problem]]:
    if kind == "jsonl":
        found, problems = _documents_from_jsonl(path, read_text_file(path, max_bytes))
        return [(doc, line) for doc, line in found], problems
    name = _FileName.of(path)
    try:
        sidecar = sidecars.get(name.sidecar)
    except _Rejected as err:
        why = f"{err}; {path.name} was not read"
        return [], [Problem(str(name.sidecar), err.line, why)]
    text = read_text_file(path, max_bytes)
    if kind == "markdown":
        body, given = _split_front_matter(text)
        if not body or body.isspace():
            raise _Rejected("no text after the front matter: add the document's text")
        document = _assemble(body, given=given, sidecar=sidecar, name=name)
    elif kind == "html":
        body, guessed, lang = _extract_html(text)
        document = _assemble(
            body, given={}, sidecar=sidecar, guessed=guessed, name=name, lang_hint=lang
        )
    else:
        document = _assemble(text, given={}, sidecar=sidecar, name=name)
    return [(document, None)], []


def read_paths(
    paths: Sequence[Path],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Document], list[Problem]]:
    """Read files and directories (recursively, sorted, hidden entries skipped) into documents.

    Returns the valid documents and a `Problem` for every file, line or document that was not
    used; a batch with problems still returns all good documents. When two documents share a
    `doc_id` the later one is kept. `progress(done, total)` is called after each file.
    """
    files, sidecar_files, problems = _collect(paths)
    sidecars = _SidecarCache(max_bytes)
    chosen: dict[str, tuple[Document, str, int | None]] = {}
    for done, path in enumerate(files, start=1):
        try:
            found, file_problems = _read_file(
                path, SUPPORTED_SUFFIXES[path.suffix.lower()], max_bytes, sidecars
            )
        except _Rejected as err:
            found, file_problems = [], [Problem(str(path), err.line, str(err))]
        except OSError as err:
            found, file_problems = [], [Problem(str(path), None, f"cannot read: {err.strerror}")]
        problems.extend(file_problems)
        for document, line in found:
            earlier = chosen.pop(document.doc_id, None)
            if earlier is not None:
                later = str(path) if line is None else f"{path}:{line}"
                message = (
                    f"duplicate doc_id {_show(document.doc_id)}: also in {later}; "
                    "the later one was used"
                )
                problems.append(Problem(earlier[1], earlier[2], message))
            chosen[document.doc_id] = (document, str(path), line)
        if progress is not None:
            progress(done, len(files))
    for path in sidecar_files:
        if os.path.realpath(path) not in sidecars.claimed:
            base = path.name[: -len(SIDECAR_SUFFIX)]
            message = (
                f"metadata file with no document beside it: name the documents "
                f"{base}.en.EXT / {base}.zh.EXT, or remove it"
            )
            problems.append(Problem(str(path), None, message))
    log.debug("read %d files: %d documents, %d problems", len(files), len(chosen), len(problems))
    return [document for document, _, _ in chosen.values()], problems

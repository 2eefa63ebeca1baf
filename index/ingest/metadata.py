"""Document metadata: validating ids, languages, dates and URLs; the `NAME.en.txt` file-name
convention and `NAME.meta.json` sidecars; and putting text and metadata together into a
`Document` (given > sidecar > guessed > file name > derived)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import urlsplit

from index.ingest.langdetect import detect_lang
from index.ingest.problems import Rejected, show
from index.records import LANGS, Document, Lang

log = logging.getLogger(__name__)

MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 200
SIDECAR_SUFFIX = ".meta.json"

# Which metadata keys each source may carry. Front matter and JSONL lines often hold extra
# keys of other tools (tags, author): those are ignored. The sidecar is Qiao's own format,
# so an unknown key there is a typo and is reported.
FRONT_MATTER_KEYS = frozenset({"release_id", "doc_id", "lang", "title", "date", "url"})
RECORD_KEYS = FRONT_MATTER_KEYS | {"text"}
RECORD_REQUIRED = ("release_id", "title", "text")
_SIDECAR_KEYS = frozenset({"release_id", "title", "date", "url"})
_SIDECAR_LANG_KEYS = frozenset({"title", "date", "url"})

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ATX_HEADING = re.compile(r"#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
# A line of short cells between pipes, e.g. "| 中文版 |" or "| Home | About |": navigation
# links or a table rule left over from a web page, never a title.
_NAV_LINE = re.compile(r"\|(?:[^|]{0,20}\|)+")
_TITLE_SCAN_LINES = 100


def string_fields(
    raw: Mapping[str, object], allowed: frozenset[str], *, strict: bool, context: str = ""
) -> dict[str, str]:
    """Keep the allowed keys of `raw` as strings; None means absent. YAML dates become ISO text."""
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if key not in allowed:
            if strict:
                raise Rejected(f"unknown field {show(str(key))}{context}: use {sorted(allowed)}")
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
            raise Rejected(
                f"field {key!r}{context} must be a string, not {kind}: put it in quotes"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(
                f"field {key!r}{context} contains an unpaired surrogate escape"
            ) from None
        if "\x00" in value:  # as in a file, where a NUL byte means binary data, not text
            raise Rejected(
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
        raise Rejected(f"{what} {show(value)} {bad}: choose another {what}")
    return value


def validate_lang(value: str) -> Lang:
    for lang in LANGS:
        if value == lang:
            return lang
    raise Rejected(f'lang {show(value)} is not supported: use "en" or "zh"')


def validate_date(value: str) -> str:
    try:
        if ISO_DATE.fullmatch(value):
            dt.date.fromisoformat(value)
            return value
    except ValueError:
        pass  # a well-formed but impossible date such as 2023-02-30: same message below
    raise Rejected(f"date {show(value)} is not a valid date YYYY-MM-DD: write it like 2023-09-05")


def is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.isprintable()


def validate_url(value: str) -> str:
    # The URL becomes a link on the search page: only web addresses, never javascript: etc.
    if not is_web_url(value) or any(ch.isspace() for ch in value):
        raise Rejected(f"url {show(value)} is not an http(s) address: write it like https://…")
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


@dataclass(frozen=True, slots=True)
class FileName:
    """`NAME.en.EXT` / `NAME.zh.EXT` → (NAME, lang); any other `NAME.EXT` → (NAME, None)."""

    release: str
    lang: Lang | None
    sidecar: str  # the label of the sidecar file beside it

    @classmethod
    def of(cls, label: str) -> FileName:
        path = PurePath(label)
        stem = path.name[: len(path.name) - len(path.suffix)]
        base, dot, marker = stem.rpartition(".")
        lang = next((lang for lang in LANGS if lang == marker.lower()), None)
        if dot and base and lang:
            return cls(base, lang, str(path.with_name(base + SIDECAR_SUFFIX)))
        return cls(stem, None, str(path.with_name(stem + SIDECAR_SUFFIX)))


@dataclass(frozen=True, slots=True)
class Sidecar:
    """Release metadata from `NAME.meta.json`; a per-language block overrides the top level."""

    common: dict[str, str]
    per_lang: dict[str, dict[str, str]]

    def fields_for(self, lang: Lang) -> dict[str, str]:
        return {**self.common, **self.per_lang.get(lang, {})}


def is_sidecar(label: str) -> bool:
    return label.lower().endswith(SIDECAR_SUFFIX)


def parse_sidecar(text: str) -> Sidecar:
    """The release metadata of a `NAME.meta.json` file's text; Rejected when it is not valid."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise Rejected(f"invalid JSON in metadata file ({err.msg}): fix it", err.lineno) from None
    if not isinstance(raw, dict):
        raise Rejected('metadata file must be a JSON object like {"title": …, "en": {…}}')
    common = {key: value for key, value in raw.items() if key not in LANGS}
    per_lang: dict[str, dict[str, str]] = {}
    for lang in LANGS:
        block = raw.get(lang)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise Rejected(f'"{lang}" in the metadata file must be an object like {{"title": …}}')
        per_lang[lang] = string_fields(
            block, _SIDECAR_LANG_KEYS, strict=True, context=f' in "{lang}"'
        )
    return Sidecar(string_fields(common, _SIDECAR_KEYS, strict=True), per_lang)


# Prose breaks at a space or a punctuation mark every few dozen characters, in either language.
# A longer run is data (base64, a hash dump, minified code): it would be cut into hundreds of
# meaningless passages and take minutes to embed.
MAX_UNBROKEN_CHARS = 1000
_UNBROKEN = re.compile(
    "[^\\s!-/:-@\\[-`{-~\u00a0-\u00bf\u2000-\u206f\u3000-\u303f\uff00-\uff0f\uff1a-\uff20]"
    f"{{{MAX_UNBROKEN_CHARS + 1},}}"
)


def check_breaks(text: str) -> None:
    """Refuse text with a run of more than MAX_UNBROKEN_CHARS characters with no space or
    punctuation."""
    run = _UNBROKEN.search(text)
    if run is not None:
        raise Rejected(
            f"{len(run.group())} characters with no space or punctuation at character "
            f"{run.start()}: this is data, not prose (a file with embedded binary or one long "
            "token); remove that part or the file", text.count("\n", 0, run.start()) + 1)


def assemble(
    text: str,
    *,
    given: Mapping[str, str],
    sidecar: Sidecar | None = None,
    guessed: Mapping[str, str] | None = None,
    name: FileName | None = None,
    lang_hint: Lang | None = None,
    pages: tuple[int, ...] | None = None,
) -> Document:
    """Resolve metadata (given > sidecar > guessed > file name > derived) and validate it."""
    if not text or text.isspace():
        raise Rejected("the document has no text: add text or remove it")
    check_breaks(text)
    if "lang" in given:
        lang = validate_lang(given["lang"])
    else:
        lang = (name.lang if name else None) or lang_hint or detect_lang(text)
    fields = {**(guessed or {}), **(sidecar.fields_for(lang) if sidecar else {}), **given}
    default_release = name.release if name else ""
    release_id = validate_id(fields.get("release_id", default_release), "release_id")
    doc_id = validate_id(fields.get("doc_id", f"{release_id}.{lang}"), "doc_id")
    if "title" in fields:
        title = fields["title"]
        if not title.strip():
            raise Rejected("title is empty: give a title or remove the field")
    else:
        title = title_from_text(text) or release_id
    date = validate_date(fields["date"]) if "date" in fields else None
    url = validate_url(fields["url"]) if "url" in fields else None
    return Document(doc_id, release_id, lang, title, text, date, url, pages)

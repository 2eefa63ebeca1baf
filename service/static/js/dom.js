// Building the page: elements, text with exact code-point offsets, highlights, metadata lines.
// Text from documents is only ever inserted as text nodes, never parsed as HTML.
//
// API offsets are code points (Python str indices); JS strings index UTF-16 code units, so
// every slice goes through `codePointCuts`.
import { label } from "./i18n.js";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** UTF-16 indices of the code-point offsets `cuts` (ascending) in `text`; null if one is
 *  past the end. The API counts code points, JS strings count UTF-16 units. */
export function codePointCuts(text, cuts) {
  const out = [];
  let unit = 0;
  let point = 0;
  for (const cut of cuts) {
    while (point < cut) {
      if (unit >= text.length) return null;
      const c = text.charCodeAt(unit);
      const pair = c >= 0xd800 && c <= 0xdbff && unit + 1 < text.length &&
        (text.charCodeAt(unit + 1) & 0xfc00) === 0xdc00;
      unit += pair ? 2 : 1;
      point += 1;
    }
    out.push(unit);
  }
  return out;
}

export function codePointLength(text) {
  return Array.from(text).length;
}

export function isOffset(value) {
  return Number.isInteger(value) && value >= 0;
}

// A blank line between paragraphs (with any spaces around it).
const PARAGRAPH_BREAK = /(\n[^\S\n]*\n\s*)/;
// A list marker at a line start: hidden, and drawn as a bullet by the stylesheet.
const LIST_MARKER = /^[-*+•]$/;

/** Append `text` to `parent` as text nodes, each paragraph break in a span.gap so the
 *  stylesheet can render hard-wrapped text as flowing paragraphs. The DOM's textContent
 *  stays exactly `text`. */
function appendPlain(parent, text) {
  text.split(PARAGRAPH_BREAK).forEach((part, i) => {
    if (!part) return;
    if (i % 2 === 1) parent.append(el("span", "gap", part));
    else parent.append(part);
  });
}

/** Append `text`, which starts at code point `offset` of its document, hiding the API's
 *  Markdown `markup` ranges (document offsets) in span.md: the reader sees the text without
 *  `**` or `# ` while textContent, and so every highlight and copy, stays the exact text. */
export function appendText(parent, text, markup = [], offset = 0) {
  const length = codePointLength(text);
  const inside = (markup || [])
    .map(([a, b]) => [Math.max(a - offset, 0), Math.min(b - offset, length)])
    .filter(([a, b]) => a < b);
  const units = inside.length ? codePointCuts(text, inside.flat()) : null;
  if (units === null) {
    appendPlain(parent, text);
    return;
  }
  let at = 0;
  for (let i = 0; i < units.length; i += 2) {
    appendPlain(parent, text.slice(at, units[i]));
    const hidden = text.slice(units[i], units[i + 1]);
    const span = el("span", LIST_MARKER.test(hidden) ? "md md-bullet" : "md", hidden);
    span.setAttribute("aria-hidden", "true");
    parent.append(span);
    at = units[i + 1];
  }
  appendPlain(parent, text.slice(at));
}

/** Fill `container` with `text` (at code point `offset` of its document, with the API's
 *  `markup` ranges hidden), wrapping code points [start, end) of `text` in a <mark>.
 *  Returns the mark, or null (text shown plain) when the span does not fit. */
export function fillHighlighted(container, text, start, end, markClass, markup = [], offset = 0) {
  container.replaceChildren();
  const units = isOffset(start) && isOffset(end) && start < end
    ? codePointCuts(text, [start, end]) : null;
  if (units === null) {
    appendText(container, text, markup, offset);
    return null;
  }
  const mark = el("mark", markClass);
  appendText(mark, text.slice(units[0], units[1]), markup, offset + start);
  appendText(container, text.slice(0, units[0]), markup, offset);
  container.append(mark);
  appendText(container, text.slice(units[1]), markup, offset + end);
  return mark;
}

/** Fill `container` with an API passage (`text`, `start`, `markup`), highlighting `span`
 *  (document offsets, with its `text`). Only what the API says the span is gets highlighted:
 *  a stale span shows the passage plain. Returns the mark or null. */
export function fillSpan(container, passage, span, markClass) {
  const { text, start, markup } = passage;
  if (span && span.start >= start) {
    const mark = fillHighlighted(container, text, span.start - start, span.end - start,
      markClass, markup, start);
    if (!mark || mark.textContent === span.text) return mark;
  }
  container.replaceChildren();
  appendText(container, text, markup, start);
  return null;
}

/** A passage as one quotable line: hard wraps and runs of spaces become one space, and a
 *  line break between two CJK characters disappears (Chinese has no spaces). Paragraphs (a
 *  heading and its text) stay apart by a space, never glued together. */
export function tidyQuote(text) {
  return text
    .split(/\n[^\S\n]*\n\s*/)
    .map((paragraph) => paragraph
      .replace(/([\u3000-\u9fff\uff00-\uffef])[^\S\n]*\n\s*(?=[\u3000-\u9fff\uff00-\uffef])/g, "$1")
      .replace(/\s+/g, " ")
      .trim())
    .filter(Boolean)
    .join(" ");
}

export function badge(lang) {
  return label(el("span", `badge badge-${lang}`), `badge_${lang === "zh" ? "zh" : "en"}`);
}

export function safeHttpUrl(url) {
  // Only http(s) links: a "javascript:" URL in a document's metadata must never be clickable.
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

export function metaLine(lang, date, url) {
  const meta = el("p", "meta");
  meta.append(badge(lang));
  if (date) {
    const time = el("time", null, date);
    if (/^\d{4}-\d{2}-\d{2}$/.test(date)) time.dateTime = date;
    meta.append(" ", time);
  }
  const href = safeHttpUrl(url);
  if (href) {
    const a = el("a", "source", new URL(href).host);
    a.href = href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    meta.append(" ", a);
  } else if (url) meta.append(" ", el("span", "source", url));
  return meta;
}

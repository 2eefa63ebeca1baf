// URLs: every view is addressable, so it can be shared and the back button works.
//   /?q=QUERY&lang=en|zh                    results (lang absent = both languages)
//   /?doc=ID&start=S&end=E[&other=ID2&ostart=S2&oend=E2][&q=…&lang=…]
//                                           a document with text[S:E] highlighted; `other` is
//                                           the aligned passage in the other language version.
import { isOffset } from "./dom.js";
import { label } from "./i18n.js";

let showRoute = () => {};

/** What `navigate` calls to show the view of the current URL (set once by main.js). */
export function setRouteHandler(handler) {
  showRoute = handler;
}

export function normLang(value) {
  return value === "en" || value === "zh" ? value : "";
}

function intParam(params, name) {
  const raw = params.get(name);
  return raw !== null && /^\d+$/.test(raw) ? Number(raw) : null;
}

export function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const base = { q: params.get("q"), lang: normLang(params.get("lang")) };
  if (params.get("doc")) {
    return {
      view: "doc", ...base, doc: params.get("doc"),
      start: intParam(params, "start"), end: intParam(params, "end"),
      other: params.get("other"), ostart: intParam(params, "ostart"),
      oend: intParam(params, "oend"),
    };
  }
  return { view: "search", ...base };
}

export function searchUrl(q, lang) {
  const params = new URLSearchParams({ q });
  if (lang) params.set("lang", lang);
  return `/?${params}`;
}

export function docUrl(target) {
  const params = new URLSearchParams({ doc: target.doc });
  if (isOffset(target.start) && isOffset(target.end)) {
    params.set("start", target.start);
    params.set("end", target.end);
  }
  if (target.other) {
    params.set("other", target.other);
    if (isOffset(target.ostart) && isOffset(target.oend)) {
      params.set("ostart", target.ostart);
      params.set("oend", target.oend);
    }
  }
  if (target.q) params.set("q", target.q);
  if (target.lang) params.set("lang", target.lang);
  return `/?${params}`;
}

export function isCurrentUrl(url) {
  return url === window.location.pathname + window.location.search;
}

export function navigate(url) {
  if (!isCurrentUrl(url)) window.history.pushState(null, "", url);
  showRoute();
}

/** A click that should stay in this page (not a middle click or "open in new tab"). */
export function isPlainClick(event) {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey &&
    !event.altKey;
}

export function linkTo(url, key) {
  const a = document.createElement("a");
  a.href = url;
  label(a, key);
  a.addEventListener("click", (event) => {
    if (!isPlainClick(event)) return;
    event.preventDefault();
    navigate(url);
  });
  return a;
}

// The search view: the query box, the result cards (passage with its answer sentence, the
// aligned passage of the other version beside it) and the answer above them.
import { ApiFailure, api, failureMessage, postJson } from "./api.js";
import { appendText, badge, el, fillSpan, isOffset, metaLine, tidyQuote } from "./dom.js";
import { ariaLabel, label, setStatus, setTitleSubject, t } from "./i18n.js";
import {
  docUrl, isCurrentUrl, isPlainClick, linkTo, navigate, normLang, searchUrl,
} from "./router.js";
import { ANSWER_K, RESULTS_K, SLOW_MS, els, state } from "./state.js";

export function setLangControl(lang) {
  for (const radio of els.langRadios) radio.checked = radio.value === lang;
}

function chosenLang() {
  const checked = els.langRadios.find((radio) => radio.checked);
  return checked ? normLang(checked.value) : "";
}

function showSearchView() {
  els.doc.hidden = true;
  els.start.hidden = true;
  els.results.hidden = false;
  els.answer.hidden = els.answerText.childNodes.length === 0;
  els.noAnswer.hidden = !state.noAnswer;
  state.docSeq += 1; // a document still loading must not appear over the results
}

export function showSearch(q, lang) {
  showSearchView();
  els.q.value = q || "";
  setLangControl(lang);
  setTitleSubject(q);
  const rendered = state.rendered;
  if (rendered && rendered.q === q && rendered.lang === lang) {
    // Back from a document: the results are still in the DOM.
    const cards = els.results.children;
    if (state.lastOpened >= 0 && state.lastOpened < cards.length) {
      cards[state.lastOpened].focus();
    }
    state.lastOpened = -1;
    return;
  }
  if (q === null) {
    clearResults();
    setStatus("idle", null);
    showStart();
    return;
  }
  runSearch(q, lang);
}

// -- the start state: what the index holds, and searches to try ----------------------------------

const START_EXAMPLES = 4;

async function showStart() {
  const seq = state.searchSeq;
  let summary;
  try {
    summary = await api("/v1/summary");
  } catch (_) {
    return; // the start state is a courtesy: a failure here is reported by the first search
  }
  if (seq !== state.searchSeq || !els.doc.hidden || els.q.value) return;
  const langs = Object.keys(summary.languages || {}).sort();
  const dates = summary.date_from
    ? (summary.date_from === summary.date_to ? summary.date_from
      : `${summary.date_from} – ${summary.date_to}`)
    : "";
  const names = langs.map((l) => t(l === "zh" ? "langZh" : "langEn", [])).join(" · ");
  if (dates) label(els.startSummary, "startSummary", summary.releases, summary.documents, names, dates);
  else label(els.startSummary, "startSummaryUndated", summary.releases, summary.documents, names);
  // The newest titles in the page's language first: each is a search to try.
  const titles = (summary.newest || [])
    .sort((a, b) => (a.lang === state.uiLang ? 0 : 1) - (b.lang === state.uiLang ? 0 : 1))
    .map((d) => d.title)
    .filter((title, i, all) => title && all.indexOf(title) === i)
    .slice(0, START_EXAMPLES);
  els.startExamples.replaceChildren(...titles.map((title) => {
    const item = el("li");
    const link = el("a", null, title);
    link.href = searchUrl(title, "");
    link.addEventListener("click", (event) => {
      if (!isPlainClick(event)) return;
      event.preventDefault();
      navigate(link.href);
    });
    item.append(link);
    return item;
  }));
  els.start.hidden = summary.documents === 0;
}

function clearResults() {
  if (state.searchAbort) state.searchAbort.abort();
  state.searchSeq += 1;
  state.rendered = null;
  els.results.replaceChildren();
  els.results.removeAttribute("aria-busy");
  els.results.classList.remove("is-loading");
  clearAnswer();
}

async function runSearch(q, lang) {
  if (!q.trim()) {
    clearResults();
    setStatus("info", "emptyQuery");
    els.q.focus();
    return;
  }
  if (state.searchAbort) state.searchAbort.abort();
  const abort = new AbortController();
  state.searchAbort = abort;
  const seq = ++state.searchSeq;
  const current = () => seq === state.searchSeq;
  state.rendered = null;
  clearAnswer();
  state.noAnswer = false;
  els.noAnswer.hidden = true;
  els.results.setAttribute("aria-busy", "true");
  const slow = window.setTimeout(() => {
    if (!current()) return;
    els.results.classList.add("is-loading");
    setStatus("loading", "searching");
  }, SLOW_MS);
  const payload = { query: q, k: RESULTS_K, lang: lang || null };
  // The answer is asked for at the same time; it is shown only once the results are.
  const answer = fetchAnswer(q, lang, abort.signal);
  try {
    const body = await postJson("/v1/search", payload, abort.signal);
    if (!current()) return;
    const results = Array.isArray(body && body.results) ? body.results : [];
    renderResults(q, lang, results);
    // The server judged that nothing answers: say so above the weak matches.
    state.noAnswer = results.length > 0 && body.answerable === false;
    els.noAnswer.hidden = !state.noAnswer;
    if (results.length === 0) setStatus("info", "noResults", q);
    else {
      const ms = Math.round(Number(body.took_ms) || 0);
      setStatus("ok", results.length === 1 ? "resultsCountOne" : "resultsCount",
        results.length, q, ms);
      answer.then((shown) => {
        if (current() && shown) renderAnswer(shown, lang);
      });
    }
  } catch (error) {
    if (!current() || abort.signal.aborted) return;
    els.results.replaceChildren();
    setStatus("error", ...failureMessage(error));
  } finally {
    window.clearTimeout(slow);
    if (current()) {
      els.results.removeAttribute("aria-busy");
      els.results.classList.remove("is-loading");
    }
  }
}

export function submitSearch(route) {
  const q = els.q.value;
  const lang = chosenLang();
  if (!q.trim()) {
    runSearch(q, lang); // shows the empty-query message; nothing to put in the URL
    return;
  }
  const url = searchUrl(q, lang);
  state.rendered = null; // Enter on the same query searches again
  if (isCurrentUrl(url)) {
    window.history.replaceState(null, "", url);
    route();
  } else navigate(url);
}

// -- copying a citation --------------------------------------------------------------------------

function copyButton(citation) {
  const button = label(el("button", "copy"), "copyCitation");
  button.type = "button";
  button.addEventListener("click", async () => {
    const ok = await copyText(citationText(citation));
    setStatus(ok ? "ok" : "error", ok ? "copied" : "copyFailed");
  });
  return button;
}

function citationText(c) {
  const source = [c.title, c.date].filter(Boolean).join(", ");
  return [`“${tidyQuote(c.text)}”`, `— ${source}`, c.url || ""].filter(Boolean).join("\n");
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // permission refused: fall through to the selection-based copy
    }
  }
  // Plain-http intranet pages have no Clipboard API: copy a selected, off-screen textarea.
  const area = el("textarea", "offscreen");
  area.value = text;
  area.setAttribute("readonly", "");
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {
    ok = false;
  }
  area.remove();
  return ok;
}

// -- result cards --------------------------------------------------------------------------------

function renderResults(q, lang, results) {
  const cards = results.map((result, i) => resultCard(result, i, q, lang));
  els.results.replaceChildren(...cards);
  state.rendered = { q, lang, results };
  state.lastOpened = -1;
}

function resultCard(r, index, q, lang) {
  const cp = r.counterpart;
  const target = {
    doc: r.doc_id, start: r.start, end: r.end, q, lang,
    other: cp ? cp.doc_id : null, ostart: cp ? cp.start : null, oend: cp ? cp.end : null,
  };
  const card = el("li", "result");
  card.tabIndex = -1;
  card.dataset.docId = r.doc_id;
  card.dataset.start = r.start;
  card.dataset.end = r.end;
  card.dataset.url = docUrl(target);
  ariaLabel(card, "resultLabel", index + 1, r.title);

  const main = el("section", "passage passage-main");
  const title = el("h3", "title", r.title);
  title.lang = r.lang;
  const meta = metaLine(r.lang, r.date, r.url);
  if (Number.isInteger(r.page)) meta.append(" ", label(el("span", "page"), "pageN", r.page));
  main.append(title, meta);
  const text = el("p", "passage-text");
  text.lang = r.lang;
  const mark = fillSpan(text, r, r.answer, "hl");
  main.append(text);
  const actions = el("div", "actions");
  actions.append(linkTo(docUrl(target), "showInDocument"),
    copyButton({ title: r.title, date: r.date, url: r.url, text: r.text }));
  main.append(actions);
  card.append(main);
  card.append(cp ? counterpartSide(r, cp, q, lang) : missingCounterpart());
  if (mark) card.dataset.answer = "1";
  return card;
}

// Below this counterpart confidence the page warns that the span may not be the translation.
const LOW_CONFIDENCE = 0.5;

function counterpartSide(r, cp, q, lang) {
  const side = el("section", "passage passage-counterpart");
  const heading = el("p", "cp-heading");
  heading.append(label(el("span", "cp-label"), "alignedPassage"));
  const cpTitle = el("span", "cp-title", cp.title || "");
  cpTitle.lang = cp.lang;
  heading.append(" ", cpTitle);
  side.append(heading);
  const cpMeta = el("p", "meta");
  cpMeta.append(badge(cp.lang));
  side.append(cpMeta);
  if (typeof cp.confidence === "number" && cp.confidence < LOW_CONFIDENCE) {
    // The versions are not parallel here: say so rather than pass it off as the translation.
    side.append(label(el("p", "hint cp-unsure"), "unsureCounterpart"));
  }
  const cpText = el("p", "passage-text");
  // The translation of the highlighted answer sentence, when the alignment is sure of it.
  fillSpan(cpText, cp, cp.answer, "hl hl-counterpart");
  cpText.lang = cp.lang;
  side.append(cpText);
  const cpTarget = {
    doc: cp.doc_id, start: cp.start, end: cp.end, other: r.doc_id, ostart: r.start,
    oend: r.end, q, lang,
  };
  const cpActions = el("div", "actions");
  cpActions.append(linkTo(docUrl(cpTarget), "showInDocument"), copyButton({
    title: cp.title || r.title, date: r.date, url: cp.url || r.url, text: cp.text,
  }));
  side.append(cpActions);
  return side;
}

function missingCounterpart() {
  const side = el("section", "passage passage-counterpart passage-missing");
  side.append(label(el("p", "hint"), "noCounterpart"));
  return side;
}

export function openCard(card) {
  state.lastOpened = Array.prototype.indexOf.call(els.results.children, card);
  navigate(card.dataset.url);
}

// -- the answer (POST /v1/answer, optional) ------------------------------------------------------

/** The answer to show, or null. A 502/504 (the LLM failed) carries an extractive
 *  `fallback` answer, which is shown instead. */
async function fetchAnswer(q, lang, signal) {
  if (!state.answerEndpoint) return null;
  try {
    const body = await postJson("/v1/answer", { question: q, lang: lang || null, k: ANSWER_K },
      signal);
    return answerOf(body);
  } catch (error) {
    if (!(error instanceof ApiFailure)) return null;
    // No answer endpoint on this server: the results stand alone, and we stop asking.
    if (error.status === 404 || error.status === 405) state.answerEndpoint = false;
    return error.body && error.body.fallback ? answerOf(error.body.fallback) : null;
  }
}

function answerOf(body) {
  if (!body || typeof body.answer !== "string" || !body.answer.trim()) return null;
  const citations = (Array.isArray(body.citations) ? body.citations : []).filter((c) =>
    c && Number.isInteger(c.n) && typeof c.doc_id === "string" && isOffset(c.start) &&
    isOffset(c.end) && c.start < c.end && typeof c.text === "string");
  return { answer: body.answer, lang: normLang(body.lang), citations };
}

function clearAnswer() {
  els.answerText.replaceChildren();
  els.answerSources.replaceChildren();
  els.answer.hidden = true;
}

function renderAnswer(answer, lang) {
  const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
  const q = state.rendered && state.rendered.q;
  els.answerText.replaceChildren();
  if (answer.lang) els.answerText.lang = answer.lang;
  // "[n]" with a known n becomes a button; anything else stays the characters it is.
  for (const part of answer.answer.split(/(\[\d+\])/)) {
    const match = /^\[(\d+)\]$/.exec(part);
    const citation = match && byNumber.get(Number(match[1]));
    if (citation) {
      const button = el("button", "cite", part);
      button.type = "button";
      ariaLabel(button, "citationLabel", citation.n, citation.title || citation.doc_id);
      button.addEventListener("click", () => openCitation(citation, lang));
      els.answerText.append(button);
    } else if (part) appendText(els.answerText, part);
  }
  els.answerSources.replaceChildren(...answer.citations.map((c) => {
    const item = el("li", "answer-source");
    item.id = `cite-${c.n}`;
    const number = el("button", "cite", `[${c.n}]`);
    number.type = "button";
    ariaLabel(number, "citationLabel", c.n, c.title || c.doc_id);
    number.addEventListener("click", () => openCitation(c, lang));
    const title = el("span", "answer-source-title", c.title || c.doc_id);
    item.append(number, " ", title, " ", linkTo(docUrl({
      doc: c.doc_id, start: c.start, end: c.end, q, lang,
    }), "showInDocument"));
    return item;
  }));
  els.answer.hidden = false;
}

/** Scroll to the result that holds the cited span, or open the document at it. */
function openCitation(c, lang) {
  const card = Array.prototype.find.call(els.results.children, (node) =>
    node.dataset.docId === c.doc_id && Number(node.dataset.start) <= c.start &&
    c.end <= Number(node.dataset.end));
  if (card) {
    card.scrollIntoView({ block: "center" });
    card.focus({ preventScroll: true });
    card.classList.remove("flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("flash");
    return;
  }
  navigate(docUrl({ doc: c.doc_id, start: c.start, end: c.end,
    q: state.rendered && state.rendered.q, lang }));
}

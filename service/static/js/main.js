// Qiao's search page. Plain JS modules, no dependencies and no build step: it reads the URL,
// calls the JSON API and builds the DOM with createElement/textContent only. Nothing that
// comes from a document (titles, passages, URLs) is ever parsed as HTML.
//
//   strings.js  the page's words in English and Chinese     state.js   shared state, constants
//   i18n.js     UI language, labels, the status line         dom.js     elements, exact offsets
//   api.js      the JSON API                                 router.js  URLs and navigation
//   results.js  the search view and the answer               document.js the document view
//   main.js     start-up, routing and the keyboard
import { showDocument } from "./document.js";
import { applyUiLang, initialUiLang, switchUiLang } from "./i18n.js";
import { openCard, showSearch, submitSearch } from "./results.js";
import { isPlainClick, navigate, readUrl, setRouteHandler } from "./router.js";
import { els, state } from "./state.js";

function route() {
  const target = readUrl();
  if (target.view === "doc") showDocument(target);
  else showSearch(target.q, target.lang);
}

function isTypingIn(node) {
  if (!(node instanceof HTMLElement)) return false;
  if (node.isContentEditable || node.tagName === "TEXTAREA" || node.tagName === "SELECT") {
    return true;
  }
  return node.tagName === "INPUT" &&
    !["radio", "checkbox", "button", "submit"].includes(node.type);
}

function onKeyDown(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (event.key === "/" && !isTypingIn(target)) {
    event.preventDefault();
    els.q.focus();
    els.q.select();
    return;
  }
  if (els.results.hidden) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    // Radio buttons use the arrows themselves; elsewhere only the box and the results do.
    if (target !== els.q && !els.results.contains(target)) return;
    const cards = Array.from(els.results.children);
    if (cards.length === 0) return;
    const card = target instanceof Element ? target.closest(".result") : null;
    const index = card ? cards.indexOf(card) : -1;
    const next = index + (event.key === "ArrowDown" ? 1 : -1);
    event.preventDefault();
    if (next < 0) els.q.focus();
    else cards[Math.min(next, cards.length - 1)].focus();
    return;
  }
  if (event.key === "Enter" && target instanceof Element && target.classList.contains("result")) {
    event.preventDefault();
    openCard(target);
  }
}

function start() {
  for (const id of ["q", "status", "results", "answer", "doc", "search", "start"]) {
    els[id] = document.getElementById(id);
  }
  els.uiLang = document.getElementById("ui-lang");
  els.startSummary = document.getElementById("start-summary");
  els.startExamples = document.getElementById("start-examples");
  els.answerText = document.getElementById("answer-text");
  els.noAnswer = document.getElementById("no-answer");
  els.answerSources = document.getElementById("answer-sources");
  els.docBack = document.getElementById("doc-back");
  els.docToggle = document.getElementById("doc-toggle");
  els.docTitle = document.getElementById("doc-title");
  els.docMeta = document.getElementById("doc-meta");
  els.docText = document.getElementById("doc-text");
  els.langRadios = Array.from(document.querySelectorAll('input[name="lang"]'));

  setRouteHandler(route);
  state.uiLang = initialUiLang();
  applyUiLang();
  els.uiLang.addEventListener("click", switchUiLang);
  els.search.addEventListener("submit", (event) => {
    event.preventDefault();
    submitSearch(route);
  });
  for (const radio of els.langRadios) {
    radio.addEventListener("change", () => {
      if (els.q.value.trim()) submitSearch(route);
    });
  }
  els.results.addEventListener("click", (event) => {
    // A click on the card's free space (not a link, button or selected text) opens it.
    const card = event.target instanceof Element ? event.target.closest(".result") : null;
    if (!card || event.target.closest("a, button")) return;
    if (String(window.getSelection() || "")) return;
    card.focus();
  });
  els.docBack.addEventListener("click", (event) => {
    if (!isPlainClick(event)) return;
    event.preventDefault();
    navigate(els.docBack.getAttribute("href"));
  });
  document.getElementById("home").addEventListener("click", (event) => {
    if (!isPlainClick(event)) return;
    event.preventDefault();
    navigate("/");
    els.q.focus();
  });
  document.addEventListener("keydown", onKeyDown);
  window.addEventListener("popstate", route);
  route();
  if (readUrl().view === "search") els.q.focus();
}

// Module scripts run after the document is parsed.
start();

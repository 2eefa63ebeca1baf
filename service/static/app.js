// Qiao's search page. Plain JS, no dependencies: it reads the URL, calls the JSON API and builds
// the DOM with createElement/textContent only. Nothing that comes from a document (titles,
// passages, URLs) is ever parsed as HTML.
//
// Views, all addressable by URL so they can be shared and the back button works:
//   /?q=QUERY&lang=en|zh                    results (lang absent = both languages)
//   /?doc=ID&start=S&end=E[&other=ID2&ostart=S2&oend=E2][&q=…&lang=…]
//                                           a document with text[S:E] highlighted; `other` is
//                                           the aligned passage in the other language version.
// API offsets are code points (Python str indices); JS strings index UTF-16 code units, so
// every slice goes through `codePointCuts`.
(() => {
  "use strict";

  const SLOW_MS = 300; // show the loading state only when a request takes longer than this
  const TIMEOUT_MS = 30000;
  const RESULTS_K = 10;
  const ANSWER_K = 5;
  const UI_LANG_KEY = "qiao.uiLang";

  const STRINGS = {
    en: {
      pageTitle: "Qiao 桥 — release search",
      appName: "Qiao",
      otherUiLang: "中文",
      otherUiLangLabel: "切换到中文界面",
      skipToResults: "Skip to results",
      searchLabel: "Search the releases",
      placeholder: "Ask a question in English or Chinese",
      searchButton: "Search",
      resultsIn: "Results in",
      langBoth: "Both languages",
      langEn: "English",
      langZh: "Chinese",
      keysHint: "Keys: / search box · ↑ ↓ move between results · Enter opens one",
      answerHeading: "Answer",
      resultsHeading: "Results",
      backToResults: "← Back to results",
      backToSearch: "← New search",
      badge_en: "English",
      badge_zh: "Chinese",
      showInDocument: "Show in document",
      copyCitation: "Copy citation",
      alignedPassage: "Aligned passage:",
      noCounterpart: "No aligned passage in the other language.",
      showOther_en: "Show the English version",
      showOther_zh: "Show the Chinese version",
      source: "Source",
      citationLabel: "Citation {0}: {1}",
      resultLabel: "Result {0}: {1}",
      emptyQuery: "Type a question or a few words, then press Enter.",
      searching: "Searching…",
      loadingDocument: "Loading the document…",
      resultsCount: "{0} passages for “{1}” ({2} ms).",
      resultsCountOne: "1 passage for “{1}” ({2} ms).",
      noResults: "No passages match “{0}”. Try other words, or search both languages.",
      serverError: "The search service failed (error {0}). Try again in a moment; if it keeps failing, tell the administrator.",
      notReady: "The search index is still loading. Try again in a moment.",
      notAllowed: "This search service needs an access token (error {0}). Ask the administrator.",
      badRequest: "The search was refused: {0}",
      networkError: "The search service cannot be reached. Check the connection and try again.",
      timedOut: "The search service did not answer within {0} seconds. Try again.",
      docNotFound: "This document is not in the index (it may have been removed).",
      docError: "The document could not be loaded (error {0}). Try again in a moment.",
      badSpan: "The link's passage position does not fit this document; showing the whole text.",
      docShown: "The highlighted passage is characters {0}–{1} of this document.",
      copied: "Citation copied.",
      copyFailed: "Copying failed: select the text and copy it by hand.",
    },
    zh: {
      pageTitle: "桥 Qiao — 新闻稿检索",
      appName: "Qiao",
      otherUiLang: "English",
      otherUiLangLabel: "Switch the page to English",
      skipToResults: "跳到结果",
      searchLabel: "检索新闻稿",
      placeholder: "用中文或英文提问",
      searchButton: "搜索",
      resultsIn: "结果语言",
      langBoth: "中英文",
      langEn: "英文",
      langZh: "中文",
      keysHint: "快捷键：/ 搜索框 · ↑ ↓ 在结果间移动 · Enter 打开",
      answerHeading: "答案",
      resultsHeading: "结果",
      backToResults: "← 返回结果",
      backToSearch: "← 新的搜索",
      badge_en: "英文",
      badge_zh: "中文",
      showInDocument: "在原文中查看",
      copyCitation: "复制引文",
      alignedPassage: "对应段落：",
      noCounterpart: "另一语言版本中没有对应段落。",
      showOther_en: "查看英文版",
      showOther_zh: "查看中文版",
      source: "来源",
      citationLabel: "引文 {0}：{1}",
      resultLabel: "结果 {0}：{1}",
      emptyQuery: "请输入问题或关键词，然后按 Enter。",
      searching: "正在搜索…",
      loadingDocument: "正在加载文档…",
      resultsCount: "“{1}”共找到 {0} 个段落（{2} 毫秒）。",
      resultsCountOne: "“{1}”共找到 1 个段落（{2} 毫秒）。",
      noResults: "没有与“{0}”匹配的段落。请换个说法，或搜索中英文两种语言。",
      serverError: "检索服务出错（错误 {0}）。请稍后再试；如果一直出错，请联系管理员。",
      notReady: "检索索引仍在加载，请稍后再试。",
      notAllowed: "此检索服务需要访问令牌（错误 {0}），请联系管理员。",
      badRequest: "检索请求被拒绝：{0}",
      networkError: "无法连接检索服务。请检查网络后重试。",
      timedOut: "检索服务 {0} 秒内没有响应，请重试。",
      docNotFound: "索引中没有这篇文档（可能已被删除）。",
      docError: "无法加载文档（错误 {0}），请稍后再试。",
      badSpan: "链接中的段落位置与该文档不符，显示全文。",
      docShown: "高亮段落为本文第 {0}–{1} 个字符。",
      copied: "引文已复制。",
      copyFailed: "复制失败：请手动选择文字复制。",
    },
  };

  const els = {};
  let uiLang = "en";
  let searchSeq = 0; // the latest search; answers to older ones are dropped
  let searchAbort = null;
  let docSeq = 0;
  let rendered = null; // {q, lang, results} of the results currently in the DOM
  let lastOpened = -1; // index of the result whose document was opened, to refocus on return
  let answerEndpoint = true; // false once the server says it has no /v1/answer
  const releases = new Map(); // release_id → Promise of its versions (or null)
  let titleSubject = ""; // the query or document named in the window title and history

  // -- text and offsets ----------------------------------------------------------------------

  /** UTF-16 indices of the code-point offsets `cuts` (ascending) in `text`; null if one is
   *  past the end. The API counts code points, JS strings count UTF-16 units. */
  function codePointCuts(text, cuts) {
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

  function codePointLength(text) {
    return Array.from(text).length;
  }

  function isOffset(value) {
    return Number.isInteger(value) && value >= 0;
  }

  // A blank line between paragraphs (with any spaces around it).
  const PARAGRAPH_BREAK = /(\n[^\S\n]*\n\s*)/;

  /** Append `text` to `parent` as text nodes, each paragraph break in a span.gap so the
   *  stylesheet can render hard-wrapped text as flowing paragraphs. The DOM's textContent
   *  stays exactly `text`. */
  function appendText(parent, text) {
    text.split(PARAGRAPH_BREAK).forEach((part, i) => {
      if (!part) return;
      if (i % 2 === 1) parent.append(el("span", "gap", part));
      else parent.append(part);
    });
  }

  /** Fill `container` with `text`, wrapping code points [start, end) in a <mark>.
   *  Returns the mark, or null (text shown plain) when the span does not fit. */
  function fillHighlighted(container, text, start, end, markClass) {
    container.replaceChildren();
    const units = isOffset(start) && isOffset(end) && start < end
      ? codePointCuts(text, [start, end]) : null;
    if (units === null) {
      appendText(container, text);
      return null;
    }
    const mark = el("mark", markClass);
    appendText(mark, text.slice(units[0], units[1]));
    appendText(container, text.slice(0, units[0]));
    container.append(mark);
    appendText(container, text.slice(units[1]));
    return mark;
  }

  /** A passage as one quotable line: hard wraps and runs of spaces become one space, and a
   *  line break between two CJK characters disappears (Chinese has no spaces). */
  function tidyQuote(text) {
    return text
      .replace(/([\u3000-\u9fff\uff00-\uffef])\s*\n\s*(?=[\u3000-\u9fff\uff00-\uffef])/g, "$1")
      .replace(/\s+/g, " ")
      .trim();
  }

  // -- UI language ---------------------------------------------------------------------------

  function readStoredUiLang() {
    try {
      return window.localStorage.getItem(UI_LANG_KEY);
    } catch (_) {
      return null; // storage disabled: follow the browser
    }
  }

  function initialUiLang() {
    const stored = readStoredUiLang();
    if (stored && Object.hasOwn(STRINGS, stored)) return stored;
    const preferred = navigator.languages && navigator.languages.length
      ? navigator.languages[0] : navigator.language || "en";
    return preferred.toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  function t(key, args) {
    const table = STRINGS[uiLang];
    const template = Object.hasOwn(table, key) ? table[key] : STRINGS.en[key] || key;
    return template.replace(/\{(\d+)\}/g, (_, i) => String((args || [])[Number(i)] ?? ""));
  }

  /** Set an element's text to a UI string, remembered so a language switch can redo it. */
  function label(node, key, ...args) {
    node.dataset.i18n = key;
    if (args.length) node.dataset.i18nArgs = JSON.stringify(args);
    else delete node.dataset.i18nArgs;
    node.textContent = t(key, args);
    return node;
  }

  function ariaLabel(node, key, ...args) {
    node.dataset.i18nAria = key;
    node.dataset.i18nAriaArgs = JSON.stringify(args);
    node.setAttribute("aria-label", t(key, args));
  }

  function argsOf(node, attr) {
    try {
      return JSON.parse(node.dataset[attr] || "[]");
    } catch (_) {
      return [];
    }
  }

  function applyUiLang() {
    document.documentElement.lang = uiLang === "zh" ? "zh-CN" : "en";
    document.title = titleSubject ? `${titleSubject} — ${t("pageTitle")}` : t("pageTitle");
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n, argsOf(node, "i18nArgs"));
    }
    for (const node of document.querySelectorAll("[data-i18n-aria]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nAria, argsOf(node, "i18nAriaArgs")));
    }
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    }
    els.uiLang.textContent = t("otherUiLang");
    els.uiLang.lang = uiLang === "zh" ? "en" : "zh";
    els.uiLang.setAttribute("aria-label", t("otherUiLangLabel"));
  }

  function setTitleSubject(subject) {
    titleSubject = subject || "";
    document.title = titleSubject ? `${titleSubject} — ${t("pageTitle")}` : t("pageTitle");
  }

  function switchUiLang() {
    uiLang = uiLang === "zh" ? "en" : "zh";
    try {
      window.localStorage.setItem(UI_LANG_KEY, uiLang);
    } catch (_) {
      // storage disabled: the switch lasts for this page only
    }
    applyUiLang();
  }

  // -- status line ---------------------------------------------------------------------------

  function setStatus(kind, key, ...args) {
    els.status.className = `status status-${kind}`;
    if (key) label(els.status, key, ...args);
    else {
      delete els.status.dataset.i18n;
      els.status.textContent = "";
    }
  }

  // -- URLs and navigation -------------------------------------------------------------------

  function normLang(value) {
    return value === "en" || value === "zh" ? value : "";
  }

  function intParam(params, name) {
    const raw = params.get(name);
    return raw !== null && /^\d+$/.test(raw) ? Number(raw) : null;
  }

  function readUrl() {
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

  function searchUrl(q, lang) {
    const params = new URLSearchParams({ q });
    if (lang) params.set("lang", lang);
    return `/?${params}`;
  }

  function docUrl(target) {
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

  function navigate(url) {
    if (url !== window.location.pathname + window.location.search) {
      window.history.pushState(null, "", url);
    }
    route();
  }

  /** A click that should stay in this page (not a middle click or "open in new tab"). */
  function isPlainClick(event) {
    return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey &&
      !event.altKey;
  }

  function linkTo(url, key) {
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

  function route() {
    const state = readUrl();
    if (state.view === "doc") showDocument(state);
    else showSearch(state.q, state.lang);
  }

  // -- API -----------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status; // 0 = no answer (network), -1 = timed out
      this.body = body || null;
    }
  }

  async function api(path, options, signal) {
    const timeout = new AbortController();
    const timer = window.setTimeout(() => timeout.abort(), TIMEOUT_MS);
    const onAbort = () => timeout.abort();
    if (signal) signal.addEventListener("abort", onAbort);
    let response;
    try {
      response = await fetch(path, { ...options, signal: timeout.signal });
    } catch (error) {
      if (signal && signal.aborted) throw error;
      throw new ApiFailure(timeout.signal.aborted ? -1 : 0, String(error));
    } finally {
      window.clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", onAbort);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error && typeof body.error.message === "string"
        ? body.error.message : response.statusText;
      throw new ApiFailure(response.status, message, body);
    }
    return body;
  }

  function postJson(path, payload, signal) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    }, signal);
  }

  /** Status key and arguments for a failed request. */
  function failureMessage(error) {
    if (!(error instanceof ApiFailure) || error.status === 0) return ["networkError"];
    if (error.status === -1) return ["timedOut", TIMEOUT_MS / 1000];
    if (error.status === 503) return ["notReady"];
    if (error.status === 401 || error.status === 403) return ["notAllowed", error.status];
    if (error.status >= 400 && error.status < 500) return ["badRequest", error.message];
    return ["serverError", error.status];
  }

  /** The versions of a release ({doc_id → summary}), fetched once per page; null if unknown. */
  function releaseVersions(releaseId) {
    if (!releases.has(releaseId)) {
      const request = api(`/v1/releases/${encodeURIComponent(releaseId)}`, {})
        .then((body) => {
          const versions = {};
          for (const d of (body && body.documents) || []) versions[d.doc_id] = d;
          return versions;
        })
        .catch(() => {
          releases.delete(releaseId); // try again next time
          return null;
        });
      releases.set(releaseId, request);
    }
    return releases.get(releaseId);
  }

  // -- search view ---------------------------------------------------------------------------

  function setLangControl(lang) {
    for (const radio of els.langRadios) radio.checked = radio.value === lang;
  }

  function chosenLang() {
    const checked = els.langRadios.find((radio) => radio.checked);
    return checked ? normLang(checked.value) : "";
  }

  function showSearchView() {
    els.doc.hidden = true;
    els.results.hidden = false;
    els.answer.hidden = els.answerText.childNodes.length === 0;
    docSeq += 1; // a document still loading must not appear over the results
  }

  function showSearch(q, lang) {
    showSearchView();
    els.q.value = q || "";
    setLangControl(lang);
    setTitleSubject(q);
    if (rendered && rendered.q === q && rendered.lang === lang) {
      // Back from a document: the results are still in the DOM.
      const cards = els.results.children;
      if (lastOpened >= 0 && lastOpened < cards.length) cards[lastOpened].focus();
      lastOpened = -1;
      return;
    }
    if (q === null) {
      clearResults();
      setStatus("idle", null);
      return;
    }
    runSearch(q, lang);
  }

  function clearResults() {
    if (searchAbort) searchAbort.abort();
    searchSeq += 1;
    rendered = null;
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
    if (searchAbort) searchAbort.abort();
    const abort = new AbortController();
    searchAbort = abort;
    const seq = ++searchSeq;
    const current = () => seq === searchSeq;
    rendered = null;
    clearAnswer();
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

  function submitSearch() {
    const q = els.q.value;
    const lang = chosenLang();
    if (!q.trim()) {
      runSearch(q, lang); // shows the empty-query message; nothing to put in the URL
      return;
    }
    const url = searchUrl(q, lang);
    rendered = null; // Enter on the same query searches again
    if (url === window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
      route();
    } else navigate(url);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function badge(lang) {
    return label(el("span", `badge badge-${lang}`), `badge_${lang === "zh" ? "zh" : "en"}`);
  }

  function safeHttpUrl(url) {
    // Only http(s) links: a "javascript:" URL in a document's metadata must never be clickable.
    if (typeof url !== "string") return null;
    try {
      const parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function metaLine(lang, date, url) {
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

  function copyButton(citation) {
    const button = label(el("button", "copy"), "copyCitation");
    button.type = "button";
    button.addEventListener("click", async () => {
      const ok = await copyText(citationText(await citation()));
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

  function renderResults(q, lang, results) {
    const cards = results.map((result, i) => resultCard(result, i, q, lang));
    els.results.replaceChildren(...cards);
    rendered = { q, lang, results };
    lastOpened = -1;
    fillCounterpartTitles(results);
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
    main.append(title, metaLine(r.lang, r.date, r.url));
    const text = el("p", "passage-text");
    text.lang = r.lang;
    const answer = r.answer;
    let mark = null;
    if (answer && answer.start >= r.start) {
      mark = fillHighlighted(text, r.text, answer.start - r.start, answer.end - r.start, "hl");
      // Highlight only what the API says the sentence is: a stale span shows no highlight.
      if (mark && mark.textContent !== answer.text) mark = fillHighlighted(text, r.text, -1, -1);
    } else appendText(text, r.text);
    main.append(text);
    const actions = el("div", "actions");
    actions.append(linkTo(docUrl(target), "showInDocument"),
      copyButton(async () => ({ title: r.title, date: r.date, url: r.url, text: r.text })));
    main.append(actions);
    card.append(main);

    const side = el("section", "passage passage-counterpart");
    if (cp) {
      const heading = el("p", "cp-heading");
      heading.append(label(el("span", "cp-label"), "alignedPassage"));
      const cpTitle = el("span", "cp-title");
      cpTitle.dataset.cpDoc = cp.doc_id;
      cpTitle.dataset.release = r.release_id;
      cpTitle.lang = cp.lang;
      heading.append(" ", cpTitle);
      side.append(heading);
      const cpMeta = el("p", "meta");
      cpMeta.append(badge(cp.lang));
      side.append(cpMeta);
      const cpText = el("p", "passage-text");
      appendText(cpText, cp.text);
      cpText.lang = cp.lang;
      side.append(cpText);
      const cpTarget = {
        doc: cp.doc_id, start: cp.start, end: cp.end, other: r.doc_id, ostart: r.start,
        oend: r.end, q, lang,
      };
      const cpActions = el("div", "actions");
      cpActions.append(linkTo(docUrl(cpTarget), "showInDocument"), copyButton(async () => {
        const versions = await releaseVersions(r.release_id);
        const meta = (versions && versions[cp.doc_id]) || r;
        return { title: meta.title, date: meta.date, url: meta.url, text: cp.text };
      }));
      side.append(cpActions);
    } else {
      side.classList.add("passage-missing");
      side.append(label(el("p", "hint"), "noCounterpart"));
    }
    card.append(side);
    if (mark) card.dataset.answer = "1";
    return card;
  }

  function fillCounterpartTitles(results) {
    const ids = new Set(results.filter((r) => r.counterpart).map((r) => r.release_id));
    for (const releaseId of ids) {
      releaseVersions(releaseId).then((versions) => {
        if (!versions) return;
        for (const span of els.results.querySelectorAll(".cp-title")) {
          const meta = span.dataset.release === releaseId && versions[span.dataset.cpDoc];
          if (meta) span.textContent = meta.title;
        }
      });
    }
  }

  function openCard(card) {
    lastOpened = Array.prototype.indexOf.call(els.results.children, card);
    navigate(card.dataset.url);
  }

  // -- answer (POST /v1/answer, optional) ----------------------------------------------------

  /** The answer to show, or null. A 502/504 (the LLM failed) carries an extractive
   *  `fallback` answer, which is shown instead. */
  async function fetchAnswer(q, lang, signal) {
    if (!answerEndpoint) return null;
    try {
      const body = await postJson("/v1/answer", { question: q, lang: lang || null, k: ANSWER_K },
        signal);
      return answerOf(body);
    } catch (error) {
      if (!(error instanceof ApiFailure)) return null;
      // No answer endpoint on this server: the results stand alone, and we stop asking.
      if (error.status === 404 || error.status === 405) answerEndpoint = false;
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
        doc: c.doc_id, start: c.start, end: c.end, q: rendered && rendered.q, lang,
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
    navigate(docUrl({ doc: c.doc_id, start: c.start, end: c.end, q: rendered && rendered.q,
      lang }));
  }

  // -- document view -------------------------------------------------------------------------

  async function showDocument(state) {
    const seq = ++docSeq;
    if (searchAbort) searchAbort.abort();
    els.results.hidden = true;
    els.answer.hidden = true;
    els.doc.hidden = false;
    if (state.q !== null) els.q.value = state.q;
    setLangControl(state.lang);
    const back = state.q ? searchUrl(state.q, state.lang) : "/";
    els.docBack.href = back;
    label(els.docBack, state.q ? "backToResults" : "backToSearch");
    const slow = window.setTimeout(() => {
      if (seq === docSeq) setStatus("loading", "loadingDocument");
    }, SLOW_MS);
    let doc;
    try {
      doc = await api(`/v1/documents/${encodeURIComponent(state.doc)}`, {});
    } catch (error) {
      if (seq !== docSeq) return;
      clearDocument();
      if (error instanceof ApiFailure && error.status === 404) setStatus("error", "docNotFound");
      else {
        const [key, ...args] = failureMessage(error);
        setStatus("error", key === "serverError" ? "docError" : key, ...args);
      }
      return;
    } finally {
      window.clearTimeout(slow);
    }
    if (seq !== docSeq) return;
    setTitleSubject(doc.title);
    renderDocument(doc, state);
    const versions = await releaseVersions(doc.release_id);
    if (seq !== docSeq) return;
    renderToggle(doc, state, versions);
  }

  function clearDocument() {
    els.docTitle.textContent = "";
    els.docMeta.replaceChildren();
    els.docText.replaceChildren();
    els.docToggle.hidden = true;
  }

  function renderDocument(doc, state) {
    els.docTitle.textContent = doc.title;
    els.docTitle.lang = doc.lang;
    els.docMeta.replaceChildren(...metaLine(doc.lang, doc.date, doc.url).childNodes);
    els.docText.lang = doc.lang;
    const hasSpan = state.start !== null && state.end !== null;
    const fits = hasSpan && state.start < state.end &&
      state.end <= codePointLength(doc.text);
    const mark = fillHighlighted(els.docText, doc.text, fits ? state.start : -1,
      fits ? state.end : -1, "hl hl-doc");
    if (mark) {
      mark.id = "passage";
      mark.tabIndex = -1;
      setStatus("ok", "docShown", state.start, state.end);
      // A passage taller than the screen is shown from its start, a short one centred.
      const tall = mark.getBoundingClientRect().height > window.innerHeight * 0.6;
      mark.scrollIntoView({ block: tall ? "start" : "center" });
      mark.focus({ preventScroll: true });
    } else {
      if (hasSpan) setStatus("error", "badSpan");
      else setStatus("idle", null);
      window.scrollTo(0, 0);
      els.docTitle.focus({ preventScroll: true });
    }
  }

  function renderToggle(doc, state, versions) {
    let other = null;
    if (state.other && versions && versions[state.other]) other = versions[state.other];
    else if (versions) {
      other = Object.values(versions).find((d) => d.lang !== doc.lang) || null;
    }
    if (!other) {
      els.docToggle.hidden = true;
      return;
    }
    const aligned = other.doc_id === state.other;
    const target = {
      doc: other.doc_id,
      start: aligned ? state.ostart : null, end: aligned ? state.oend : null,
      other: doc.doc_id, ostart: state.start, oend: state.end, q: state.q, lang: state.lang,
    };
    label(els.docToggle, `showOther_${other.lang === "zh" ? "zh" : "en"}`);
    els.docToggle.hidden = false;
    els.docToggle.onclick = () => navigate(docUrl(target));
  }

  // -- keyboard ------------------------------------------------------------------------------

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

  // -- start ---------------------------------------------------------------------------------

  function start() {
    for (const id of ["q", "status", "results", "answer", "doc", "search"]) {
      els[id] = document.getElementById(id);
    }
    els.uiLang = document.getElementById("ui-lang");
    els.answerText = document.getElementById("answer-text");
    els.answerSources = document.getElementById("answer-sources");
    els.docBack = document.getElementById("doc-back");
    els.docToggle = document.getElementById("doc-toggle");
    els.docTitle = document.getElementById("doc-title");
    els.docMeta = document.getElementById("doc-meta");
    els.docText = document.getElementById("doc-text");
    els.langRadios = Array.from(document.querySelectorAll('input[name="lang"]'));

    uiLang = initialUiLang();
    applyUiLang();
    els.uiLang.addEventListener("click", switchUiLang);
    els.search.addEventListener("submit", (event) => {
      event.preventDefault();
      submitSearch();
    });
    for (const radio of els.langRadios) {
      radio.addEventListener("change", () => {
        if (els.q.value.trim()) submitSearch();
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

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

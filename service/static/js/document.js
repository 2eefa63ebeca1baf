// The document view: a whole release version with the passage highlighted, and a toggle to
// the other language version at the aligned passage.
import { ApiFailure, api, failureMessage, releaseVersions } from "./api.js";
import { codePointLength, el, fillHighlighted, metaLine } from "./dom.js";
import { label, setStatus, setTitleSubject } from "./i18n.js";
import { setLangControl } from "./results.js";
import { docUrl, navigate, searchUrl } from "./router.js";
import { SLOW_MS, els, state } from "./state.js";

export async function showDocument(target) {
  const seq = ++state.docSeq;
  if (state.searchAbort) state.searchAbort.abort();
  els.results.hidden = true;
  els.answer.hidden = true;
  els.noAnswer.hidden = true;
  els.doc.hidden = false;
  if (target.q !== null) els.q.value = target.q;
  setLangControl(target.lang);
  els.docBack.href = target.q ? searchUrl(target.q, target.lang) : "/";
  label(els.docBack, target.q ? "backToResults" : "backToSearch");
  const slow = window.setTimeout(() => {
    if (seq === state.docSeq) setStatus("loading", "loadingDocument");
  }, SLOW_MS);
  let doc;
  try {
    doc = await api(`/v1/documents/${encodeURIComponent(target.doc)}`, {});
  } catch (error) {
    if (seq !== state.docSeq) return;
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
  if (seq !== state.docSeq) return;
  setTitleSubject(doc.title);
  renderDocument(doc, target);
  const versions = await releaseVersions(doc.release_id);
  if (seq !== state.docSeq) return;
  renderToggle(doc, target, versions);
}

function clearDocument() {
  els.docTitle.textContent = "";
  els.docMeta.replaceChildren();
  els.docText.replaceChildren();
  els.docToggle.hidden = true;
}

function renderDocument(doc, target) {
  els.docTitle.textContent = doc.title;
  els.docTitle.lang = doc.lang;
  els.docMeta.replaceChildren(...metaLine(doc.lang, doc.date, doc.url).childNodes);
  els.docText.lang = doc.lang;
  const hasSpan = target.start !== null && target.end !== null;
  const fits = hasSpan && target.start < target.end &&
    target.end <= codePointLength(doc.text);
  if (fits && Array.isArray(doc.pages)) {
    // A paginated source (PDF): the page the highlighted passage starts on, as printed.
    const page = 1 + doc.pages.filter((start) => start <= target.start).length;
    els.docMeta.append(" ", label(el("span", "page"), "pageN", page));
  }
  const mark = fillHighlighted(els.docText, doc.text, fits ? target.start : -1,
    fits ? target.end : -1, "hl hl-doc", doc.markup, 0);
  if (mark) {
    mark.id = "passage";
    mark.tabIndex = -1;
    setStatus("ok", "docShown", target.start, target.end);
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

function renderToggle(doc, target, versions) {
  let other = null;
  if (target.other && versions && versions[target.other]) other = versions[target.other];
  else if (versions) {
    other = Object.values(versions).find((d) => d.lang !== doc.lang) || null;
  }
  if (!other) {
    els.docToggle.hidden = true;
    return;
  }
  const aligned = other.doc_id === target.other;
  const next = {
    doc: other.doc_id,
    start: aligned ? target.ostart : null, end: aligned ? target.oend : null,
    other: doc.doc_id, ostart: target.start, oend: target.end, q: target.q, lang: target.lang,
  };
  label(els.docToggle, `showOther_${other.lang === "zh" ? "zh" : "en"}`);
  els.docToggle.hidden = false;
  els.docToggle.onclick = () => navigate(docUrl(next));
}

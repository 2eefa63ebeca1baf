// The UI language: strings by key, elements labelled so a language switch can redo them, the
// window title and the status line.
import { els, state } from "./state.js";
import { STRINGS } from "./strings.js";

const UI_LANG_KEY = "qiao.uiLang";

function readStoredUiLang() {
  try {
    return window.localStorage.getItem(UI_LANG_KEY);
  } catch (_) {
    return null; // storage disabled: follow the browser
  }
}

export function initialUiLang() {
  const stored = readStoredUiLang();
  if (stored && Object.hasOwn(STRINGS, stored)) return stored;
  const preferred = navigator.languages && navigator.languages.length
    ? navigator.languages[0] : navigator.language || "en";
  return preferred.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function t(key, args) {
  const table = STRINGS[state.uiLang];
  const template = Object.hasOwn(table, key) ? table[key] : STRINGS.en[key] || key;
  return template.replace(/\{(\d+)\}/g, (_, i) => String((args || [])[Number(i)] ?? ""));
}

/** Set an element's text to a UI string, remembered so a language switch can redo it. */
export function label(node, key, ...args) {
  node.dataset.i18n = key;
  if (args.length) node.dataset.i18nArgs = JSON.stringify(args);
  else delete node.dataset.i18nArgs;
  node.textContent = t(key, args);
  return node;
}

export function ariaLabel(node, key, ...args) {
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

export function applyUiLang() {
  document.documentElement.lang = state.uiLang === "zh" ? "zh-CN" : "en";
  setTitleSubject(state.titleSubject);
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
  els.uiLang.lang = state.uiLang === "zh" ? "en" : "zh";
  els.uiLang.setAttribute("aria-label", t("otherUiLangLabel"));
}

export function setTitleSubject(subject) {
  state.titleSubject = subject || "";
  document.title = state.titleSubject ? `${state.titleSubject} — ${t("pageTitle")}`
    : t("pageTitle");
}

export function switchUiLang() {
  state.uiLang = state.uiLang === "zh" ? "en" : "zh";
  try {
    window.localStorage.setItem(UI_LANG_KEY, state.uiLang);
  } catch (_) {
    // storage disabled: the switch lasts for this page only
  }
  applyUiLang();
}

export function setStatus(kind, key, ...args) {
  els.status.className = `status status-${kind}`;
  if (key) label(els.status, key, ...args);
  else {
    delete els.status.dataset.i18n;
    els.status.textContent = "";
  }
}

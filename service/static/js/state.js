// What the page remembers between events, shared by the modules. One object, so a module that
// changes a value changes it for all (ES module bindings are read-only from outside).

export const SLOW_MS = 300; // show the loading state only when a request takes longer than this
export const TIMEOUT_MS = 30000;
export const RESULTS_K = 10;
export const ANSWER_K = 5;

/** The page's elements, looked up once at start (main.js). */
export const els = {};

export const state = {
  uiLang: "en",
  searchSeq: 0, // the latest search; answers to older ones are dropped
  searchAbort: null,
  docSeq: 0,
  rendered: null, // {q, lang, results} of the results currently in the DOM
  lastOpened: -1, // index of the result whose document was opened, to refocus on return
  answerEndpoint: true, // false once the server says it has no /v1/answer
  noAnswer: false, // the server judged that no result answers the current query
  titleSubject: "", // the query or document named in the window title and history
};

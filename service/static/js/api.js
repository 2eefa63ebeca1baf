// The JSON API: requests with a timeout, errors as `ApiFailure`, and release versions fetched
// once per page.
import { TIMEOUT_MS } from "./state.js";

export class ApiFailure extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status; // 0 = no answer (network), -1 = timed out
    this.body = body || null;
  }
}

export async function api(path, options, signal) {
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

export function postJson(path, payload, signal) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
  }, signal);
}

/** Status key and arguments for a failed request. */
export function failureMessage(error) {
  if (!(error instanceof ApiFailure) || error.status === 0) return ["networkError"];
  if (error.status === -1) return ["timedOut", TIMEOUT_MS / 1000];
  if (error.status === 503) return ["notReady"];
  if (error.status === 401 || error.status === 403) return ["notAllowed", error.status];
  if (error.status >= 400 && error.status < 500) return ["badRequest", error.message];
  return ["serverError", error.status];
}

const releases = new Map(); // release_id → Promise of its versions (or null)

/** The versions of a release ({doc_id → summary}), fetched once per page; null if unknown. */
export function releaseVersions(releaseId) {
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

// api.js — the dashboard's only way to the server: JSON requests under
// /api/v1 with the session's Bearer token, and Server-Sent Events read with
// fetch() (EventSource cannot send an Authorization header).
// The token lives in sessionStorage (gone with the tab), never in a URL.

const BASE = "/api/v1";
const KEY = "iotflow.session";

export class ApiError extends Error {
  constructor(status, error, message) {
    super(message || error || `HTTP ${status}`);
    this.status = status;
    this.error = error || `HTTP ${status}`;
  }
}

// {token, user} or null.
export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY));
    return s && typeof s.token === "string" ? s : null;
  } catch {
    return null;
  }
}

export function setSession(token, user) {
  sessionStorage.setItem(KEY, JSON.stringify({ token, user }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

function headers(body) {
  const h = { Accept: "application/json" };
  const s = session();
  if (s) h.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  return h;
}

// A 401 means the session is over (expired, logged out elsewhere):
// back to the login page.
function sessionEnded() {
  clearSession();
  if (location.hash !== "#/login") location.hash = "#/login";
}

async function failure(res) {
  let error = null, message = null;
  try {
    const j = await res.json();
    error = j.error;
    message = j.message;
  } catch {
    // not JSON: the status says it all
  }
  const e = new ApiError(res.status, error, message);
  if (res.status === 401 && session()) {
    sessionEnded();
    e.sessionEnded = true; // said by going to the login page
  }
  return e;
}

// Resolves to the parsed JSON answer (null for an empty one); throws
// ApiError on any non-2xx status.
export async function api(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: headers(body),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// One SSE event block ("event: x\ndata: {...}") → onEvent(name, data).
function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  let parsed;
  try {
    parsed = JSON.parse(data.join("\n"));
  } catch {
    parsed = data.join("\n");
  }
  onEvent(name, parsed);
}

// Reads the event stream at path (under /api/v1) until signal aborts or the
// server ends it; calls onEvent(eventName, parsedJsonData) for each event.
export async function stream(path, onEvent, signal) {
  let res;
  try {
    res = await fetch(BASE + path, {
      headers: { ...headers(), Accept: "text/event-stream" },
      cache: "no-store",
      signal,
    });
  } catch (e) {
    if (signal && signal.aborted) return;
    throw e;
  }
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        dispatch(buf.slice(0, end), onEvent);
        buf = buf.slice(end + 2);
      }
    }
  } catch (e) {
    if (signal && signal.aborted) return;
    throw e;
  } finally {
    reader.releaseLock();
  }
}

// dom.js — building the page without ever parsing HTML: h() makes elements
// and text nodes, so whatever a device or user named itself is shown as
// text, never run. Nothing in the dashboard assigns innerHTML.

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

// h("a", {href: "#/x", class: "btn", "data-test": "go", onclick: fn}, "text", node, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "value" && "value" in el) {
      el.value = v;
    } else if (k === "checked" || k === "disabled" || k === "selected") {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

// Empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// An ISO time in the reader's local time; "never" for none.
export function fmtTime(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

// "3 min ago" — for last-seen columns.
export function fmtAgo(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (isNaN(s)) return String(iso);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

let noticeTimer = null;

// A banner at the top: kind "error" (default) or "success"; success ones fade.
export function notice(msg, kind = "error") {
  const box = document.getElementById("notice");
  if (!box) return;
  clearTimeout(noticeTimer);
  replace(box, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status",
                          "data-test": `notice-${kind}` },
    h("span", {}, msg),
    h("button", { class: "close", "aria-label": "Dismiss", onclick: () => box.replaceChildren() }, "×")));
  if (kind !== "error") noticeTimer = setTimeout(() => box.replaceChildren(), 5000);
}

export function clearNotice() {
  const box = document.getElementById("notice");
  if (box) box.replaceChildren();
}

// columns: [{title, render(row) → Node|string}]; an empty list says so.
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, c.render(r))))))));
}

// A labelled form field.
export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

// Runs an async action, showing its failure as a notice (but for an ended
// session: the login page says that); returns its result (undefined when
// it failed).
export async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    if (!(e && e.sessionEnded)) notice((e && e.message) || String(e));
    return undefined;
  }
}

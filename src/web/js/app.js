// app.js — the dashboard's shell: a hash router (#/devices/7 → the device
// page with params {id: "7"}), the navigation bar, and log out.
// A page module exports render(root, params); it fills root and may return
// a cleanup function, called when the route changes (abort streams, stop
// timers).

import { api, clearSession, session } from "./api.js";
import { clearNotice, h, replace } from "./dom.js";

// [pattern, page module, needs a session]
const ROUTES = [
  [/^\/login$/, "login", false],
  [/^\/register$/, "login", false],
  [/^\/devices$/, "devices", true],
  [/^\/devices\/(?<id>\d+)$/, "device", true],
  [/^\/groups$/, "groups", true],
  [/^\/groups\/(?<id>\d+)$/, "groups", true],
  [/^\/alerts$/, "alerts", true],
  [/^\/admin$/, "admin", true],
];

const NAV = [
  ["#/devices", "Devices", "devices"],
  ["#/groups", "Groups", "groups"],
  ["#/alerts", "Alerts", "alerts"],
];

let cleanup = null;
let generation = 0;

function renderNav(current) {
  const nav = document.getElementById("nav");
  const s = session();
  if (!s) {
    replace(nav);
    return;
  }
  const links = NAV.map(([href, label, page]) =>
    h("a", { href, class: current === page ? "active" : null, "data-test": `nav-${page}` }, label));
  if (s.user && s.user.is_admin)
    links.push(h("a", { href: "#/admin", class: current === "admin" ? "active" : null, "data-test": "nav-admin" }, "Admin"));
  replace(nav,
    h("div", { class: "nav-links" }, links),
    h("div", { class: "nav-user" },
      h("span", { class: "who", "data-test": "nav-user" }, s.user ? s.user.username : ""),
      h("button", { class: "link", "data-test": "logout", onclick: logout }, "Log out")));
}

async function logout() {
  try {
    await api("POST", "/auth/logout");
  } catch {
    // the session is dropped here whatever the server says
  }
  clearSession();
  location.hash = "#/login";
}

function match(path) {
  for (const [re, page, auth] of ROUTES) {
    const m = re.exec(path);
    if (m) return { page, auth, params: { ...(m.groups || {}), path } };
  }
  return null;
}

async function route() {
  const mine = ++generation;
  const path = location.hash.replace(/^#/, "") || "/";
  let found = match(path);
  if (!found || (found.auth && !session())) {
    location.replace(session() ? "#/devices" : "#/login");
    return;
  }
  if (!found.auth && session() && found.page === "login") {
    location.replace("#/devices");
    return;
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.warn("page cleanup failed", e);
    }
    cleanup = null;
  }
  clearNotice();
  renderNav(found.page);
  const root = document.getElementById("main");
  replace(root, h("p", { class: "loading" }, "Loading…"));
  const mod = await import(`./pages/${found.page}.js`);
  if (mine !== generation) return; // the route changed while loading
  root.replaceChildren();
  const done = await mod.render(root, found.params);
  if (mine !== generation) {
    if (typeof done === "function") done();
    return;
  }
  cleanup = typeof done === "function" ? done : null;
}

// Pages call this after logging in, so the nav shows the user.
export function refreshNav() {
  renderNav(null);
}

window.addEventListener("hashchange", route);
route();

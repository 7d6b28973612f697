// pages/admin.js — for an admin: statistics, every user (activate,
// deactivate), every device (change its status) and the event log
// (filter by type, "More" paging). Anyone else is told the page is not for
// them (the API would refuse every request with 403 anyway).

import { api, session } from "../api.js";
import { attempt, field, fmtAgo, fmtTime, h, notice, replace, table } from "../dom.js";

const PAGE = 100;
const DEVICE_STATUSES = ["active", "inactive", "maintenance"];
const EVENT_TYPES = [
  "user.registered", "user.updated", "user.activated", "user.deactivated", "user.deleted",
  "device.registered", "device.updated", "device.deleted", "device.key_rotated",
  "device.status_changed", "device.config_changed", "device.metadata_changed",
  "device.online", "device.offline", "alert.raised", "alert.acknowledged", "alert.resolved",
];

export function render(root) {
  const me = session().user;
  if (!me || !me.is_admin) {
    replace(root, h("h1", {}, "Admin"),
      h("div", { class: "panel", "data-test": "admin-forbidden" },
        h("p", {}, "This page is for administrators only, and your account is not one.")));
    return;
  }
  // Names of users by internal id (a device names its owner so) and by
  // public id (an event does), filled as the user list pages in.
  const people = { byId: new Map(), byPublicId: new Map() };
  const stats = statsPanel();
  const users = usersPanel(people, stats.reload);
  const devices = devicesPanel(people, stats.reload);
  const events = eventsPanel(people);
  replace(root, h("h1", {}, "Admin"), stats.element, users.element, devices.element, events.element);
  stats.reload();
  users.reload().then(() => {
    devices.reload();
    events.reload();
  });
}

// A table that grows a page at a time. `fetchPage(next)` resolves to
// {items, next}: `next` is what the following page needs (an offset or a
// cursor), null after the last page.
function pagedTable(dataTest, columns, fetchPage, empty) {
  const box = h("div", { "data-test": dataTest }, h("p", { class: "loading" }, "Loading…"));
  const more = h("button", { type: "button", class: "secondary", hidden: true, "data-test": `${dataTest}-more`,
                             onclick: () => page() }, "More");
  let items = [];
  let next = null;
  let generation = 0; // a reload makes pages still in flight stale

  function draw() {
    replace(box, table(columns, items, empty));
    more.hidden = next === null;
  }

  async function page() {
    const mine = generation;
    const got = await attempt(() => fetchPage(next));
    if (mine !== generation) return;
    if (got) {
      items.push(...got.items);
      next = got.next ?? null;
    }
    draw();
  }

  function reload() {
    generation += 1;
    items = [];
    next = null;
    return page();
  }

  return { element: h("div", {}, box, more), reload, draw };
}

// Offset paging of the list endpoints that answer `meta.total`.
function byOffset(path, key, filters = () => ({})) {
  return async (offset) => {
    const from = offset ?? 0;
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(from), ...filters() });
    const res = await api("GET", `${path}?${q}`);
    const reached = from + res[key].length;
    return { items: res[key], next: res[key].length && reached < res.meta.total ? reached : null };
  };
}

// A select of `choices`; `first` is the "no filter" option.
function choice(dataTest, choices, first, onchange) {
  return h("select", { "data-test": dataTest, onchange },
    h("option", { value: "" }, first),
    choices.map((c) => h("option", { value: c }, c)));
}

// ---- statistics ---------------------------------------------------------

function statsPanel() {
  const box = h("div", { "data-test": "admin-stats" }, h("p", { class: "loading" }, "Loading…"));
  async function reload() {
    const s = await attempt(() => api("GET", "/admin/stats"));
    if (!s) return;
    const d = s.device_stats;
    const figures = [["users", s.total_users], ["devices", d.total], ["active", d.active], ["online", d.online],
      ["offline", d.offline], ["inactive", d.inactive], ["maintenance", d.maintenance]];
    replace(box,
      h("div", { class: "values" }, figures.map(([name, n]) =>
        h("div", { class: "value" }, h("div", { class: "name" }, name),
          h("div", { class: "num", "data-test": `stat-${name}` }, String(n))))),
      h("p", { class: "muted small" }, `As of ${fmtTime(s.timestamp)}.`));
  }
  return { element: h("div", { class: "panel" }, h("h2", {}, "Statistics"), box), reload };
}

// ---- users --------------------------------------------------------------

function usersPanel(people, changed) {
  const columns = [
    { title: "Username", render: (u) => h("span", { "data-test": "user-name" }, u.username) },
    { title: "Email", render: (u) => u.email },
    { title: "Role", render: (u) => (u.is_admin ? "admin" : "user") },
    { title: "State", render: (u) => h("span", { class: `badge ${u.is_active ? "active" : "inactive"}`, "data-test": "user-state" },
      u.is_active ? "active" : "inactive") },
    { title: "Created", render: (u) => fmtTime(u.created_at) },
    { title: "Last login", render: (u) => fmtAgo(u.last_login) },
    { title: "", render: (u) => switchButton(u) },
  ];

  // An admin cannot be deactivated (the API refuses): no button for one.
  function switchButton(u) {
    if (u.is_admin) return null;
    const verb = u.is_active ? "deactivate" : "activate";
    return h("button", {
      type: "button", class: u.is_active ? "danger" : "secondary", "data-test": `user-${verb}`,
      onclick: async () => {
        const res = await attempt(() => api("PATCH", `/users/${u.user_id}/${verb}`));
        if (!res) return;
        u.is_active = verb === "activate";
        notice(res.message, "success");
        list.draw();
        changed();
      },
    }, verb === "activate" ? "Activate" : "Deactivate");
  }

  const fetchUsers = byOffset("/users", "users");
  const list = pagedTable("admin-users", columns, async (next) => {
    const got = await fetchUsers(next);
    for (const u of got.items) {
      people.byId.set(u.id, u.username);
      people.byPublicId.set(u.user_id, u.username);
    }
    return got;
  }, "No users.");
  return { element: h("div", { class: "panel" }, h("h2", {}, "Users"), list.element), reload: list.reload };
}

// ---- devices ------------------------------------------------------------

function devicesPanel(people, changed) {
  const filter = choice("admin-device-filter", DEVICE_STATUSES, "any status", () => list.reload());
  const columns = [
    { title: "Id", render: (d) => String(d.id) },
    { title: "Name", render: (d) => h("span", { "data-test": "admin-device-name" }, d.name) },
    { title: "Owner", render: (d) => people.byId.get(d.user_id) ?? `user ${d.user_id}` },
    { title: "Type", render: (d) => d.device_type },
    { title: "Last seen", render: (d) => fmtAgo(d.last_seen) },
    { title: "Status", render: (d) => statusPicker(d) },
  ];

  function statusPicker(d) {
    const sel = h("select", {
      "data-test": "admin-device-status",
      onchange: async () => {
        const res = await attempt(() => api("PUT", `/admin/devices/${d.id}/status`, { status: sel.value }));
        if (!res) {
          sel.value = d.status;
          return;
        }
        d.status = res.new_status;
        notice(res.message, "success");
        changed();
      },
    }, DEVICE_STATUSES.map((s) => h("option", { value: s }, s)));
    sel.value = d.status;
    return sel;
  }

  const list = pagedTable("admin-devices", columns,
    byOffset("/admin/devices", "devices", () => (filter.value ? { status: filter.value } : {})), "No devices.");
  return {
    element: h("div", { class: "panel" }, h("h2", {}, "Devices"),
      h("div", { class: "row" }, field("Status", filter)), list.element),
    reload: list.reload,
  };
}

// ---- event log ----------------------------------------------------------

function eventsPanel(people) {
  const filter = choice("admin-event-filter", EVENT_TYPES, "every type", () => list.reload());
  const columns = [
    { title: "When", render: (e) => fmtTime(e.at) },
    { title: "Type", render: (e) => h("span", { "data-test": "event-type" }, e.type) },
    { title: "User", render: (e) => (e.user_id ? people.byPublicId.get(e.user_id) ?? e.user_id : "") },
    { title: "Device", render: (e) => (e.device_id === null ? "" : String(e.device_id)) },
    { title: "Details", render: (e) => h("code", { class: "small" }, JSON.stringify(e.details)) },
  ];

  const list = pagedTable("admin-events", columns, async (cursor) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filter.value) q.set("type", filter.value);
    if (cursor) q.set("cursor", cursor);
    const res = await api("GET", `/events?${q}`);
    return { items: res.events, next: res.next_cursor };
  }, "No events.");
  return {
    element: h("div", { class: "panel" }, h("h2", {}, "Event log"),
      h("div", { class: "row" }, field("Type", filter)), list.element),
    reload: list.reload,
  };
}

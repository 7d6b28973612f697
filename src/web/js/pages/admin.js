// The admin page (#/admin): statistics, every user (activate, deactivate),
// every device (change its status) and the event log (filter by type).
// Only for admins: the API refuses the rest (403) and the page says so
// instead of showing empty tables.
import { api, session } from "../api.js";
import { h, notice, table, fmtTime } from "../dom.js";

const PAGE = 100;
const DEVICE_STATUSES = ["active", "inactive", "maintenance"];
const EVENT_TYPES = [
  "user.registered", "user.updated", "user.activated", "user.deactivated", "user.deleted",
  "device.registered", "device.updated", "device.deleted", "device.key_rotated",
  "device.status_changed", "device.config_changed", "device.metadata_changed",
  "device.online", "device.offline", "alert.raised", "alert.acknowledged", "alert.resolved",
];

export function render(root) {
  const user = session() && session().user;
  if (!user || !user.is_admin) {
    root.replaceChildren(h("h1", {}, "Admin"),
      h("p", { class: "notice error", "data-test": "admin-forbidden" },
        "This page is for administrators only. Your account is not an administrator."));
    return;
  }
  // Names of users by internal id (devices name their owner so) and by
  // public id (events do), filled as the user list pages in.
  const people = { byId: new Map(), byPublicId: new Map() };
  const stats = statsSection();
  const users = usersSection(people, () => stats.reload());
  const devices = devicesSection(people, () => stats.reload());
  const events = eventsSection(people);
  root.replaceChildren(h("h1", {}, "Admin"), stats.node, users.node, devices.node, events.node);
  stats.reload();
  users.reload().then(() => {
    devices.reload();
    events.reload();
  });
}

function showError(err) {
  notice(err && err.message ? err.message : String(err), "error");
}

// A table that grows a page at a time. `fetchPage(next)` resolves to
// {items, next}: `next` is what the following page needs (an offset or a
// cursor), null after the last page.
function pagedTable(dataTest, columns, fetchPage, emptyText) {
  const box = h("div", { "data-test": dataTest }, "Loading…");
  const more = h("button", { type: "button", hidden: "", "data-test": `${dataTest}-more`, onclick: () => page() }, "More");
  let items = [];
  let next = null;
  let generation = 0; // a reload makes pages still in flight stale

  function draw() {
    box.replaceChildren(items.length ? table(columns, items) : h("p", { class: "empty" }, emptyText));
    more.hidden = next === null;
  }

  async function page() {
    const mine = generation;
    try {
      const got = await fetchPage(next);
      if (mine !== generation) return;
      items.push(...got.items);
      next = got.next ?? null;
    } catch (err) {
      if (mine !== generation) return;
      showError(err);
    }
    draw();
  }

  function reload() {
    generation += 1;
    items = [];
    next = null;
    return page();
  }

  return { node: h("div", {}, box, more), reload, draw };
}

// Offset paging of the list endpoints that answer `meta.total`.
function byOffset(path, key, extra = () => "") {
  return async (offset) => {
    const from = offset ?? 0;
    const answer = await api("GET", `${path}?limit=${PAGE}&offset=${from}${extra()}`);
    const items = answer[key];
    const reached = from + items.length;
    return { items, next: items.length && reached < answer.meta.total ? reached : null };
  };
}

function ownerName(people, id) {
  return people.byId.get(id) ?? `user ${id}`;
}

// -------------------------------------------------------------------- stats

function statsSection() {
  const box = h("div", { class: "stats", "data-test": "admin-stats" }, "Loading…");
  async function reload() {
    try {
      const s = await api("GET", "/admin/stats");
      const d = s.device_stats;
      const figure = (label, value, test) => h("div", { class: "stat", "data-test": test },
        h("span", { class: "stat-value" }, String(value)), h("span", { class: "stat-label" }, label));
      box.replaceChildren(
        figure("users", s.total_users, "stat-users"),
        figure("devices", d.total, "stat-devices"),
        figure("active", d.active, "stat-active"),
        figure("online", d.online, "stat-online"),
        figure("offline", d.offline, "stat-offline"),
        figure("inactive", d.inactive, "stat-inactive"),
        figure("maintenance", d.maintenance, "stat-maintenance"),
        h("p", { class: "note" }, `as of ${fmtTime(s.timestamp)}`));
    } catch (err) {
      box.replaceChildren(h("p", { class: "empty" }, "Could not load the statistics."));
      showError(err);
    }
  }
  return { node: h("section", {}, h("h2", {}, "Statistics"), box), reload };
}

// -------------------------------------------------------------------- users

function usersSection(people, changed) {
  const columns = [
    { title: "Username", render: (u) => u.username },
    { title: "Email", render: (u) => u.email },
    { title: "Admin", render: (u) => (u.is_admin ? "yes" : "no") },
    { title: "Active", render: (u) => h("span", { "data-test": "user-active" }, u.is_active ? "yes" : "no") },
    { title: "Created", render: (u) => fmtTime(u.created_at) },
    { title: "Last login", render: (u) => (u.last_login ? fmtTime(u.last_login) : "never") },
    { title: "", render: (u) => switchButton(u) },
  ];

  // Admins cannot be deactivated (the API refuses), so they get no button.
  function switchButton(u) {
    if (u.is_admin) return "";
    const verb = u.is_active ? "deactivate" : "activate";
    return h("button", {
      type: "button",
      class: u.is_active ? "danger" : "",
      "data-test": `user-${verb}`,
      "data-user": u.username,
      onclick: async () => {
        try {
          const answer = await api("PATCH", `/users/${u.user_id}/${verb}`);
          u.is_active = verb === "activate";
          notice(answer.message, "success");
          list.draw();
          changed();
        } catch (err) {
          showError(err);
        }
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
  return { node: h("section", {}, h("h2", {}, "Users"), list.node), reload: list.reload };
}

// ------------------------------------------------------------------ devices

function devicesSection(people, changed) {
  const filter = h("select", { "data-test": "admin-device-filter", onchange: () => list.reload() },
    h("option", { value: "" }, "any status"),
    ...DEVICE_STATUSES.map((s) => h("option", { value: s }, s)));

  const columns = [
    { title: "Id", render: (d) => String(d.id) },
    { title: "Name", render: (d) => d.name },
    { title: "Owner", render: (d) => ownerName(people, d.user_id) },
    { title: "Type", render: (d) => d.device_type },
    { title: "Last seen", render: (d) => (d.last_seen ? fmtTime(d.last_seen) : "never") },
    { title: "Status", render: (d) => statusPicker(d) },
  ];

  function statusPicker(d) {
    const picker = h("select", {
      "data-test": "admin-device-status",
      "data-device": String(d.id),
      onchange: async () => {
        try {
          const answer = await api("PUT", `/admin/devices/${d.id}/status`, { status: picker.value });
          d.status = answer.new_status;
          notice(answer.message, "success");
          changed();
        } catch (err) {
          picker.value = d.status;
          showError(err);
        }
      },
    }, ...DEVICE_STATUSES.map((s) => h("option", { value: s }, s)));
    picker.value = d.status;
    return picker;
  }

  const list = pagedTable("admin-devices", columns,
    byOffset("/admin/devices", "devices", () => (filter.value ? `&status=${encodeURIComponent(filter.value)}` : "")),
    "No devices.");
  return {
    node: h("section", {}, h("h2", {}, "Devices"), h("div", { class: "filters" }, h("label", {}, "Status ", filter)), list.node),
    reload: list.reload,
  };
}

// ------------------------------------------------------------------- events

function eventsSection(people) {
  const filter = h("select", { "data-test": "admin-event-filter", onchange: () => list.reload() },
    h("option", { value: "" }, "every type"),
    ...EVENT_TYPES.map((t) => h("option", { value: t }, t)));

  const columns = [
    { title: "When", render: (e) => fmtTime(e.at) },
    { title: "Type", render: (e) => h("span", { "data-test": "event-type" }, e.type) },
    { title: "User", render: (e) => (e.user_id ? people.byPublicId.get(e.user_id) ?? e.user_id : "") },
    { title: "Device", render: (e) => (e.device_id === null ? "" : String(e.device_id)) },
    { title: "Details", render: (e) => h("code", {}, JSON.stringify(e.details)) },
  ];

  const list = pagedTable("admin-events", columns, async (cursor) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filter.value) q.set("type", filter.value);
    if (cursor) q.set("cursor", cursor);
    const answer = await api("GET", `/events?${q}`);
    return { items: answer.events, next: answer.next_cursor };
  }, "No events.");
  return {
    node: h("section", {}, h("h2", {}, "Event log"), h("div", { class: "filters" }, h("label", {}, "Type ", filter)), list.node),
    reload: list.reload,
  };
}

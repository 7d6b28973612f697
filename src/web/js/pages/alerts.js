// The alerts page (#/alerts): a summary by severity and status, the alert
// list (filters, "More" paging, acknowledge / resolve) kept current by the
// live alert stream, and the user's alert rules (list, create, delete).
// The returned cleanup ends the stream when the user leaves the page.
import { api, session, stream } from "../api.js";
import { h, notice, table, fmtTime } from "../dom.js";

const PAGE = 50;           // alerts per page
const RULES_MAX = 1000;    // a user has at most 1000 rules: one page holds them
const DEVICES_MAX = 1000;  // the largest page of a user's devices
const RETRY_MS = 3000;     // the stream's own `retry:` advice
const SEVERITIES = ["critical", "error", "warning", "info"];
const STATUSES = ["active", "acknowledged", "resolved"];
const OPERATORS = [">", ">=", "<", "<=", "==", "!="];

export function render(root) {
  const stop = new AbortController();
  const names = { devices: new Map(), groups: new Map() };

  const summary = summarySection();
  const alerts = alertsSection(names);
  const rules = rulesSection(names);
  root.replaceChildren(h("h1", {}, "Alerts"), summary.node, alerts.node, rules.node);

  // Names first (rows show device names), then the lists. The stream opens
  // at once: what it brings before the list is loaded waits in the list.
  loadNames(names).then(() => {
    alerts.fillDevices();
    rules.fillScopes();
    alerts.reload();
    rules.reload();
  });
  summary.reload();
  follow(stop.signal, (change) => {
    alerts.apply(change);
    summary.reloadSoon();
  });
  return () => stop.abort();
}

function showError(err) {
  notice(err && err.message ? err.message : String(err), "error");
}

async function loadNames(names) {
  const user = session() && session().user;
  if (!user) return;
  try {
    const [devices, groups] = await Promise.all([
      api("GET", `/devices/user/${user.user_id}?limit=${DEVICES_MAX}`),
      api("GET", `/groups?limit=${DEVICES_MAX}`),
    ]);
    for (const d of devices.devices) names.devices.set(d.id, d.name);
    for (const g of groups.groups) names.groups.set(g.id, g.name);
  } catch (err) {
    showError(err);
  }
}

function deviceCell(names, id) {
  const label = names.devices.get(id) ?? `device ${id}`;
  return h("a", { href: `#/devices/${id}` }, label);
}

function select(dataTest, choices, first) {
  return h("select", { "data-test": dataTest },
    ...(first ? [h("option", { value: "" }, first)] : []),
    ...choices.map(([value, label]) => h("option", { value: String(value) }, label)));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Reads the alert stream until `signal` aborts, reconnecting after a
// dropped connection; `onChange` gets each {type, alert}.
async function follow(signal, onChange) {
  while (!signal.aborted) {
    try {
      await stream("/alerts/stream", (event, data) => {
        if (event === "alert" && data && data.alert) onChange(data);
      }, signal);
    } catch (err) {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

// ------------------------------------------------------------------ summary

function summarySection() {
  const box = h("div", { class: "summary", "data-test": "alert-summary" }, "Loading…");
  let pending = null;

  async function reload() {
    try {
      const s = await api("GET", "/alerts/summary");
      const cell = (status, severity) => String((s.by_status_severity[status] || {})[severity] || 0);
      const columns = [
        { title: "Status", render: (status) => status },
        ...SEVERITIES.map((sev) => ({ title: sev, render: (status) => cell(status, sev) })),
        { title: "All", render: (status) => String(s.by_status[status] || 0) },
      ];
      box.replaceChildren(
        h("p", {}, `${s.total} alert(s): `,
          ...SEVERITIES.map((sev) => h("span", { class: `badge sev-${sev}`, "data-test": `summary-${sev}` },
            `${sev} ${s.by_severity[sev] || 0}`))),
        table(columns, STATUSES));
    } catch (err) {
      showError(err);
    }
  }

  // Many changes in a burst ask for one summary, not one each.
  function reloadSoon() {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      reload();
    }, 300);
  }

  return { node: h("section", {}, h("h2", {}, "Summary"), box), reload, reloadSoon };
}

// ------------------------------------------------------------------- alerts

function alertsSection(names) {
  const status = select("alert-filter-status", STATUSES.map((s) => [s, s]), "any status");
  const severity = select("alert-filter-severity", SEVERITIES.map((s) => [s, s]), "any severity");
  const device = select("alert-filter-device", [], "any device");
  const listBox = h("div", { "data-test": "alerts-list" }, "Loading…");
  const more = h("button", { type: "button", hidden: "", "data-test": "alerts-more", onclick: () => loadPage() }, "More");

  let rows = [];          // alerts shown, newest first
  let cursor = null;      // next page, null on the last
  let loaded = false;     // until the first page is in, stream changes wait
  let waiting = [];
  let generation = 0;     // a reload makes pages still in flight stale

  for (const s of [status, severity, device]) s.onchange = () => reload();

  const filters = () => ({ status: status.value, severity: severity.value, device_id: device.value });

  function matches(alert) {
    const f = filters();
    return (!f.status || alert.status === f.status) && (!f.severity || alert.severity === f.severity)
      && (!f.device_id || String(alert.device_id) === f.device_id);
  }

  const columns = [
    { title: "Raised", render: (a) => fmtTime(a.raised_at) },
    { title: "Severity", render: (a) => h("span", { class: `badge sev-${a.severity}` }, a.severity) },
    { title: "Status", render: (a) => h("span", { "data-test": "alert-status" }, a.status) },
    { title: "Device", render: (a) => deviceCell(names, a.device_id) },
    { title: "Message", render: (a) => a.message },
    { title: "Value", render: (a) => (a.value === null ? "" : String(a.value)) },
    { title: "", render: (a) => actions(a) },
  ];

  function actions(alert) {
    const act = (label, verb) => h("button", {
      type: "button",
      "data-test": `alert-${verb}`,
      onclick: async () => {
        try {
          const answer = await api("POST", `/alerts/${alert.id}/${verb}`);
          apply({ alert: answer.alert });
        } catch (err) {
          showError(err);
        }
      },
    }, label);
    const buttons = [];
    if (alert.status === "active") buttons.push(act("Acknowledge", "acknowledge"));
    if (alert.status !== "resolved") buttons.push(act("Resolve", "resolve"));
    return h("span", { class: "actions" }, ...buttons);
  }

  function draw() {
    listBox.replaceChildren(rows.length
      ? table(columns, rows)
      : h("p", { class: "empty" }, "No alerts."));
    // Rows carry their alert's id so that tests and users can find one.
    const trs = listBox.querySelectorAll("tbody tr");
    trs.forEach((tr, i) => { tr.dataset.alertId = rows[i].id; tr.dataset.test = "alert-row"; });
    more.hidden = !cursor;
  }

  // A change from the stream or from a button: update the alert in place,
  // or put a new one that fits the filters at the top.
  function apply(change) {
    if (!loaded) {
      waiting.push(change);
      return;
    }
    const alert = change.alert;
    const i = rows.findIndex((a) => a.id === alert.id);
    if (i >= 0) {
      rows[i] = alert;
    } else if (matches(alert)) {
      rows.unshift(alert);
    } else {
      return;
    }
    draw();
  }

  async function loadPage() {
    const mine = generation;
    try {
      const page = await api("GET", `/alerts${query({ limit: PAGE, cursor, ...filters() })}`);
      if (mine !== generation) return;
      const known = new Set(rows.map((a) => a.id));
      rows.push(...page.alerts.filter((a) => !known.has(a.id)));
      cursor = page.next_cursor;
    } catch (err) {
      if (mine !== generation) return;
      showError(err);
    }
    if (!loaded) {
      loaded = true;
      const early = waiting;
      waiting = [];
      early.forEach(apply);
    }
    draw();
  }

  function reload() {
    generation += 1;
    rows = [];
    cursor = null;
    return loadPage();
  }

  function fillDevices() {
    const chosen = device.value;
    device.replaceChildren(h("option", { value: "" }, "any device"),
      ...[...names.devices].map(([id, name]) => h("option", { value: String(id) }, name)));
    device.value = chosen;
  }

  const node = h("section", {}, h("h2", {}, "Alerts"),
    h("div", { class: "filters" },
      h("label", {}, "Status ", status), h("label", {}, "Severity ", severity), h("label", {}, "Device ", device)),
    listBox, more);
  return { node, apply, reload, fillDevices };
}

// -------------------------------------------------------------------- rules

function rulesSection(names) {
  const listBox = h("div", { "data-test": "rules-list" }, "Loading…");
  const field = (name, attrs = {}) => h("input", { name, "data-test": `rule-${name}`, ...attrs });
  const name = field("name", { required: "", maxlength: "64" });
  const measurement = field("measurement", { required: "", maxlength: "64" });
  const operator = select("rule-operator", OPERATORS.map((o) => [o, o]));
  const threshold = field("threshold", { type: "number", step: "any", required: "" });
  const severity = select("rule-severity", SEVERITIES.map((s) => [s, s]));
  severity.value = "warning";
  const scope = select("rule-scope", [], null);
  const duration = field("duration_s", { type: "number", min: "0", max: "86400", step: "any" });
  duration.defaultValue = "0";
  const autoResolve = field("auto_resolve", { type: "checkbox" });
  autoResolve.defaultChecked = true; // what form.reset() comes back to
  autoResolve.checked = true;

  const form = h("form", {
    class: "rule-form",
    "data-test": "rule-create-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = ruleBody();
      if (!body) return;
      try {
        const answer = await api("POST", "/alert-rules", body);
        notice(`Rule "${answer.rule.name}" created`, "success");
        form.reset();
        severity.value = "warning";
        await reload();
      } catch (err) {
        showError(err);
      }
    },
  },
  h("label", {}, "Name ", name),
  h("label", {}, "Watch ", scope),
  h("label", {}, "Measurement ", measurement),
  h("label", {}, "Condition ", operator),
  h("label", {}, "Threshold ", threshold),
  h("label", {}, "Severity ", severity),
  h("label", {}, "Held for (s) ", duration),
  h("label", {}, autoResolve, " resolve by itself"),
  h("button", { type: "submit", "data-test": "rule-create" }, "Create rule"));

  function ruleBody() {
    const limit = Number(threshold.value);
    if (threshold.value.trim() === "" || !Number.isFinite(limit)) {
      notice("The threshold must be a number", "error");
      return null;
    }
    const body = {
      name: name.value,
      measurement: measurement.value,
      operator: operator.value,
      threshold: limit,
      severity: severity.value,
      duration_s: Number(duration.value || 0),
      auto_resolve: autoResolve.checked,
    };
    const [kind, id] = scope.value.split(":");
    if (kind === "device") body.device_id = Number(id);
    if (kind === "group") body.group_id = Number(id);
    return body;
  }

  function scopeLabel(rule) {
    if (rule.scope === "device") return deviceCell(names, rule.device_id);
    if (rule.scope === "group") {
      return h("a", { href: `#/groups/${rule.group_id}` }, `group ${names.groups.get(rule.group_id) ?? rule.group_id}`);
    }
    return "all devices";
  }

  const columns = [
    { title: "Name", render: (r) => r.name },
    { title: "Watches", render: (r) => scopeLabel(r) },
    { title: "Condition", render: (r) => `${r.measurement} ${r.operator} ${r.threshold}` },
    { title: "Severity", render: (r) => h("span", { class: `badge sev-${r.severity}` }, r.severity) },
    { title: "Held for", render: (r) => `${r.duration_s} s` },
    { title: "Resolves itself", render: (r) => (r.auto_resolve ? "yes" : "no") },
    { title: "Enabled", render: (r) => (r.enabled ? "yes" : "no") },
    {
      title: "",
      render: (r) => h("button", {
        type: "button",
        class: "danger",
        "data-test": "rule-delete",
        onclick: async () => {
          if (!window.confirm(`Delete the rule "${r.name}"? Its open alerts stay.`)) return;
          try {
            await api("DELETE", `/alert-rules/${r.id}`);
            notice(`Rule "${r.name}" deleted`, "success");
            await reload();
          } catch (err) {
            showError(err);
          }
        },
      }, "Delete"),
    },
  ];

  async function reload() {
    try {
      const page = await api("GET", `/alert-rules?limit=${RULES_MAX}`);
      listBox.replaceChildren(page.rules.length
        ? table(columns, page.rules)
        : h("p", { class: "empty" }, "No alert rules yet."));
      if (page.next_cursor) {
        listBox.append(h("p", { class: "note" }, `Showing the newest ${page.rules.length} rules.`));
      }
    } catch (err) {
      listBox.replaceChildren(h("p", { class: "empty" }, "Could not load the rules."));
      showError(err);
    }
  }

  function fillScopes() {
    scope.replaceChildren(
      h("option", { value: "" }, "all my devices"),
      ...[...names.devices].map(([id, n]) => h("option", { value: `device:${id}` }, `device ${n}`)),
      ...[...names.groups].map(([id, n]) => h("option", { value: `group:${id}` }, `group ${n}`)));
  }

  const node = h("section", {}, h("h2", {}, "Alert rules"), listBox, h("h3", {}, "New rule"), form);
  return { node, reload, fillScopes };
}

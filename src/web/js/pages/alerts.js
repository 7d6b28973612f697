// pages/alerts.js — the user's alerts (the admin's: everyone's). A summary
// by severity and status; the list with filters and "More" paging, kept
// current by the live alert stream (new alerts appear at the top, changed
// ones change in place); acknowledge and resolve; the user's alert rules
// (list, create, delete). The cleanup closes the stream.

import { api, session, stream } from "../api.js";
import { attempt, field, fmtTime, h, notice, replace, table } from "../dom.js";

const PAGE = 50;           // alerts per page
const MAX_PAGE = 1000;     // the largest page of rules, devices, groups (a user has ≤ 1000 rules)
const RETRY_MS = 3000;     // the stream's own `retry:` advice
const SEVERITIES = ["critical", "error", "warning", "info"];
const STATUSES = ["active", "acknowledged", "resolved"];
const OPERATORS = [">", ">=", "<", "<=", "==", "!="];

export function render(root) {
  const stop = new AbortController();
  const names = { devices: new Map(), groups: new Map() };
  const summary = new Summary();
  const alerts = new AlertList(names);
  const rules = new Rules(names);
  replace(root, h("h1", {}, "Alerts"), summary.element, alerts.element, rules.element);

  // The stream opens at once; what it brings before the first page is in
  // waits for it (AlertList.apply). A stream that opens only after the list
  // was asked for — or again, after a dropped connection — may have missed
  // changes: then the list and the summary are asked for once more.
  follow(stop.signal, (change) => {
    alerts.apply(change.alert);
    summary.reloadSoon();
  }, () => {
    if (!alerts.requested) return;
    alerts.reload();
    summary.reload();
  });
  summary.reload();
  loadNames(names).then(() => {
    alerts.offerDevices();
    rules.offerScopes();
    alerts.reload();
    rules.reload();
  });
  return () => {
    stop.abort();
    summary.cancel();
  };
}

// Device and group names, for the rows and the pickers.
async function loadNames(names) {
  const me = session().user;
  const res = await attempt(() => Promise.all([
    api("GET", `/devices/user/${me.user_id}?limit=${MAX_PAGE}`),
    api("GET", `/groups?limit=${MAX_PAGE}`),
  ]));
  if (!res) return;
  for (const d of res[0].devices) names.devices.set(d.id, d.name);
  for (const g of res[1].groups) names.groups.set(g.id, g.name);
}

// Reads the alert stream until `signal` aborts, opening it again after the
// server ends it or the connection drops; `onChange` gets each
// {type, alert}, `onOpen` is called each time the stream is open.
async function follow(signal, onChange, onOpen) {
  while (!signal.aborted) {
    try {
      await stream("/alerts/stream", (event, data) => {
        if (event === "alert" && data && data.alert) onChange(data);
      }, signal, onOpen);
    } catch (e) {
      if (e && e.status === 401) return; // the session is over: api.js went to the login page
    }
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

function deviceLink(names, id) {
  return h("a", { href: `#/devices/${id}` }, names.devices.get(id) ?? `device ${id}`);
}

function picker(dataTest, choices, first) {
  return h("select", { "data-test": dataTest },
    first === undefined ? null : h("option", { value: "" }, first),
    choices.map(([value, label]) => h("option", { value: String(value) }, label)));
}

// The stylesheet's badge colours: an active alert is an open problem (red),
// not an active device (green).
const ALERT_BADGE = { active: "open", acknowledged: "acknowledged", resolved: "resolved" };

function badge(kind, attrs = {}) {
  return h("span", { class: `badge ${ALERT_BADGE[kind] ?? kind}`, ...attrs }, kind);
}

// ---- summary ------------------------------------------------------------

class Summary {
  constructor() {
    this.box = h("div", { "data-test": "alert-summary" }, h("p", { class: "loading" }, "Loading…"));
    this.element = h("div", { class: "panel" }, h("h2", {}, "Summary"), this.box);
    this.timer = null;
  }

  async reload() {
    const s = await attempt(() => api("GET", "/alerts/summary"));
    if (!s) return;
    const cell = (status, sev) => String((s.by_status_severity[status] || {})[sev] || 0);
    const columns = [
      { title: "", render: (status) => badge(status) },
      ...SEVERITIES.map((sev) => ({ title: sev, render: (status) => cell(status, sev) })),
      { title: "all", render: (status) => h("strong", { "data-test": `summary-${status}` }, String(s.by_status[status] || 0)) },
    ];
    replace(this.box,
      h("div", { class: "values" },
        h("div", { class: "value" }, h("div", { class: "name" }, "alerts"), h("div", { class: "num", "data-test": "summary-total" }, String(s.total))),
        SEVERITIES.map((sev) => h("div", { class: "value" }, h("div", { class: "name" }, sev),
          h("div", { class: "num", "data-test": `summary-${sev}` }, String(s.by_severity[sev] || 0))))),
      table(columns, STATUSES));
  }

  // A burst of changes asks for one summary, not one each.
  reloadSoon() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload();
    }, 300);
  }

  cancel() {
    clearTimeout(this.timer);
  }
}

// ---- the alert list -----------------------------------------------------

class AlertList {
  constructor(names) {
    this.names = names;
    this.status = picker("alert-filter-status", STATUSES.map((s) => [s, s]), "any status");
    this.severity = picker("alert-filter-severity", SEVERITIES.map((s) => [s, s]), "any severity");
    this.device = picker("alert-filter-device", [], "any device");
    for (const p of [this.status, this.severity, this.device]) p.addEventListener("change", () => this.reload());
    this.box = h("div", { "data-test": "alerts" }, h("p", { class: "loading" }, "Loading…"));
    this.more = h("button", { type: "button", class: "secondary", hidden: true, "data-test": "alerts-more",
                              onclick: () => this.page() }, "More");
    this.element = h("div", { class: "panel" }, h("h2", {}, "Alerts"),
      h("div", { class: "row" }, field("Status", this.status), field("Severity", this.severity),
        field("Device", this.device)),
      this.box, this.more);
    this.rows = [];          // shown, newest first
    this.cursor = null;      // of the next page; null after the last
    this.loaded = false;     // until the first page is in, changes wait
    this.waiting = [];
    this.generation = 0;     // a reload makes pages still in flight stale
    this.requested = false;  // whether a page was asked for yet
    this.columns = [
      { title: "Raised", render: (a) => fmtTime(a.raised_at) },
      { title: "Severity", render: (a) => badge(a.severity) },
      { title: "Status", render: (a) => badge(a.status, { "data-test": "alert-status", "data-alert": a.id }) },
      { title: "Device", render: (a) => deviceLink(this.names, a.device_id) },
      { title: "Message", render: (a) => h("span", { "data-test": "alert-message" }, a.message) },
      { title: "Value", render: (a) => (a.value === null ? "" : String(a.value)) },
      { title: "", render: (a) => this.actions(a) },
    ];
  }

  matches(alert) {
    return (!this.status.value || alert.status === this.status.value)
      && (!this.severity.value || alert.severity === this.severity.value)
      && (!this.device.value || String(alert.device_id) === this.device.value);
  }

  actions(alert) {
    const act = (label, verb) => h("button", {
      type: "button", class: "secondary", "data-test": `alert-${verb}`,
      onclick: async () => {
        const res = await attempt(() => api("POST", `/alerts/${alert.id}/${verb}`));
        if (res) this.apply(res.alert);
      },
    }, label);
    return h("div", { class: "row" },
      alert.status === "active" ? act("Acknowledge", "acknowledge") : null,
      alert.status !== "resolved" ? act("Resolve", "resolve") : null);
  }

  draw() {
    replace(this.box, table(this.columns, this.rows, "No alerts."));
    this.more.hidden = !this.cursor;
  }

  // An alert as it is now (from the stream or a button): changed in place
  // when shown; put at the top when new and it fits the filters. A changed
  // alert stays where it is even when it no longer fits: rows do not jump
  // away under the reader.
  apply(alert) {
    if (!this.loaded) {
      this.waiting.push(alert);
      return;
    }
    const i = this.rows.findIndex((a) => a.id === alert.id);
    if (i >= 0) this.rows[i] = alert;
    else if (this.matches(alert)) this.rows.unshift(alert);
    else return;
    this.draw();
  }

  query() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (this.cursor) q.set("cursor", this.cursor);
    if (this.status.value) q.set("status", this.status.value);
    if (this.severity.value) q.set("severity", this.severity.value);
    if (this.device.value) q.set("device_id", this.device.value);
    return q;
  }

  async page() {
    const mine = this.generation;
    this.requested = true;
    const res = await attempt(() => api("GET", `/alerts?${this.query()}`));
    if (mine !== this.generation) return;
    if (res) {
      const shown = new Set(this.rows.map((a) => a.id));
      this.rows.push(...res.alerts.filter((a) => !shown.has(a.id)));
      this.cursor = res.next_cursor;
    }
    this.draw();
    if (!this.loaded) {
      this.loaded = true;
      const early = this.waiting;
      this.waiting = [];
      early.forEach((a) => this.apply(a));
    }
  }

  reload() {
    this.generation += 1;
    this.rows = [];
    this.cursor = null;
    return this.page();
  }

  offerDevices() {
    const chosen = this.device.value;
    replace(this.device, h("option", { value: "" }, "any device"),
      [...this.names.devices].map(([id, name]) => h("option", { value: String(id) }, name)));
    this.device.value = chosen;
  }
}

// ---- alert rules --------------------------------------------------------

class Rules {
  constructor(names) {
    this.names = names;
    this.box = h("div", { "data-test": "rules" }, h("p", { class: "loading" }, "Loading…"));
    this.scope = picker("rule-scope", []);
    this.element = h("div", { class: "panel" }, h("h2", {}, "Alert rules"), this.box, this.form());
    this.columns = [
      { title: "Name", render: (r) => h("span", { "data-test": "rule-name" }, r.name) },
      { title: "Watches", render: (r) => this.scopeOf(r) },
      { title: "Condition", render: (r) => h("code", {}, `${r.measurement} ${r.operator} ${r.threshold}`) },
      { title: "Severity", render: (r) => badge(r.severity) },
      { title: "Held for", render: (r) => `${r.duration_s} s` },
      { title: "Resolves itself", render: (r) => (r.auto_resolve ? "yes" : "no") },
      { title: "Enabled", render: (r) => (r.enabled ? "yes" : "no") },
      {
        title: "",
        render: (r) => h("button", {
          type: "button", class: "danger", "data-test": "rule-delete",
          onclick: async () => {
            if (!window.confirm(`Delete the rule "${r.name}"? Its open alerts stay.`)) return;
            if (await attempt(() => api("DELETE", `/alert-rules/${r.id}`))) {
              notice(`Rule "${r.name}" deleted`, "success");
              this.reload();
            }
          },
        }, "Delete"),
      },
    ];
  }

  form() {
    const input = (name, attrs) => h("input", { name, "data-test": `rule-${name}`, ...attrs });
    const name = input("name", { required: true, maxlength: 64 });
    const measurement = input("measurement", { required: true, maxlength: 64, placeholder: "temperature" });
    const operator = picker("rule-operator", OPERATORS.map((o) => [o, o]));
    const threshold = input("threshold", { type: "number", step: "any", required: true });
    const severity = picker("rule-severity", SEVERITIES.map((s) => [s, s]));
    const duration = input("duration_s", { type: "number", min: 0, max: 86400, step: "any", placeholder: "0" });
    const autoResolve = picker("rule-auto-resolve", [["yes", "resolves by itself"], ["no", "stays until resolved by hand"]]);
    const submit = h("button", { type: "submit", "data-test": "rule-submit" }, "Create rule");
    severity.value = "warning";

    const body = () => {
      const rule = {
        name: name.value, measurement: measurement.value, operator: operator.value,
        threshold: Number(threshold.value), severity: severity.value,
        duration_s: Number(duration.value || 0), auto_resolve: autoResolve.value === "yes",
      };
      const [kind, id] = this.scope.value.split(":");
      if (kind === "device") rule.device_id = Number(id);
      if (kind === "group") rule.group_id = Number(id);
      return rule;
    };

    return h("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        const res = await attempt(() => api("POST", "/alert-rules", body()));
        submit.disabled = false;
        if (res) {
          notice(`Rule "${res.rule.name}" created`, "success");
          name.value = "";
          this.reload();
        }
      },
    }, h("h2", {}, "New rule"),
       h("div", { class: "row" }, field("Name", name), field("Watch", this.scope)),
       h("div", { class: "row" }, field("Measurement", measurement), field("Condition", operator),
         field("Threshold", threshold), field("Severity", severity), field("Held for (seconds)", duration)),
       h("div", { class: "row" }, field("When the condition stops holding, the alert", autoResolve)),
       submit);
  }

  scopeOf(rule) {
    if (rule.scope === "device") return deviceLink(this.names, rule.device_id);
    if (rule.scope === "group")
      return h("a", { href: `#/groups/${rule.group_id}` }, `group ${this.names.groups.get(rule.group_id) ?? rule.group_id}`);
    return "all devices";
  }

  async reload() {
    const res = await attempt(() => api("GET", `/alert-rules?limit=${MAX_PAGE}`));
    if (!res) return;
    replace(this.box, table(this.columns, res.rules, "No alert rules yet."),
      res.next_cursor ? h("p", { class: "muted small" }, `The newest ${res.rules.length} rules.`) : null);
  }

  offerScopes() {
    replace(this.scope, h("option", { value: "" }, "all my devices"),
      [...this.names.devices].map(([id, n]) => h("option", { value: `device:${id}` }, `device ${n}`)),
      [...this.names.groups].map(([id, n]) => h("option", { value: `group:${id}` }, `group ${n}`)));
  }
}

// pages/device.js — one device: its state, latest values, a live chart fed
// by the telemetry stream (SSE), history over a chosen time range, windowed
// aggregates, and its configuration and metadata documents.

import { api, stream } from "../api.js";
import { LineChart } from "../chart.js";
import { attempt, field, fmtAgo, fmtTime, h, notice, replace, table } from "../dom.js";

const RANGES = [["-1h", "Last hour"], ["-24h", "Last 24 h"], ["-7d", "Last 7 days"], ["custom", "Custom"]];
const WINDOWS = ["1m", "5m", "15m", "1h", "1d"];
const AGGREGATIONS = ["mean", "min", "max", "sum", "count", "first", "last"];
const HISTORY_LIMIT = 1000;
const RECONNECT_MS = 3000;

function showValue(v) {
  return v !== null && typeof v === "object" ? JSON.stringify(v) : String(v);
}

function section(title, test, ...children) {
  return h("section", { class: "panel", "data-test": test }, h("h2", {}, title), ...children);
}

// ---- state and latest values -------------------------------------------

function stateView(d) {
  return h("dl", { class: "meta" },
    h("dt", {}, "Type"), h("dd", {}, d.device_type),
    h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${d.status}` }, d.status)),
    h("dt", {}, "Online"), h("dd", {}, h("span", { class: `badge ${d.is_online ? "online" : "offline"}`, "data-test": "device-online" }, d.is_online ? "online" : "offline")),
    h("dt", {}, "Last seen"), h("dd", { "data-test": "last-seen" }, d.last_seen ? `${fmtTime(d.last_seen)} (${fmtAgo(d.last_seen)})` : "never"),
    h("dt", {}, "Location"), h("dd", {}, d.location || "—"),
    h("dt", {}, "Firmware / hardware"), h("dd", {}, `${d.firmware_version || "—"} / ${d.hardware_version || "—"}`),
    h("dt", {}, "API key"), h("dd", {}, h("code", {}, d.api_key)),
    h("dt", {}, "Registered"), h("dd", {}, fmtTime(d.created_at)));
}

class Latest {
  constructor() {
    this.values = new Map(); // name → {value, timestamp}
    this.element = h("div", { class: "values", "data-test": "latest" });
  }

  set(name, value, timestamp) {
    const old = this.values.get(name);
    if (old && old.timestamp > timestamp) return;
    this.values.set(name, { value, timestamp });
  }

  draw() {
    const names = [...this.values.keys()].sort();
    if (!names.length) {
      replace(this.element, h("p", { class: "empty" }, "No telemetry yet."));
      return;
    }
    replace(this.element, names.map((name) => {
      const { value, timestamp } = this.values.get(name);
      return h("div", { class: "value", "data-test": "latest-value", "data-name": name },
        h("div", { class: "name" }, name),
        h("div", { class: "num", "data-test": "latest-num" }, showValue(value)),
        h("div", { class: "muted small" }, fmtTime(timestamp)));
    }));
  }

  // The catalog first: /latest answers 404 for a device without
  // telemetry, and a browser logs every 404 as an error.
  async load(id) {
    const catalog = await attempt(() => api("GET", `/telemetry/${id}/measurements`));
    const res = catalog && catalog.count ? await attempt(() => api("GET", `/telemetry/${id}/latest`)) : null;
    for (const [name, m] of Object.entries((res && res.measurements) || {})) this.set(name, m.value, m.timestamp);
    this.draw();
  }
}

// ---- live ----------------------------------------------------------------

// Keeps the stream open while the page is: reconnects after a drop, stops
// for good on revocation or when the page goes.
function follow(id, onTelemetry, setState, signal) {
  const run = async () => {
    while (!signal.aborted) {
      setState("connecting");
      let revoked = false;
      try {
        setState("live");
        await stream(`/telemetry/${id}/stream`, (event, data) => {
          if (event === "telemetry") onTelemetry(data);
          else if (event === "revoked") revoked = true;
        }, signal);
      } catch (e) {
        if (e.status === 401 || e.status === 403 || e.status === 404) return setState("closed");
      }
      if (signal.aborted) return;
      if (revoked) return setState("closed");
      setState("reconnecting");
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  };
  run();
}

// ---- history ---------------------------------------------------------------

function rangePicker(onChange) {
  let chosen = "-1h";
  const start = h("input", { type: "datetime-local", "data-test": "range-start" });
  const end = h("input", { type: "datetime-local", "data-test": "range-end" });
  const apply = h("button", { class: "secondary", "data-test": "range-apply", onclick: () => emit() }, "Apply");
  const custom = h("div", { class: "row", hidden: true },
    field("From", start), field("To", end), h("div", { class: "field" }, apply));
  const buttons = RANGES.map(([value, label]) => h("button", {
    class: value === chosen ? "active" : null, "data-test": `range-${value.replace("-", "")}`,
    onclick: () => {
      chosen = value;
      buttons.forEach((b, i) => b.classList.toggle("active", RANGES[i][0] === value));
      custom.hidden = value !== "custom";
      if (value !== "custom") emit();
    },
  }, label));
  function emit() {
    if (chosen !== "custom") return onChange({ start: chosen, end: null });
    if (!start.value) return notice("Choose when the range starts.");
    const s = new Date(start.value).toISOString();
    const e = end.value ? new Date(end.value).toISOString() : null;
    if (e && e < s) return notice("The range ends before it starts.");
    onChange({ start: s, end: e });
  }
  return { element: h("div", {}, h("div", { class: "tabs" }, buttons), custom), current: () => ({ start: chosen === "custom" ? "-1h" : chosen, end: null }) };
}

function timeQuery(range) {
  let q = `start_time=${encodeURIComponent(range.start)}`;
  if (range.end) q += `&end_time=${encodeURIComponent(range.end)}`;
  return q;
}

function historyView(id) {
  const chart = new LineChart({ yLabel: "value", test: "history-chart", maxPoints: HISTORY_LIMIT, empty: "No data in this range." });
  const rows = h("div", { "data-test": "history-rows" });
  const info = h("p", { class: "muted small" });
  let range = { start: "-1h", end: null };
  async function load(r = range) {
    range = r;
    const res = await attempt(() => api("GET", `/telemetry/${id}?${timeQuery(range)}&limit=${HISTORY_LIMIT}`));
    if (!res) return;
    const series = {};
    for (const m of res.data)
      for (const [name, v] of Object.entries(m.measurements || {}))
        (series[name] = series[name] || []).push([m.timestamp, v]);
    chart.setData(series);
    info.textContent = `${res.count} message${res.count === 1 ? "" : "s"}${res.next_cursor ? ` (the newest ${HISTORY_LIMIT})` : ""}`;
    replace(rows, table([
      { title: "Time", render: (m) => fmtTime(m.timestamp) },
      { title: "Measurements", render: (m) => h("code", {}, JSON.stringify(m.measurements)) },
      { title: "Metadata", render: (m) => m.metadata && Object.keys(m.metadata).length ? h("code", {}, JSON.stringify(m.metadata)) : "" },
    ], res.data.slice(0, 50), "No messages in this range."));
  }
  const picker = rangePicker(load);
  return { element: section("History", "history", picker.element, chart.element, info, rows), load: () => load(), chart };
}

// ---- aggregates -------------------------------------------------------------

function aggregatedView(id) {
  const chart = new LineChart({ yLabel: "value", test: "aggregated-chart", empty: "No values in this range." });
  const fieldSel = h("select", { "data-test": "agg-field" });
  const aggSel = h("select", { "data-test": "agg-aggregation" }, AGGREGATIONS.map((a) => h("option", { value: a }, a)));
  const winSel = h("select", { "data-test": "agg-window" }, WINDOWS.map((w) => h("option", { value: w, selected: w === "5m" }, w)));
  const rangeSel = h("select", { "data-test": "agg-range" }, RANGES.slice(0, 3).map(([v, l]) => h("option", { value: v, selected: v === "-24h" }, l)));
  const rows = h("div", { "data-test": "aggregated-rows" });
  async function load() {
    if (!fieldSel.value) {
      replace(rows, h("p", { class: "empty" }, "No numeric measurements yet."));
      return;
    }
    const q = `field=${encodeURIComponent(fieldSel.value)}&aggregation=${aggSel.value}&window=${winSel.value}&start_time=${encodeURIComponent(rangeSel.value)}`;
    const res = await attempt(() => api("GET", `/telemetry/${id}/aggregated?${q}`));
    if (!res) return;
    chart.yLabel = `${res.aggregation} of ${res.field}`;
    chart.setData({ [`${res.aggregation}(${res.field}) per ${res.window}`]: res.data.map((w) => [w.timestamp, w.value]) });
    replace(rows, table([
      { title: "Window from", render: (w) => fmtTime(w.timestamp) },
      { title: "Value", render: (w) => showValue(w.value) },
      { title: "Values", render: (w) => String(w.count) },
    ], res.data.slice(-50).reverse(), "No values in this range."));
  }
  async function loadFields() {
    const res = await attempt(() => api("GET", `/telemetry/${id}/measurements`));
    const numeric = res ? res.measurements.filter((m) => m.type === "number" || m.type === "boolean") : [];
    const keep = fieldSel.value;
    replace(fieldSel, numeric.map((m) => h("option", { value: m.name, selected: m.name === keep }, m.unit ? `${m.name} (${m.unit})` : m.name)));
    await load();
  }
  for (const s of [fieldSel, aggSel, winSel, rangeSel]) s.addEventListener("change", load);
  const controls = h("div", { class: "row" }, field("Measurement", fieldSel), field("Aggregation", aggSel),
    field("Window", winSel), field("Range", rangeSel));
  return { element: section("Aggregated", "aggregated", controls, chart.element, rows), load: loadFields, chart };
}

// ---- documents: configuration and metadata ----------------------------------

// A JSON-object editor: red while the text is not a JSON object.
function jsonEditor(test) {
  const area = h("textarea", { class: "code", spellcheck: "false", "data-test": test });
  const hint = h("p", { class: "muted small" });
  const parse = () => {
    try {
      const v = JSON.parse(area.value || "{}");
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("must be a JSON object");
      area.classList.remove("invalid");
      hint.textContent = "";
      return v;
    } catch (e) {
      area.classList.add("invalid");
      hint.textContent = `Not valid: ${e.message}`;
      return undefined;
    }
  };
  area.addEventListener("input", parse);
  return { area, hint, parse, set: (v) => { area.value = JSON.stringify(v, null, 2); parse(); } };
}

function configView(id) {
  const editor = jsonEditor("config-editor");
  const info = h("p", { class: "muted small", "data-test": "config-version" });
  const show = (c) => {
    editor.set(c.config);
    info.textContent = c.version ? `Version ${c.version}, ${fmtTime(c.updated_at)}` : "No configuration yet.";
  };
  const save = h("button", {
    "data-test": "config-save",
    onclick: async () => {
      const v = editor.parse();
      if (v === undefined) return notice("The configuration is not a JSON object.");
      const res = await attempt(() => api("PUT", `/devices/${id}/config`, v));
      if (res) {
        show(res);
        notice(`Configuration version ${res.version} saved.`, "success");
      }
    },
  }, "Save configuration");
  async function load() {
    const res = await attempt(() => api("GET", `/devices/${id}/config`));
    if (res) show(res);
  }
  return { element: section("Configuration", "config", info, editor.area, editor.hint, save), load };
}

function metadataView(id) {
  const tags = h("input", { placeholder: "roof, north", "data-test": "meta-tags" });
  const lat = h("input", { type: "number", step: "any", min: -90, max: 90, "data-test": "meta-lat" });
  const lon = h("input", { type: "number", step: "any", min: -180, max: 180, "data-test": "meta-lon" });
  const attrs = jsonEditor("meta-attributes");
  const shown = h("div", { "data-test": "meta-tags-shown" });
  const show = (m) => {
    tags.value = m.tags.join(", ");
    replace(shown, m.tags.length ? m.tags.map((t) => h("span", { class: "tag" }, t)) : h("span", { class: "muted" }, "No tags."));
    lat.value = m.location ? m.location.latitude : "";
    lon.value = m.location ? m.location.longitude : "";
    attrs.set(m.attributes);
  };
  const save = h("button", {
    "data-test": "meta-save",
    onclick: async () => {
      const attributes = attrs.parse();
      if (attributes === undefined) return notice("The attributes are not a JSON object.");
      if ((lat.value === "") !== (lon.value === "")) return notice("Give both latitude and longitude, or neither.");
      const body = {
        tags: [...new Set(tags.value.split(",").map((t) => t.trim()).filter(Boolean))],
        attributes,
        location: lat.value === "" ? null : { latitude: Number(lat.value), longitude: Number(lon.value) },
      };
      const res = await attempt(() => api("PUT", `/devices/${id}/metadata`, body));
      if (res) {
        show(res);
        notice("Metadata saved.", "success");
      }
    },
  }, "Save metadata");
  async function load() {
    const res = await attempt(() => api("GET", `/devices/${id}/metadata`));
    if (res) show(res);
  }
  return {
    element: section("Metadata", "metadata", shown,
      field("Tags (comma separated)", tags),
      h("div", { class: "row" }, field("Latitude", lat), field("Longitude", lon)),
      h("label", { class: "field" }, h("span", {}, "Attributes (JSON object)"), attrs.area), attrs.hint, save),
    load,
  };
}

// ---- the page --------------------------------------------------------------

export async function render(root, params) {
  const id = params.id;
  const res = await attempt(() => api("GET", `/devices/${id}/status`));
  if (!res) {
    root.append(h("p", {}, h("a", { href: "#/devices" }, "← Devices")));
    return undefined;
  }
  const d = res.device;
  const latest = new Latest();
  const live = new LineChart({ yLabel: "value", test: "live-chart", maxPoints: 300, empty: "Waiting for telemetry…" });
  const liveState = h("span", { class: "badge", "data-test": "live-state" }, "connecting");
  const history = historyView(id);
  const aggregated = aggregatedView(id);
  const config = configView(id);
  const metadata = metadataView(id);

  root.append(
    h("p", { class: "small" }, h("a", { href: "#/devices" }, "← Devices")),
    h("div", { class: "spread" }, h("h1", { "data-test": "device-title" }, d.name)),
    h("div", { class: "grid" },
      section("Device", "state", stateView(d)),
      section("Latest values", "latest-panel", latest.element)),
    section("Live", "live", h("p", { class: "muted small" }, "New telemetry as it arrives. ", liveState), live.element),
    history.element,
    aggregated.element,
    h("div", { class: "grid" }, config.element, metadata.element));

  const stop = new AbortController();
  let seen = 0;
  follow(id, (m) => {
    for (const [name, v] of Object.entries(m.measurements || {})) {
      latest.set(name, v, m.timestamp);
      live.append(name, m.timestamp, v);
    }
    latest.draw();
    const seenAt = root.querySelector("[data-test=last-seen]");
    if (seenAt) seenAt.textContent = fmtTime(m.timestamp);
    // A new measurement name: the aggregate view can offer it.
    if (latest.values.size !== seen) {
      seen = latest.values.size;
      aggregated.load();
    }
  }, (state) => {
    liveState.textContent = state;
    liveState.className = `badge ${state === "live" ? "online" : "offline"}`;
  }, stop.signal);

  await Promise.all([latest.load(id), history.load(), aggregated.load(), config.load(), metadata.load()]);
  seen = latest.values.size;
  return () => {
    stop.abort();
    for (const c of [live, history.chart, aggregated.chart]) c.destroy();
  };
}

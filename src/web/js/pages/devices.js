// pages/devices.js — the user's devices: online status, last seen, type,
// groups; register a device (its API key is shown once, with a copy
// button); rotate a device's key (after a confirm; the new key is shown
// once the same way).

import { api, session } from "../api.js";
import { attempt, field, fmtAgo, fmtTime, h, notice, replace, table } from "../dom.js";

const PAGE = 100;

// The key in full, this once: the server keeps only its hash.
function showKey(box, title, key) {
  const code = h("code", { "data-test": "api-key" }, key);
  const copy = h("button", {
    class: "secondary", "data-test": "copy-key",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(key);
        copy.textContent = "Copied";
      } catch {
        // no clipboard (plain http, denied): select the text to copy by hand
        getSelection().selectAllChildren(code);
        copy.textContent = "Select + copy";
      }
    },
  }, "Copy");
  replace(box, h("div", { class: "panel", "data-test": "key-panel" },
    h("h2", {}, title),
    h("p", { class: "muted small" }, "This is the only time the key is shown: store it on the device now."),
    h("div", { class: "secret" }, code, copy),
    h("p", {}, h("button", { class: "link", onclick: () => box.replaceChildren() }, "Done"))));
}

function registerForm(onDone) {
  const name = h("input", { name: "name", required: true, maxlength: 100, "data-test": "device-name" });
  const type = h("input", { name: "device_type", required: true, maxlength: 50, value: "sensor", "data-test": "device-type" });
  const location = h("input", { name: "location", maxlength: 200, "data-test": "device-location" });
  const description = h("input", { name: "description", maxlength: 1000 });
  const submit = h("button", { type: "submit", "data-test": "device-submit" }, "Register device");
  return h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      const body = { name: name.value, device_type: type.value };
      if (location.value) body.location = location.value;
      if (description.value) body.description = description.value;
      const res = await attempt(() => api("POST", "/devices/register", body));
      submit.disabled = false;
      if (res) {
        name.value = "";
        onDone(res.device);
      }
    },
  }, h("h2", {}, "Register a device"),
     h("div", { class: "row" }, field("Name", name), field("Type", type), field("Location", location),
       field("Description", description)),
     submit);
}

// Online status and groups are per device; asked for side by side.
async function details(d) {
  const [status, groups] = await Promise.all([
    api("GET", `/devices/${d.id}/status`).then((r) => r.device).catch(() => null),
    api("GET", `/devices/${d.id}/groups`).then((r) => r.groups).catch(() => []),
  ]);
  return { ...d, is_online: status ? status.is_online : null,
           last_seen: (status && status.last_seen) || d.last_seen, groups };
}

function onlineBadge(d) {
  if (d.is_online === null) return h("span", { class: "badge" }, "unknown");
  return h("span", { class: `badge ${d.is_online ? "online" : "offline"}`, "data-test": "online" },
    d.is_online ? "online" : "offline");
}

export async function render(root) {
  const s = session();
  const keyBox = h("div", {});
  const list = h("div", { class: "panel" }, h("p", { class: "loading" }, "Loading…"));

  async function rotate(d) {
    if (!confirm(`Give "${d.name}" a new API key? The current key stops working at once.`)) return;
    const res = await attempt(() => api("POST", `/devices/${d.id}/rotate-key`));
    if (res) showKey(keyBox, `New API key of ${d.name}`, res.api_key);
  }

  async function load() {
    const res = await attempt(() => api("GET", `/devices/user/${s.user.user_id}?limit=${PAGE}`));
    if (!res) return;
    const rows = await Promise.all(res.devices.map(details));
    replace(list,
      h("div", { class: "spread" }, h("h2", {}, "Devices"),
        h("span", { class: "muted small" }, `${res.total_devices} in all${res.total_devices > PAGE ? `, first ${PAGE} shown` : ""}`)),
      table([
        { title: "Name", render: (d) => h("a", { href: `#/devices/${d.id}`, "data-test": "device-link" }, d.name) },
        { title: "Online", render: onlineBadge },
        { title: "Status", render: (d) => h("span", { class: `badge ${d.status}` }, d.status) },
        { title: "Type", render: (d) => d.device_type },
        { title: "Groups", render: (d) => d.groups.length ? d.groups.map((g) => h("span", { class: "tag" }, g.name)) : h("span", { class: "muted" }, "—") },
        { title: "Last seen", render: (d) => h("span", { title: fmtTime(d.last_seen) }, fmtAgo(d.last_seen)) },
        { title: "", render: (d) => h("button", { class: "secondary", "data-test": "rotate-key", onclick: () => rotate(d) }, "Rotate key") },
      ], rows, "No devices yet: register one above."));
  }

  root.append(h("h1", {}, "Devices"), keyBox, registerForm(async (device) => {
    showKey(keyBox, `API key of ${device.name}`, device.api_key);
    notice(`Device "${device.name}" registered.`, "success");
    await load();
  }), list);
  await load();
  const timer = setInterval(load, 30000); // presence changes on its own
  return () => clearInterval(timer);
}

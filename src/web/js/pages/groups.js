// pages/groups.js — the user's device groups. #/groups lists them (create,
// delete after a confirm); #/groups/<id> shows one group's devices (add one
// of the user's devices, remove one) and gives every member one
// configuration (PUT /groups/{id}/config), checked as a JSON object first.

import { api, session } from "../api.js";
import { attempt, field, fmtAgo, fmtTime, h, notice, replace, table } from "../dom.js";

const PAGE_MAX = 1000; // the API's largest page of groups and of a user's devices

export function render(root, params) {
  if (params && params.id) groupPage(root, params.id);
  else listPage(root);
}

// A button for what cannot be undone: asks first, then runs `action`
// (its failure becomes a notice).
function confirmButton(label, question, dataTest, action) {
  return h("button", {
    type: "button", class: "danger", "data-test": dataTest,
    onclick: () => { if (window.confirm(question)) attempt(action); },
  }, label);
}

// ---- #/groups ---------------------------------------------------------

function createForm(onCreated) {
  const name = h("input", { name: "name", required: true, maxlength: 100, "data-test": "group-name" });
  const description = h("input", { name: "description", maxlength: 1000, "data-test": "group-description" });
  const submit = h("button", { type: "submit", "data-test": "group-submit" }, "Create group");
  return h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      const res = await attempt(() => api("POST", "/groups", { name: name.value, description: description.value }));
      submit.disabled = false;
      if (res) {
        notice(`Group "${res.group.name}" created`, "success");
        name.value = "";
        description.value = "";
        onCreated();
      }
    },
  }, h("h2", {}, "New group"),
     h("div", { class: "row" }, field("Name", name), field("Description", description)),
     submit);
}

function listPage(root) {
  const list = h("div", { class: "panel", "data-test": "groups" }, h("p", { class: "loading" }, "Loading…"));
  const columns = [
    { title: "Name", render: (g) => h("a", { href: `#/groups/${g.id}`, "data-test": "group-link" }, g.name) },
    { title: "Description", render: (g) => g.description },
    { title: "Devices", render: (g) => h("span", { "data-test": "group-count" }, String(g.device_count)) },
    { title: "Created", render: (g) => fmtTime(g.created_at) },
    {
      title: "",
      render: (g) => confirmButton("Delete", `Delete the group "${g.name}"? Its devices stay.`, "group-delete",
        async () => {
          await api("DELETE", `/groups/${g.id}`);
          notice(`Group "${g.name}" deleted`, "success");
          await load();
        }),
    },
  ];

  async function load() {
    const res = await attempt(() => api("GET", `/groups?limit=${PAGE_MAX}`));
    if (!res) {
      replace(list, h("p", { class: "empty" }, "Could not load the groups."));
      return;
    }
    replace(list, table(columns, res.groups, "No groups yet: create one above."),
      res.meta.total > res.groups.length
        ? h("p", { class: "muted small" }, `The first ${res.groups.length} of ${res.meta.total} groups.`)
        : null);
  }

  replace(root, h("h1", {}, "Groups"), createForm(load), list);
  return load();
}

// ---- #/groups/<id> ----------------------------------------------------

function addForm(id, onAdded) {
  const picker = h("select", { "data-test": "group-add-device" });
  const form = h("form", {
    class: "row",
    onsubmit: async (e) => {
      e.preventDefault();
      if (!picker.value) {
        notice("Pick one of your devices to add.");
        return;
      }
      const res = await attempt(() => api("POST", `/groups/${id}/devices`, { device_id: Number(picker.value) }));
      if (res) {
        notice("Device added to the group", "success");
        onAdded();
      }
    },
  }, field("Add a device", picker), h("button", { type: "submit", "data-test": "group-add" }, "Add to group"));

  // The user's devices that are not members yet.
  form.offer = (devices, members) => {
    const inGroup = new Set(members.map((d) => d.id));
    const left = devices.filter((d) => !inGroup.has(d.id));
    replace(picker,
      h("option", { value: "" }, left.length ? "— pick a device —"
        : devices.length ? "— every device is in the group —" : "— you have no devices yet —"),
      left.map((d) => h("option", { value: String(d.id) }, `${d.name} (${d.device_type})`)));
  };
  return form;
}

// The API takes a JSON object only; anything else is refused here, with
// the reason, before a request is made.
function parseConfig(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `Not valid JSON: ${e.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return { error: 'The configuration must be a JSON object, such as {"interval": 30}.' };
  return { value };
}

function configForm(id) {
  const text = h("textarea", { class: "code", spellcheck: "false", "data-test": "group-config" }, '{\n  "interval": 30\n}');
  const submit = h("button", { type: "submit", "data-test": "group-config-apply" }, "Apply to every device");
  text.addEventListener("input", () => text.classList.remove("invalid"));
  return h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      const parsed = parseConfig(text.value);
      if (parsed.error) {
        text.classList.add("invalid");
        notice(parsed.error);
        return;
      }
      submit.disabled = true;
      const res = await attempt(() => api("PUT", `/groups/${id}/config`, parsed.value));
      submit.disabled = false;
      if (res) notice(`Configuration applied: ${res.updated} device(s) got a new version`, "success");
    },
  }, h("h2", {}, "One configuration for the whole group"),
     h("p", { class: "muted small" }, "A JSON object; every device of the group gets it as its next configuration version."),
     text, h("p", {}, submit));
}

function groupPage(root, id) {
  const title = h("h1", {}, "Group");
  const about = h("p", { class: "muted" });
  const members = h("div", { "data-test": "group-devices" }, h("p", { class: "loading" }, "Loading…"));
  const adder = addForm(id, () => load());
  const columns = [
    { title: "Device", render: (d) => h("a", { href: `#/devices/${d.id}`, "data-test": "member-link" }, d.name) },
    { title: "Type", render: (d) => d.device_type },
    { title: "Status", render: (d) => h("span", { class: `badge ${d.status}` }, d.status) },
    { title: "Last seen", render: (d) => fmtAgo(d.last_seen) },
    { title: "In the group since", render: (d) => fmtTime(d.added_to_group_at) },
    {
      title: "",
      render: (d) => confirmButton("Remove", `Remove "${d.name}" from this group? The device stays.`, "member-remove",
        async () => {
          await api("DELETE", `/groups/${id}/devices/${d.id}`);
          notice(`"${d.name}" removed from the group`, "success");
          await load();
        }),
    },
  ];

  async function load() {
    const me = session().user;
    const res = await attempt(() => Promise.all([
      api("GET", `/groups/${id}`),
      api("GET", `/devices/user/${me.user_id}?limit=${PAGE_MAX}`),
    ]));
    if (!res) {
      replace(members, h("p", { class: "empty" }, "Could not load this group."));
      return;
    }
    const [{ group }, { devices }] = res;
    const inside = group.devices || [];
    replace(title, `Group: ${group.name}`);
    replace(about, group.description ? `${group.description} · ` : "", `${group.device_count} device(s)`);
    replace(members, table(columns, inside, "No devices in this group yet."),
      group.devices_truncated
        ? h("p", { class: "muted small" }, `The first ${inside.length} of ${group.device_count} devices.`)
        : null);
    adder.offer(devices, inside);
  }

  replace(root,
    h("p", {}, h("a", { href: "#/groups" }, "← All groups")),
    title, about,
    h("div", { class: "panel" }, h("h2", {}, "Devices"), members, adder),
    configForm(id));
  return load();
}

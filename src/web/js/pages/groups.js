// The groups pages. #/groups lists the user's groups (create, delete);
// #/groups/<id> shows one group's devices (add, remove) and gives every
// member one configuration. Everything shown goes through h()/table(), so
// names typed by users are always text, never markup.
import { api, session } from "../api.js";
import { h, notice, table, fmtTime } from "../dom.js";

const PAGE_MAX = 1000; // the API's largest page for groups and a user's devices

export function render(root, params) {
  const id = groupIdOf(params);
  if (id) {
    renderGroup(root, id);
  } else {
    renderList(root);
  }
}

// The router hands over the captured id either by name or by position.
function groupIdOf(params) {
  if (!params) return null;
  const raw = params.id ?? params[0];
  return raw === undefined || raw === null || raw === "" ? null : String(raw);
}

function showError(err) {
  notice(err && err.message ? err.message : String(err), "error");
}

// A button that asks before doing something that cannot be undone.
function confirmButton(label, question, dataTest, action) {
  return h("button", {
    type: "button",
    class: "danger",
    "data-test": dataTest,
    onclick: async () => {
      if (!window.confirm(question)) return;
      try {
        await action();
      } catch (err) {
        showError(err);
      }
    },
  }, label);
}

// ---------------------------------------------------------------- #/groups

function renderList(root) {
  const listBox = h("div", { "data-test": "groups-list" }, "Loading…");
  const name = h("input", { name: "name", required: "", maxlength: "100", "data-test": "group-name" });
  const description = h("input", { name: "description", maxlength: "1000", "data-test": "group-description" });
  const form = h("form", {
    class: "inline-form",
    "data-test": "group-create-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const answer = await api("POST", "/groups", { name: name.value, description: description.value });
        notice(`Group "${answer.group.name}" created`, "success");
        form.reset();
        await load();
      } catch (err) {
        showError(err);
      }
    },
  },
  h("label", {}, "Name ", name),
  h("label", {}, "Description ", description),
  h("button", { type: "submit", "data-test": "group-create" }, "Create group"));

  root.replaceChildren(
    h("h1", {}, "Groups"),
    h("section", {}, h("h2", {}, "New group"), form),
    h("section", {}, h("h2", {}, "Your groups"), listBox));

  const columns = [
    { title: "Name", render: (g) => h("a", { href: `#/groups/${g.id}`, "data-test": "group-link" }, g.name) },
    { title: "Description", render: (g) => g.description },
    { title: "Devices", render: (g) => String(g.device_count) },
    { title: "Created", render: (g) => fmtTime(g.created_at) },
    {
      title: "",
      render: (g) => confirmButton("Delete", `Delete the group "${g.name}"? Its devices stay.`,
        "group-delete", async () => {
          await api("DELETE", `/groups/${g.id}`);
          notice(`Group "${g.name}" deleted`, "success");
          await load();
        }),
    },
  ];

  async function load() {
    try {
      const answer = await api("GET", `/groups?limit=${PAGE_MAX}`);
      const groups = answer.groups;
      listBox.replaceChildren(groups.length
        ? table(columns, groups)
        : h("p", { class: "empty" }, "No groups yet."));
      if (answer.meta && answer.meta.total > groups.length) {
        listBox.append(h("p", { class: "note" }, `Showing ${groups.length} of ${answer.meta.total} groups.`));
      }
    } catch (err) {
      listBox.replaceChildren(h("p", { class: "empty" }, "Could not load the groups."));
      showError(err);
    }
  }
  load();
}

// ----------------------------------------------------------- #/groups/<id>

function renderGroup(root, id) {
  const title = h("h1", {}, "Group");
  const info = h("p", { class: "note" });
  const membersBox = h("div", { "data-test": "group-devices" }, "Loading…");
  const picker = h("select", { "data-test": "group-add-select" });
  const addForm = h("form", {
    class: "inline-form",
    "data-test": "group-add-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (!picker.value) {
        notice("Pick a device to add", "error");
        return;
      }
      try {
        await api("POST", `/groups/${id}/devices`, { device_id: Number(picker.value) });
        notice("Device added to the group", "success");
        await load();
      } catch (err) {
        showError(err);
      }
    },
  },
  h("label", {}, "Device ", picker),
  h("button", { type: "submit", "data-test": "group-add" }, "Add to group"));

  const configText = h("textarea", { rows: "8", cols: "60", spellcheck: "false", "data-test": "group-config" }, "{\n}");
  const configForm = h("form", {
    "data-test": "group-config-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const config = parseConfig(configText.value);
      if (!config) return;
      try {
        const answer = await api("PUT", `/groups/${id}/config`, config);
        notice(`Configuration applied: ${answer.updated} device(s) got a new version`, "success");
      } catch (err) {
        showError(err);
      }
    },
  },
  h("p", { class: "note" }, "A JSON object; every device of the group gets it as a new configuration version."),
  configText,
  h("div", {}, h("button", { type: "submit", "data-test": "group-config-apply" }, "Apply to every device")));

  root.replaceChildren(
    h("p", {}, h("a", { href: "#/groups" }, "← All groups")),
    title, info,
    h("section", {}, h("h2", {}, "Devices"), membersBox, addForm),
    h("section", {}, h("h2", {}, "Configuration for the whole group"), configForm));

  const columns = [
    { title: "Name", render: (d) => h("a", { href: `#/devices/${d.id}`, "data-test": "member-link" }, d.name) },
    { title: "Type", render: (d) => d.device_type },
    { title: "Status", render: (d) => d.status },
    { title: "Last seen", render: (d) => (d.last_seen ? fmtTime(d.last_seen) : "never") },
    { title: "Added", render: (d) => fmtTime(d.added_to_group_at) },
    {
      title: "",
      render: (d) => confirmButton("Remove", `Remove "${d.name}" from this group? The device stays.`,
        "member-remove", async () => {
          await api("DELETE", `/groups/${id}/devices/${d.id}`);
          notice(`"${d.name}" removed from the group`, "success");
          await load();
        }),
    },
  ];

  async function load() {
    let group;
    let mine;
    try {
      const user = session() && session().user;
      [group, mine] = await Promise.all([
        api("GET", `/groups/${id}`).then((a) => a.group),
        user ? api("GET", `/devices/user/${user.user_id}?limit=${PAGE_MAX}`).then((a) => a.devices) : [],
      ]);
    } catch (err) {
      membersBox.replaceChildren(h("p", { class: "empty" }, "Could not load the group."));
      showError(err);
      return;
    }
    title.replaceChildren(`Group: ${group.name}`);
    info.replaceChildren(group.description || "", group.description ? " · " : "",
      `${group.device_count} device(s)`);
    const members = group.devices || [];
    membersBox.replaceChildren(members.length
      ? table(columns, members)
      : h("p", { class: "empty" }, "No devices in this group yet."));
    if (group.devices_truncated) {
      membersBox.append(h("p", { class: "note" }, `Showing ${members.length} of ${group.device_count} devices.`));
    }
    const inGroup = new Set(members.map((d) => d.id));
    const candidates = mine.filter((d) => !inGroup.has(d.id));
    picker.replaceChildren(
      h("option", { value: "" }, candidates.length ? "— pick a device —" : "— no device left to add —"),
      ...candidates.map((d) => h("option", { value: String(d.id) }, `${d.name} (${d.device_type})`)));
  }
  load();
}

// The configuration must be a JSON object (the API takes nothing else);
// says what is wrong before anything is sent.
function parseConfig(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    notice(`The configuration is not valid JSON: ${err.message}`, "error");
    return null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    notice("The configuration must be a JSON object, like {\"interval\": 30}", "error");
    return null;
  }
  return value;
}

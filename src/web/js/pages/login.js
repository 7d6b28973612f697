// pages/login.js — log in (#/login) and register (#/register). A login
// answer's token and user go to sessionStorage (api.js setSession); the
// router then shows the devices.

import { api, setSession } from "../api.js";
import { attempt, field, h, notice } from "../dom.js";

async function logIn(username, password) {
  const res = await api("POST", "/auth/login", { username, password });
  setSession(res.token, res.user);
  location.hash = "#/devices";
}

// inputs: [[label, name, type, autocomplete]]; submit(values) may throw.
function authForm(prefix, inputs, label, submit) {
  const els = Object.fromEntries(inputs.map(([, name, type, autocomplete]) =>
    [name, h("input", { name, type, autocomplete, required: true, "data-test": `${prefix}-${name}` })]));
  const button = h("button", { type: "submit", "data-test": `${prefix}-submit` }, label);
  return h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      const values = Object.fromEntries(Object.entries(els).map(([k, el]) => [k, el.value]));
      await attempt(() => submit(values));
      button.disabled = false;
    },
  }, inputs.map(([text, name]) => field(text, els[name])), button);
}

function loginForm() {
  return [h("h1", {}, "Log in"),
    authForm("login", [["Username", "username", "text", "username"],
                       ["Password", "password", "password", "current-password"]],
      "Log in", (v) => logIn(v.username, v.password)),
    h("p", { class: "switch muted" }, "No account? ", h("a", { href: "#/register", "data-test": "to-register" }, "Register"))];
}

function registerForm() {
  return [h("h1", {}, "Create an account"),
    authForm("register", [["Username", "username", "text", "username"],
                          ["Email", "email", "email", "email"],
                          ["Password", "password", "password", "new-password"]],
      "Create account", async (v) => {
        await api("POST", "/auth/register", v);
        notice("Account created.", "success");
        await logIn(v.username, v.password);
      }),
    h("p", { class: "switch muted" }, "Have an account? ", h("a", { href: "#/login", "data-test": "to-login" }, "Log in"))];
}

export function render(root, params) {
  const register = params.path === "/register";
  root.append(h("section", { class: "auth panel" }, register ? registerForm() : loginForm()));
}

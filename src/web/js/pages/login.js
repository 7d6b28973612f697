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

function loginForm() {
  const username = h("input", { name: "username", autocomplete: "username", required: true, "data-test": "login-username" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "data-test": "login-password" });
  const submit = h("button", { type: "submit", "data-test": "login-submit" }, "Log in");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      await attempt(() => logIn(username.value, password.value));
      submit.disabled = false;
    },
  }, field("Username", username), field("Password", password), submit);
  return [h("h1", {}, "Log in"), form,
    h("p", { class: "switch muted" }, "No account? ", h("a", { href: "#/register", "data-test": "to-register" }, "Register"))];
}

function registerForm() {
  const username = h("input", { name: "username", autocomplete: "username", required: true, "data-test": "register-username" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true, "data-test": "register-email" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, "data-test": "register-password" });
  const submit = h("button", { type: "submit", "data-test": "register-submit" }, "Create account");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      await attempt(async () => {
        await api("POST", "/auth/register", { username: username.value, email: email.value, password: password.value });
        notice("Account created.", "success");
        await logIn(username.value, password.value);
      });
      submit.disabled = false;
    },
  }, field("Username", username), field("Email", email), field("Password", password), submit);
  return [h("h1", {}, "Create an account"), form,
    h("p", { class: "switch muted" }, "Have an account? ", h("a", { href: "#/login", "data-test": "to-login" }, "Log in"))];
}

export function render(root, params) {
  const register = params.path === "/register";
  root.append(h("section", { class: "auth panel" }, register ? registerForm() : loginForm()));
}

// pages/groups.js — a placeholder until the pages branch brings the real page.
import { h } from "../dom.js";

export function render(root) {
  root.append(h("h1", {}, "Groups"), h("p", { class: "empty" }, "Coming soon."));
}

// pages/devices.js — placeholder (the real page follows in this branch).
import { h } from "../dom.js";

export function render(root) {
  root.append(h("h1", {}, "Devices"));
}

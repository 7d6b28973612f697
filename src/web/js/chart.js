// chart.js — a small line chart drawn on a <canvas>: a time x-axis, one or
// more numeric series, axis labels and a legend. Points can be appended
// live; each series keeps at most maxPoints (the oldest drop off), so a
// chart left open for days stays small. We draw it ourselves: no charting
// library to ship, pin or fetch.
//
// The chart's element carries data-points (points shown, all series) so a
// test can wait for it to move.

import { h, replace } from "./dom.js";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
const PAD = { left: 58, right: 16, top: 14, bottom: 42 };
const MAX_SERIES = COLORS.length;

// Up to ~n round tick values covering [lo, hi].
function niceTicks(lo, hi, n) {
  if (lo === hi) {
    const d = Math.abs(lo) > 1 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function fmtNumber(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1);
  return String(Math.round(v * 1000) / 1000);
}

function fmtTick(t, span) {
  const d = new Date(t);
  const two = (n) => String(n).padStart(2, "0");
  if (span > 2 * 86400e3) return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}h`;
  if (span > 120e3) return `${two(d.getHours())}:${two(d.getMinutes())}`;
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export class LineChart {
  // opts: {maxPoints = 500, yLabel = "value", xLabel = "time", test}
  constructor(opts = {}) {
    this.maxPoints = opts.maxPoints || 500;
    this.yLabel = opts.yLabel || "value";
    this.xLabel = opts.xLabel || "time";
    this.series = new Map(); // name → [[t ms, value], ...] in time order
    this.canvas = h("canvas", { role: "img", "aria-label": opts.label || "line chart" });
    this.legend = h("div", { class: "legend" });
    this.empty = h("p", { class: "empty small" }, opts.empty || "No data yet.");
    this.element = h("div", { class: "chart", "data-test": opts.test || null, "data-points": "0" },
      this.canvas, this.legend, this.empty);
    this.pending = false;
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(this.canvas);
  }

  // Replaces every series: {name: [[t, v], ...]} (t: ms or ISO time).
  setData(data) {
    this.series.clear();
    for (const [name, points] of Object.entries(data)) {
      for (const [t, v] of points) this.add(name, t, v);
    }
    this.schedule();
  }

  // Adds one point; non-numeric values are skipped (booleans count 0/1).
  append(name, t, v) {
    this.add(name, t, v);
    this.schedule();
  }

  add(name, t, v) {
    const value = typeof v === "boolean" ? Number(v) : v;
    const time = typeof t === "number" ? t : Date.parse(t);
    if (typeof value !== "number" || !Number.isFinite(value) || Number.isNaN(time)) return;
    let s = this.series.get(name);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return;
      s = [];
      this.series.set(name, s);
    }
    // Live points arrive in order; history may not: keep the list sorted.
    let i = s.length;
    while (i > 0 && s[i - 1][0] > time) i--;
    s.splice(i, 0, [time, value]);
    if (s.length > this.maxPoints) s.splice(0, s.length - this.maxPoints);
  }

  points() {
    let n = 0;
    for (const s of this.series.values()) n += s.length;
    return n;
  }

  schedule() {
    this.element.dataset.points = String(this.points());
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  destroy() {
    this.resize.disconnect();
  }

  drawLegend() {
    replace(this.legend, [...this.series.keys()].map((name, i) =>
      h("span", {}, h("span", { class: `swatch s${i}` }), name)));
  }

  draw() {
    const n = this.points();
    this.element.dataset.points = String(n);
    this.empty.hidden = n > 0;
    this.drawLegend();
    const cssW = this.canvas.clientWidth, cssH = this.canvas.clientHeight;
    if (!cssW || !cssH) return;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    const g = this.canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);

    let t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (const s of this.series.values())
      for (const [t, v] of s) {
        t0 = Math.min(t0, t); t1 = Math.max(t1, t);
        v0 = Math.min(v0, v); v1 = Math.max(v1, v);
      }
    if (!n) {
      const now = Date.now();
      [t0, t1, v0, v1] = [now - 60e3, now, 0, 1];
    }
    if (t0 === t1) { t0 -= 30e3; t1 += 30e3; }
    const yTicks = niceTicks(v0, v1, 5);
    const yLo = yTicks[0], yHi = yTicks[yTicks.length - 1];
    const W = cssW - PAD.left - PAD.right, H = cssH - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * W;
    const y = (v) => PAD.top + H - ((v - yLo) / (yHi - yLo)) * H;

    g.font = "12px system-ui, sans-serif";
    g.fillStyle = "#616e7c";
    g.strokeStyle = "#e5e9ee";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const v of yTicks) {
      g.beginPath(); g.moveTo(PAD.left, y(v)); g.lineTo(PAD.left + W, y(v)); g.stroke();
      g.fillText(fmtNumber(v), PAD.left - 6, y(v));
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    // Seconds are the finest label: ticks closer than that would repeat.
    const xTicks = Math.max(1, Math.min(6, Math.floor(W / 110), Math.floor((t1 - t0) / 1000)));
    let previous = null;
    for (let i = 0; i <= xTicks; i++) {
      const t = t0 + ((t1 - t0) * i) / xTicks;
      const label = fmtTick(t, t1 - t0);
      if (label === previous) continue;
      previous = label;
      // The end labels stay inside the canvas.
      g.textAlign = i === 0 ? "left" : i === xTicks ? "right" : "center";
      g.fillText(label, x(t) + (i === 0 ? -4 : i === xTicks ? 4 : 0), PAD.top + H + 6);
    }
    g.textAlign = "center";
    g.strokeStyle = "#9aa5b1";
    g.beginPath(); g.moveTo(PAD.left, PAD.top); g.lineTo(PAD.left, PAD.top + H); g.lineTo(PAD.left + W, PAD.top + H); g.stroke();
    // Axis labels.
    g.fillText(this.xLabel, PAD.left + W / 2, PAD.top + H + 24);
    g.save();
    g.translate(12, PAD.top + H / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = "middle";
    g.fillText(this.yLabel, 0, 0);
    g.restore();

    let i = 0;
    for (const s of this.series.values()) {
      g.strokeStyle = g.fillStyle = COLORS[i++ % COLORS.length];
      g.lineWidth = 2;
      g.beginPath();
      s.forEach(([t, v], k) => (k ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
      g.stroke();
      if (s.length < 60)
        for (const [t, v] of s) { g.beginPath(); g.arc(x(t), y(v), 2.5, 0, 2 * Math.PI); g.fill(); }
    }
  }
}

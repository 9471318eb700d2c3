// Interactive Figure 1 (AEnt, arXiv 2509.03493): closed-form fixed points on a bandit with irrelevant arms,
// trap arms and m optimal arms. Same formulas as toy/regime.py (gibbs_point) and toy/exact_bandit.py
// (kept_count); tests/test_interactive.py drives this page in headless Chromium and compares with them.
"use strict";

// |K| = N - floor(p N), at least one arm kept (toy.exact_bandit.kept_count)
function keptCount(n, p) {
  return n - Math.min(Math.floor(p * n), n - 1);
}

// Gibbs optimum of V + lambda H~ on nKept arms: m pay 1, nTraps pay r, the rest 0 (toy.regime.gibbs_point).
// Weights are taken relative to one optimal arm (times e^{-1/lambda}) so that nothing overflows.
function gibbsPoint(m, nTraps, r, lam, nKept) {
  const u = 1 / lam;
  const wOpt = m;
  const wTrap = nTraps * Math.exp((r - 1) * u);
  const wIrr = (nKept - m - nTraps) * Math.exp(-u);
  const z = wOpt + wTrap + wIrr;
  const pOpt = wOpt / z, pTrap = wTrap / z, pIrr = wIrr / z;
  const value = pOpt + r * pTrap;
  const entropy = Math.log(z) + u - u * value;
  return { value, pOpt, pTrap, pIrr, entropy };
}

function readInputs() {
  const get = (id) => Number(document.getElementById(id).value);
  return {
    n: Math.round(Math.pow(10, get("log-arms"))),
    m: Math.round(get("m")),
    nTraps: Math.round(get("traps")),
    lam: Math.pow(10, get("log-lambda")),
    p: get("p"),
    r: get("trap-reward"),
  };
}

// Everything the page shows, as numbers (also read by the browser test through window.figure1State).
function compute(x) {
  const kept = keptCount(x.n, x.p);
  const out = { inputs: x, kept, noControl: x.r, fullValid: x.n >= x.m + x.nTraps + 1 };
  out.full = out.fullValid ? gibbsPoint(x.m, x.nTraps, x.r, x.lam, x.n) : null;
  out.clampedValid = kept >= x.m + x.nTraps + 1;  // premise: every optimal and trap arm is kept
  out.clamped = out.clampedValid ? gibbsPoint(x.m, x.nTraps, x.r, x.lam, kept) : null;
  // Prop 2 on a bandit (T = 1): V* - V(pi_lambda) <= lambda (log |A| - log m); clamped: log K instead of log |A|
  out.boundFull = x.lam * (Math.log(x.n) - Math.log(x.m));
  out.boundClamped = x.lam * (Math.log(kept) - Math.log(x.m));
  return out;
}

const fmt = (v) => (v === null || !Number.isFinite(v) ? "n/a" : v.toFixed(4));

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function verdict(v, r) {
  if (v === null) return "premise fails (kept set too small)";
  return v > r ? "beats the trapped policy" : "loses to the trapped policy";
}

function drawCurves(x) {
  const svg = document.getElementById("curves");
  const w = 520, h = 240, left = 46, bottom = 30, top = 10, right = 10;
  const ms = [];
  const mMax = Math.max(50, x.m);
  for (let m = 1; m <= mMax; m++) ms.push(m);
  const kept = keptCount(x.n, x.p);
  const series = [
    { name: "full bonus", color: "#c0392b", ys: ms.map((m) => (x.n >= m + x.nTraps + 1 ? gibbsPoint(m, x.nTraps, x.r, x.lam, x.n).value : NaN)) },
    { name: "clamped bonus", color: "#2c7fb8", ys: ms.map((m) => (kept >= m + x.nTraps + 1 ? gibbsPoint(m, x.nTraps, x.r, x.lam, kept).value : NaN)) },
  ];
  const px = (m) => left + ((m - 1) / (mMax - 1)) * (w - left - right);
  const py = (v) => top + (1 - v) * (h - top - bottom);
  let s = `<rect x="${left}" y="${top}" width="${w - left - right}" height="${h - top - bottom}" fill="none" stroke="#999"/>`;
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    s += `<text x="${left - 6}" y="${py(v) + 4}" font-size="10" text-anchor="end">${v}</text>`;
  }
  for (const m of [1, 10, 20, 30, 40, 50].filter((m) => m <= mMax)) {
    s += `<text x="${px(m)}" y="${h - bottom + 14}" font-size="10" text-anchor="middle">${m}</text>`;
  }
  s += `<text x="${(w + left) / 2}" y="${h - 2}" font-size="11" text-anchor="middle">optimal arms m</text>`;
  s += `<line x1="${left}" x2="${w - right}" y1="${py(x.r)}" y2="${py(x.r)}" stroke="#333" stroke-dasharray="4 3"/>`;
  s += `<text x="${w - right - 4}" y="${py(x.r) - 4}" font-size="10" text-anchor="end">no control (trapped): V = r</text>`;
  for (const ser of series) {
    const pts = ms.map((m, i) => (Number.isFinite(ser.ys[i]) ? `${px(m)},${py(ser.ys[i])}` : null)).filter(Boolean);
    if (pts.length) s += `<polyline points="${pts.join(" ")}" fill="none" stroke="${ser.color}" stroke-width="2"/>`;
  }
  s += `<line x1="${px(x.m)}" x2="${px(x.m)}" y1="${top}" y2="${h - bottom}" stroke="#888"/>`;
  s += `<text x="${w - right - 6}" y="${h - bottom - 22}" font-size="11" text-anchor="end" fill="#c0392b">full bonus</text>`;
  s += `<text x="${w - right - 6}" y="${h - bottom - 8}" font-size="11" text-anchor="end" fill="#2c7fb8">clamped bonus</text>`;
  svg.innerHTML = s;
}

function update() {
  const x = readInputs();
  const out = compute(x);
  setText("show-arms", x.n.toLocaleString("en-US"));
  setText("show-m", String(x.m));
  setText("show-traps", String(x.nTraps));
  setText("show-lambda", x.lam.toPrecision(3));
  setText("show-p", x.p.toFixed(3));
  setText("show-trap-reward", x.r.toFixed(2));
  setText("kept", out.kept.toLocaleString("en-US"));
  setText("v-none", fmt(out.noControl));
  setText("v-full", fmt(out.full && out.full.value));
  setText("v-clamped", fmt(out.clamped && out.clamped.value));
  setText("popt-full", fmt(out.full && out.full.pOpt));
  setText("popt-clamped", fmt(out.clamped && out.clamped.pOpt));
  setText("bias-full", fmt(out.full && 1 - out.full.value));
  setText("bias-clamped", fmt(out.clamped && 1 - out.clamped.value));
  setText("bound-full", fmt(out.boundFull));
  setText("bound-clamped", fmt(out.boundClamped));
  setText("verdict-full", verdict(out.full && out.full.value, x.r));
  setText("verdict-clamped", verdict(out.clamped && out.clamped.value, x.r));
  window.figure1State = out;
  drawCurves(x);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("input[type=range]")) el.addEventListener("input", update);
  update();
});

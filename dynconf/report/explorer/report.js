// The explorer view hosted in the self-contained HTML report (dynconf/report/html.py).
//
// Everything is in the page: each exported decoder/kappa is a zlib-compressed payload in a
// <script type="application/octet-stream"> (inflated with the browser's DecompressionStream),
// with its JSON extras (label, marked thresholds, the library's exits at the exported
// thresholds off the slider's grid, the sample curves). The exact-threshold box evaluates C on
// the slider's grid itself and uses the library's exits at the exported off-grid thresholds;
// any other C is shown at the nearest grid value, and says so.
(() => {
  "use strict";
  const core = DynconfInstant;
  const $ = sel => document.querySelector(sel);
  const variants = JSON.parse($("#dcr-variants").textContent);
  const images = JSON.parse($("#dcr-images").textContent);  // thumbnails, or null
  const entries = new Map();
  let current = 0, ext = 0, pick = 0;

  async function inflate(id) {
    const bytes = core.b64bytes(document.getElementById(id).textContent.trim());
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function payload(pid) {
    const v = variants.find(x => x.pid === pid);
    if (!entries.has(pid)) entries.set(pid, inflate(v.blob).then(bytes => ({bytes, decoded: null})));
    return entries.get(pid);
  }

  function gridIndex(c, steps) {
    const g = Math.round(c * steps);
    return g >= 0 && g <= steps && g / steps === c ? g : null;
  }

  const host = {
    payload, plotly: () => Promise.resolve(),
    report: c => { $("#dcr-exact").value = String(c); drawSample(); },
    pick: i => { pick = i; $("#dcr-pick").value = String(i); drawSample(); },
    rendered: () => { document.body.dataset.ready = "1"; scheduleSample(); },
  };
  const view = new DynconfView.Explorer($(".dci-root"), host);
  view.root.querySelector(".dci-pick-hint").textContent =
    "Click a point to show that sample below.";

  // C as typed or chosen: on the grid the browser computes; off it, the library's exits at
  // an exported threshold, else the nearest grid value with a note.
  function setThreshold(c) {
    const v = variants[current], steps = v.steps, note = $("#dcr-note");
    let g = gridIndex(c, steps), override = null;
    note.textContent = "";
    if (g === null) {
      const hit = v.exact.find(e => e.c === c);
      if (hit) override = hit;
      else {
        g = Math.min(steps, Math.max(0, Math.round(c * steps)));
        note.textContent = `C = ${c} lies off the slider's grid and its exits were not ` +
          `exported: showing C = ${core.fmt(g / steps, 4)}.`;
        c = g / steps;
      }
    }
    view.receive({pid: v.pid, c, g, ext: ++ext, override});
  }

  function choose(k) {
    current = k;
    const v = variants[k];
    $("#dcr-marks").replaceChildren(...v.marks.map(m => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "dcr-mark";
      b.textContent = `${m.label}: C = ${core.fmt(m.c, 4)}`;
      b.addEventListener("click", () => { $("#dcr-exact").value = String(m.c); setThreshold(m.c); });
      return b;
    }));
    setThreshold(view.c ?? v.initial);
  }

  let sampleTimer = 0;
  function scheduleSample() {
    clearTimeout(sampleTimer);
    sampleTimer = setTimeout(drawSample, 120);
  }

  // One sample's confidence curve against C, its exit step and answer (from the core).
  function drawSample() {
    const v = variants[current], p = view.p, box = $("#dcr-sample");
    if (!p || !window.Plotly) return;
    const i = Math.max(0, Math.min(p.N - 1, pick | 0)), s = v.samples;
    const row = s.positions.indexOf(i);
    const names = p.header.meta.classes, name = k => names[k] ?? String(k);
    const info = `id ${p.a.ids[i]} · label ${name(p.a.labels[i])} · exit step ` +
      `${p.work.steps[i]} · answer ${name(p.work.answer[i])}`;
    $("#dcr-sample-info").innerHTML = info;  // class names are escaped by the exporter
    const img = $("#dcr-image"), src = images && row >= 0 ? images[row] : null;
    img.hidden = !src; if (src) img.src = src;
    if (row < 0) {
      $("#dcr-sample-note").textContent = `This file holds the curves of every ` +
        `${s.every}-th sample; pick position ${Math.round(i / s.every) * s.every}.`;
      Plotly.purge(box); return;
    }
    $("#dcr-sample-note").textContent = "";
    v.curves ??= inflate(s.blob).then(b => new Uint16Array(b.buffer, 0, b.length / 2));
    v.curves.then(q => {
      const T = p.T, y = new Array(T), x = new Array(T);
      for (let t = 0; t < T; t++) { x[t] = t + 1; y[t] = q[row * T + t] / 65535; }
      const exit = p.work.steps[i];
      Plotly.react(box, [
        {x, y, mode: "lines", name: "confidence c_t", line: {color: "#0072B2"}},
        {x: [exit], y: [y[exit - 1]], mode: "markers", name: "exit",
         marker: {size: 11, color: "#CC79A7", symbol: "diamond"}},
      ], {height: 320, margin: {l: 60, r: 20, t: 30, b: 50},
          xaxis: {title: {text: "step t"}, range: [0.5, T + 0.5]},
          yaxis: {title: {text: "confidence"}, range: [-0.02, 1.02]},
          shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: view.c, y1: view.c,
                    line: {color: "#D55E00", dash: "dot", width: 2}}],
          annotations: [{xref: "paper", x: 1, y: view.c, xanchor: "right", yanchor: "bottom",
                         text: `C = ${core.fmt(view.c, 4)}`, showarrow: false}],
          legend: {orientation: "h", y: -0.25}}, {displaylogo: false, responsive: true});
    });
  }

  const select = $("#dcr-variant");
  if (select) select.addEventListener("change", () => choose(Number(select.value)));
  $("#dcr-exact").addEventListener("change", ev => {
    const c = Number(ev.target.value);
    if (ev.target.value.trim() !== "" && Number.isFinite(c) && c >= 0 && c <= 1) setThreshold(c);
  });
  $("#dcr-pick").addEventListener("change", ev => { pick = Number(ev.target.value) | 0; drawSample(); });
  window.dynconfReport = {view, setThreshold, choose};  // tests and benchmarks drive these
  choose(0);
})();

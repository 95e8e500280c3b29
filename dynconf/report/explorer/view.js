// The explorer's view: its metrics and four charts, following the slider at every position
// (core.js computes; Plotly.js draws). It knows no host: the app's component, the HTML report
// and the notebook widget each create an Explorer with a host object
//   {payload(pid) -> Promise<{bytes, decoded}>, plotly() -> Promise, report(c), pick(i)}
// and feed it messages {pid, c, g, ext, override, synops}.
//
// Plotly draws each chart once per payload: axes, legends and the traces that never move
// (baseline, front, oracle, sweep). What moves with C -- the capped curve and the current
// point, the histogram's bars and mean line, the response's star and line, one point per
// sample -- is painted on a canvas laid over each chart with the axis' own linear map, so a
// step costs the arithmetic plus a few ms of painting instead of a Plotly.react of four
// figures (60 to 190 ms each, profiled). The axes stay fixed while C moves (the histogram's
// height only changes when its peak leaves [0.4, 1] of the axis), so no step relayouts.
// Steps coalesce to one paint per animation frame: dragging never queues work.
//
// A new ext means C was changed outside the view (sidebar, URL, another page, a notebook
// cell) and is adopted; the same ext is the echo of the view's own report and is ignored, so
// queued updates never pull the thumb back. report(c) is called on release only.
var DynconfView = (() => {
"use strict";
const core = DynconfInstant;
const HEIGHTS = {plane: 500, hist: 380, response: 380, scatter: 440};
const CONFIG = {displaylogo: false, responsive: true};

// Plotly JSON from Python carries arrays as {dtype, bdata} (base64); decode them once, not
// at every Plotly.react.
const DTYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array,
  i2: Int16Array, u2: Uint16Array, i1: Int8Array, u1: Uint8Array};
function typed(value) {
  if (Array.isArray(value)) return value.map(typed);
  if (!value || typeof value !== "object") return value;
  if (typeof value.bdata === "string" && DTYPES[value.dtype] && !value.shape) {
    const bytes = core.b64bytes(value.bdata);
    return new DTYPES[value.dtype](bytes.buffer, 0, bytes.length / DTYPES[value.dtype].BYTES_PER_ELEMENT);
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = typed(v);
  return out;
}

function metricBox(label) {
  const box = document.createElement("div");
  box.className = "dci-metric";
  box.innerHTML = '<div class="dci-label"></div><div class="dci-value"></div><div class="dci-delta"></div>';
  box.querySelector(".dci-label").textContent = label;
  return box;
}

// "#rrggbb" or "rgb(a)(r, g, b[, a])" -> [r, g, b]
function rgb(color) {
  if (typeof color !== "string") return [0, 0, 0];
  if (color[0] === "#") {
    const h = color.length === 4 ? color.replace(/[0-9a-f]/gi, "$&$&").slice(1) : color.slice(1);
    return [0, 2, 4].map(i => parseInt(h.slice(i, i + 2), 16));
  }
  const m = color.match(/[\d.]+/g) || [0, 0, 0];
  return m.slice(0, 3).map(Number);
}

// Pixel offsets of a marker of `size` CSS px at `dpr`: a disc, or an "x" of two strokes.
function stencil(symbol, size, dpr) {
  const r = Math.max(1, (size * dpr) / 2), out = [], R = Math.ceil(r);
  for (let dy = -R; dy <= R; dy++) {
    for (let dx = -R; dx <= R; dx++) {
      const inDisc = dx * dx + dy * dy <= r * r;
      const onX = Math.abs(Math.abs(dx) - Math.abs(dy)) <= 0.5 * dpr && Math.abs(dx) <= r * 0.85;
      if (symbol === "x" ? onX : inDisc) out.push(dx, dy);
    }
  }
  return Int16Array.from(out);
}

// A "nice" axis top at or above v: 1, 2 or 5 times a power of ten.
function niceTop(v) {
  const e = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

// The linear map data -> CSS px (from the chart's top-left) of a Plotly axis, from its
// range and pixel length (Plotly's l2p rounds to 0.01 px, so a slope read from l2p(1) - l2p(0)
// drifts by up to 0.005 px per data unit: 50 px across 10,000 ids). y axes point down.
function mapping(ax) {
  const r0 = ax.r2l(ax.range[0]), r1 = ax.r2l(ax.range[1]), L = ax._length;
  const down = String(ax._id).charAt(0) === "y";
  const m = (down ? -L : L) / (r1 - r0);
  const b = ax._offset + (down ? L : 0) - m * r0;
  return {m, b, lo: ax._offset, hi: ax._offset + L};
}

class Explorer {
  constructor(root, host) {
    this.root = root;
    this.host = host;
    this.root.dciView = this;  // tests read pointOf()
    this.slider = this.root.querySelector(".dci-slider");
    this.cText = this.root.querySelector(".dci-c");
    this.status = this.root.querySelector(".dci-status");
    this.counts = this.root.querySelector(".dci-counts");
    this.charts = {}; this.canvases = {};
    for (const name of Object.keys(HEIGHTS)) {
      const box = this.root.querySelector(`.dci-${name}`);
      box.replaceChildren();
      const gd = document.createElement("div"), canvas = document.createElement("canvas");
      canvas.className = "dci-overlay";
      box.append(gd, canvas);
      this.charts[name] = gd; this.canvases[name] = canvas;
    }
    this.tip = document.createElement("div");
    this.tip.className = "dci-tip"; this.tip.hidden = true;
    this.root.querySelector(".dci-scatter").append(this.tip);
    const metrics = this.root.querySelector(".dci-metrics");
    this.boxes = {};
    for (const [key, label] of [["accuracy", "Accuracy"], ["latency", "Mean latency"],
      ["reduction", "Reduction vs T_max"], ["reduction_iso", "Reduction vs iso-accuracy T"],
      ["spikes", "Spikes saved"], ["synops", "Synaptic ops saved"]]) {
      this.boxes[key] = metricBox(label);
      metrics.appendChild(this.boxes[key]);
    }
    this.boxes.synops.hidden = true;
    this.ext = undefined; this.pid = null; this.p = null; this.frame = 0; this.busy = false;
    this.dirty = false; this.reported = null; this.timer = 0; this.ready = false;
    this.state = null; this.paintFrame = 0; this.mountId = 0;
    this.slider.addEventListener("input", () => {
      if (!this.p) return;
      const g = Math.round(parseFloat(this.slider.value) * this.p.steps);
      this.setC(g / this.p.steps, g, null);
    });
    // Report on release: a mouse or touch release at once, keys once they pause.
    this.slider.addEventListener("change", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.report(), 300);
    });
    this.slider.addEventListener("pointerup", () => { clearTimeout(this.timer); this.report(); });
    // The scatter's points are painted, not Plotly's: hover and click find the nearest one.
    const scatter = this.charts.scatter;
    scatter.addEventListener("mousemove", ev => {
      this.mouse = ev;
      if (!this.hoverFrame) {
        this.hoverFrame = requestAnimationFrame(() => {
          this.hoverFrame = 0;
          if (this.mouse) this.hover(this.mouse);
        });
      }
    });
    scatter.addEventListener("mouseleave", () => { this.mouse = null; this.tip.hidden = true; });
    scatter.addEventListener("click", ev => {
      const i = this.nearest(ev);
      if (i < 0) return;
      this.picked = i;  // ringed until another point is picked
      this.paintScatter();
      if (this.host.pick) this.host.pick(i);
    });
  }

  report() {
    if (this.c !== this.reported && this.host.report) {
      this.reported = this.c;
      this.host.report(this.c);
    }
  }

  async receive(msg) {
    this.msg = msg;
    try {
      if (msg.pid !== this.pid) {
        const entry = await this.host.payload(msg.pid);
        if (this.msg !== msg) return;  // a newer message arrived meanwhile
        entry.decoded ??= core.decode(entry.bytes);
        this.p = entry.decoded; this.pid = msg.pid; this.ext = undefined; this.ready = false;
        this.mount(++this.mountId).catch(err => this.fail(err));  // metrics do not wait
      }
      this.synops = msg.synops ?? null;
      if (msg.ext !== this.ext) {
        this.ext = msg.ext;
        this.reported = msg.c;
        this.setC(msg.c, msg.g, msg.override);
      } else if (this.c === msg.c) {
        this.showSynops();
      }
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err) {
    console.error("dynconf instant explorer:", err);
    this.status.textContent = `The interactive explorer failed (${err && err.message}).` +
      (this.host.failNote ? ` ${this.host.failNote}` : "");
    document.body.classList.remove("dci-ok");
  }

  setC(c, g, override) {
    this.c = c; this.g = g; this.override = override;
    const pos = g === null ? Math.round(c * this.p.steps) : g;
    this.slider.value = String(pos / this.p.steps);
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  // Plotly draws the fixed part of each chart once per payload, the accuracy-latency plane
  // first (the first chart on screen), with every moving trace emptied.
  async mount(id) {
    await this.host.plotly();
    if (id !== this.mountId) return;
    const p = this.p, meta = p.header.meta, idx = meta.traces, T = p.T;
    this.look = {};
    const figs = {};
    for (const [name, fig] of Object.entries(meta.figures)) {
      const layout = {...fig.layout, height: HEIGHTS[name], autosize: true};
      delete layout.width;
      figs[name] = {data: typed(fig.data), layout};
    }
    // Moving traces keep their legend entry and style but only a gap (Plotly hides a trace
    // with no points from the legend); the canvas draws their points.
    const gap = {x: [null], y: [null], customdata: null, text: null, hoverinfo: "skip"};
    const plane = figs.plane;
    this.look.capped = plane.data[idx.capped];
    this.look.current = plane.data[idx.current];
    plane.data[idx.capped] = {...plane.data[idx.capped], ...gap, name: "policy, capped"};
    plane.data[idx.current] = {...plane.data[idx.current], ...gap};
    const hist = figs.hist, hl = hist.layout;
    this.look.bars = hist.data.map(t => rgb(t.marker && t.marker.color));
    hist.data = hist.data.map(t => ({...t, ...gap}));
    this.look.mean = (hl.shapes && hl.shapes[0] && hl.shapes[0].line) || {};
    hl.shapes = (hl.shapes || []).slice(1);
    hl.annotations = (hl.annotations || []).slice(1);
    hl.xaxis = {...hl.xaxis, range: [0.5, T + 0.5], autorange: false};
    hl.yaxis = {...hl.yaxis, range: [0, 1], autorange: false};
    this.histTop = 0;
    const resp = figs.response, rl = resp.layout;
    this.look.star = resp.data[idx.star];
    resp.data[idx.star] = {...resp.data[idx.star], ...gap};
    this.look.vline = (rl.shapes && rl.shapes[0] && rl.shapes[0].line) || {};
    rl.shapes = (rl.shapes || []).slice(1);
    const sc = figs.scatter, sl = sc.layout;
    this.look.points = sc.data.map(t => ({
      color: rgb(t.marker.color), alpha: t.marker.opacity ?? 1,
      size: t.marker.size ?? 5, symbol: t.marker.symbol ?? "circle",
    }));
    sc.data = sc.data.map((t, i) => ({...t, ...gap, type: "scatter", name: ["correct", "wrong"][i]}));
    let lo = Infinity, hi = -Infinity;
    for (const v of p.a.ids) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const pad = 0.02 * (hi - lo);
    sl.xaxis = {...sl.xaxis, range: [lo - pad, hi + pad], autorange: false};
    sl.yaxis = {...sl.yaxis, range: [0.5, T + 0.5], autorange: false, tick0: 1,
      dtick: Math.max(1, Math.ceil(T / 10))};
    for (const name of ["plane", "hist", "response", "scatter"]) {
      const gd = this.charts[name];
      if (gd.data) Plotly.purge(gd);
      gd.replaceChildren();
      await Plotly.newPlot(gd, figs[name].data, figs[name].layout, CONFIG);
      if (id !== this.mountId) return;
      // Zoom, resize or a legend click move or hide things: repaint the overlays.
      for (const ev of ["plotly_relayout", "plotly_restyle", "plotly_afterplot"]) {
        gd.on(ev, () => this.schedulePaint());
      }
    }
    this.ready = true;
    this.render();
  }

  showMetrics(r) {
    const t = core.texts(r);
    const set = (key, value, delta, help, good) => {
      const box = this.boxes[key];
      box.querySelector(".dci-value").textContent = value;
      const d = box.querySelector(".dci-delta");
      d.textContent = delta || "";
      d.className = "dci-delta" + (delta ? (good ? " dci-good" : " dci-bad") : "");
      box.title = help || "";
    };
    set("accuracy", t.accuracy, t.accuracy_delta, "", r.accuracy >= r.baseline_accuracy);
    set("latency", t.latency, t.latency_delta, "", r.mean_latency <= r.T_max);
    set("reduction", t.reduction);
    set("reduction_iso", t.reduction_iso, "", t.iso_help);
    set("spikes", t.spikes, "", t.spikes_help);
    this.cText.textContent = core.fmt(r.threshold, 4);
    this.showSynops();
  }

  showSynops() {
    // Synaptic operations come from the server at the C it last saw (on release).
    const box = this.boxes.synops, s = this.synops;
    box.hidden = !s;
    if (!s) return;
    const stale = s.c !== this.c;
    box.querySelector(".dci-value").textContent = stale ? "…" : s.value;
    box.querySelector(".dci-delta").textContent = stale ? "updates on release" : "";
    box.title = s.help || "";
  }

  render() {
    const p = this.p;
    if (!p) return;
    if (this.busy) { this.dirty = true; return; }
    const t0 = performance.now();
    try {
      let r;
      if (this.g !== null && this.g !== undefined) r = core.evaluate(p, this.g);
      else {
        const o = this.override;
        const steps = new Uint16Array(core.b64bytes(o.steps).buffer);
        const answers = new Uint16Array(core.b64bytes(o.answers).buffer);
        core.exitsFrom(p, steps, answers);
        r = core.summarize(p, this.c, o.spent);
      }
      this.last = r;  // the numbers on screen (tests compare them with the library)
      this.showMetrics(r);
      document.body.classList.add("dci-ok");
      this.status.textContent = "";
      if (!this.ready) return;  // mount() renders again once Plotly has drawn
      const h = core.histogram(p);
      let peak = 1, nOk = 0;
      for (let t = 0; t < p.T; t++) peak = Math.max(peak, h.ok[t] + h.bad[t]);
      for (let t = 0; t < p.T; t++) nOk += h.ok[t];
      this.state = {r, h, cap: core.capped(p), nOk};
      this.counts.textContent = `correct ${nOk.toLocaleString("en-US")}, wrong ${(p.N - nOk).toLocaleString("en-US")}. `;
      const c = this.c, t1 = performance.now();
      const done = () => {
        this.paint();
        const t2 = performance.now();
        // How long the last step took (read by benchmarks/bench_browser.py).
        window.__dynconfTiming = {compute_ms: t1 - t0, draw_ms: t2 - t1, total_ms: t2 - t0};
        if (this.host.rendered) this.host.rendered(r);
        this.root.dataset.rendered = core.fmt(c, 4);
      };
      // The histogram's axis follows its peak only when the peak leaves [0.4, 1] of it.
      if (peak > this.histTop || peak < 0.4 * this.histTop) {
        this.histTop = niceTop(1.15 * peak);
        this.busy = true;
        Plotly.relayout(this.charts.hist, {"yaxis.range": [0, this.histTop]})
          .then(done).catch(err => this.fail(err)).finally(() => {
            this.busy = false;
            if (this.dirty) { this.dirty = false; this.render(); }
          });
      } else {
        done();
      }
    } catch (err) {
      this.busy = false;
      this.fail(err);
    }
  }

  schedulePaint() {
    if (!this.paintFrame) this.paintFrame = requestAnimationFrame(() => { this.paintFrame = 0; this.paint(); });
  }

  // A canvas over the chart, sized to it, cleared, clipped to the plot area; null if the
  // chart is not drawn (or hidden).
  layer(name) {
    const gd = this.charts[name], canvas = this.canvases[name], fl = gd._fullLayout;
    if (!fl || !fl._size) return null;
    const w = gd.clientWidth, h = gd.clientHeight, dpr = window.devicePixelRatio || 1;
    if (!w || !h) return null;
    const W = Math.round(w * dpr), H = Math.round(h * dpr);
    if (canvas.width !== W || canvas.height !== H) {
      canvas.width = W; canvas.height = H;
      canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const s = fl._size;
    ctx.save();
    ctx.beginPath(); ctx.rect(s.l, s.t, s.w, s.h); ctx.clip();
    return {ctx, gd, fl, dpr, W, H, size: s};
  }

  visible(gd, i) { return !gd._fullData || !gd._fullData[i] || gd._fullData[i].visible === true; }

  paint() {
    if (!this.ready || !this.state) return;
    const {r, h, cap} = this.state, p = this.p, idx = p.header.meta.traces, look = this.look;
    // The plane: the capped curve and the current point.
    let L = this.layer("plane");
    if (L) {
      const {ctx, gd, fl} = L, X = mapping(fl.xaxis), Y = mapping(fl.yaxis);
      if (this.visible(gd, idx.capped)) {
        const line = look.capped.line || {};
        ctx.strokeStyle = line.color || "#0072B2"; ctx.lineWidth = line.width || 2;
        ctx.setLineDash(line.dash === "dash" ? [9, 9] : line.dash === "dot" ? [3, 3] : []);
        ctx.beginPath();
        for (let t = 0; t < p.T; t++) {
          const x = X.b + X.m * cap.latency[t], y = Y.b + Y.m * 100 * cap.accuracy[t];
          if (t) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        }
        ctx.stroke(); ctx.setLineDash([]);
      }
      if (this.visible(gd, idx.current)) {
        this.star(ctx, X.b + X.m * r.mean_latency, Y.b + Y.m * 100 * r.accuracy, look.current.marker);
      }
      ctx.restore();
    }
    // The histogram: stacked bars (bargap 0.1) and the dashed mean line with its label.
    L = this.layer("hist");
    if (L) {
      const {ctx, gd, fl, size} = L, X = mapping(fl.xaxis), Y = mapping(fl.yaxis);
      const bw = 0.9 * Math.abs(X.m);
      const show = [this.visible(gd, 0), this.visible(gd, 1)];
      for (const [k, counts] of [[0, h.ok], [1, h.bad]]) {
        if (!show[k]) continue;
        ctx.fillStyle = `rgb(${look.bars[k].join(",")})`;
        for (let t = 0; t < p.T; t++) {
          const n = counts[t];
          if (!n) continue;
          const below = k === 1 && show[0] ? h.ok[t] : 0;
          const yb = Y.b + Y.m * below, yt = Y.b + Y.m * (below + n);
          ctx.fillRect(X.b + X.m * (t + 1) - bw / 2, yt, bw, yb - yt);
        }
      }
      const mx = X.b + X.m * r.mean_latency;
      ctx.strokeStyle = look.mean.color || "#CC79A7"; ctx.lineWidth = look.mean.width || 2;
      ctx.setLineDash([6, 6]);
      ctx.beginPath(); ctx.moveTo(mx, size.t); ctx.lineTo(mx, size.t + size.h); ctx.stroke();
      ctx.setLineDash([]);
      ctx.restore();
      ctx.fillStyle = look.mean.color || "#CC79A7";
      ctx.font = "12px 'Source Sans Pro', sans-serif";
      const left = r.mean_latency > 0.6 * p.T;
      ctx.textAlign = left ? "right" : "left"; ctx.textBaseline = "top";
      ctx.fillText(`mean ${core.fmt(r.mean_latency, 2)}`, mx + (left ? -4 : 4), size.t + 2);
    }
    // The response: the dotted line at C and the star on the accuracy curve.
    L = this.layer("response");
    if (L) {
      const {ctx, gd, fl, size} = L, X = mapping(fl.xaxis), Y = mapping(fl.yaxis);
      const x = X.b + X.m * r.threshold;
      ctx.strokeStyle = look.vline.color || "#CC79A7"; ctx.lineWidth = look.vline.width || 2;
      ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x, size.t); ctx.lineTo(x, size.t + size.h); ctx.stroke();
      ctx.setLineDash([]);
      if (this.visible(gd, idx.star)) this.star(ctx, x, Y.b + Y.m * 100 * r.accuracy, look.star.marker);
      ctx.restore();
    }
    this.paintScatter();
  }

  star(ctx, x, y, marker) {
    const m = marker || {}, R = (m.size || 15) / 2, r = R * 0.45;
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5, d = k % 2 ? r : R;
      const px = x + d * Math.cos(a), py = y + d * Math.sin(a);
      if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    }
    ctx.closePath();
    ctx.fillStyle = m.color || "#CC79A7"; ctx.fill();
    ctx.strokeStyle = (m.line && m.line.color) || "black"; ctx.lineWidth = (m.line && m.line.width) || 1;
    ctx.stroke();
  }

  // One point per sample, written straight into the canvas' pixels (50,000 points: a few ms).
  paintScatter() {
    const L = this.layer("scatter");
    if (!L) return;
    const {ctx, gd, fl, dpr, W, H, size} = L;
    ctx.restore();
    const p = this.p, w = p.work, ids = p.a.ids, jit = p.jitter, N = p.N;
    const X = mapping(fl.xaxis), Y = mapping(fl.yaxis);
    if (!this.img || this.img.width !== W || this.img.height !== H) {
      this.img = ctx.createImageData(W, H);
      this.pix = new Uint32Array(this.img.data.buffer);
    }
    const pix = this.pix;
    pix.fill(0);
    const x0 = Math.floor(size.l * dpr), x1 = Math.ceil((size.l + size.w) * dpr);
    const y0 = Math.floor(size.t * dpr), y1 = Math.ceil((size.t + size.h) * dpr);
    const kinds = this.look.points.map((pt, k) => {
      const [cr, cg, cb] = pt.color, a = Math.round(255 * pt.alpha);
      return {packed: ((a << 24) | (cb << 16) | (cg << 8) | cr) >>> 0,
        st: stencil(pt.symbol, pt.size, dpr), show: this.visible(gd, k)};
    });
    // Screen positions (CSS px) of the drawn points, for hover and click.
    if (!this.px || this.px.length !== N) { this.px = new Float32Array(N); this.py = new Float32Array(N); }
    const PX = this.px, PY = this.py;
    // Wrong points last: they are the rarer, the ones to find.
    for (const want of [1, 0]) {
      const kind = kinds[want ? 0 : 1];
      const st = kind.st, ns = st.length, color = kind.packed;
      for (let i = 0; i < N; i++) {
        if (w.correct[i] !== want) continue;
        const x = X.b + X.m * ids[i], y = Y.b + Y.m * (w.steps[i] + jit[i]);
        if (!kind.show) { PX[i] = NaN; continue; }
        PX[i] = x; PY[i] = y;
        const cx = Math.round(x * dpr), cy = Math.round(y * dpr);
        for (let k = 0; k < ns; k += 2) {
          const xx = cx + st[k], yy = cy + st[k + 1];
          if (xx >= x0 && xx < x1 && yy >= y0 && yy < y1) pix[yy * W + xx] = color;
        }
      }
    }
    ctx.putImageData(this.img, 0, 0);
    const k = this.picked ?? -1;
    if (k >= 0 && k < N && Number.isFinite(PX[k])) {  // the picked sample's ring
      ctx.save();
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.beginPath(); ctx.arc(PX[k], PY[k], 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
      ctx.restore();
    }
    if (this.mouse) this.hover(this.mouse);
  }

  // The drawn sample nearest to a mouse event, within 8 px; -1 if none.
  nearest(ev) {
    if (!this.px) return -1;
    const rect = this.charts.scatter.getBoundingClientRect();
    const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    let best = -1, bd = 64;
    const PX = this.px, PY = this.py;
    for (let i = 0; i < PX.length; i++) {
      const dx = PX[i] - mx, dy = PY[i] - my, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  hover(ev) {
    const i = this.nearest(ev);
    if (i < 0) { this.tip.hidden = true; return; }
    const p = this.p, w = p.work, names = p.header.meta.classes;
    const name = k => names[k] ?? String(k);  // escaped for markup by the server
    this.tip.innerHTML = `id ${p.a.ids[i]}<br>exit step ${w.steps[i]}<br>answer ${name(w.answer[i])}<br>label ${name(p.a.labels[i])}`;
    this.tip.style.left = `${this.px[i] + 10}px`;
    this.tip.style.top = `${this.py[i] + 10}px`;
    this.tip.hidden = false;
  }

  // Screen position of sample `i`'s point (tests click it).
  pointOf(i) {
    const rect = this.charts.scatter.getBoundingClientRect();
    return {x: rect.left + this.px[i], y: rect.top + this.py[i]};
  }
}

return {Explorer, mapping, typed};
})();

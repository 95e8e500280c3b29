// dynconf.classroom_player: the Classroom's playback painted in the browser. The server sends
// the timeline arrays once per Play (exit step and correctness of every sample, the watched
// sample's confidence); every step t is then painted here at the chosen pace: the grid, the
// numbers, the watched sample's confidence and the exits so far. When the play ends (t = T,
// or every sample has answered and "stop when all have answered" is on) or Pause is pressed,
// the step reached goes back to Python as "done", and the server draws that step itself.
const STATES = new WeakMap();

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function fmtPct(x) { return x === null ? "–" : `${(100 * x).toFixed(1)} %`; }

class Player {
  constructor(root) {
    this.root = root;
    this.$ = sel => root.querySelector(sel);
    this.timer = 0;
    this.$(".dcp-pause").addEventListener("click", () => this.finish("paused"));
  }

  start(d, component) {
    clearTimeout(this.timer);
    this.component = component;
    this.d = d;
    this.play = d.play;
    const N = d.N, T = d.T;
    const raw = bytes(d.steps);
    this.steps = new Uint16Array(raw.buffer, 0, N);
    this.correct = bytes(d.correct);
    this.byStep = Array.from({length: T + 1}, () => []);
    const right = new Float64Array(T + 1), count = new Float64Array(T + 1);
    for (let i = 0; i < N; i++) {
      const s = this.steps[i];
      this.byStep[s].push(i);
      count[s] += 1;
      if (this.correct[i]) right[s] += 1;
    }
    this.count = count; this.right = right;
    this.cumN = new Float64Array(T + 1); this.cumRight = new Float64Array(T + 1);
    this.cumSteps = new Float64Array(T + 1);
    for (let s = 1; s <= T; s++) {
      this.cumN[s] = this.cumN[s - 1] + count[s];
      this.cumRight[s] = this.cumRight[s - 1] + right[s];
      this.cumSteps[s] = this.cumSteps[s - 1] + s * count[s];
    }
    this.allAt = 1;
    for (let s = T; s >= 1; s--) if (count[s] > 0) { this.allAt = s; break; }
    this.top = Math.max(1, ...count.slice(1));
    window.__dynconfClassroom = {play: this.play, painted: [], done: null};
    this.t = d.t0;
    this.layout();
    this.paintGrid(true);
    this.paint();
    this.t0time = performance.now();
    this.schedule();
  }

  schedule() {
    const d = this.d;
    const end = d.stop_all ? Math.min(d.T, this.allAt) : d.T;
    if (this.t >= end) {
      const all = this.t >= this.allAt && this.t < d.T;
      this.note(all
        ? `Every image has answered by step ${this.t}: the play stops here ` +
          `(untick "stop when all have answered" to play on to ${d.T}).`
        : `The play has reached step ${this.t} of ${d.T}.`);
      this.timer = setTimeout(() => this.finish(all ? "all answered" : "end"), 1000 * d.seconds);
      return;
    }
    const due = this.t0time + 1000 * d.seconds * (this.t - d.t0 + 1);
    this.timer = setTimeout(() => {
      this.t += 1;
      this.paintGrid(false);
      this.paint();
      this.schedule();
    }, Math.max(0, due - performance.now()));
  }

  finish(why) {
    clearTimeout(this.timer);
    if (this.finished === this.play) return;
    this.finished = this.play;
    window.__dynconfClassroom.done = this.t;
    this.component.setTriggerValue("done", {t: this.t, why, play: this.play});
  }

  note(text) { this.$(".dcp-note").textContent = text; }

  layout() {
    const d = this.d, dpr = window.devicePixelRatio || 1;
    const size = (cv, w, h) => {
      cv.style.height = `${h}px`;
      cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
      const ctx = cv.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      return ctx;
    };
    const grid = this.$(".dcp-grid"), W = grid.clientWidth || 500;
    this.cell = Math.max(1, Math.min((W - 6) / d.cols, (d.grid_height - 6) / d.rows));
    this.gridCtx = size(grid, W, this.cell * d.rows + 6);
    const side = this.$(".dcp-side").clientWidth || 400;
    this.confCtx = size(this.$(".dcp-conf"), side, d.side_height);
    this.histCtx = size(this.$(".dcp-hist"), side, d.side_height);
    this.sideW = side;
  }

  cellColor(i) {
    const c = this.d.colors;
    return this.steps[i] <= this.t ? (this.correct[i] ? c.right : c.wrong) : c.running;
  }

  paintCell(i) {
    const ctx = this.gridCtx, d = this.d, k = this.cell, gap = k > 3 ? 1 : 0;
    const r = Math.floor(i / d.cols), col = i % d.cols;
    ctx.fillStyle = this.cellColor(i);
    ctx.fillRect(3 + col * k, 3 + r * k, k - gap, k - gap);
  }

  paintGrid(all) {
    const d = this.d, ctx = this.gridCtx;
    if (all) {
      ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
      for (let i = 0; i < d.N; i++) this.paintCell(i);
    } else {
      for (const i of this.byStep[this.t]) this.paintCell(i);
    }
    if (d.watched !== null) {  // the watched sample's frame, kept inside the canvas
      const k = this.cell, r = Math.floor(d.watched / d.cols), col = d.watched % d.cols;
      const w = Math.max(6, k + 2);
      ctx.lineWidth = 2.5; ctx.strokeStyle = "#000";
      ctx.strokeRect(Math.max(1.5, 3 + col * k + k / 2 - w / 2),
        Math.max(1.5, 3 + r * k + k / 2 - w / 2), w, w);
    }
  }

  axes(ctx, W, H, yTop, title) {
    const p = {l: 44, r: 14, t: 24, b: 26};
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#31333f"; ctx.font = "600 15px sans-serif"; ctx.textBaseline = "top";
    ctx.fillText(title, p.l, 2);
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(p.l, p.t); ctx.lineTo(p.l, H - p.b); ctx.lineTo(W - p.r, H - p.b);
    ctx.stroke();
    const T = this.d.T;
    const X = s => p.l + ((s - 0.5) / T) * (W - p.l - p.r);
    const Y = v => H - p.b - (v / yTop) * (H - p.t - p.b);
    ctx.font = "12px sans-serif"; ctx.fillStyle = "#555"; ctx.textBaseline = "top";
    for (const s of [1, Math.round(T / 2), T]) ctx.fillText(String(s), X(s) - 6, H - p.b + 4);
    ctx.textBaseline = "middle";
    for (const v of [0, yTop / 2, yTop]) ctx.fillText(yTop === 1 ? v.toFixed(1) : String(Math.round(v)), 4, Y(v));
    return {X, Y, p};
  }

  paintConfidence() {
    const d = this.d, ctx = this.confCtx, W = this.sideW, H = d.side_height, t = this.t;
    const {X, Y, p} = this.axes(ctx, W, H, 1, d.conf_title);
    ctx.setLineDash([6, 4]); ctx.strokeStyle = d.colors.current; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(p.l, Y(d.C)); ctx.lineTo(W - p.r, Y(d.C)); ctx.stroke();
    ctx.setLineDash([]);
    const [vert, side] = d.corner.split(" ");
    ctx.fillStyle = d.colors.current; ctx.font = "600 14px sans-serif";
    ctx.textBaseline = vert === "top" ? "bottom" : "top";
    const label = `C = ${d.C_text}`, lw = ctx.measureText(label).width;
    ctx.fillText(label, side === "left" ? p.l + 4 : W - p.r - lw - 4, Y(d.C) + (vert === "top" ? -3 : 3));
    if (d.watched_exit <= t) {
      ctx.setLineDash([2, 3]); ctx.strokeStyle = d.colors.baseline;
      ctx.beginPath(); ctx.moveTo(X(d.watched_exit), p.t); ctx.lineTo(X(d.watched_exit), H - p.b); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = d.colors.policy; ctx.lineWidth = 3; ctx.beginPath();
    for (let s = 1; s <= t; s++) {
      const x = X(s), y = Y(d.conf[s - 1]);
      if (s === 1) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.fillStyle = d.colors.current;  // "now", whole at t = T (the plot keeps a margin)
    ctx.beginPath(); ctx.arc(X(t), Y(d.conf[t - 1]), 6, 0, 2 * Math.PI); ctx.fill();
  }

  paintHistogram() {
    const d = this.d, ctx = this.histCtx, W = this.sideW, H = d.side_height, t = this.t;
    const top = 1.12 * this.top;
    const {X, Y, p} = this.axes(ctx, W, H, top, "Exits so far");
    const bw = Math.max(1, (W - p.l - p.r) / d.T - 1);
    for (let s = 1; s <= t; s++) {
      const ok = this.right[s], bad = this.count[s] - ok;
      ctx.fillStyle = d.colors.right;
      ctx.fillRect(X(s) - bw / 2, Y(ok), bw, Y(0) - Y(ok));
      ctx.fillStyle = d.colors.wrong;
      ctx.fillRect(X(s) - bw / 2, Y(ok + bad), bw, Y(ok) - Y(ok + bad));
    }
    ctx.setLineDash([6, 4]); ctx.strokeStyle = d.colors.current; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(X(t), p.t); ctx.lineTo(X(t), H - p.b); ctx.stroke();
    ctx.setLineDash([]);
  }

  paint() {
    const d = this.d, t = this.t, n = this.cumN[t];
    this.$(".dcp-step").textContent = `t = ${t} of ${d.T}`;
    this.$(".dcp-answered").textContent = `${Math.round((100 * n) / d.N)} %`;
    this.$(".dcp-right").textContent = fmtPct(n ? this.cumRight[t] / n : null);
    this.$(".dcp-mean").textContent = n ? (this.cumSteps[t] / n).toFixed(1) : "–";
    this.paintConfidence();
    this.paintHistogram();
    this.root.dataset.step = String(t);
    window.__dynconfClassroom.painted.push([t, performance.now()]);
  }
}

export default function (component) {
  const {data, parentElement} = component;
  let player = STATES.get(parentElement);
  if (!player) {
    player = new Player(parentElement.querySelector(".dcp-root"));
    STATES.set(parentElement, player);
  }
  player.component = component;
  if (data && data.play !== player.play) player.start(data, component);
}

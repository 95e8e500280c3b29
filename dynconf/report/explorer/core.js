// The threshold explorer's arithmetic in the browser: no DOM, no Plotly (tests run it alone).
//
// decode() reads the payload ui/instant.py packs (dynconf.core.records.Records plus the
// figures' fixed parts); evaluate() turns a slider position g (C = g / steps) into the exit
// step and answer of every sample and the explorer's numbers, with the library's arithmetic:
// integer counts divided by N, the same float operations in the same order, so the numbers
// equal dynconf.metrics.evaluate at C exactly. fmt() writes a float as Python's f"{x:.Nf}".
var DynconfInstant = (() => {
  "use strict";
  const TYPES = {u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, f4: Float32Array, f8: Float64Array};

  function decode(bytes) {
    // Own copy: the message's bytes may start at any offset; typed views need alignment.
    const buf = bytes.slice().buffer;
    const view = new DataView(buf);
    const magic = String.fromCharCode(...new Uint8Array(buf, 0, 4));
    if (magic !== "DCI1") throw new Error("not a dynconf instant payload");
    const hlen = view.getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, hlen)));
    const base = (8 + hlen + 7) & ~7;  // arrays start at the first aligned byte after it
    const arrays = {};
    for (const [name, [dtype, offset, length]] of Object.entries(header.arrays)) {
      arrays[name] = new TYPES[dtype](buf, base + offset, length);
    }
    const p = {...header.meta, header, a: arrays};
    const N = p.N;
    p.work = {
      steps: new Int32Array(N),
      answer: new Int32Array(N),
      correct: new Uint8Array(N),
    };
    // A fixed vertical spread of the scatter's points (the look of report/exits.py's jitter).
    p.jitter = new Float32Array(N);
    for (let i = 0; i < N; i++) p.jitter[i] = ((i * 0.6180339887498949) % 1) * 0.6 - 0.3;
    return p;
  }

  // Exit step, answer and correctness of every sample at C_g: the first kept record with
  // cell > g (cells rise strictly within a sample: binary search), else T.
  function exitsAt(p, g) {
    const {offsets, cell, step, pred, final_pred, labels} = p.a;
    const {steps, answer, correct} = p.work;
    const N = p.N, T = p.T;
    for (let i = 0; i < N; i++) {
      const end = offsets[i + 1];
      let lo = offsets[i], hi = end;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cell[mid] > g) hi = mid; else lo = mid + 1;
      }
      if (lo < end) { steps[i] = step[lo]; answer[i] = pred[lo]; }
      else { steps[i] = T; answer[i] = final_pred[i]; }
      correct[i] = answer[i] === labels[i] ? 1 : 0;
    }
    return p.work;
  }

  // Exit steps and answers given by the server (a threshold off the slider's grid).
  function exitsFrom(p, steps, answers) {
    const w = p.work, labels = p.a.labels;
    for (let i = 0; i < p.N; i++) {
      w.steps[i] = steps[i]; w.answer[i] = answers[i];
      w.correct[i] = answers[i] === labels[i] ? 1 : 0;
    }
    return w;
  }

  // results.summarize on the exit steps in p.work; spent = mean spikes at exit (or null).
  function summarize(p, threshold, spent) {
    const {steps, correct} = p.work;
    const N = p.N, T = p.T, base = p.a.baseline_counts;
    let nCorrect = 0, latencySum = 0;
    for (let i = 0; i < N; i++) { nCorrect += correct[i]; latencySum += steps[i]; }
    const mean = latencySum / N;
    let iso = null;
    for (let t = 0; t < T; t++) if (base[t] >= nCorrect) { iso = t + 1; break; }
    const r = {
      threshold, n_correct: nCorrect, N, T_max: T,
      accuracy: nCorrect / N,
      mean_latency: mean,
      baseline_accuracy: base[T - 1] / N,
      latency_reduction: (T - mean) / T,
      iso_accuracy_steps: iso,
      latency_reduction_vs_iso: iso === null ? null : (iso - mean) / iso,
      spikes_per_image_at_exit: null, spikes_per_image_full: null,
      spikes_per_neuron_at_exit: null, spikes_per_neuron_full: null, spike_saving: null,
    };
    if (spent !== null && spent !== undefined && p.spikes_full !== null) {
      const full = p.spikes_full;
      r.spikes_per_image_at_exit = spent;
      r.spikes_per_image_full = full;
      r.spike_saving = full > 0 ? 1.0 - spent / full : null;
      if (p.neurons) {
        r.spikes_per_neuron_at_exit = spent / p.neurons;
        r.spikes_per_neuron_full = full / p.neurons;
      }
    }
    return r;
  }

  function evaluate(p, g) {
    exitsAt(p, g);
    const spent = p.a.spikes_at_exit ? p.a.spikes_at_exit[g] : null;
    return summarize(p, g / p.steps, spent);
  }

  // Exit-step histogram: correct and wrong counts at steps 1..T.
  function histogram(p) {
    const {steps, correct} = p.work;
    const ok = new Float64Array(p.T), bad = new Float64Array(p.T);
    for (let i = 0; i < p.N; i++) (correct[i] ? ok : bad)[steps[i] - 1] += 1;
    return {ok, bad};
  }

  // results.capped_curve: exits capped at T' = 1..T. A sample still running at T' answers
  // as at T', so it adds its runs of correct steps before its exit to a difference array.
  function capped(p) {
    const {steps, correct} = p.work;
    const {run_offsets, run_start, run_stop} = p.a;
    const N = p.N, T = p.T;
    const exited = new Float64Array(T + 2), exitedCorrect = new Float64Array(T + 2);
    const exitedSteps = new Float64Array(T + 2), diff = new Float64Array(T + 2);
    for (let i = 0; i < N; i++) {
      const s = steps[i];
      exited[s] += 1; exitedSteps[s] += s; exitedCorrect[s] += correct[i];
      for (let k = run_offsets[i]; k < run_offsets[i + 1]; k++) {
        const a = run_start[k];
        if (a >= s) break;  // runs are in step order
        const b = Math.min(run_stop[k], s);  // correct while running: steps a..b-1 < s
        diff[a] += 1; diff[b] -= 1;
      }
    }
    const latency = new Float64Array(T), accuracy = new Float64Array(T);
    let cumExited = 0, cumCorrect = 0, cumSteps = 0, running = 0;
    for (let t = 1; t <= T; t++) {
      cumExited += exited[t]; cumCorrect += exitedCorrect[t]; cumSteps += exitedSteps[t];
      running += diff[t];
      latency[t - 1] = (cumSteps + t * (N - cumExited)) / N;
      accuracy[t - 1] = (cumCorrect + running) / N;
    }
    return {latency, accuracy};
  }

  // Python's format(x, ".{digits}f"): exact decimal expansion, round half to even.
  function fmt(x, digits) {
    if (!Number.isFinite(x)) return x > 0 ? "inf" : x < 0 ? "-inf" : "nan";
    const neg = x < 0 || Object.is(x, -0);
    const s = Math.abs(x).toFixed(100);  // exact for every double this app formats
    const dot = s.indexOf(".");
    let int = s.slice(0, dot), frac = s.slice(dot + 1);
    const keep = frac.slice(0, digits), rest = frac.slice(digits);
    let up = false;
    if (rest[0] > "5") up = true;
    else if (rest[0] === "5") {
      up = /[1-9]/.test(rest.slice(1)) ||
        ((digits > 0 ? keep[digits - 1] : int[int.length - 1]) % 2 === 1);
    }
    let num = (int + keep).split("").map(Number);
    if (up) {
      let k = num.length - 1;
      while (k >= 0 && num[k] === 9) { num[k] = 0; k--; }
      if (k < 0) num.unshift(1); else num[k] += 1;
    }
    const all = num.join("");
    const ip = all.slice(0, all.length - digits) || "0", fp = all.slice(all.length - digits);
    return (neg ? "-" : "") + ip + (digits > 0 ? "." + fp : "");
  }

  function signed(x, digits) {  // f"{x:+.{digits}f}"
    const s = fmt(x, digits);
    return s.startsWith("-") ? s : "+" + s;
  }

  function pct(x, digits = 2) {  // dynconf.core.formatting.pct
    return x === null || x === undefined ? "n/a" : fmt(100 * x, digits) + " %";
  }

  // The explorer's metric texts, as app_pages/explorer.py writes them.
  function texts(r) {
    const T = r.T_max;
    return {
      accuracy: pct(r.accuracy),
      accuracy_delta: `${signed(100 * (r.accuracy - r.baseline_accuracy), 2)} pp vs T = ${T}`,
      latency: `${fmt(r.mean_latency, 2)} steps`,
      latency_delta: `${signed(r.mean_latency - T, 2)} steps vs T = ${T}`,
      reduction: pct(r.latency_reduction, 1),
      reduction_iso: r.latency_reduction_vs_iso === null ? "n/a" : pct(r.latency_reduction_vs_iso, 1),
      iso_help: r.iso_accuracy_steps
        ? `Against the smallest fixed T whose accuracy is at least the policy's (T = ${r.iso_accuracy_steps}).`
        : "Against the smallest fixed T whose accuracy is at least the policy's: none reaches it.",
      spikes: r.spike_saving === null ? "not recorded" : pct(r.spike_saving, 1),
      spikes_help: r.spikes_per_neuron_at_exit === null ? "" :
        `${fmt(r.spikes_per_neuron_at_exit, 3)} vs ${fmt(r.spikes_per_neuron_full, 3)} spikes per neuron per image`,
    };
  }

  function b64bytes(text) {
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  return {decode, exitsAt, exitsFrom, summarize, evaluate, histogram, capped, fmt, signed, pct,
          texts, b64bytes, TYPES};
})();

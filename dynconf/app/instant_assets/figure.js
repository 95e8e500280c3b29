// dynconf.figure: one static Plotly figure (its JSON as bytes: {"config", "figure"}),
// drawn with the vendored Plotly.js that the dynconf.plotly component loads. A rerun that
// sends the same bytes draws nothing; a new figure is drawn with Plotly.react (no remount).
const registry = (window.__dynconfInstant ??= {payloads: new Map(), waiters: new Map()});
const DRAWN = new WeakMap();

function plotlyReady() {
  if (window.Plotly) return Promise.resolve();
  return new Promise(resolve => { (registry.plotlyWaiters ??= []).push(resolve); });
}

function sameBytes(a, b) {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export default function (component) {
  const {data, parentElement} = component;
  const root = parentElement.querySelector(".dcf-root");
  if (!root || !data || !data.length) return undefined;
  const state = DRAWN.get(root) ?? {bytes: null, resize: null};
  DRAWN.set(root, state);
  const cleanup = () => {
    state.resize?.disconnect();
    if (window.Plotly) Plotly.purge(root);
  };
  if (sameBytes(state.bytes, data)) return cleanup;
  state.bytes = data.slice();
  const {config, figure} = JSON.parse(new TextDecoder().decode(data));
  // The vendored bundle is Plotly's basic one, without WebGL traces: a scattergl trace is
  // drawn as the SVG scatter it looks like (as the explorer draws its exit scatter).
  for (const trace of figure.data ?? []) if (trace.type === "scattergl") trace.type = "scatter";
  const layout = figure.layout ?? {};
  root.style.width = "100%";
  root.style.height = `${layout.height ?? 450}px`;
  plotlyReady().then(() => {
    if (!sameBytes(state.bytes, data)) return;  // a newer figure came meanwhile
    return Plotly.react(root, figure.data ?? [], layout, config);
  }).then(() => {
    root.dataset.rendered = String(Date.now());
    if (!state.resize && window.ResizeObserver) {
      // Follow the column's width (the sidebar opening, the window resized).
      let width = root.clientWidth;
      state.resize = new ResizeObserver(() => {
        if (root.clientWidth !== width && root.isConnected) {
          width = root.clientWidth;
          Plotly.Plots.resize(root);
        }
      });
      state.resize.observe(root);
    }
  });
  return cleanup;
}

// dynconf.instant_explorer: the explorer view (view.js) hosted in a Streamlit component. The
// payload comes from the dynconf.instant_data component (data.js), Plotly.js from the
// dynconf.plotly component; C goes back to Python on release, a clicked point as "pick".
const registry = (window.__dynconfInstant ??= {payloads: new Map(), waiters: new Map()});
const STATES = new WeakMap();

function payload(pid) {
  const entry = registry.payloads.get(pid);
  if (entry) return Promise.resolve(entry);
  return new Promise(resolve => {
    registry.waiters.set(pid, [...(registry.waiters.get(pid) ?? []), resolve]);
  });
}

function plotlyReady() {
  if (window.Plotly) return Promise.resolve();
  return new Promise(resolve => { (registry.plotlyWaiters ??= []).push(resolve); });
}

export default function (component) {
  const {data, parentElement} = component;
  let view = STATES.get(parentElement);
  if (!view) {
    const host = {
      payload, plotly: plotlyReady,
      failNote: "The server's numbers are shown below.",
      report: c => host.component.setStateValue("c", c),
      pick: i => host.component.setTriggerValue("pick", i),
      // How long the last step took (read by benchmarks/bench_browser.py).
      rendered: () => { registry.timing = window.__dynconfTiming; },
    };
    view = new DynconfView.Explorer(parentElement.querySelector(".dci-root"), host);
    STATES.set(parentElement, view);
  }
  view.host.component = component;
  if (data) view.receive(data);
}

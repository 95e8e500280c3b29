// Appended to the vendored Plotly.js bundle (which has just set window.Plotly): wake the
// explorer views that are waiting for it. The component itself draws nothing.
const dynconfRegistry = (window.__dynconfInstant ??= {payloads: new Map(), waiters: new Map()});
for (const resolve of dynconfRegistry.plotlyWaiters ?? []) resolve();
dynconfRegistry.plotlyWaiters = [];
export default function () {}

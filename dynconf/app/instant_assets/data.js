// dynconf.instant_data: runs after the Plotly.js component (which sets window.Plotly) and
// hands each payload (raw bytes, one per run + split + decoder + kappa) to the explorer view,
// which may have mounted before or after this component.
const registry = (window.__dynconfInstant ??= {payloads: new Map(), waiters: new Map()});

export default function (component) {
  const bytes = component.data;
  if (!bytes || !bytes.length) return;
  const head = new DataView(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 1 << 16));
  const hlen = head.getUint32(4, true);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + hlen));
  const pid = JSON.parse(text).meta.pid;
  if (!registry.payloads.has(pid)) {
    registry.payloads.set(pid, {bytes, decoded: null});
    // Keep the few most recent payloads only (switching runs would otherwise pile them up).
    while (registry.payloads.size > 3) registry.payloads.delete(registry.payloads.keys().next().value);
  }
  for (const resolve of registry.waiters.get(pid) ?? []) resolve(registry.payloads.get(pid));
  registry.waiters.delete(pid);
}

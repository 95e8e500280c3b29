"""Where a page's time goes in the browser, for benchmarks/bench_pages.py.

``TIMELINE`` is an init script: it records every websocket message the page receives (the
server's deltas: time and size), every long task (the main thread busy for over 50 ms:
parsing a script chunk, a React re-mount, a Plotly render) and keeps every resource timing
entry (the lazily loaded script chunks). ``ARM`` then watches, at every animation frame from
a click or a navigation on, for the page's heading, its chart's element, the chart's first
trace drawn and the app idle (no status widget, no stale element), and ``BREAKDOWN`` reads
it all back relative to that start.

``floor_app`` writes a minimal two-page Streamlit app (a start page and a page with one
``st.plotly_chart`` of the Oracle figure's size): switching between them is the floor of a
Streamlit page switch to one chart.
"""

from __future__ import annotations

from pathlib import Path

TIMELINE = """(() => {
  try { performance.setResourceTimingBufferSize(100000); } catch (e) {}
  const T = (window.__timeline = {ws: [], lt: [], t0: null, marks: {}});
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => {
        const d = e.data;
        T.ws.push([performance.now(), d.byteLength ?? d.size ?? d.length ?? 0]);
      });
    }
  };
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) T.lt.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
})();"""

# Arm the watch: the start is the next click (onClick) or the navigation; marks every frame.
ARM = """([heading, chart, onClick]) => {
  const T = window.__timeline;
  T.marks = {}; T.t0 = null; T.done = false;
  const main = () => document.querySelector('[data-testid="stMain"]') || document;
  const tick = () => {
    const now = performance.now(), m = T.marks, root = main();
    const h = [...root.querySelectorAll('h1')].some(e => e.innerText.trim() === heading);
    if (h && m.heading == null) m.heading = now;
    const el = root.querySelector(chart);
    const fresh = el && !el.closest('[data-stale="true"]');
    if (fresh && m.chart_element == null) m.chart_element = now;
    // An SVG trace, or the canvas a WebGL trace (scattergl) is drawn on.
    const drawn = fresh && el.querySelector('.main-svg .trace, .gl-container canvas');
    if (drawn && m.chart_drawn == null) m.chart_drawn = now;
    const traces = [...root.querySelectorAll('.js-plotly-plot .main-svg .trace')];
    if (h && m.first_chart == null && traces.some(e => !e.closest('[data-stale="true"]'))) {
      m.first_chart = now;
    }
    const busy = document.querySelector('[data-testid="stStatusWidget"]')
      || root.querySelector('[data-stale="true"]');
    if (m.chart_drawn != null && h && !busy) { m.idle = now; T.done = true; return; }
    requestAnimationFrame(tick);
  };
  // From the next click, else from the navigation's start (performance.now() = 0).
  const start = () => { T.t0 = performance.now(); requestAnimationFrame(tick); };
  if (onClick) document.addEventListener('click', start, {capture: true, once: true});
  else { T.t0 = 0; requestAnimationFrame(tick); }
}"""

# Up to the idle frame, else up to now.
BREAKDOWN = """() => {
  const T = window.__timeline, t0 = T.t0, end = T.marks.idle ?? performance.now();
  const rel = v => v == null ? null : Math.round(v - t0);
  const ws = T.ws.filter(([t]) => t >= t0 && t <= end);
  const chunks = performance.getEntriesByType('resource')
    .filter(e => e.startTime >= t0 && e.startTime <= end)
    .map(e => [e.name.split('/').pop().split('?')[0], Math.round(e.responseEnd - t0),
               e.decodedBodySize]);
  const lt = T.lt.filter(([s, d]) => s + d >= t0 && s <= end);
  const big = chunks.slice().sort((a, b) => b[2] - a[2]).slice(0, 3);
  return {
    total_ms: rel(end),
    marks_ms: Object.fromEntries(Object.entries(T.marks).map(([k, v]) => [k, rel(v)])),
    first_message_ms: ws.length ? rel(ws[0][0]) : null,
    last_message_ms: ws.length ? rel(ws[ws.length - 1][0]) : null,
    messages: ws.length,
    message_kb: Math.round(ws.reduce((s, [, n]) => s + n, 0) / 1024),
    chunks: chunks.length,
    chunk_kb: Math.round(chunks.reduce((s, c) => s + c[2], 0) / 1024),
    largest_chunks: big.map(([n, t, b]) => `${n} ${Math.round(b / 1024)} kB at ${t} ms`),
    long_tasks: lt.length,
    long_task_ms: Math.round(lt.reduce((s, [, d]) => s + d, 0)),
    longest_task_ms: Math.round(Math.max(0, ...lt.map(([, d]) => d))),
  };
}"""

FLOOR_MAIN = """import streamlit as st

st.set_page_config(layout="wide")
st.navigation([st.Page("start.py", title="Start", default=True),
               st.Page("floor.py", title="Oracle floor")]).run()
"""
# The Oracle figure's shape: four curves of 64 points and one marker, one chart a page.
FLOOR_PAGE = """import plotly.graph_objects as go
import streamlit as st

st.title({title!r})
x = list(range(1, 65))
fig = go.Figure([go.Scatter(x=x, y=[1 - 0.5 ** (t / (4 + k)) for t in x], name=f"curve {{k}}")
                 for k in range(4)] + [go.Scatter(x=[8], y=[0.9], mode="markers")])
st.plotly_chart(fig, theme=None, key={key!r}, config={{"displaylogo": False}})
"""


def floor_app(folder: Path) -> Path:
    """Write the two-page floor app into ``folder``; returns its entry script."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "start.py").write_text(FLOOR_PAGE.format(title="Start", key="floor-a"))
    (folder / "floor.py").write_text(FLOOR_PAGE.format(title="Oracle floor", key="floor-b"))
    (folder / "floor_app.py").write_text(FLOOR_MAIN)
    return folder / "floor_app.py"


def where_time_went(b: dict) -> str:
    """One line of a breakdown (BREAKDOWN's dict)."""
    m = b["marks_ms"]
    return (
        f"first message {b['first_message_ms']} ms, heading {m.get('heading')}, last message "
        f"{b['last_message_ms']} ({b['messages']} msgs, {b['message_kb']} kB), chart element "
        f"{m.get('chart_element')}, first chart drawn {m.get('first_chart')}, this chart drawn "
        f"{m.get('chart_drawn')}, idle {m.get('idle')}; "
        f"{b['chunks']} script chunks ({b['chunk_kb']} kB: {'; '.join(b['largest_chunks'])}); "
        f"main thread busy {b['long_task_ms']} ms in {b['long_tasks']} long tasks "
        f"(longest {b['longest_task_ms']})"
    )

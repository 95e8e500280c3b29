"""The explorer's first chart against a one-chart Streamlit page served beside it.

Run through ``python -m benchmarks.bench_browser --first-chart R [--baseline DIR]``.
Streamlit servers run side by side in the same run: the app (on the shipped CIFAR-10 run),
with ``--baseline`` another tree's app, and a page that is only ``st.title`` and one
``st.plotly_chart`` (the floor a Streamlit page can reach). Each repeat opens each of them,
the order turning at every repeat:

- cold: the servers freshly started (the app's analysis cache on disk filled by a server
  started before the counted repeats, as when the app is restarted), the page opened in a
  new browser context;
- warm: the same servers again, in a new browser context.

Times run from navigation start to the first animation frame in which a Plotly SVG is in
the page. For the explorer the page also records, at every frame, when Plotly.js became
defined and when the payload arrived, so a missed target shows where the time went:
Streamlit's own start (the one-chart page's time), Plotly.js (parsed in its component),
the payload (built by the server and sent) and drawing; and every opening prints the page's
breakdown (benchmarks/page_timing.py: the server's first and last message, the heading, the
script chunks fetched, the main thread's long tasks) on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import page_timing
from tests.app.serve import free_port, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "cached_runs" / "cifar10_resnet20"
ONE_CHART = """import plotly.graph_objects as go
import streamlit as st

st.title("One chart")
x = list(range(1, 65))
st.plotly_chart(go.Figure(go.Scatter(x=x, y=[1 - 0.5 ** (t / 8) for t in x])))
"""
# Timestamps (performance.now, per animation frame) of what the page has reached.
WATCH = """(() => {
  const marks = (window.__marks = {});
  const tick = () => {
    const now = performance.now();
    if (!marks.plotly && window.Plotly) marks.plotly = now;
    const reg = window.__dynconfInstant;
    if (!marks.payload && reg && reg.payloads && reg.payloads.size) marks.payload = now;
    if (!marks.chart && document.querySelector('.js-plotly-plot .main-svg')) marks.chart = now;
    if (!marks.chart) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


@contextlib.contextmanager
def streamlit(script: str, env: dict, log: Path, cwd: Path = REPO):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def open_once(browser, url: str, heading: str) -> dict:
    """Seconds from navigation start to each mark, and the page's breakdown up to the first
    chart (benchmarks/page_timing.py: server messages, script chunks, long tasks)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH)
    context.add_init_script(
        page_timing.TIMELINE + f";({page_timing.ARM})({json.dumps([heading, '.x', False])});"
    )
    page = context.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_function("window.__marks && window.__marks.chart", timeout=300_000)
    marks = page.evaluate("window.__marks")
    breakdown = page.evaluate(page_timing.BREAKDOWN)
    context.close()
    out = {k: round(v / 1000, 3) for k, v in marks.items()}
    return {**out, "breakdown": breakdown}


def compare(
    repeats: int, tmp: Path | None = None, baseline: Path | None = None, empty_cache: bool = False
) -> dict:
    """Cold and warm first charts of the app (and of the ``baseline`` tree's app, served
    beside it) and of the one-chart page, interleaved, the order turning at every repeat.
    ``empty_cache``: every server starts on an empty analysis cache folder (nothing on disk
    from before: the decode and the explorer's payload are computed in its first run)."""
    folder = Path(tempfile.mkdtemp(prefix="first_chart_", dir=tmp))
    (folder / "one_chart.py").write_text(ONE_CHART)
    runs = folder / "runs"
    runs.mkdir()
    (runs / SHIPPED.name).symlink_to(SHIPPED)
    trees = {"app": REPO, **({"baseline": baseline} if baseline else {})}
    link = f"/explorer?run={SHIPPED.name}&split=test&decoder=paper&threshold=0.5"
    names = [*trees, "one"]
    out: dict = {kind: {name: [] for name in names} for kind in ("cold", "warm")}
    with launch_chromium() as browser:
        # Round -1 fills each tree's analysis cache and is not counted.
        for k in range(0 if empty_cache else -1, repeats):
            with contextlib.ExitStack() as stack:
                urls = {}
                for name, root in trees.items():
                    # The tree's own analysis cache folder, filled by round -1 (or empty).
                    cache = folder / (f"cache_{name}_{k}" if empty_cache else f"cache_{name}")
                    env = {**os.environ, "DYNCONF_RUNS": str(runs),
                           "DYNCONF_WORK": str(folder / f"work_{name}"),
                           "DYNCONF_CACHE_DIR": str(cache), "PYTHONPATH": str(root)}  # fmt: skip
                    app = stack.enter_context(
                        streamlit("app.py", env, folder / f"{name}.log", cwd=root)
                    )
                    urls[name] = (app + link, "Threshold explorer")
                env = {**os.environ, "PYTHONPATH": str(REPO)}
                one = stack.enter_context(
                    streamlit(str(folder / "one_chart.py"), env, folder / "one.log")
                )
                urls["one"] = (one, "One chart")
                if k < 0:
                    for name in trees:
                        open_once(browser, *urls[name])
                    continue
                order = names[k % len(names) :] + names[: k % len(names)]
                for kind in ("cold", "warm"):
                    for name in order:
                        m = open_once(browser, *urls[name])
                        out[kind][name].append(m)
                        print(f"[{k}] {kind} {name}: chart {m['chart']:.2f} s "
                              f"(Plotly.js {m.get('plotly')}, payload {m.get('payload')}): "
                              f"{page_timing.where_time_went(m['breakdown'])}",
                              file=sys.stderr, flush=True)  # fmt: skip
    return {**summarize(out, trees), "empty_cache": empty_cache, "runs": out}


def summarize(out: dict, trees: dict) -> dict:
    """Medians per kind and tree, ratios to the one-chart page, and the breakdown of the
    app's median run."""
    summary: dict = {"repeats": len(out["cold"]["one"]), "load_avg": os.getloadavg()}
    for kind in ("cold", "warm"):
        one = statistics.median(m["chart"] for m in out[kind]["one"])
        summary[f"{kind}_one_chart_s"] = one
        for name in trees:
            runs = out[kind][name]
            prefix = f"{kind}_app" if name == "app" else f"{kind}_{name}"
            app = statistics.median(m["chart"] for m in runs)
            summary[f"{prefix}_s"] = app
            summary[f"{prefix}_ratio" if name != "app" else f"{kind}_ratio"] = round(app / one, 3)
            for mark in ("plotly", "payload"):
                summary[f"{prefix}_{mark}_s"] = statistics.median(
                    m.get(mark, float("nan")) for m in runs
                )
            ordered = sorted(runs, key=lambda m: m["chart"])
            summary[f"{prefix}_breakdown"] = ordered[(len(ordered) - 1) // 2]["breakdown"]
    summary["targets"] = {"warm_ratio": 1.1, "cold_ratio": 1.3}
    return summary

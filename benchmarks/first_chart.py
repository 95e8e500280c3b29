"""The explorer's first chart against a one-chart Streamlit page served beside it.

Run through ``python -m benchmarks.bench_browser --first-chart R``. Two Streamlit servers run
side by side in the same run: the app (on the shipped CIFAR-10 run) and a page that is only
``st.title`` and one ``st.plotly_chart`` (the floor a Streamlit page can reach). Each repeat
opens both, alternating which goes first:

- cold: both servers freshly started, the page opened in a new browser context;
- warm: the same servers again, in a new browser context.

Times run from navigation start to the first animation frame in which a Plotly SVG is in
the page. For the explorer the page also records, at every frame, when Plotly.js became
defined and when the payload arrived, so a missed target shows where the time went:
Streamlit's own start (the one-chart page's time), Plotly.js (parsed in its component),
the payload (built by the server and sent) and drawing.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.app.serve import free_port, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "cached_runs" / "cifar10_resnet20"
ONE_CHART = '''import plotly.graph_objects as go
import streamlit as st

st.title("One chart")
x = list(range(1, 65))
st.plotly_chart(go.Figure(go.Scatter(x=x, y=[1 - 0.5 ** (t / 8) for t in x])))
'''
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
def streamlit(script: str, env: dict, log: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
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


def open_once(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_function("window.__marks && window.__marks.chart", timeout=300_000)
    marks = page.evaluate("window.__marks")
    context.close()
    return {k: round(v / 1000, 3) for k, v in marks.items()}


def compare(repeats: int, tmp: Path | None = None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="first_chart_", dir=tmp))
    (folder / "one_chart.py").write_text(ONE_CHART)
    runs = folder / "runs"
    runs.mkdir()
    (runs / SHIPPED.name).symlink_to(SHIPPED)
    env = {**os.environ, "DYNCONF_RUNS": str(runs), "DYNCONF_WORK": str(folder / "work"),
           "PYTHONPATH": str(REPO)}  # fmt: skip
    link = f"/explorer?run={SHIPPED.name}&split=test&decoder=paper&threshold=0.5"
    out: dict = {"cold": {"app": [], "one": []}, "warm": {"app": [], "one": []}}
    with launch_chromium() as browser:
        for k in range(repeats):
            with (
                streamlit("app.py", env, folder / "app.log") as app,
                streamlit(str(folder / "one_chart.py"), env, folder / "one.log") as one,
            ):
                order = [("app", app + link), ("one", one)]
                for kind in ("cold", "warm"):
                    for name, url in order if k % 2 == 0 else order[::-1]:
                        out[kind][name].append(open_once(browser, url))
    summary = {"repeats": repeats, "load_avg": os.getloadavg()[0]}
    for kind in ("cold", "warm"):
        app = statistics.median(m["chart"] for m in out[kind]["app"])
        one = statistics.median(m["chart"] for m in out[kind]["one"])
        summary[f"{kind}_app_s"], summary[f"{kind}_one_chart_s"] = app, one
        summary[f"{kind}_ratio"] = round(app / one, 3)
        summary[f"{kind}_app_plotly_s"] = statistics.median(
            m.get("plotly", float("nan")) for m in out[kind]["app"]
        )
        summary[f"{kind}_app_payload_s"] = statistics.median(
            m.get("payload", float("nan")) for m in out[kind]["app"]
        )
    summary["targets"] = {"warm_ratio": 1.1, "cold_ratio": 1.3}
    return {**summary, "runs": out}

"""The notebook widget: its traitlets against the library, a notebook executed by nbclient,
and a real JupyterLab in Chromium where a keyboard step of the slider reaches Python and the
view's numbers equal dynconf.metrics at every slider position and at off-grid record values.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import dynconf
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.records import GRID_STEPS
from dynconf.errors import DynconfError
from tests.helpers import build_synthetic_run

ROOT = Path(__file__).resolve().parents[1]
NEURONS = 2000  # build_synthetic_run's


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return build_synthetic_run(tmp_path_factory.mktemp("widget") / "synth").path


def library(run_dir: Path, c: float):
    from dynconf.core.store import load_run

    sp = load_run(run_dir).split("test")
    return metrics.evaluate(decode(sp, "paper"), c, spikes=sp.spikes, neurons=NEURONS)


def test_threshold_and_result_follow_the_library(run_dir):
    w = dynconf.explore(run_dir, split="test", threshold=0.5)
    assert w.threshold == 0.5 and w.override is None and w.payload[:4] == b"DCI1"
    assert w.result.accuracy == library(run_dir, 0.5).accuracy
    w.threshold = 0.5251  # off the slider's grid: the library's exits travel with it
    res = library(run_dir, 0.5251)
    assert w.result.mean_latency == res.mean_latency and w.override["c"] == 0.5251
    steps = np.frombuffer(base64.b64decode(w.override["steps"]), "<u2")
    np.testing.assert_array_equal(steps, res.exit_steps)
    with pytest.raises(Exception, match="threshold must lie in"):
        w.threshold = 1.5
    with pytest.raises(DynconfError, match="no split"):
        dynconf.explore(run_dir, split="nope")


def test_a_notebook_runs_the_widget(run_dir):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import dynconf\nw = dynconf.explore({str(run_dir)!r}, split='test')\nw"
        ),
        nbformat.v4.new_code_cell(
            "w.threshold = 0.6\nprint(w.result.threshold, w.result.accuracy)"
        ),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"env": env}).execute(env=env)
    outputs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    printed = nb.cells[1].outputs[0]["text"].split()
    assert float(printed[0]) == 0.6 and float(printed[1]) == library(run_dir, 0.6).accuracy


# --------------------------------------------------------------------------- JupyterLab


@pytest.fixture(scope="module")
def lab(run_dir, tmp_path_factory):
    """A JupyterLab server on a temporary folder with one notebook that shows the widget."""
    nbformat = pytest.importorskip("nbformat")
    from tests.app.serve import free_port

    folder = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import dynconf\nw = dynconf.explore({str(run_dir)!r}, split='test', threshold=0.5)\nw"
        ),
        nbformat.v4.new_code_cell("print('threshold', repr(w.threshold))"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, folder / "explore.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(folder / ".cfg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.root_dir={folder}", "--LabApp.news_url=", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start")
        yield f"{base}/lab/tree/explore.ipynb?token={token}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_cell(page, index: int) -> None:
    for _ in range(3):  # JupyterLab's first-start questions (news, kernel): accept them
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            break
        dialog.locator(".jp-mod-accept").first.click()
        page.wait_for_timeout(300)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


STEP_ALL = """async ([thresholds]) => {
    const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const view = document.querySelector('.dci-root').dciView;
    const out = [];
    for (const c of thresholds) {
        const g = Math.round(c * view.p.steps);
        view.receive({pid: view.pid, c, g, ext: 1e6 + out.length, override: null});
        await frames();
        out.push({r: view.last, steps: Array.from(view.p.work.steps)});
    }
    return out;
}"""


@pytest.mark.browser
def test_widget_in_jupyterlab(lab, run_dir):
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(lab)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=300_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=300_000)  # fmt: skip
        page.wait_for_timeout(3000)  # first-start dialogs appear a moment after the kernel
        run_cell(page, 0)
        page.wait_for_function(
            "document.querySelector('.dci-root')?.dataset.rendered === '0.5000'", timeout=300_000
        )
        # A keyboard step of the slider: the view and, on release, Python follow.
        page.locator(".dci-slider").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "document.querySelector('.dci-root').dataset.rendered === '0.5050'", timeout=30_000
        )
        page.wait_for_timeout(1500)  # the report waits for keys to pause
        run_cell(page, 1)
        out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
        out.filter(has_text="threshold").wait_for(timeout=60_000)
        assert out.inner_text().split()[-1] == "0.505"
        # The widget's view at every slider position equals the library.
        thresholds = [g / GRID_STEPS for g in range(GRID_STEPS + 1)]
        got = page.evaluate(STEP_ALL, [thresholds])
        for js, c in zip(got, thresholds, strict=True):
            res = library(run_dir, c)
            np.testing.assert_array_equal(js["steps"], res.exit_steps)
            assert (js["r"]["accuracy"], js["r"]["mean_latency"]) == (
                res.accuracy, res.mean_latency
            )
        assert json.dumps(got[0]["r"])  # plain data came back

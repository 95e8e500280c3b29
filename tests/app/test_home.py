"""Home (AppTest): every number it states is the run's own, computed from its outputs (also for
a run without any summary in meta.json), its sentences change with the run, and it shows one
sample's confidence (and image when the data is there). In a real Chromium at 1024 x 768,
nothing on Home, Classroom or Classes is cut short with an ellipsis."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.formatting import pct
from dynconf.core.store import load_run, save_run
from dynconf.core.timeline import example_sample
from tests.app.helpers import app, slider, specs, values
from tests.app.test_app import plain

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "cached_runs"


def story(at: AppTest) -> str:
    return plain(" ".join(m.value for m in at.markdown))


def check_story(at: AppTest, run, split: str, C: float) -> str:
    """Home's numbers are the run's: recomputed here and found in its text."""
    dec = decode(run.split(split), "paper")
    base = metrics.baseline_curve(dec)
    text = re.sub(r"\s+", " ", story(at))
    assert "almost never wrong" not in text
    full = metrics.evaluate(dec, 1.0)
    assert f"after all {dec.T} steps {pct(1 - full.accuracy)} are wrong" in text
    res = metrics.evaluate(dec, C)
    assert f"C = {C:.4g} waits {res.mean_latency:.2f} steps with {pct(1 - res.accuracy)}" in text
    lo, hi = metrics.evaluate(dec, C / 2), metrics.evaluate(dec, C + (1 - C) / 2)
    assert (
        f"waits {hi.mean_latency:.2f} steps on average and is wrong on {pct(1 - hi.accuracy)}"
        in text
    )
    assert (
        f"answers after {lo.mean_latency:.2f} steps and is wrong on {pct(1 - lo.accuracy)}" in text
    )
    assert f"{pct(float(base[0]))}" in text and f"{pct(float(base[-1]))}" in text
    # The accuracy-by-T chart: every t, from the outputs.
    chart = specs(at)[f"Accuracy by simulation length ({split})"]
    snn = next(t for t in chart["data"] if t["name"] == "SNN")
    np.testing.assert_array_equal(values(snn["x"]), np.arange(1, dec.T + 1))
    np.testing.assert_allclose(values(snn["y"]), 100 * base)
    # One sample's picture: the typical sample's confidence against C.
    pos = example_sample(dec, C)
    line = specs(at)[f"Confidence of sample {pos} over time"]["data"][0]
    np.testing.assert_allclose(values(line["y"]), dec.confidence[:, pos])
    return text


def test_home_tells_the_runs_own_numbers(env, dashboard_runs):
    at = app()
    run = load_run(dashboard_runs / "synth")
    assert "snn_accuracy_by_T" not in run.meta  # nothing to read but the outputs
    C = float(at.session_state["threshold"])
    text = check_story(at, run, "test", C)
    assert "waiting buys accuracy" in text  # the synthetic run does get better with time
    assert any("Image unavailable" in c.value for c in at.caption)  # no images: said so
    # Another threshold changes the numbers with it.
    slider(at).set_value(0.8).run()
    check_story(at, run, "test", float(at.session_state["threshold"]))


def test_a_run_where_waiting_gains_nothing_is_told_so(tmp_path, monkeypatch):
    T, N, K = 8, 60, 3
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, N)
    outputs = np.zeros((T, N, K), np.float32)
    outputs[:, np.arange(N), labels] = 2.0  # right from the first step on, and forever
    save_run(tmp_path / "runs" / "easy", {"test": {"outputs": outputs, "labels": labels},
             "calibration": {"outputs": outputs[:, :30], "labels": labels[:30]}},
             dataset="synthetic", model="always right")  # fmt: skip
    monkeypatch.setenv("DYNCONF_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app()
    assert not at.exception
    text = check_story(at, load_run(tmp_path / "runs" / "easy"), "test",
                       float(at.session_state["threshold"]))  # fmt: skip
    assert "waiting gains little here" in text
    assert "waiting buys accuracy" not in text
    assert "both are right equally often" in text


def test_short_metric_labels(env):
    at = app()
    labels = [m.label for m in at.metric]
    assert len(labels) == 4 and max(map(len, labels)) <= 16, labels


@pytest.mark.skipif(not (SHIPPED / "noisy_digits" / "meta.json").is_file(), reason="no run")
def test_teaching_run_home_shows_the_image(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNCONF_RUNS", str(SHIPPED))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app(run="noisy_digits")
    run = load_run(SHIPPED / "noisy_digits")
    check_story(at, run, "test", float(at.session_state["threshold"]))
    assert any(t.startswith("Input image") for t in specs(at))


def _imagefolder_run(root: Path) -> None:
    """A small run whose sample ids index image folders (as a CIFAR-10 simulation's do)."""
    T, N, K = 6, 40, 3
    rng = np.random.default_rng(1)
    labels = rng.integers(0, K, N)
    outputs = rng.normal(size=(T, N, K)).astype(np.float32)
    outputs[:, np.arange(N), labels] += 1.0
    split = {"outputs": outputs, "labels": labels, "ids": np.arange(N)}
    save_run(root / "folders", {"test": split, "calibration": split}, dataset="cifar10",
             model="synthetic", extra_meta={"id_scheme": "imagefolder-index",
             "id_source": {"test": "test", "calibration": "train"}})  # fmt: skip


def test_home_says_where_to_point_the_data_root(tmp_path, monkeypatch):
    _imagefolder_run(tmp_path / "runs")
    monkeypatch.setenv("DYNCONF_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    at = app(run="folders")
    hints = [i.value for i in at.info if "DYNCONF_DATA" in i.value]
    assert len(hints) == 1 and "dynconf app --data DIR" in hints[0]
    assert "`cifar10/test/`" in hints[0] and "It is now" not in hints[0]
    # A data root without the images: the hint names the root it looked in.
    monkeypatch.setenv("DYNCONF_DATA", str(tmp_path))
    at = app(run="folders", split="calibration")
    hint = next(i.value for i in at.info if "DYNCONF_DATA" in i.value)
    assert "`cifar10/train/`" in hint and f"It is now {tmp_path}" in plain(hint)


def test_runs_without_image_folders_get_no_data_hint(env):
    at = app()
    assert not [i.value for i in at.info if "DYNCONF_DATA" in i.value]


# --------------------------------------------------------------------------- real browser

# Elements that clip their text (ellipsis or hidden overflow) and are too narrow for it.
CLIPPED = """() => [...document.querySelectorAll('[data-testid="stMain"] *')]
  .filter(e => {
    if (!e.innerText || !e.innerText.trim()) return false;
    const s = getComputedStyle(e);
    const clips = s.textOverflow === 'ellipsis' || s.overflowX === 'hidden'
      || s.overflow === 'hidden';
    return clips && e.scrollWidth > e.clientWidth + 1;
  }).map(e => e.innerText.slice(0, 80))"""


@pytest.mark.browser
def test_nothing_is_cut_at_1024_px(dashboard_runs, tmp_path):
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium, serve_app

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    root = tmp_path / "runs"
    root.mkdir()
    (root / "synth").symlink_to(dashboard_runs / "synth")
    for meta in sorted(SHIPPED.glob("*/meta.json")):
        (root / meta.parent.name).symlink_to(meta.parent)
    runs = ["synth"] + [p.parent.name for p in sorted(SHIPPED.glob("*/meta.json"))]
    log = tmp_path / "streamlit.log"
    with serve_app(root, tmp_path / "work", log) as srv, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        # The detector itself: a metric label known to be too long is found.
        page.goto(f"{srv['url']}/?run=synth")
        page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
        page.evaluate("""() => { const e = document.querySelector(
            '[data-testid="stMetricLabel"] p') || document.querySelector(
            '[data-testid="stMetricLabel"]'); e.innerText = 'x'.repeat(400); }""")
        assert page.evaluate(CLIPPED), "the clipping detector finds nothing"
        for run in runs:
            for path, ready in (("", "stMetric"), ("classroom", "stMetric"),
                                ("classes", "stDataFrame")):  # fmt: skip
                page.goto(f"{srv['url']}/{path}?run={run}")
                page.wait_for_selector(f'[data-testid="{ready}"]', timeout=60_000)
                page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=60_000)
                time.sleep(1.0)  # let the columns settle at their final widths
                assert not page.locator('[data-testid="stException"]').count(), (run, path)
                cut = page.evaluate(CLIPPED)
                assert not cut, f"{run} /{path}: cut short at 1024 px: {cut}"

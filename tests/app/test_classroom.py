"""The Classroom page (AppTest): the step-through shows exactly dynconf.core.timeline's state
at each t, plays t = 1 .. T_max and stops, keeps t and the watched sample when the page is
left, and offers the teaching run; and the shipped teaching run is one where waiting pays."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dynconf.app.routes import page_path
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.formatting import pct
from dynconf.core.selection import calibration_split
from dynconf.core.store import load_run
from dynconf.core.timeline import example_sample, timeline_state
from tests.app.helpers import app, metric, specs, values
from tests.helpers import build_synthetic_run

ROOT = Path(__file__).resolve().parents[2]
TEACHING = ROOT / "cached_runs" / "noisy_digits"


def shown_state(at: AppTest, dec, C: float, t: int) -> None:
    """The page shows timeline_state(dec, C, t): metrics, grid and histogram."""
    st = timeline_state(dec, C, t)
    assert metric(at, "Step") == f"{t} / {dec.T}"
    assert metric(at, "Answered") == f"{st.n_exited / dec.N:.0%}"
    right = "–" if st.accuracy_exited is None else pct(st.accuracy_exited, 1)
    assert metric(at, "Right so far") == right
    lat = "–" if st.mean_latency_exited is None else f"{st.mean_latency_exited:.1f}"
    assert metric(at, "Mean exit step") == lat
    figs = specs(at)
    grid = figs[f"Samples after step {t} of {dec.T}"]
    z = values(grid["data"][0]["z"]).astype(float).reshape(-1)[: dec.N]
    assert int((z > 0).sum()) == st.n_exited and int((z == 1).sum()) == st.n_correct_exited
    hist = figs["Exits so far"]
    bars = {tr["name"]: values(tr["y"]) for tr in hist["data"]}
    np.testing.assert_array_equal(bars["right"], st.exits_correct)
    np.testing.assert_array_equal(bars["wrong"], st.exits_wrong)


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return decode(load_run(dashboard_runs / "synth").split("test"), "paper")


def test_each_step_shows_the_core_state(env, synth):
    at = app("classroom")
    assert not at.exception
    C = float(at.session_state["threshold"])
    shown_state(at, synth, C, 1)
    for t in (4, synth.T):
        at.slider(key="classroom_t").set_value(t).run()
        assert not at.exception
        shown_state(at, synth, C, t)
    # The watched sample starts as a typical one, and its confidence line stops at t.
    pos = example_sample(synth, C)
    assert at.number_input(key="classroom_sample").value == pos
    sid = int(load_run(env / "synth").split("test").ids[pos])  # one numbering: the id
    line = specs(at)[f"Sample id {sid}: confidence"]["data"][0]
    np.testing.assert_allclose(values(line["y"]), synth.confidence[:, pos])


def player_message(at: AppTest) -> dict:
    found = [c for c in at.get("bidi_component") if c.proto.component_name.endswith("player")]
    assert len(found) == 1, [c.proto.component_name for c in at.get("bidi_component")]
    return json.loads(found[0].proto.json)


def test_play_sends_the_timeline_to_the_browser_once(env, synth):
    at = app("classroom")
    C = float(at.session_state["threshold"])
    at.slider(key="classroom_t").set_value(synth.T - 3).run()
    at.segmented_control(key="classroom_speed").set_value("fast").run()
    assert at.toggle(key="classroom_stop_all").value is True  # on by default
    next(b for b in at.button if b.label == "Play").click().run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Play"], "the player has its own Pause"
    msg = player_message(at)
    res = metrics.evaluate(synth, C)
    steps = np.frombuffer(base64.b64decode(msg["steps"]), "<u2")
    correct = np.frombuffer(base64.b64decode(msg["correct"]), np.uint8).astype(bool)
    np.testing.assert_array_equal(steps, res.exit_steps)
    np.testing.assert_array_equal(correct, res.correct)
    assert (msg["t0"], msg["T"], msg["N"], msg["seconds"]) == (synth.T - 3, synth.T, synth.N, 0.1)
    assert msg["stop_all"] is True and msg["C"] == C
    pos = msg["watched"]
    np.testing.assert_allclose(msg["conf"], synth.confidence[:, pos], atol=1e-6)
    sid = int(load_run(env / "synth").split("test").ids[pos])
    assert msg["conf_title"] == f"Sample id {sid}: confidence"
    # The same play while other things rerun the page: the browser keeps painting it.
    at.run()
    assert player_message(at)["play"] == msg["play"]
    next(b for b in at.button if b.label == "Restart").click().run()
    assert at.slider(key="classroom_t").value == 1
    assert [b.label for b in at.button if b.label == "Play"] == ["Play"]


def test_the_confidence_label_sits_where_the_curve_is_not():
    from dynconf.report.timeline import label_corner

    rising = np.linspace(0.0, 1.0, 64)  # crosses C = 0.16 early, at the left
    assert label_corner(rising, 0.16) in ("top right", "bottom right")
    assert label_corner(rising[::-1], 0.16).endswith("left")
    assert label_corner(np.full(64, 0.5), 0.95).startswith("bottom")  # no room above C


def test_t_and_sample_survive_leaving_the_page(env, synth):
    at = app("classroom")
    at.segmented_control(key="classroom_speed").set_value("slow").run()
    at.slider(key="classroom_t").set_value(7).run()
    at.number_input(key="classroom_sample").set_value(11).run()
    sid = int(load_run(env / "synth").split("test").ids[11])
    assert f"Sample id {sid}: confidence" in specs(at)
    at.switch_page(page_path("explorer")).run()
    assert not at.exception
    at.switch_page(page_path("classroom")).run()
    assert at.slider(key="classroom_t").value == 7
    assert at.number_input(key="classroom_sample").value == 11
    assert at.segmented_control(key="classroom_speed").value == "slow"
    assert metric(at, "Step") == f"7 / {synth.T}"


def test_offers_the_teaching_run_and_switches_to_it(env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    build_synthetic_run(runs / "other", seed=4)
    build_synthetic_run(runs / "noisy_digits", T=12, seed=5)
    monkeypatch.setenv("DYNCONF_RUNS", str(runs))
    at = app("classroom", run="other")
    assert any("teaching run" in x.value for x in at.info)
    next(b for b in at.button if b.label == "Use the teaching run").click().run()
    assert not at.exception
    assert at.selectbox(key="run").value == "noisy_digits"
    assert metric(at, "Step") == "1 / 12"  # a new run starts the story again
    assert not any(b.label == "Use the teaching run" for b in at.button)
    # The teaching run's own calibrated threshold, not the other run's.
    run = load_run(runs / "noisy_digits")
    sel = metrics.select_threshold(
        decode(run.split(calibration_split(run, "test"))), decode(run.split("test"))
    )
    assert float(at.session_state["threshold"]) == pytest.approx(sel.threshold)


@pytest.mark.skipif(not (TEACHING / "meta.json").is_file(), reason="no teaching run shipped")
def test_the_teaching_run_is_one_where_waiting_pays():
    run = load_run(TEACHING)
    cal, test = decode(run.split("calibration")), decode(run.split("test"))
    base = metrics.baseline_curve(test)
    assert base[-1] - base[0] > 0.08  # T = 1 is clearly worse than T_max
    sel = metrics.select_threshold(cal, test)
    res = metrics.evaluate(test, sel.threshold)
    assert res.accuracy >= base[-1] - 0.01  # about no accuracy lost ...
    assert res.mean_latency < 0.25 * run.T_max  # ... at a fraction of the latency
    created = run.meta["created"]
    assert "noisy_digits" in created["command"] and created["training_commands"]
    assert (TEACHING / run.meta["checkpoint"]).stat().st_size < 1_000_000


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def classroom_server(dashboard_runs, tmp_path_factory):
    from tests.app.serve import serve_app

    root = tmp_path_factory.mktemp("classroom_runs")
    (root / "synth").symlink_to(dashboard_runs / "synth")
    if TEACHING.is_dir():
        (root / "noisy_digits").symlink_to(TEACHING)
    with serve_app(root, root.parent / "work", root.parent / "streamlit.log") as info:
        yield info


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with launch_chromium() as b:
        yield b


def _play(page, url: str, speed: str, stop_all: bool) -> dict:
    """Open the Classroom at 1024x768, choose the speed, press Play, and return what the
    player painted (steps with their times) once it has finished."""
    page.goto(url)
    page.get_by_role("heading", name="Classroom", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.get_by_text(speed, exact=True).click()
    toggle = page.get_by_role("switch", name="Stop when all have answered")
    if toggle.is_checked() != stop_all:
        page.get_by_text("Stop when all have answered").click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Play").click()
    page.locator(".dcp-root").wait_for(timeout=30_000)
    page.wait_for_function("() => window.__dynconfClassroom && "
                           "window.__dynconfClassroom.painted.length > 2", timeout=30_000)
    boxes = page.evaluate("""() => ['.dcp-grid', '.dcp-conf', '.dcp-hist', '.dcp-step']
        .map(s => document.querySelector(s).getBoundingClientRect().bottom)""")
    page.wait_for_function("() => window.__dynconfClassroom.done !== null", timeout=60_000)
    out = page.evaluate("() => window.__dynconfClassroom")
    out["bottoms"] = boxes
    return out


@pytest.mark.browser
@pytest.mark.skipif(not TEACHING.is_dir(), reason="the teaching run is absent")
def test_playback_paints_every_step_above_the_fold(classroom_server, chromium):
    """At 1024x768 with the sidebar open: every step 1..64 painted once, in order, at the
    "fast" pace, with the grid and both charts above the fold; then the page shows t = 64."""
    run = load_run(TEACHING)
    page = chromium.new_page(viewport={"width": 1024, "height": 768})
    url = f"{classroom_server['url']}/classroom?run=noisy_digits"
    got = _play(page, url, "fast", stop_all=False)
    steps = [t for t, _ in got["painted"]]
    assert steps == list(range(1, run.T_max + 1)), steps
    assert got["done"] == run.T_max
    assert max(got["bottoms"]) <= 768, got["bottoms"]  # nothing of the story below the fold
    gaps = np.diff([ms for _, ms in got["painted"]])
    assert gaps.min() >= 0.9 * 100, gaps.min()  # the pace is the chosen one, no step skipped
    page.get_by_text(f"{run.T_max} / {run.T_max}").wait_for(timeout=30_000)  # the server's t
    page.close()


@pytest.mark.browser
def test_play_stops_when_all_have_answered_and_says_so(classroom_server, chromium, dashboard_runs):
    dec = decode(load_run(dashboard_runs / "synth").split("test"), "paper")
    page = chromium.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{classroom_server['url']}/classroom?run=synth")
    page.get_by_role("heading", name="Classroom", exact=True).wait_for(timeout=60_000)
    C = float(page.get_by_label("Exact threshold").input_value())
    last = int(metrics.evaluate(dec, C).exit_steps.max())
    got = _play(page, f"{classroom_server['url']}/classroom?run=synth", "fast", stop_all=True)
    assert got["done"] == last and [t for t, _ in got["painted"]] == list(range(1, last + 1))
    if last < dec.T:
        page.get_by_text(f"Every image had answered by step {last}").wait_for(timeout=30_000)
    page.close()

"""The Classroom page (AppTest): the step-through shows exactly dynconf.core.timeline's state
at each t, plays t = 1 .. T_max and stops, keeps t and the watched sample when the page is
left, and offers the teaching run; and the shipped teaching run is one where waiting pays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

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
    line = specs(at)[f"Sample {pos}: confidence"]["data"][0]
    np.testing.assert_allclose(values(line["y"]), synth.confidence[:, pos])


def test_play_walks_to_T_max_and_stops(env, synth):
    at = app("classroom")
    C = float(at.session_state["threshold"])
    at.slider(key="classroom_t").set_value(synth.T - 3).run()
    play = next(b for b in at.button if b.label == "Play")
    play.click().run()
    assert not at.exception
    assert [b.label for b in at.button if b.label in ("Play", "Pause")] == ["Pause"]
    assert at.progress, "a progress bar replaces the slider while playing"
    shown_state(at, synth, C, synth.T - 3)  # the first frame is the step it started from
    for t in range(synth.T - 2, synth.T + 1):  # each rerun of the fragment is one step
        at.run()
        assert not at.exception
        shown_state(at, synth, C, t)
    at.run()  # one tick after the last step the ticking stops
    assert [b.label for b in at.button if b.label in ("Play", "Pause")] == ["Play"]
    assert at.slider(key="classroom_t").value == synth.T
    # Play again at the end starts from t = 1; Restart goes back to t = 1 and pauses.
    next(b for b in at.button if b.label == "Play").click().run()
    shown_state(at, synth, C, 1)
    next(b for b in at.button if b.label == "Restart").click().run()
    assert at.slider(key="classroom_t").value == 1
    assert [b.label for b in at.button if b.label in ("Play", "Pause")] == ["Play"]


def test_t_and_sample_survive_leaving_the_page(env, synth):
    at = app("classroom")
    at.segmented_control(key="classroom_speed").set_value("slow").run()
    at.slider(key="classroom_t").set_value(7).run()
    at.number_input(key="classroom_sample").set_value(11).run()
    assert "Sample 11: confidence" in specs(at)
    at.switch_page("app_pages/explorer.py").run()
    assert not at.exception
    at.switch_page("app_pages/classroom.py").run()
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

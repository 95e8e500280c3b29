"""The Samples page: filters with previous/next inside them, the sample id in the URL, the
current sample marked in the picker, a correct/wrong badge in words, and the explorer's
hand-over of a clicked point (AppTest, no browser; downloads are in test_state_url.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from tests.app.helpers import app, specs

C = 0.6


@pytest.fixture
def truth(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sp = run.split("test")
    return run, sp, metrics.evaluate(decode(sp, "paper"), C)


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def walk(at, label: str, count: int) -> list[int]:
    seen = []
    for _ in range(count):
        button(at, label).click().run()
        assert not at.exception, [e.value for e in at.exception]
        seen.append(at.number_input(key="sample_pos").value)
    return seen


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def badge(at) -> str:
    found = [m.value for m in at.markdown if "-badge[" in m.value]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("show", ["wrong", "never", "latest"])
def test_filters_and_next_previous_stay_inside_them(env, truth, show):
    run, sp, res = truth
    T = run.T_max
    keep = {
        "wrong": ~res.correct,
        "never": res.exit_steps == T,
        "latest": res.exit_steps < T,
    }[show]
    order = np.flatnonzero(keep)
    if show == "latest":
        order = order[np.argsort(-res.exit_steps[order], kind="stable")]
    assert len(order) >= 4, f"the fixture has too few {show} samples at C = {C}"
    at = app("samples", threshold=str(C))
    at.number_input(key="sample_pos").set_value(int(np.flatnonzero(~keep)[0]))
    at.selectbox(key="sample_filter").set_value(show).run()
    assert any("not among the" in c.value for c in at.caption)
    # From a sample outside the filter, Next starts at the filter's first.
    assert walk(at, "Next", 4) == [int(p) for p in order[:4]]
    assert walk(at, "Previous", 2) == [int(order[2]), int(order[1])]
    assert any(f"Sample 2 of the {len(order):,}" in c.value for c in at.caption)
    for pos in order[:3]:  # every sample the filter shows is one it promised
        at.number_input(key="sample_pos").set_value(int(pos)).run()
        if show == "wrong":
            assert "wrong at exit" in badge(at)
        if show == "never":
            assert metric(at, "Exit step") == f"{T} of {T}"
    assert at.query_params.get("show") in (show, [show])


def test_class_filter_and_badge_in_words(env, truth):
    run, sp, res = truth
    k = int(sp.labels[0])
    at = app("samples", threshold=str(C))
    at.selectbox(key="sample_class").set_value(k)
    at.selectbox(key="sample_filter").set_value("all").run()
    seen = walk(at, "Next", 3)
    assert seen == [int(p) for p in np.flatnonzero(sp.labels == k)[1:4]]
    for pos in seen:
        at.number_input(key="sample_pos").set_value(pos).run()
        assert metric(at, "Label") == run.classes[k]
        want = "correct at exit" if res.correct[pos] else "wrong at exit"
        assert want in badge(at) and (":green-" in badge(at)) == bool(res.correct[pos])
        # No up/down delta arrows next to the answer: the badge says it.
        assert next(m for m in at.metric if m.label == "Answer at exit").proto.delta == ""


def test_current_sample_is_marked_in_the_picker(env, truth):
    run, sp, res = truth
    pos = int(np.flatnonzero(~res.correct)[2])
    at = app("samples", threshold=str(C))
    at.number_input(key="sample_pos").set_value(pos).run()
    spec = next(s for title, s in specs(at).items() if "Pick a sample" in title)
    marks = [t for t in spec["data"] if t.get("name", "").startswith("this sample")]
    assert len(marks) == 1
    assert marks[0]["x"] == [int(sp.ids[pos])] and marks[0]["y"] == [int(res.exit_steps[pos])]
    assert marks[0]["name"] == f"this sample (id {int(sp.ids[pos])})"


def test_explorer_hand_over_is_a_position_and_the_url_says_the_id(env, truth):
    run, sp, res = truth
    at = app("samples", threshold=str(C))
    at.session_state["picked_sample"] = 42  # what the explorer writes on a click
    at.run()
    assert at.number_input(key="sample_pos").value == 42
    assert metric(at, "Sample id") == str(int(sp.ids[42]))
    assert at.query_params.get("sample") in (str(int(sp.ids[42])), [str(int(sp.ids[42]))])

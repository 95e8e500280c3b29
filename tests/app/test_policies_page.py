"""The Policies page: every policy's front with its chosen point, and one policy's exits,
drawn from the same numbers as the library (AppTest, no browser)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynconf.app.text import md_escape
from dynconf.core.decoders import decode
from dynconf.core.policies import POLICIES
from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder
from dynconf.core.store import load_run
from tests.app.helpers import app, figure_specs, metric, values


def charts(at) -> list[dict]:
    return figure_specs(at)


def titled(at, words: str) -> dict:
    found = [c for c in charts(at) if words in c["layout"]["title"]["text"]]
    assert len(found) == 1, [c["layout"]["title"]["text"] for c in charts(at)]
    return found[0]


def traces(spec: dict) -> dict[str, dict]:
    return {t["name"]: t for t in spec["data"]}


@pytest.fixture(scope="module")
def library(dashboard_runs):
    """What the page must show, computed by the library directly."""
    run = load_run(dashboard_runs / "synth")
    cal, test = split_decoder(run.split("calibration")), split_decoder(run.split("test"))
    comparison = compare_policies(cal, test, 0.0, decoder="paper", kappa=None)
    return run, comparison, policy_fronts(comparison, cal, test)


def test_page_draws_every_policys_front_and_chosen_point(env, library):
    _, comparison, fronts = library
    at = app("policies")
    drawn = traces(titled(at, "Exit policy fronts on test, chosen on calibration"))
    assert {"baseline (fixed T)", "oracle, stays correct"} <= set(drawn)
    assert [f.name for f in fronts] == list(POLICIES)
    for front in fronts:
        lat, acc, params = front.front()
        line = drawn[f"{front.name}: front"]
        np.testing.assert_allclose(values(line["x"]), lat)
        np.testing.assert_allclose(values(line["y"]), 100 * acc)
        assert len(line["text"]) == len(params)
        point = drawn[front.name]  # the legend entry: its point chosen on calibration
        assert values(point["x"])[0] == pytest.approx(front.fit.test.mean_latency)
        assert values(point["y"])[0] == pytest.approx(100 * front.fit.test.accuracy)
    # The table and the chosen points are the same fits.
    table = at.dataframe[0].value
    for fit in comparison.fits:
        row = table[table.policy == fit.name].iloc[0]
        assert row["latency"] == f"{fit.test.mean_latency:.3f}"


@pytest.mark.parametrize("name", ["conformal", "patience"])
def test_page_draws_the_chosen_policys_exits_sample_by_sample(env, library, name):
    run, comparison, _ = library
    fit = next(f for f in comparison.fits if f.name == name)
    at = app("policies")
    at.selectbox(key="pol_exits_policy").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    res = fit.test
    assert metric(at, "Accuracy on test") == f"{100 * res.accuracy:.2f} %"
    assert metric(at, "Mean latency on test") == f"{res.mean_latency:.2f}"
    hist = traces(titled(at, f"Exit steps of {name}"))
    counts = np.bincount(res.exit_steps[res.correct], minlength=run.T_max + 1)[1:]
    np.testing.assert_array_equal(values(hist["correct"]["y"]), counts)
    wrong = np.bincount(res.exit_steps[~res.correct], minlength=run.T_max + 1)[1:]
    np.testing.assert_array_equal(values(hist["wrong"]["y"]), wrong)
    scatter = titled(at, f"sample under {name}")
    n_points = sum(len(values(t["x"])) for t in scatter["data"])
    assert n_points == len(res.exit_steps) == decode(run.split("test")).N
    right = next(t for t in scatter["data"] if t["name"].startswith("correct"))
    assert t_count(right) == res.n_correct


def t_count(trace: dict) -> int:
    return len(values(trace["x"]))


def test_page_states_a_computed_verdict(env, library):
    _, comparison, _ = library
    at = app("policies")
    assert not at.exception, [e.value for e in at.exception]
    target = comparison.fits[0].test.baseline_accuracy
    full = [f for f in comparison.fits if f.test.accuracy >= target - 1e-12]
    text = " ".join(m.value for m in at.markdown)
    if full:
        best = min(full, key=lambda f: f.test.mean_latency)
        assert f"{md_escape(best.name)} is fastest at full accuracy on test" in text
        assert f"({best.test.mean_latency:.2f} steps" in text
    else:
        assert "no rule keeps the full-length accuracy" in text


def test_table_has_short_headers_with_help_and_no_none_cells(env, library):
    at = app("policies")
    table = at.dataframe[0].value
    assert all(len(c) <= 12 for c in table.columns), list(table.columns)
    assert table.map(lambda v: v is None or str(v) in ("None", "nan", "")).sum().sum() == 0
    config = json.loads(at.dataframe[0].proto.columns)
    assert all(config[c].get("help") for c in table.columns), config
    assert "oracle (stays correct)" in set(table.policy)
    for static in at.table:
        assert "None" not in static.value.to_string()
    captions = " ".join(c.value for c in at.caption)
    assert "**Gap closed**" in captions and "100 % the oracle" in captions


def test_threshold_star_is_drawn_over_the_other_markers(env, library):
    at = app("policies")
    spec = titled(at, "Exit policy fronts on test, chosen on calibration")
    order = [t["name"] for t in spec["data"]]
    assert order.index("threshold") > order.index("patience")
    assert order.index("threshold") > max(order.index(f"{n}: front") for n in POLICIES)
    star = next(t for t in spec["data"] if t["name"] == "threshold")
    assert star["marker"]["symbol"] == "star"
    legend = sorted((t for t in spec["data"] if t["name"] in POLICIES),
                    key=lambda t: t.get("legendrank", 1000))  # fmt: skip
    assert [t["name"] for t in legend] == list(POLICIES)  # the legend keeps registry order

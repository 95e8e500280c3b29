"""The Classes page (AppTest): its table and charts are dynconf.core.classes at the sidebar's
threshold, exactly; a run with many classes gets the worst classes drawn and its most
frequent confusions listed."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.classes import class_metrics, confusion_at_exit
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from tests.app.helpers import app, slider, specs, values
from tests.helpers import build_synthetic_run


@pytest.mark.parametrize("threshold", [None, 0.85])
def test_table_and_charts_are_the_core_numbers(env, dashboard_runs, threshold):
    at = app("classes")
    if threshold is not None:
        slider(at).set_value(threshold).run()
    assert not at.exception
    C = float(at.session_state["threshold"])
    run = load_run(dashboard_runs / "synth")
    dec = decode(run.split("test"), "paper")
    res = metrics.evaluate(dec, C)
    cm = class_metrics(dec, res, len(run.classes))
    df = at.dataframe[0].value
    assert df["class"].tolist() == list(run.classes)
    assert df["n"].tolist() == cm.n.tolist()
    np.testing.assert_allclose(df["at exit (%)"], 100 * cm.accuracy)
    np.testing.assert_allclose(df[f"at T = {dec.T} (%)"], 100 * cm.accuracy_full)
    np.testing.assert_allclose(df["mean exit step"], cm.mean_latency)
    assert df["never exits"].tolist() == cm.never_exits.tolist()
    figs = specs(at)
    acc = next(t for t in figs["Accuracy by class (true label)"]["data"] if "exit" in t["name"])
    np.testing.assert_allclose(values(acc["y"]), 100 * cm.accuracy)
    heat = figs["Answers at exit: rows true label, columns answer"]["data"][0]
    counts = confusion_at_exit(dec.labels, res.predictions, len(run.classes))
    np.testing.assert_array_equal(values(heat["text"]), counts)


def test_many_classes_list_the_top_confusions(tmp_path, monkeypatch):
    build_synthetic_run(tmp_path / "runs" / "many", n_test=400, n_cal=200, K=50, seed=2)
    monkeypatch.setenv("DYNCONF_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app("classes")
    assert not at.exception
    assert len(at.dataframe[0].value) == 50  # the table has every class
    assert any("40 classes with the lowest accuracy" in c.value for c in at.caption)
    acc = specs(at)["Accuracy by class (true label)"]["data"][0]
    assert len(values(acc["y"])) == 40
    top = at.dataframe[1].value
    run = load_run(tmp_path / "runs" / "many")
    dec = decode(run.split("test"), "paper")
    res = metrics.evaluate(dec, float(at.session_state["threshold"]))
    off = confusion_at_exit(dec.labels, res.predictions, 50)
    np.fill_diagonal(off, 0)
    assert top["samples"].iloc[0] == off.max()
    assert (np.diff(top["samples"].to_numpy()) <= 0).all()

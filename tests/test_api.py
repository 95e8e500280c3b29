"""The notebook API (``import dynconf``): the command line's numbers, short reprs, a light import.

Each number is compared with what ``python -m dynconf ... --json`` prints for the same run
(the CLI run in-process through dynconf.cli.main), on both shipped digits runs.
"""

from __future__ import annotations

import json
import pydoc
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dynconf
from dynconf import cli
from dynconf.api import Evaluation
from dynconf.errors import DynconfError

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("digits", "noisy_digits")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNCONF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module", params=RUNS)
def shipped(request):
    path = ROOT / "cached_runs" / request.param
    return path, dynconf.load(path)


def cli_json(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli.main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_import_dynconf_pulls_no_engine_and_no_numpy():
    code = (
        "import sys, dynconf\n"
        "names = ('torch', 'numpy', 'pandas', 'plotly', 'streamlit')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)\n"
        "run = dynconf.load('cached_runs/digits'); run.evaluate(threshold=0.5)\n"
        "print('torch' in sys.modules, 'streamlit' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split("\n")  # fmt: skip
    assert out[0] == "[]"
    assert out[1] == "False False"


def test_a_run_by_name_and_its_repr_is_short(monkeypatch):
    monkeypatch.setenv("DYNCONF_RUNS", str(ROOT / "cached_runs"))
    run = dynconf.load("noisy_digits")
    text = repr(run)
    assert len(text.splitlines()) == 1 and len(text) < 200
    for part in ("noisy_digits", "T_max 64", "calibration 300", "test 539", "spikes", "synops"):
        assert part in text
    assert len(repr(run.stored)) < 120 and len(repr(run.stored.split("test"))) < 120
    with pytest.raises(DynconfError):
        dynconf.load("no_such_run_anywhere")


def test_evaluate_equals_the_cli(shipped, capsys):
    path, run = shipped
    for C in (0.3, 0.5, 0.9):
        got = run.evaluate(split="test", threshold=C)
        want = cli_json(capsys, "evaluate", path, "--split", "test", "--threshold", C)
        mine = got.to_dict()
        for key, value in mine.items():
            assert want[key] == value, key
        assert got.accuracy == want["accuracy"] and got.mean_latency == want["mean_latency"]
        assert got.exit_steps.tolist() == want["exit_steps"]
        assert (got.spike_saving is None) == (want["spike_saving"] is None)
    got = run.evaluate(split="calibration", threshold=0.4, decoder="margin")
    want = cli_json(capsys, "evaluate", path, "--split", "calibration", "--threshold", 0.4,
                    "--decoder", "margin")  # fmt: skip
    assert got.to_dict(per_sample=False).items() <= want.items()


def test_sweep_select_and_oracle_equal_the_cli(shipped, capsys):
    path, run = shipped
    frame = run.sweep(split="test")
    want = cli_json(capsys, "sweep", path, "--split", "test")
    assert frame.threshold.tolist() == want["thresholds"]
    assert frame.accuracy.tolist() == want["accuracy"]
    assert frame.mean_latency.tolist() == want["mean_latency"]
    assert frame.on_front.tolist() == want["on_front"]
    sel = run.select(calibration="calibration", test="test", tolerance=0.01)
    want = cli_json(capsys, "select", path, "--calibration-split", "calibration",
                    "--eval-split", "test", "--tolerance", 0.01)  # fmt: skip
    assert {k: want[k] for k in sel.to_dict()} == sel.to_dict()
    assert sel.threshold == want["threshold"] and sel.test.accuracy == want["test"]["accuracy"]
    oracle = run.oracle(split="test")
    want = cli_json(capsys, "oracle", path, "--split", "test")
    for name, row in want["variants"].items():
        assert oracle.loc[name, "accuracy"] == row["accuracy"]
        assert oracle.loc[name, "mean_latency"] == row["mean_latency"]


def test_policies_equal_the_cli(shipped, capsys):
    path, run = shipped
    frame = run.policies(calibration="calibration", test="test")
    want = cli_json(capsys, "policies", path, "--calibration-split", "calibration",
                    "--eval-split", "test")  # fmt: skip
    assert list(frame.index) == [p["name"] for p in want["policies"]] + ["oracle"]
    for p in want["policies"]:
        row = frame.loc[p["name"]]
        assert row.accuracy == p["test"]["accuracy"]
        assert row.mean_latency == p["test"]["mean_latency"]
        assert row.calibration_accuracy == p["calibration"]["accuracy"]
        assert row.description == p["description"]
        for key in ("latency_vs_threshold", "gap_closed", "spike_saving", "synops_saving"):
            value = p["test"][key]
            assert (np.isnan(row[key]) if value is None else row[key] == value), key
    assert frame.loc["oracle", "mean_latency"] == want["oracle"]["mean_latency"]
    assert run.policy_comparison().to_dict()["policies"] == want["policies"]


def test_every_figure_the_export_knows_is_drawn_as_the_registry_draws_it(shipped):
    from dynconf.report.figures import FIGURES, build_figure

    _, run = shipped
    ids = run.stored.split("test").ids
    sample = 5 if ids is None else int(ids[5])
    view = run.view("test")
    C = run.default_threshold()
    drawn = 0
    for name, spec in FIGURES.items():
        params = {k: v for k, v in {"sample_id": sample, "step": 3}.items() if k in spec.params}
        if name == "sample_image":
            continue  # needs the dataset's images (dynconf.inputs)
        fig = run.figure(name, **params)
        full = dict(params)
        if "threshold" in spec.params:
            full["threshold"] = C
        if "calibration" in spec.params:
            full["calibration"] = "calibration"
        want = build_figure(name, view, **full)
        assert fig.to_json() == want.figure.to_json(), name
        drawn += 1
    assert drawn >= 20
    assert run.figure("compare", views=[run, run.view("test", "margin")]).data
    with pytest.raises(DynconfError, match="unknown figure"):
        run.figure("no_such_figure")


def test_results_read_well_in_text_and_html(shipped):
    _, run = shipped
    res = run.evaluate(threshold=0.5)
    text = repr(res)
    assert len(text.splitlines()) == 1 and "accuracy" in text and "mean latency" in text
    assert "spikes saved" in text  # both shipped runs hold spikes
    assert "<table>" in res._repr_html_()
    nasty = Evaluation(res.result, "<script>alert(1)</script>", "paper & <b>")
    page = nasty._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp;" in page
    assert "<code>" in run._repr_html_() and "<" not in run._repr_html_()[6:-7]
    assert "chosen on 'calibration'" in repr(run.select())


def test_help_lists_every_public_name_with_an_example():
    page = pydoc.render_doc(dynconf, renderer=pydoc.plaintext)
    for name in dynconf.__all__:
        assert name in page, name
        doc = getattr(dynconf, name).__doc__ or ""
        assert "Example" in doc, name
    from dynconf import api

    for name in ("evaluate", "sweep", "select", "policies", "oracle", "figure", "view"):
        assert "Example" in (getattr(api.Run, name).__doc__ or ""), name

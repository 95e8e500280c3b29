"""Thresholds on the command line: C outside [0, 1] is refused with one line and exit 2,
and `sweep` prints distinct thresholds and says when it lists the front only."""

from __future__ import annotations

import re

import pytest

from dynconf import cli
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("value", ["-2", "1.5", "1.0000001", "nan"])
def test_evaluate_refuses_a_threshold_outside_0_1(capsys, dashboard_runs, value):
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", str(dashboard_runs / "synth"), "--threshold", value])
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "--threshold" in err, err
    assert out == ""  # nothing printed as if it had worked ("latency -0.0 %")


@pytest.mark.parametrize("value", ["0", "1", "0.5"])
def test_evaluate_accepts_the_ends(capsys, dashboard_runs, value):
    code, out, err = run_cli(
        capsys, "evaluate", str(dashboard_runs / "synth"), "--threshold", value
    )
    assert code == 0, err
    assert "latency -" in out and "latency -0.0 %" not in out or value == "1"


def test_sweep_comma_list_outside_0_1_is_refused(capsys, dashboard_runs):
    code, _, err = run_cli(capsys, "sweep", str(dashboard_runs / "synth"), "--thresholds", "0.5,3")
    assert code == 2 and err.count("\n") == 1 and "outside [0, 1]" in err


def test_sweep_prints_distinct_thresholds_and_says_front_only(capsys, dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    grid = metrics.default_thresholds(decode(run.split("test")), 5)
    code, out, err = run_cli(capsys, "sweep", str(dashboard_runs / "synth"), "--thresholds", "5")
    assert code == 0, err
    assert "front only" in out and "--all" in out
    shown = re.findall(r"C=(\S+):", out)
    assert len(shown) == len(set(shown))  # no "C=1" twice
    # Every shown label reads back as the threshold it stands for (nearest grid value).
    for label in shown:
        nearest = min(grid, key=lambda g: abs(g - float(label)))
        assert abs(nearest - float(label)) <= 1e-6 * max(1.0, abs(nearest))
    code, out_all, _ = run_cli(
        capsys, "sweep", str(dashboard_runs / "synth"), "--thresholds", "5", "--all"
    )
    rows = re.findall(r"C=(\S+):", out_all)
    assert len(rows) == len(grid) and len(set(rows)) == len(set(grid.tolist()))
    assert "every threshold" in out_all


def test_distinct_labels():
    from dynconf.cli.metrics import distinct_labels

    assert distinct_labels([0.0, 0.5, 0.99999997, 1.0]) == ["0", "0.5", "0.99999997", "1"]
    assert distinct_labels([0.10273681206418554]) == ["0.102737"]

"""`sweep` and `select` say what their counts and band mean: one threshold is "1 threshold",
"near it" is explained (and said as "all" when every threshold is), a band reaching C = 1 says
that C never exits early and names the band's last C that does, and `--thresholds-file` takes
lists too long for a command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dynconf import cli
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.pareto import band_text
from dynconf.core.store import load_run


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_repeated_threshold_is_one_threshold(capsys, dashboard_runs):
    code, out, err = run_cli(capsys, "sweep", str(dashboard_runs / "synth"), "--thresholds",
                             "0.5,0.5")  # fmt: skip
    assert code == 0, err
    assert ": 1 threshold, 1 on the Pareto front" in out.splitlines()[0]
    assert "1 thresholds" not in out


def test_near_the_front_is_explained_and_all_is_said_as_all(capsys, dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sw = metrics.sweep(decode(run.split("test")), np.linspace(0, 1, 101))
    code, out, _ = run_cli(capsys, "sweep", str(dashboard_runs / "synth"), "--thresholds", "101")
    first = out.splitlines()[0]
    assert "accuracy points more accurate" in first
    n_near = int(sw.near_front.sum())
    if n_near == len(sw.thresholds):
        assert f"all {n_near:,} near it" in first
    else:
        assert f"{n_near:,} near it" in first


def test_a_band_reaching_c_1_says_it_never_exits_early(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    cal = decode(run.split("calibration"))
    sw = metrics.sweep(cal)
    T = run.T_max
    band = (float(sw.thresholds[len(sw.thresholds) // 2]), 1.0)
    text = band_text(sw, band, T)
    # Independent reference: the band's thresholds, each evaluated on its own.
    inside = [float(c) for c in sw.thresholds if band[0] <= c <= band[1]]
    early = [c for c in inside if metrics.evaluate(cal, c).mean_latency < T - 1e-9]
    assert early and early[-1] < 1.0
    assert f"never exits early (every sample runs all {T} steps)" in text
    assert text.endswith(f"the band's last C that exits early is {early[-1]:.4g}") or (
        f"{early[-1]:.8g}" in text
    ), text
    # A band that ends before the never-exiting thresholds is just its ends.
    assert band_text(sw, (band[0], early[-1]), T) == f"[{band[0]:.4g}, {early[-1]:.4g}]"


SHIPPED_DIGITS = Path(__file__).resolve().parents[2] / "cached_runs" / "digits"


@pytest.mark.skipif(not SHIPPED_DIGITS.is_dir(), reason="the shipped digits run is absent")
def test_select_prints_what_the_band_to_c_1_means(capsys):
    code, out, _ = run_cli(capsys, "select", str(SHIPPED_DIGITS))
    line = next(x for x in out.splitlines() if "near-front band" in x)
    assert code == 0 and ", 1]" in line
    assert "never exits early" in line and "last C that exits early is 0.99" in line, line


def test_thresholds_file_takes_200000_values(capsys, dashboard_runs, tmp_path):
    values = np.linspace(0, 1, 200_000)
    path = tmp_path / "thresholds.txt"
    path.write_text("\n".join(f"{v:.9f}" for v in values) + "\n")
    code, out, err = run_cli(capsys, "sweep", str(dashboard_runs / "synth"), "--json",
                             "--thresholds-file", str(path))  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    run = load_run(dashboard_runs / "synth")
    want = metrics.sweep(decode(run.split("test")), np.array([float(f"{v:.9f}") for v in values]))
    assert len(got["thresholds"]) == len(want.thresholds) > 100_000
    np.testing.assert_allclose(got["mean_latency"], want.mean_latency)
    # A short file gives what the same comma list gives.
    path.write_text("0.2, 0.7\n0.9")
    _, out_file, _ = run_cli(capsys, "sweep", str(dashboard_runs / "synth"),
                             "--thresholds-file", str(path))  # fmt: skip
    _, out_list, _ = run_cli(capsys, "sweep", str(dashboard_runs / "synth"),
                             "--thresholds", "0.2,0.7,0.9")  # fmt: skip
    assert out_file == out_list


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "the file is empty"), ("0.5, abc", "'abc' is not a number"),
     ("0.5 1.5", "1.5 is outside [0, 1]"), (None, "not a regular file")],
)  # fmt: skip
def test_thresholds_file_refuses_bad_files_in_one_line(capsys, dashboard_runs, tmp_path,
                                                       content, message):  # fmt: skip
    path = tmp_path if content is None else tmp_path / "t.txt"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(capsys, "sweep", str(dashboard_runs / "synth"),
                             "--thresholds-file", str(path))  # fmt: skip
    assert code != 0 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err

"""The `export` command (dynconf/cli/export.py): flags, JSON result, files, error lines."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dynconf.cli import export as export_command
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dynconf", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


def test_export_command_writes_every_chart(dashboard_runs, tmp_path, synth):
    out = tmp_path / "figs"
    proc = run_cli(
        "export", str(dashboard_runs / "synth"), "--out", str(out),
        "--threshold", "0.6", "--formats", "pdf", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    expected = metrics.evaluate(decode(synth.split("test")), 0.6)
    assert result["metrics"]["accuracy"] == pytest.approx(expected.accuracy)
    assert result["calibration"] == "calibration"  # found and used for the selection chart
    charts = result["charts"]
    assert {"accuracy_latency", "exit_histogram", "exit_scatter", "oracle_bound"} <= set(charts)
    assert "pareto_selection" in charts
    for key in charts:
        assert (out / f"{key}.pdf").read_bytes().startswith(b"%PDF")
        assert len(pd.read_csv(out / f"{key}.csv")) > 0
    assert not list(out.glob("*.png"))  # only the formats asked for
    scatter = pd.read_csv(out / "exit_scatter.csv")
    assert len(scatter) == synth.meta["splits"]["test"]
    assert scatter.exit_step.mean() == pytest.approx(expected.mean_latency)
    tex = (out / "metrics.tex").read_text()
    assert f"{100 * expected.accuracy:.2f}" in tex
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metrics"]["mean_latency"] == pytest.approx(expected.mean_latency)


def test_export_command_bad_input_is_one_line_exit_2(dashboard_runs, tmp_path):
    cases = [
        ("--formats", "gif"),
        ("--split", "nope"),
        ("--threshold", "-2"),
        ("--threshold", "1.5"),
        ("--preset", "poster"),
    ]
    for extra in cases:
        proc = run_cli("export", str(dashboard_runs / "synth"), "--out", str(tmp_path), *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("export", str(dashboard_runs / "broken"), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "test.outputs.npy" in proc.stderr  # the damaged file is named


def test_run_command_from_its_own_parser(dashboard_runs, tmp_path, synth):
    parser = argparse.ArgumentParser()
    export_command.add_arguments(parser)
    flags = {a.dest: a for a in parser._actions}
    assert {"run_dir", "out", "split", "threshold", "decoder", "kappa", "calibration",
            "tolerance", "formats"} <= set(flags)  # fmt: skip
    assert flags["formats"].default == "png,svg,pdf"
    out = tmp_path / "pack"
    args = parser.parse_args(
        [str(dashboard_runs / "synth"), "--out", str(out), "--formats", "svg",
         "--decoder", "margin", "--calibration", "calibration", "--tolerance", "0.01"]
    )  # fmt: skip
    result = export_command.run_command(args)
    assert set(result) == {
        "out", "files", "charts", "preset", "run", "split", "decoder", "kappa", "threshold",
        "calibration", "tolerance", "metrics", "kappa_label",
    }  # fmt: skip
    assert result["out"] == str(out) and result["split"] == "test"
    assert result["decoder"] == "margin" and result["tolerance"] == 0.01
    sel = metrics.select_threshold(
        decode(synth.split("calibration"), "margin"), decode(synth.split("test"), "margin"),
        tolerance=0.01,
    )  # fmt: skip
    assert result["threshold"] == sel.threshold  # chosen on calibration
    assert result["files"] == sorted(str(p) for p in out.iterdir())
    assert {f"{key}.svg" for key in result["charts"]} <= {p.name for p in out.iterdir()}
    assert json.dumps(result, allow_nan=False)  # the CLI prints it as JSON


def test_export_preset_sets_the_page_size(dashboard_runs, tmp_path):
    """`export --preset paper-1col`: 3.3 in wide PDFs without titles, recorded in metrics.json."""
    out = tmp_path / "one-col"
    proc = run_cli(
        "export", str(dashboard_runs / "synth"), "--out", str(out), "--threshold", "0.6",
        "--formats", "pdf", "--preset", "paper-1col", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["preset"] == "paper-1col"
    info = subprocess.run(
        ["pdfinfo", str(out / "exit_histogram.pdf")], capture_output=True, text=True, check=True
    ).stdout
    width = float(info.split("Page size:")[1].split()[0])
    assert width == pytest.approx(3.3 * 72, abs=1)
    text = subprocess.run(
        ["pdftotext", str(out / "exit_histogram.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "exit step" in text and "Exit steps" not in text  # axis title yes, chart title no
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["context"]["preset"] == "paper-1col"


def test_export_prints_numbers_as_the_app_shows_them(dashboard_runs, tmp_path):
    """C to four digits and kappa named, not "kappa: None" and "0.5250501002004008"."""
    proc = run_cli("export", str(dashboard_runs / "synth"), "--out", str(tmp_path / "o"),
                   "--formats", "svg")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "kappa = T_max = 16" in text or "kappa = T_max = " in text
    assert "None" not in text
    c_line = next(line for line in text.splitlines() if line.startswith("C = "))
    value = c_line.split()[2]
    assert len(value.split(".")[1]) == 4, c_line  # rounded as on screen
    assert "accuracy " in text and " %" in text


def test_export_holds_samples_compare_and_classroom(dashboard_runs, tmp_path, synth):
    out = tmp_path / "all"
    sid = int(synth.split("test").ids[0])
    proc = run_cli(
        "export", str(dashboard_runs / "synth"), "--out", str(out), "--formats", "svg",
        "--samples", str(sid), "--steps", f"1,{synth.T_max}",
        "--compare", str(dashboard_runs / "synth_topk"), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    charts = set(json.loads(proc.stdout)["charts"])
    assert {f"sample_{sid}_confidence", f"sample_{sid}_probabilities", f"sample_{sid}_picker",
            "compare", "class_accuracy", "class_latency", "confusion_at_exit",
            "selection_band", "policy_fronts"} <= charts  # fmt: skip
    for t in (1, synth.T_max):
        assert {f"classroom_t{t}_grid", f"classroom_t{t}_confidence",
                f"classroom_t{t}_histogram"} <= charts  # fmt: skip
    assert any(k.startswith("policy_") and k.endswith("_exit_histogram") for k in charts)
    by_t = pd.read_csv(out / "accuracy_by_T.csv")
    assert len(by_t[by_t.series == "snn"]) == synth.T_max  # every T, as the app draws it
    compare = pd.read_csv(out / "compare.csv")
    assert compare.series.str.contains("synth_topk").any()
    for bad in (["--steps", "0"], ["--steps", str(synth.T_max + 1)], ["--samples", "x"],
                ["--samples", "999999"]):  # fmt: skip
        proc = run_cli("export", str(dashboard_runs / "synth"), "--out", str(out), *bad)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr

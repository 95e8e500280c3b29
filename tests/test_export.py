"""Static export: kaleido images, CSV, LaTeX, figure pack and the `export` command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import export, figures

ROOT = Path(__file__).resolve().parents[1]


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
    ]
    for extra in cases:
        proc = run_cli("export", str(dashboard_runs / "synth"), "--out", str(tmp_path), *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("export", str(dashboard_runs / "broken"), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "test.outputs.npy" in proc.stderr  # the damaged file is named


def test_import_export_does_not_load_kaleido_or_torch():
    code = (
        "import sys, dynconf.report.export; print('kaleido' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_figure_bytes_png_svg_and_pack(synth):
    charts, res, context = export.collect_charts(synth, "test", threshold=0.6)
    png = export.figure_bytes(charts[0].figure, "png")
    with Image.open(io.BytesIO(png)) as im:
        im.verify()
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (2 * figures.EXPORT_WIDTH, 2 * charts[0].figure.layout.height)
    svg = export.figure_bytes(charts[0].figure, "svg")
    assert b"<svg" in svg[:500]
    with pytest.raises(DynconfError):
        export.figure_bytes(charts[0].figure, "gif")
    # The app's one-click pack: images + CSV + LaTeX + JSON in a valid zip.
    files = export.pack_files(synth, charts[:2], res, context, formats=("png",))
    blob = export.zip_bytes(files)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        assert {
            "accuracy_latency.png", "accuracy_latency.csv", "exit_histogram.png",
            "metrics.tex", "metrics.json",
        } <= names  # fmt: skip
        with Image.open(io.BytesIO(zf.read("exit_histogram.png"))) as im:
            assert im.format == "PNG"


def test_latex_table_holds_headline_metrics(synth):
    res = metrics.evaluate(
        decode(synth.split("test")), 0.6, spikes=synth.split("test").spikes,
        neurons=synth.meta["neurons"],
    )  # fmt: skip
    tex = export.latex_table(res, synth.T_max, "C on my_run & co", label="tab:x")
    assert tex.startswith(r"\begin{table}") and r"\end{table}" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert r"my\_run \& co" in tex  # user text is escaped
    assert f"{100 * res.accuracy:.2f}" in tex
    assert f"{res.mean_latency:.2f}" in tex
    assert f"{100 * res.latency_reduction:.1f}" in tex
    assert f"{res.spikes_per_neuron_at_exit:.3f}" in tex
    # Every body row has three cells.
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert all(line.count("&") == 2 for line in body)

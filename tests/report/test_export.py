"""Static export: kaleido images, the chart set, the figure pack and its files on disk."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from dynconf.core.atomic import TMP_PREFIX
from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import export
from dynconf.report.style import EXPORT_WIDTH

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


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
    screen = export.export_figure(charts[0].figure, "screen")
    with Image.open(io.BytesIO(png)) as im:  # the screen preset: 760 px wide at 192 dpi
        assert im.size == (2 * EXPORT_WIDTH, 2 * screen.layout.height)
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


@pytest.mark.parametrize("decoder", ["paper", "mean"])
def test_pack_caption_names_the_decoder_and_its_kappa(synth, decoder):
    """Titles carry no run id; the pack's table caption says run, decoder, kappa."""
    charts, res, context = export.collect_charts(synth, "test", threshold=0.6, decoder=decoder)
    plane = charts[0]
    assert plane.key == "accuracy_latency" and synth.name not in plane.title
    tex = export.pack_files(synth, charts[:1], res, context, formats=())["metrics.tex"].decode()
    assert f"decoder {decoder}" in tex
    # Exactly the decoders that use kappa show it (the registry says which).
    assert ("kappa = T\\_max = " in tex) == (decoder == "paper")
    assert context["decoder"] == decoder


def test_collect_charts_refuses_unknown_splits(synth):
    with pytest.raises(DynconfError, match="no split 'nope'"):
        export.collect_charts(synth, "nope")
    with pytest.raises(DynconfError, match="no calibration split"):
        export.collect_charts(synth, "test", calibration="nope")


def test_write_files_is_atomic_and_leaves_no_temporaries(tmp_path):
    out = tmp_path / "new" / "figs"
    written = export.write_files(out, {"a.csv": b"x\n1\n", "metrics.tex": b"tex"})
    assert sorted(p.name for p in written) == ["a.csv", "metrics.tex"]
    assert (out / "a.csv").read_bytes() == b"x\n1\n"
    export.write_files(out, {"a.csv": b"new"})  # replaces
    assert (out / "a.csv").read_bytes() == b"new"
    assert not [p for p in out.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_parse_formats():
    assert export.parse_formats(" PNG, pdf ") == ("png", "pdf")
    for bad in ("gif", "", ",", "png,jpg"):
        with pytest.raises(DynconfError, match="--formats"):
            export.parse_formats(bad)

"""The export pipeline: each figure's images render while the next figures are computed, the
browser starts on a thread of its own, and the policy fronts are read back from the analysis
cache. What it writes must be what the one-batch path writes."""

from __future__ import annotations

import io
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from dynconf.core.analysis_cache import AnalysisCache
from dynconf.core.store import load_run
from dynconf.core.view import View
from dynconf.errors import DynconfError
from dynconf.report import export, front_cache, render
from dynconf.report.export import POLICY_FIGURES


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


def _svg_tree(data: bytes) -> str:
    """The SVG with its attributes in canonical order and Plotly's random ids numbered in
    order of appearance (both vary from one render to the next)."""
    import re

    text = data.decode()
    ids = list(dict.fromkeys(re.findall(r"(?:clip|defs-|topdefs-|trace)([0-9a-f]{6})", text)))
    for i, found in enumerate(ids):
        text = text.replace(found, f"ID{i}")
    return ET.canonicalize(xml_data=text.replace(' style=""', ""))


def _pdf_words(data: bytes, tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return out.stdout


def test_streamed_pack_equals_one_batch_and_keeps_plan_order(synth, tmp_path):
    view = View(synth, "test")
    built: list[str] = []
    batch = export.ImageBatch(export.FORMATS, "paper-1col")

    def on_chart(chart):
        built.append(chart.key)
        batch.add(chart)

    charts, res, ctx = export.collect_figures(view, None, "calibration", on_chart=on_chart)
    streamed = export.pack_files(synth, charts, res, ctx, preset="paper-1col", images=batch)
    plain_charts, res2, ctx2 = export.collect_figures(View(synth, "test"), None, "calibration")
    batched = export.pack_files(synth, plain_charts, res2, ctx2, preset="paper-1col")

    # The policy figures are built last, the pack lists every chart in plan order.
    assert sorted(built) == sorted(c.key for c in charts)
    n_policy = sum(1 for name, _ in export.figure_plan(view, ctx["threshold"], "calibration")
                   if name in POLICY_FIGURES)  # fmt: skip
    assert n_policy == 3 and all(k.startswith("policy_") for k in built[-n_policy:])
    assert [c.key for c in charts] == [c.key for c in plain_charts]
    assert [c.key for c in charts] != built  # built in another order than listed
    assert list(streamed) == list(batched)
    for name, data in streamed.items():
        other, ext = batched[name], name.rsplit(".", 1)[-1]
        if ext == "svg":
            assert _svg_tree(data) == _svg_tree(other), name
        elif ext == "png":
            a, b = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(other))
            assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)), name
        elif ext == "pdf":
            assert data[:5] == b"%PDF-"
            assert _pdf_words(data, tmp_path, "a.pdf") == _pdf_words(other, tmp_path, "b.pdf")
        else:
            assert data == other, name


def test_images_submitted_while_the_browser_starts(synth):
    render.close_renderer()
    starting = render.start_renderer()
    charts, _, _ = export.collect_charts(synth, "test", threshold=0.6)
    batch = export.ImageBatch(("svg", "png"), "screen")
    batch.add(charts[0])  # returns at once: the browser may still be starting
    files = batch.files(charts[:2])
    starting.join(timeout=60)
    assert list(files) == [f"{c.key}.{f}" for c in charts[:2] for f in ("svg", "png")]
    assert all(b"<svg" in files[f"{c.key}.svg"][:500] for c in charts[:2])
    with Image.open(io.BytesIO(files[f"{charts[0].key}.png"])) as im:
        assert im.format == "PNG"


def test_a_browser_that_cannot_start_is_one_clear_error(synth, monkeypatch, tmp_path):
    render.close_renderer()
    missing = tmp_path / "no-chromium"
    monkeypatch.setenv("BROWSER_PATH", str(missing))
    render.start_renderer().join(timeout=60)  # fails quietly; the images report it
    charts, _, _ = export.collect_charts(synth, "test", threshold=0.6)
    batch = export.ImageBatch(("svg",), "screen")
    batch.add(charts[0])
    with pytest.raises(DynconfError, match="BROWSER_PATH") as err:
        batch.files(charts[:1])
    assert "\n" not in str(err.value)
    monkeypatch.delenv("BROWSER_PATH")
    render.close_renderer()
    assert b"<svg" in export.figure_bytes(charts[0].figure, "svg")[:500]  # starts again


def test_fronts_are_read_back_from_the_analysis_cache(synth, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    first = View(synth, "test", disk=cache)
    comparison = first.policy_comparison("calibration")
    swept = front_cache.fronts_of(first, "calibration", 0.0, comparison)
    assert swept is first.policy_fronts("calibration")  # the view's own, then stored
    assert len(list((tmp_path / "cache").glob("*.npz"))) >= 1

    second = View(synth, "test", disk=cache)

    def no_sweep(*args, **kwargs):
        raise AssertionError("the fronts were swept again")

    monkeypatch.setattr(View, "policy_fronts", no_sweep)
    comparison2 = second.policy_comparison("calibration")
    read = front_cache.fronts_of(second, "calibration", 0.0, comparison2)
    assert [f.name for f in read] == [f.name for f in swept]
    for a, b in zip(read, swept, strict=True):
        assert (a.decoder, a.kappa, a.descriptions, a.n_candidates) == (
            b.decoder, b.kappa, b.descriptions, b.n_candidates)  # fmt: skip
        assert np.array_equal(a.mean_latency, b.mean_latency)
        assert np.array_equal(a.accuracy, b.accuracy)
        assert np.array_equal(a.on_front, b.on_front)
        assert a.fit is next(fit for fit in comparison2.fits if fit.name == a.name)
        assert [list(x) for x in a.front()[:2]] == [list(x) for x in b.front()[:2]]

    # Another tolerance is another set of fits and fronts: not read from this entry.
    with pytest.raises(AssertionError, match="swept again"):
        front_cache.fronts_of(second, "calibration", 0.01, second.policy_comparison(
            "calibration", 0.01))  # fmt: skip


def test_fronts_entry_that_does_not_match_the_fits_is_a_miss(synth, tmp_path):
    cache = AnalysisCache(tmp_path / "cache")
    view = View(synth, "test", disk=cache)
    comparison = view.policy_comparison("calibration")
    fronts = front_cache.fronts_of(view, "calibration", 0.0, comparison)
    arrays, meta = front_cache._state(fronts)
    entry = type("Entry", (), {"arrays": arrays, "meta": meta})
    assert front_cache._restore(entry, comparison) is not None
    meta["fronts"][0]["name"] = "someone-else"
    assert front_cache._restore(entry, comparison) is None
    arrays.pop("accuracy_1")
    meta["fronts"][0]["name"] = fronts[0].name
    assert front_cache._restore(entry, comparison) is None
    assert front_cache._restore(None, comparison) is None


def test_fronts_key_follows_the_code_that_sweeps_them():
    digest = front_cache.core_digest()
    assert len(digest) == 20 and digest == front_cache.core_digest()

"""Figure presets and the layout that keeps exported figures whole: every word of every
exported PDF of every preset lies inside the page, no two words overlap, the legend sits
below the x-axis title, and the plot area does not move when the threshold does.

The PDFs are read back with poppler's ``pdftotext -bbox`` (poppler-utils; .ci/run installs
it): a word cut by the page edge is either outside the page box or missing from the text,
so both are checked -- the expected words (axis titles, legend entries, the title where the
preset has one) must all be there, and each must clear the page edge by a margin.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.compare import CompareEntry
from dynconf.core.decoders import DECODERS, decode
from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import export, figures
from dynconf.report.plane import compare_label, compare_style
from dynconf.report.presets import PRESETS, get_preset
from dynconf.report.viewdata import make_view
from tests.helpers import build_synthetic_run

EDGE_PT = 1.0  # a word must clear the page edge by this much


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


@pytest.fixture(scope="module")
def chart_set(synth, tmp_path_factory):
    """Every figure the export makes of synth: every page's, a sample's, the compare plane
    and the classroom at its first and last step."""
    other = load_run(build_synthetic_run(tmp_path_factory.mktemp("set") / "other", seed=7).path)
    view = make_view(synth, "test")
    sid = int(synth.split("test").ids[0]) if synth.split("test").ids is not None else 0
    charts, res, _ = export.collect_figures(
        view,
        calibration="calibration",
        samples=[sid],
        compare=[make_view(other, "test")],
        steps=[1, synth.T_max],
    )
    return charts, res


@pytest.fixture(scope="module")
def compare_chart(synth, tmp_path_factory):
    """Two runs x five decoders: ten fronts and two baselines on one chart."""
    other = load_run(build_synthetic_run(tmp_path_factory.mktemp("cmp") / "second", seed=5).path)
    entries = []
    decoders = list(DECODERS)[:5]
    assert len(decoders) == 5
    for run in (synth, other):
        for name in decoders:
            dec = decode(run.split("test"), name)
            label = compare_label(run.name, "test", name, None, run.T_max)
            entries.append(CompareEntry(label, metrics.baseline_curve(dec), metrics.sweep(dec)))
    return figures.compare(entries), entries


def _words(pdf: bytes, tmp_path: Path) -> tuple[float, float, list[tuple[str, tuple]]]:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is needed: apt-get install poppler-utils")
    path = tmp_path / "fig.pdf"
    path.write_bytes(pdf)
    xml = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', xml)
    words = [
        (html.unescape(m.group(5)), tuple(float(v) for v in m.groups()[:4]))
        for m in re.finditer(
            r'xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">([^<]*)<', xml
        )
    ]
    return float(page.group(1)), float(page.group(2)), words


def _render(tmp_path: Path) -> np.ndarray:
    """The last PDF written by _words as a grey image at 144 dpi (2 px per pt)."""
    from PIL import Image

    subprocess.run(
        ["pdftoppm", "-r", "144", "-gray", "-png", "-singlefile", str(tmp_path / "fig.pdf"),
         str(tmp_path / "fig")], check=True, capture_output=True,
    )  # fmt: skip
    with Image.open(tmp_path / "fig.png") as im:
        return np.asarray(im.convert("L"))


def _text_words(text) -> list[str]:
    return html.unescape(re.sub(r"<[^>]*>", " ", str(text or ""))).split()


def _expected(fig) -> list[str]:
    """Words the exported figure must show: title, axis titles, legend entries."""
    lay = fig.layout
    words = _text_words(lay.title.text)
    for ax in (lay.xaxis, lay.yaxis):
        words += _text_words(ax.title.text)
    if "yaxis2" in lay and lay.yaxis2.title:
        words += _text_words(lay.yaxis2.title.text)
    for ax in (lay.xaxis, lay.yaxis):  # class names on a category axis: none may be cut
        if ax.type == "category" and ax.visible is not False:
            letter = "x" if ax is lay.xaxis else "y"
            shown = {str(v) for t in fig.data for v in (getattr(t, letter, None) or ())}
            for v in sorted(shown):
                words += _text_words(v)
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    if len(names) > 1 and lay.showlegend is not False:
        for name in names:
            words += _text_words(name)
    return words


def _overlap(a, b, slack=0.3) -> bool:
    return (
        a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack
    )


def _inked(ink: np.ndarray, box: tuple, upright: bool) -> bool:
    """Whether a word's box shows ink mid-letter and just above its baseline (at 2 px/pt)."""
    x0, y0, x1, y1 = box
    for lo, hi in ((0.35, 0.6), (0.74, 0.8)):  # x-height, and just above the baseline
        if upright:
            w = x1 - x0
            part = ink[
                int(y0 * 2) : int(y1 * 2) + 1, int((x0 + lo * w) * 2) : int((x0 + hi * w) * 2) + 1
            ]
        else:
            h = y1 - y0
            part = ink[
                int((y0 + lo * h) * 2) : int((y0 + hi * h) * 2) + 1, int(x0 * 2) : int(x1 * 2) + 1
            ]
        if not (part.size and part.min() < 140):
            return False
    return True


def check_pdf(chart, preset: str, tmp_path: Path):
    """The checks every exported figure passes; returns the PDF's words for more."""
    fig = export.export_figure(chart.figure, preset)
    W, H, words = _words(export.figure_bytes(chart.figure, "pdf", preset), tmp_path)
    where = f"{chart.key} in {preset}"
    p = get_preset(preset)
    assert pytest.approx(p.width_in * 72, abs=1) == W, where  # the preset's width, in print
    for text, (x0, y0, x1, y1) in words:
        assert x0 >= EDGE_PT and y0 >= EDGE_PT, (where, text, x0, y0)
        assert x1 <= W - EDGE_PT and y1 <= H - EDGE_PT, (where, text, x1, y1, W, H)
    missing = Counter(_expected(fig)) - Counter(t for t, _ in words)
    assert not missing, (where, "cut off or hidden:", dict(missing))
    # pdftotext reads text that a clip path hides (a legend cut to its box): every word must
    # also show ink in the rendered page, mid-letter and just above the baseline.
    ink = _render(tmp_path)
    for text, box in words:
        if re.search(r"[A-Za-z0-9]", text):
            # Upright text (class names under a crowded axis) has its baseline on the right.
            assert _inked(ink, box, upright=False) or _inked(ink, box, upright=True), (
                where, "not drawn (clipped):", text, box[:2],
            )  # fmt: skip
    for i, (ta, a) in enumerate(words):
        for tb, b in words[i + 1 :]:
            assert not _overlap(a, b), (where, "words overlap:", ta, a, tb, b)
    return fig, words


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_exported_figure_lies_inside_the_page(chart_set, compare_chart, preset, tmp_path):
    charts, _ = chart_set
    keys = {c.key for c in charts}
    # Every page's figures are in the set: explorer, home, oracle, selection, policies,
    # classes, samples, compare and classroom.
    assert {"accuracy_by_T", "exit_histogram", "exit_scatter", "threshold_response",
            "oracle_bound", "pareto_selection", "selection_band", "policy_fronts",
            "class_accuracy", "class_latency", "confusion_at_exit", "compare"} <= keys  # fmt: skip
    assert any(k.endswith("_picker") for k in keys)
    assert any(k.startswith("classroom_") for k in keys)
    assert len(keys) == len(charts)  # one file name per figure
    for chart in [*charts, compare_chart[0]]:
        check_pdf(chart, preset, tmp_path)


CIFAR = Path(__file__).resolve().parents[2] / "cached_runs" / "cifar10_resnet20"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_class_names_are_never_cut(preset, tmp_path):
    """CIFAR-10's names ("automobile") under the class bars and the confusion matrix: each
    whole in the PDF (upright when they do not fit side by side), the axes titled."""
    run = load_run(CIFAR)
    view = make_view(run, "test")
    for name in ("class_accuracy", "class_latency", "confusion_at_exit"):
        chart = figures.build_figure(name, view, threshold=0.5251)
        fig, words = check_pdf(chart, preset, tmp_path)
        seen = Counter(t for t, _ in words)
        assert all(seen[c] >= 1 for c in run.classes), (name, preset, seen)
        assert fig.layout.xaxis.title.text, name  # "true label" / "answer at exit"
        if name == "confusion_at_exit":
            assert seen["answer"] >= 1 and seen["true"] >= 1


@pytest.mark.parametrize("preset", ["screen", "paper-1col"])
def test_compare_chart_with_ten_entries(compare_chart, preset, tmp_path):
    chart, entries = compare_chart
    fig, words = check_pdf(chart, preset, tmp_path)
    # No two entries look alike: colour, dash and marker together are distinct.
    labels = {e.label for e in entries}  # names are wrapped (<br>) in narrow presets
    fronts = [t for t in fig.data if (t.name or "").replace("<br>", " ") in labels]
    assert len(fronts) == 10
    styles = {(t.line.color, t.line.dash, t.marker.symbol) for t in fronts}
    assert len(styles) == 10
    assert len({compare_style(i)["color"] for i in range(10)}) >= 7
    # Labels carry kappa for the decoders that use it (and only those).
    for e in entries:
        decoder = e.label.split(" · ")[1].split(" (")[0]
        assert ("kappa = T_max = " in e.label) == DECODERS[decoder].uses_kappa, e.label
    # One baseline per run (the decoders of a run share it), not one per entry.
    assert sum("baseline" in (t.name or "") for t in fig.data) == 2
    # The legend is entirely below the x-axis title, and the plot keeps the preset's height.
    title = fig.layout.xaxis.title.text.split()
    counts = Counter(t for t, _ in words)
    title_words = {w for w in title if counts[w] == 1}  # "mean" is a decoder's name too
    assert title_words
    title_bottom = max(b[3] for t, b in words if t in title_words)
    # Every entry names its run as "run/split" (words no axis or tick label has).
    legend_top = min(b[1] for t, b in words if "/" in t)
    assert legend_top > title_bottom
    m = fig.layout.margin
    assert fig.layout.height - m.t - m.b == get_preset(preset).plot_height_px


def test_presets_print_at_size_with_readable_type(chart_set, tmp_path):
    charts, _ = chart_set
    chart = next(c for c in charts if c.key == "threshold_response")
    for name, p in PRESETS.items():
        fig = export.export_figure(chart.figure, name)
        # Ticks of at least 7 pt in the one-column preset, labels 8 pt (fonts are in px).
        pt = 72 / 96
        assert fig.layout.xaxis.tickfont.size * pt == pytest.approx(p.tick_pt)
        assert fig.layout.font.size * pt == pytest.approx(p.font_pt)
        assert fig.layout.font.color == "#000000" and fig.layout.xaxis.tickfont.color == "#000000"
        assert fig.layout.xaxis.showline and fig.layout.yaxis.showline
        if p.title_pt is None:
            assert not fig.layout.title.text  # paper figures: the caption carries it
        else:
            assert fig.layout.title.text == chart.title
    assert PRESETS["paper-1col"].tick_pt >= 7 and PRESETS["paper-1col"].width_in == 3.3
    assert PRESETS["paper-2col"].width_in == 7
    # In the PDF itself: tick numbers of the one-column figure are at least 7 pt tall boxes
    # (a glyph box is taller than the font size) and the page is 3.3 in wide.
    W, _, words = _words(export.figure_bytes(chart.figure, "pdf", "paper-1col"), tmp_path)
    assert pytest.approx(3.3 * 72, abs=1) == W
    numbers = [b for t, b in words if re.fullmatch(r"[\d.]+", t)]
    assert numbers and min(b[3] - b[1] for b in numbers) >= 7
    assert chart.title not in " ".join(t for t, _ in words)
    with pytest.raises(DynconfError, match="unknown figure preset"):
        get_preset("poster")


def test_no_run_ids_in_titles(synth, chart_set):
    charts, _ = chart_set
    for chart in charts:
        assert synth.name not in chart.title, chart.title
        assert synth.name not in str(chart.figure.layout.title.text)


def test_plot_area_does_not_move_with_the_threshold(synth, tmp_path):
    """The legend entry that carries C ("policy, capped (C = 0.5251)") is as wide for every
    C, and the margins are frozen, so the plot keeps its place on screen and in print."""
    sp = synth.split("test")
    dec = decode(sp)
    base, sweep = metrics.baseline_curve(dec), metrics.sweep(dec)
    layouts, clips = set(), set()
    for c in (0.3, 0.5, 0.5251, 0.99999997, 1.0):
        res = metrics.evaluate(dec, c)
        chart = figures.accuracy_latency(
            base, res, capped=metrics.capped_curve(dec, c), oracle=None, sweep=sweep
        )
        m = chart.figure.layout.margin
        assert m.autoexpand is False  # Plotly may not grow a margin for a longer legend
        layouts.add((chart.figure.layout.height, m.t, m.b, m.l, m.r))
        svg = export.figure_bytes(chart.figure, "svg", "paper-1col").decode()
        clip = re.search(r'class="plotclip"><rect width="([\d.]+)" height="([\d.]+)"', svg)
        clips.add(clip.groups())
    assert len(layouts) == 1, layouts
    assert len(clips) == 1, clips


def test_band_and_fronts_are_drawn_as_lines(synth, chart_set):
    charts, _ = chart_set
    by_key = {c.key: c for c in charts}
    for key in ("pareto_selection", "accuracy_latency"):
        for t in by_key[key].figure.data:
            n = len(t.x) if t.x is not None else 0
            # Nothing with more points than time steps (the baseline has one per T) is drawn
            # as markers: no hundreds of diamonds or rings.
            assert n <= synth.T_max or "markers" not in (t.mode or ""), (key, t.name, t.mode)
    selection = by_key["pareto_selection"].figure
    band = next(t for t in selection.data if t.name.startswith("robust band"))
    assert band.mode == "lines" and band.line.width >= 8  # a highlighted range
    assert selection.data.index(band) == 0  # under everything else
    assert any(t.name.startswith("baseline") for t in selection.data)  # named in the legend
    plane = by_key["accuracy_latency"].figure
    names = [t.name for t in plane.data]
    base = plane.data[names.index("baseline (fixed T)")]
    capped = next(t for t in plane.data if t.name.startswith("policy, capped"))
    # The capped curve runs on top of the baseline and is the wider line.
    assert plane.data.index(capped) > plane.data.index(base)
    assert capped.line.width > base.line.width


def test_png_has_the_preset_dpi(chart_set):
    from io import BytesIO

    from PIL import Image

    charts, _ = chart_set
    chart = charts[1]
    png = export.figure_bytes(chart.figure, "png", "paper-1col")
    fig = export.export_figure(chart.figure, "paper-1col")
    with Image.open(BytesIO(png)) as im:
        assert im.width == pytest.approx(3.3 * 300, abs=2)
        assert im.height == pytest.approx(fig.layout.height * 300 / 96, abs=2)
    assert np.isfinite(fig.layout.height)

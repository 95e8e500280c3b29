"""The Classroom's and the per-class page's charts draw exactly the core's numbers, with frames
that stay fixed while t advances."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dynconf.core import metrics
from dynconf.core.classes import class_metrics, confusion_at_exit
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from dynconf.core.timeline import timeline_state
from dynconf.report import figures
from dynconf.report.presets import PX_PER_PT, get_preset
from dynconf.report.style import COLORS
from dynconf.report.timeline import classroom_preset, grid_shape, sample_status

C = 0.7


@pytest.fixture(scope="module")
def setup(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sp = run.split("test")
    return run, sp, decode(sp, "paper")


def named(fig, start):
    found = [t for t in fig.data if (t.name or "").startswith(start)]
    assert found, [t.name for t in fig.data]
    return found[0]


def test_grid_colours_every_sample_by_its_state(setup):
    run, sp, dec = setup
    for t in (1, 4, dec.T):
        st = timeline_state(dec, C, t)
        chart = figures.timeline_grid(st, sp.ids, watched=5)
        heat = chart.figure.data[0]
        rows, cols = grid_shape(dec.N)
        z = np.asarray(heat.z, dtype=float).reshape(-1)
        assert rows * cols >= dec.N > (rows - 1) * cols
        status = sample_status(st)
        np.testing.assert_array_equal(z[: dec.N], status)
        assert np.isnan(z[dec.N :]).all()
        # running = not yet exited; right / wrong = the answer at exit.
        assert (status == 0).sum() == dec.N - st.n_exited
        assert (status == 1).sum() == st.n_correct_exited
        assert (
            named(chart.figure, "answered right").name == f"answered right ({st.n_correct_exited})"
        )
        frame = named(chart.figure, "watched sample")
        assert (frame.x[0], frame.y[0]) == (5 % cols, 5 // cols)
        table = pd.read_csv(io.BytesIO(chart.csv()))
        assert table["id"].tolist() == np.asarray(sp.ids).tolist()
        assert (table["status"] == "running").sum() == dec.N - st.n_exited
    # Readable from the back of a room: the slides preset's type, larger than the screen's.
    big = classroom_preset().font_pt * PX_PER_PT
    assert chart.figure.layout.font.size == pytest.approx(big)
    assert big > get_preset("screen").font_pt * PX_PER_PT


def test_histogram_fills_up_to_the_final_one(setup):
    _, _, dec = setup
    res = metrics.evaluate(dec, C)
    final = np.bincount(res.exit_steps, minlength=dec.T + 1)[1:]
    ranges = set()
    for t in (1, 3, dec.T):
        st = timeline_state(dec, C, t)
        fig = figures.timeline_histogram(st).figure
        right, wrong = named(fig, "right"), named(fig, "wrong")
        total = np.asarray(right.y) + np.asarray(wrong.y)
        np.testing.assert_array_equal(total[:t], final[:t])
        assert total[t:].sum() == 0
        ranges.add((tuple(fig.layout.xaxis.range), tuple(fig.layout.yaxis.range)))
        assert fig.layout.shapes[0].x0 == t  # the "now" line
    assert len(ranges) == 1  # the frame does not move while t advances
    assert ranges.pop()[1][1] >= final.max()
    end = np.asarray(named(fig, "right").y)
    np.testing.assert_array_equal(
        end, np.bincount(res.exit_steps[res.correct], minlength=dec.T + 1)[1:]
    )


def test_confidence_line_grows_to_t_against_C(setup):
    _, _, dec = setup
    i = 3
    res = metrics.evaluate(dec, C)
    tau = int(res.exit_steps[i])
    c = np.asarray(dec.confidence[:, i])
    for t in (1, tau, dec.T):
        fig = figures.timeline_confidence(c, C, t, tau).figure
        line = named(fig, "confidence")
        np.testing.assert_allclose(line.y, c[:t])
        now = named(fig, "now")
        assert (now.x[0], now.y[0]) == (t, pytest.approx(c[t - 1]))
        assert fig.layout.shapes[0].y0 == C  # the threshold line
        assert len(fig.layout.shapes) == (2 if t >= tau else 1)  # the stop line once reached
        assert tuple(fig.layout.xaxis.range) == (0.5, dec.T + 0.5)


def test_class_chart_and_confusion_draw_the_core_numbers(setup):
    run, sp, dec = setup
    res = metrics.evaluate(dec, C)
    K = len(run.classes)
    table = class_metrics(dec, res, K)
    chart = figures.class_accuracy(table, run.classes, dec.T)
    fig = chart.figure
    np.testing.assert_allclose(named(fig, "accuracy at exit").y, 100 * table.accuracy)
    np.testing.assert_allclose(named(fig, "accuracy at T_max").y, 100 * table.accuracy_full)
    np.testing.assert_allclose(
        named(figures.class_latency(table, run.classes, dec.T).figure, "mean exit step").y,
        table.mean_latency,
    )
    data = pd.read_csv(io.BytesIO(chart.csv()))
    assert data["n"].tolist() == table.n.tolist()
    counts = confusion_at_exit(dec.labels, res.predictions, K)
    conf = figures.confusion_matrix(counts, run.classes)
    heat = conf.figure.data[0]
    np.testing.assert_array_equal(np.asarray(heat.text), counts)
    rows = counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(heat.z), 100 * counts / rows)
    assert pd.read_csv(io.BytesIO(conf.csv()))["count"].sum() == dec.N


def test_class_names_are_shown_as_text(setup):
    run, _, dec = setup
    res = metrics.evaluate(dec, C)
    names = [f"<b>c{k}</b>" for k in range(len(run.classes))]
    counts = confusion_at_exit(dec.labels, res.predictions, len(names))
    heat = figures.confusion_matrix(counts, names).figure.data[0]
    assert all("<b>" not in x for x in heat.x)  # escaped, not markup
    assert COLORS["correct"] != COLORS["wrong"]


def test_large_grids_leave_out_the_hover_texts():
    from types import SimpleNamespace

    from dynconf.report.timeline import HOVER_MAX

    n = HOVER_MAX + 1
    steps = np.arange(n) % 8 + 1
    state = SimpleNamespace(t=4, T=8, exit_steps=steps, exited=steps <= 4,
                            correct_at_exit=np.arange(n) % 3 > 0)  # fmt: skip
    heat = figures.timeline_grid(state).figure.data[0]
    assert heat.text is None and heat.hoverinfo == "skip"
    z = np.asarray(heat.z, dtype=float).reshape(-1)[:n]
    assert int((z == 0).sum()) == int((steps > 4).sum())
    few = SimpleNamespace(t=4, T=8, exit_steps=steps[:10], exited=steps[:10] <= 4,
                          correct_at_exit=np.ones(10, bool))  # fmt: skip
    text = np.asarray(figures.timeline_grid(few, ids=np.arange(10) + 100).figure.data[0].text)
    assert text.reshape(-1)[0] == "id 100: answered right at step 1"


EXPECTED_WORDS = {
    "timeline_grid": {"running", "watched"},
    "timeline_histogram": {"exit", "step", "samples"},
    "timeline_confidence": {"time", "step", "confidence"},
    "class_accuracy": {"accuracy", "exit", "T_max"},
    "class_latency": {"mean", "exit", "step"},
    "confusion_at_exit": {"true", "label"},
}


def test_exported_pdfs_keep_every_word_on_the_page(setup, tmp_path):
    """The app's download buttons export these figures with any preset: every word of the
    PDF lies inside the page (poppler's pdftotext -bbox)."""
    import re
    import shutil
    import subprocess

    from dynconf.report import export
    from dynconf.report.presets import PRESETS

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    run, sp, dec = setup
    st = timeline_state(dec, C, 5)
    res = metrics.evaluate(dec, C)
    table = class_metrics(dec, res, len(run.classes))
    charts = [
        figures.timeline_grid(st, sp.ids, watched=3),
        figures.timeline_histogram(st),
        figures.timeline_confidence(dec.confidence[:, 3], C, 5, int(res.exit_steps[3])),
        figures.class_accuracy(table, run.classes, dec.T),
        figures.class_latency(table, run.classes, dec.T),
        figures.confusion_matrix(confusion_at_exit(dec.labels, res.predictions, 10), run.classes),
    ]
    for preset in PRESETS:
        for chart in charts:
            path = tmp_path / f"{chart.key}_{preset}.pdf"
            path.write_bytes(export.figure_bytes(chart.figure, "pdf", preset))
            xml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
            w, h = map(float, re.search(r'<page width="([\d.]+)" height="([\d.]+)"', xml).groups())
            boxes = re.findall(
                r'xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">([^<]*)<', xml
            )
            found = {b[4] for b in boxes}
            missing = EXPECTED_WORDS[chart.key] - found  # a word cut by the edge is missing
            assert not missing, f"{chart.key} / {preset}: {missing} not on the page"
            for x0, y0, x1, y1, word in boxes:
                inside = float(x0) >= 0 and float(y0) >= 0 and float(x1) <= w and float(y1) <= h
                assert inside, f"{chart.key} / {preset}: {word!r} leaves the page"

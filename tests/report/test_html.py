"""The interactive HTML report: self-contained, escaped, and exact in a real browser.

The file is opened from disk in Chromium with every request other than the file itself
blocked and counted (none may happen). Its explorer is driven to every slider position and
to off-grid record values exported with it; exit steps and every metric must equal
dynconf.metrics bit for bit. The same check must fail when the core's strict rule is
mutated to ``>=``: the test is able to see the difference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.records import GRID_STEPS
from dynconf.core.store import load_run, save_run
from dynconf.report import explorer, html
from tests.helpers import synthetic_split

EVIL = '<img src=x onerror="window.__evil=1">'
FIELDS = (
    "accuracy", "mean_latency", "n_correct", "baseline_accuracy", "latency_reduction",
    "iso_accuracy_steps", "latency_reduction_vs_iso", "spikes_per_image_at_exit",
    "spikes_per_image_full", "spikes_per_neuron_at_exit", "spikes_per_neuron_full",
    "spike_saving",
)  # fmt: skip
NEURONS = 2000


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small run whose file texts try to inject markup."""
    path = tmp_path_factory.mktemp("html") / "evil"
    save_run(
        path,
        {
            "test": synthetic_split(300, 16, 4, 0, NEURONS),
            "calibration": synthetic_split(200, 16, 4, 1, NEURONS),
        },
        dataset="synthetic</script><script>window.__evil=2</script>",
        model=EVIL,
        classes=[EVIL, "b & c", "<b>d</b>", "e"],
        neurons=NEURONS,
    )
    return load_run(path)


def off_grid_values(dec, n: int = 8) -> list[float]:
    """Record values of the split off the slider's grid (ties to the strict rule)."""
    values = np.unique(dec.confidence)
    values = values[(values > 0.05) & (values < 0.95)]
    grid = np.arange(GRID_STEPS + 1) / GRID_STEPS
    values = values[~np.isin(values, grid)]
    return [float(v) for v in values[np.linspace(0, len(values) - 1, n).astype(int)]]


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    dec = decode(run.split("test"), "paper")
    exact = off_grid_values(dec)
    text = html.build_report(
        run, "test", ["paper", "margin"], [None, 8.0], calibration="calibration", exact=exact
    )
    path = tmp_path_factory.mktemp("out") / "report.html"
    html.write_report(path, text)
    return path, text, exact


def test_the_file_is_self_contained_and_escaped(report):
    _, text, _ = report
    assert text.count("plotly.js (basic - minified) v") == 1  # inlined once
    assert "default-src 'none'" in text  # the page may request nothing
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", text)
    assert EVIL not in text and "<b>d</b>" not in text
    assert "window.__evil=2</script>" not in text
    assert "&lt;img src=x onerror=" in text  # shown as text, in the provenance and tables
    assert text.count('<option value="') == 4  # paper and margin at kappa T_max and 8
    for needed in ("Exit policies", "Classes", "Provenance", "dcr-exact", "dcr-pick"):
        assert needed in text


def test_export_cli_writes_the_report(run, tmp_path):
    from dynconf.cli import main

    out = tmp_path / "r.html"
    code = main(["export", str(run.path), "--html", str(out), "--decoders", "paper,margin",
                 "--kappas", "tmax,8", "--json"])  # fmt: skip
    assert code in (0, None)
    text = out.read_text()
    assert text.count('<option value="') == 4 and "plotly.js (basic" in text
    assert main(["export", str(run.path), "--html", str(out), "--decoders", "nope"]) == 2


DRIVE = """async (thresholds) => {
    const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const {view, setThreshold, choose} = window.dynconfReport;
    const out = [];
    for (const [k, c] of thresholds) {
        if (k !== null) choose(k);
        setThreshold(c);
        await frames();
        out.push({r: view.last, steps: Array.from(view.p.work.steps),
                  answers: Array.from(view.p.work.answer),
                  note: document.querySelector('#dcr-note').textContent,
                  shown: document.querySelector('.dci-root .dci-value').textContent});
    }
    return out;
}"""


def open_report(browser, path: Path) -> tuple:
    page = browser.new_page()
    blocked = []

    def route(r):
        if r.request.url == path.as_uri():
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    return page, blocked


def check_against_library(got, cases, run) -> None:
    sp = run.split("test")
    for js, (decoder, kappa, c) in zip(got, cases, strict=True):
        res = metrics.evaluate(decode(sp, decoder, kappa), c, spikes=sp.spikes, neurons=NEURONS)
        assert js["note"] == "", js["note"]
        np.testing.assert_array_equal(js["steps"], res.exit_steps, err_msg=f"C = {c}")
        np.testing.assert_array_equal(js["answers"], res.predictions)
        for field in FIELDS:
            assert js["r"][field] == getattr(res, field), (c, field)
        assert js["shown"] == f"{100 * res.accuracy:.2f} %"


def drive_cases(run, exact) -> tuple[list, list]:
    """Every grid threshold on the first variant, then the exported off-grid values on it and
    on the last variant (margin, kappa 8)."""
    cases, thresholds = [], []
    for g in range(GRID_STEPS + 1):
        thresholds.append([0 if g == 0 else None, g / GRID_STEPS])
        cases.append(("paper", None, g / GRID_STEPS))
    for k, decoder, kappa in ((0, "paper", None), (3, "margin", 8.0)):
        for i, c in enumerate(exact):
            thresholds.append([k if i == 0 else None, c])
            cases.append((decoder, kappa, c))
    return thresholds, cases


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with launch_chromium() as b:
        yield b


@pytest.mark.browser
def test_report_in_chromium_equals_the_library(report, run, browser):
    path, _, exact = report
    page, blocked = open_report(browser, path)
    thresholds, cases = drive_cases(run, exact)
    got = page.evaluate(DRIVE, thresholds)
    check_against_library(got, cases, run)
    # A C neither on the grid nor exported: shown at the nearest grid value, and said so.
    other = page.evaluate(DRIVE, [[0, 0.123456]])[0]
    assert "off the slider's grid" in other["note"] and other["r"]["threshold"] == 0.125
    assert page.evaluate("window.__evil") is None
    assert blocked == []  # no request left the file
    page.close()


@pytest.mark.browser
def test_a_mutated_core_is_caught(run, browser, tmp_path, monkeypatch):
    """``>`` turned into ``>=`` in core.js: the same check must fail."""
    original = explorer.read

    def mutated(name: str) -> str:
        text = original(name)
        if name == "core.js":
            assert text.count("if (cell[mid] > g) hi = mid;") == 1
            text = text.replace("if (cell[mid] > g) hi = mid;", "if (cell[mid] >= g) hi = mid;")
        return text

    monkeypatch.setattr(explorer, "read", mutated)
    path = tmp_path / "mutant.html"
    html.write_report(path, html.build_report(run, "test", ["paper"], [None], policies=False))
    page, _ = open_report(browser, path)
    thresholds = [[0 if g == 0 else None, g / GRID_STEPS] for g in range(GRID_STEPS + 1)]
    got = page.evaluate(DRIVE, thresholds)
    with pytest.raises(AssertionError, match="C = "):  # the exit steps differ
        check_against_library(got, [("paper", None, c) for _, c in thresholds], run)
    page.close()


def test_payload_header_names_the_marks(report):
    _, text, _ = report
    variants = json.loads(re.search(r'id="dcr-variants">(.*?)</script>', text).group(1))
    assert [v["label"] for v in variants][0] == "paper, kappa = T_max = 16"
    assert variants[0]["marks"][0]["label"] == "chosen on calibration"
    assert all(e["c"] not in np.arange(GRID_STEPS + 1) / GRID_STEPS for e in variants[0]["exact"])


def test_the_vendored_plotly_is_the_pinned_official_bundle():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import vendor_plotly
    from plotly.offline import get_plotlyjs_version

    text = explorer.plotly_js()
    assert vendor_plotly.header_problem(text, get_plotlyjs_version()) is None
    assert vendor_plotly.header_problem("/* not it */" + text[400:], "3.7.0") is not None
    assert (explorer.PLOTLY_BUNDLE.parent / "LICENSE").read_text().startswith("MIT License")


def test_images_are_embedded_as_thumbnails():
    from dynconf.core.store import load_run as load

    root = Path(__file__).resolve().parents[2] / "cached_runs" / "digits"
    digits = load(root)
    text = html.build_report(digits, "test", ["paper"], [None], images=True, policies=False)
    variants = json.loads(re.search(r'id="dcr-variants">(.*?)</script>', text).group(1))
    images = json.loads(re.search(r'id="dcr-images">(.*?)</script>', text).group(1))
    assert len(images) == len(variants[0]["samples"]["positions"]) > 0
    assert all(i.startswith("data:image/png;base64,") for i in images)

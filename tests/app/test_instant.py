"""The instant explorer's JavaScript against the library, and its Python side in AppTest.

The browser part runs dynconf/report/explorer/core.js itself in headless Chromium (no app, no
Streamlit): the payload dynconf/app/instant.py packs is decoded there and every slider position
C_g = g / 200 is evaluated; exit steps, answers, every metric, the capped curve, the histogram
and the metric texts must equal dynconf.metrics (and a brute-force exit rule) exactly, on a
split whose confidences tie with the grid and repeat within samples. Thresholds off the grid
take the server's exit steps; those are checked too, at record values and their neighbours.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from dynconf.app import instant
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.decoders.decode import Decoded
from dynconf.core.formatting import pct
from dynconf.core.records import GRID_STEPS, build_records
from dynconf.core.store import load_run
from dynconf.report import explorer as shared
from tests.app.helpers import app, exact_box, slider

ROOT = Path(__file__).resolve().parents[2]
CORE_JS = (ROOT / "dynconf" / "report" / "explorer" / "core.js").read_text()
NEURONS = 2000


def tied(dec: Decoded) -> Decoded:
    """The same split with confidences rounded to multiples of 1/40: every value is also a
    grid threshold (k / 40 == 5k / 200 as floats) and runs of equal values are common."""
    conf = np.round(dec.confidence * 40) / 40
    return Decoded(dec.decoder, dec.kappa, conf, dec.prediction, dec.correct, dec.labels)


def brute_exit(dec: Decoded, c: float) -> np.ndarray:
    """The rule as docs/METHOD.md states it: the first t with c_t > C, else T."""
    above = dec.confidence > c
    first = above.argmax(axis=0) + 1
    return np.where(above.any(axis=0), first, dec.T)


@pytest.fixture(scope="module")
def cases(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sp = run.split("test")
    out = {}
    for name, dec in (
        ("paper", decode(sp, "paper")),
        ("margin", decode(sp, "margin")),
        ("tied", tied(decode(sp, "paper"))),
    ):
        rec = build_records(dec, sp.spikes)
        blob = instant.pack(instant.record_arrays(rec, sp.ids), instant.record_meta(rec, NEURONS))
        out[name] = (dec, sp, base64.b64encode(blob).decode())
    return out


@pytest.fixture(scope="module")
def page():
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with launch_chromium() as browser:
        pg = browser.new_page()
        pg.set_content("<html><body></body></html>")
        pg.add_script_tag(content=CORE_JS)
        yield pg


EVALUATE_ALL = """([b64, steps]) => {
    const core = DynconfInstant;
    const p = core.decode(core.b64bytes(b64));
    const out = [];
    for (let g = 0; g <= steps; g++) {
        const r = core.evaluate(p, g);
        const cap = core.capped(p), h = core.histogram(p);
        out.push({r, texts: core.texts(r), steps: Array.from(p.work.steps),
                  answers: Array.from(p.work.answer), correct: Array.from(p.work.correct),
                  cap_lat: Array.from(cap.latency), cap_acc: Array.from(cap.accuracy),
                  ok: Array.from(h.ok), bad: Array.from(h.bad)});
    }
    return out;
}"""

FIELDS = (
    "accuracy",
    "mean_latency",
    "n_correct",
    "baseline_accuracy",
    "latency_reduction",
    "iso_accuracy_steps",
    "latency_reduction_vs_iso",
    "spikes_per_image_at_exit",
    "spikes_per_image_full",
    "spikes_per_neuron_at_exit",
    "spikes_per_neuron_full",
    "spike_saving",
)


def explorer_texts(res) -> dict:
    """What app_pages/explorer.py writes for a result (the component must write the same)."""
    T = res.T_max
    return {
        "accuracy": pct(res.accuracy),
        "accuracy_delta": f"{100 * (res.accuracy - res.baseline_accuracy):+.2f} pp vs T = {T}",
        "latency": f"{res.mean_latency:.2f} steps",
        "latency_delta": f"{res.mean_latency - T:+.2f} steps vs T = {T}",
        "reduction": pct(res.latency_reduction, 1),
        "reduction_iso": "n/a"
        if res.latency_reduction_vs_iso is None
        else pct(res.latency_reduction_vs_iso, 1),
        "spikes": "not recorded" if res.spike_saving is None else pct(res.spike_saving, 1),
    }


def check_result(js: dict, res, dec: Decoded) -> None:
    for field in FIELDS:
        assert js["r"][field] == getattr(res, field), field  # the same floats, bit for bit
    assert {k: js["texts"][k] for k in explorer_texts(res)} == explorer_texts(res)
    np.testing.assert_array_equal(js["steps"], res.exit_steps)
    np.testing.assert_array_equal(js["answers"], res.predictions)
    np.testing.assert_array_equal(js["correct"], res.correct)
    T = dec.T
    np.testing.assert_array_equal(
        js["ok"], np.bincount(res.exit_steps[res.correct], minlength=T + 1)[1:]
    )
    np.testing.assert_array_equal(
        js["bad"], np.bincount(res.exit_steps[~res.correct], minlength=T + 1)[1:]
    )


@pytest.mark.browser
@pytest.mark.parametrize("name", ["paper", "margin", "tied"])
def test_core_js_equals_the_library_at_every_slider_position(cases, page, name):
    dec, sp, b64 = cases[name]
    got = page.evaluate(EVALUATE_ALL, [b64, GRID_STEPS])
    assert len(got) == GRID_STEPS + 1
    exits_seen = set()
    for g, js in enumerate(got):
        c = g / GRID_STEPS
        res = metrics.evaluate(dec, c, spikes=sp.spikes, neurons=NEURONS)
        np.testing.assert_array_equal(res.exit_steps, brute_exit(dec, c))
        check_result(js, res, dec)
        curve = metrics.capped_curve(dec, c)
        assert js["cap_lat"] == curve.latency.tolist() and js["cap_acc"] == curve.accuracy.tolist()
        exits_seen.add(tuple(js["steps"]))
    assert len(exits_seen) > 20  # the grid really moves the exits
    if name == "tied":
        # Many confidences equal a grid threshold: the strict rule keeps those samples running.
        on_grid = np.isin(dec.confidence, np.arange(GRID_STEPS + 1) / GRID_STEPS)
        assert on_grid.mean() > 0.9


OFF_GRID = """([b64, cases]) => {
    const core = DynconfInstant;
    const p = core.decode(core.b64bytes(b64));
    return cases.map(([c, steps, answers, spent]) => {
        core.exitsFrom(p, Uint16Array.from(steps), Uint16Array.from(answers));
        const r = core.summarize(p, c, spent);
        return {r, texts: core.texts(r), steps: Array.from(p.work.steps),
                answers: Array.from(p.work.answer), correct: Array.from(p.work.correct),
                ok: Array.from(core.histogram(p).ok), bad: Array.from(core.histogram(p).bad)};
    });
}"""


@pytest.mark.browser
def test_core_js_off_the_grid_uses_the_servers_exits(cases, page):
    dec, sp, b64 = cases["paper"]
    values = np.unique(dec.confidence)
    picks = values[np.linspace(0, len(values) - 1, 12).astype(int)]
    thresholds = [0.5251, float(np.nextafter(0.5, 1.0)), float(np.nextafter(0.5, 0.0))]
    thresholds += [float(v) for v in picks] + [float(np.nextafter(v, 1.0)) for v in picks[:4]]
    results = [metrics.evaluate(dec, c, spikes=sp.spikes, neurons=NEURONS) for c in thresholds]
    payload = [
        [c, r.exit_steps.tolist(), r.predictions.tolist(), r.spikes_per_image_at_exit]
        for c, r in zip(thresholds, results, strict=True)
    ]
    for js, res in zip(page.evaluate(OFF_GRID, [b64, payload]), results, strict=True):
        check_result(js, res, dec)


PY_FORMAT = [
    0.0, -0.0, 0.125, 0.375, 2.5, 3.5, 21.125, 20.45, 99.995, 99.985, 1e-7, -1e-7,
    -0.001, 0.005, 0.015, 0.025, 1234.5678, 64.0, -42.465, -42.475, 1 / 3, 2 / 3,
    88.11999999999999, 88.12000000000001, 0.05, 0.95, 123456.785, 5e-5, 0.00015,
]  # fmt: skip


@pytest.mark.browser
def test_core_js_formats_floats_as_python_does(page):
    rng = np.random.default_rng(0)
    values = PY_FORMAT + list(rng.uniform(-200, 200, 300)) + list(np.arange(0, 64, 1 / 16))
    values += [k / 10000 * 100 for k in range(0, 10001, 37)]  # accuracies of N = 10,000
    got = page.evaluate(
        """(vs) => vs.map(v => [1, 2, 3, 4].map(d => DynconfInstant.fmt(v, d))
                          .concat([DynconfInstant.signed(v, 2)]))""",
        [float(v) for v in values],
    )
    want = [[f"{v:.{d}f}" for d in (1, 2, 3, 4)] + [f"{v:+.2f}"] for v in values]
    assert got == want


# --------------------------------------------------------------------------- AppTest


def components(at) -> dict:
    return {e.proto.component_name: e.proto for e in at.get("bidi_component")}


def test_explorer_mounts_the_instant_component(dashboard_runs, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("DYNCONF_RUNS", str(dashboard_runs))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app("explorer", threshold="0.5")
    found = components(at)
    assert set(found) == {"dynconf.plotly", "dynconf.instant_data", "dynconf.instant_explorer"}
    # The vendored basic bundle, and the view the HTML report and the widget run too.
    assert "plotly.js (basic - minified)" in found["dynconf.plotly"].js_content[:400]
    assert shared.view_js() in found["dynconf.instant_explorer"].js_content
    blob = found["dynconf.instant_data"].bytes
    msg = json.loads(found["dynconf.instant_explorer"].json)
    assert msg["c"] == 0.5 and msg["g"] == 100 and msg["override"] is None
    assert blob[:4] == b"DCI1"
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[4:8], "little")])
    assert header["meta"]["pid"] == msg["pid"]
    run = load_run(dashboard_runs / "synth")
    rec = build_records(decode(run.split("test"), "paper"), run.split("test").spikes)
    assert header["meta"]["N"] == rec.N and header["arrays"]["cell"][2] == rec.cell.size
    ext = msg["ext"]

    # The sidebar moves C: the component is told to adopt it (a new ext); the payload stays.
    slider(at).set_value(0.6).run()
    msg = json.loads(components(at)["dynconf.instant_explorer"].json)
    assert (msg["c"], msg["g"], msg["ext"]) == (0.6, 120, ext + 1)
    assert components(at)["dynconf.instant_data"].bytes == blob

    # An exact C off the slider's grid: the server's exit steps travel with it.
    exact_box(at).set_value(0.5251).run()
    msg = json.loads(components(at)["dynconf.instant_explorer"].json)
    assert msg["g"] is None and msg["ext"] == ext + 2
    res = metrics.evaluate(decode(run.split("test"), "paper"), 0.5251)
    steps = np.frombuffer(base64.b64decode(msg["override"]["steps"]), np.uint16)
    np.testing.assert_array_equal(steps, res.exit_steps)

    # The component's own report (what dynconf.app.instant._on_report stores): no new ext, so its
    # echo never pulls the slider back, and the sidebar and the URL follow.
    at.session_state["_instant_c"] = 0.7
    at.session_state["threshold"] = 0.7  # the one truth; the sidebar's controls follow it
    at.run()
    msg = json.loads(components(at)["dynconf.instant_explorer"].json)
    assert (msg["c"], msg["ext"]) == (0.7, ext + 2)
    assert at.query_params["threshold"] in ("0.7", ["0.7"])
    assert next(m.value for m in at.metric if m.label == "Mean latency") == (
        f"{metrics.evaluate(decode(run.split('test'), 'paper'), 0.7).mean_latency:.2f} steps"
    )

"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dynconf import jobs
from dynconf.app.routes import page_path
from dynconf.app.text import ZWSP, md_escape
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import default_work_root, load_run
from tests.app.helpers import app, exact_box, metric, slider

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = [
    "home", "classroom", "explorer", "oracle", "selection", "policies", "samples", "classes",
    "compare", "runs",
]  # fmt: skip
CHART_PAGES = {"selection": 2, "samples": 3, "classes": 3, "compare": 1}
# Pages whose charts the vendored Plotly.js draws (dynconf/app/plotlyjs.py): figure count.
BUNDLE_CHART_PAGES = {"oracle": 1, "policies": 3}


def qp(at: AppTest, key: str) -> str | None:
    """A URL parameter after the run (AppTest returns a str, older versions a list)."""
    value = at.query_params.get(key)
    return value[-1] if isinstance(value, list) else value


def plain(markdown: str) -> str:
    """What an escaped markdown string shows (dynconf.app.text.md_escape undone)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(ZWSP, "")


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f} %"


@pytest.fixture(scope="module")
def synth_test(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sp = run.split("test")
    return run, sp, decode(sp, "paper")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(env, page):
    at = app(page)
    charts = at.get("plotly_chart")
    assert len(charts) >= CHART_PAGES.get(page, 0)
    drawn = [e for e in at.get("bidi_component") if e.proto.component_name == "dynconf.figure"]
    assert len(drawn) >= BUNDLE_CHART_PAGES.get(page, 0)
    if page == "explorer":  # its four charts are drawn in the browser (dynconf/app/instant.py)
        names = {e.proto.component_name for e in at.get("bidi_component")}
        assert {"dynconf.plotly", "dynconf.instant_data", "dynconf.instant_explorer"} <= names
    assert at.title, "every page has a title"


# A Python expression left in braces: an f-string that lost its ``f``.
PLACEHOLDER = re.compile(r"\{[A-Za-z_][\w.]*(\[[^\]]*\]|\([^)]*\))?(:[^}]*)?\}")


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_an_unfilled_placeholder(env, page):
    at = app(page)
    texts = [e.value for kind in ("markdown", "caption", "info", "warning", "success", "error")
             for e in at.get(kind)]  # fmt: skip
    texts += [m.label for m in at.metric]
    found = [plain(t) for t in texts if isinstance(t, str) and PLACEHOLDER.search(plain(t))]
    assert not found, found


def test_the_placeholder_pattern_catches_a_lost_f():
    assert PLACEHOLDER.search("is a {md_escape(names[label], limit=60)}. It stops at {tau}")
    assert not PLACEHOLDER.search("C = 0.5243 at 21.50 steps {not a name")


def test_default_view_is_in_url_and_threshold_comes_from_calibration(env, dashboard_runs):
    at = app()
    assert (qp(at, "run"), qp(at, "split"), qp(at, "decoder")) == ("synth", "test", "paper")
    run = load_run(dashboard_runs / "synth")
    sel = metrics.select_threshold(decode(run.split("calibration")), decode(run.split("test")))
    assert float(qp(at, "threshold")) == pytest.approx(sel.threshold, abs=1e-6)
    assert exact_box(at).value == pytest.approx(sel.threshold)


def test_slider_and_exact_entry_drive_explorer_metrics(env, synth_test):
    run, sp, dec = synth_test
    at = app("explorer")
    before = metric(at, "Accuracy")
    for widget, value in (("slider", 0.8), ("number", 0.4321)):
        if widget == "slider":
            slider(at).set_value(value).run()
        else:
            exact_box(at).set_value(value).run()
        assert not at.exception
        res = metrics.evaluate(dec, value, spikes=sp.spikes, neurons=run.meta["neurons"])
        assert metric(at, "Accuracy") == pct(res.accuracy)
        assert metric(at, "Mean latency") == f"{res.mean_latency:.2f} steps"
        assert metric(at, "Reduction vs T_max") == pct(res.latency_reduction, 1)
        assert metric(at, "Reduction vs iso-accuracy T") == (
            "n/a" if res.latency_reduction_vs_iso is None else pct(res.latency_reduction_vs_iso, 1)
        )
        assert metric(at, "Spikes saved") == pct(res.spike_saving, 1)
        assert qp(at, "threshold") == f"{value:.6g}"
    assert metric(at, "Accuracy") != before
    # The two controls stay in step.
    assert slider(at).value == pytest.approx(0.4321)


def test_url_restores_the_view(env, dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    dec = decode(run.split("calibration"), "margin")
    at = app("explorer", run="synth", split="calibration", decoder="margin", threshold="0.35")
    assert at.selectbox(key="split").value == "calibration"
    assert at.selectbox(key="decoder").value == "margin"
    res = metrics.evaluate(dec, 0.35)
    assert metric(at, "Accuracy") == pct(res.accuracy)
    # A link to a run that is not there falls back to a good one and says so.
    at = app(run="broken")
    assert at.selectbox(key="run").value == "synth"
    assert any("broken" in plain(e.value) for e in at.error)


def test_kappa_changes_the_paper_decoder(env, synth_test):
    run, sp, _ = synth_test
    at = app("explorer", threshold="0.5")
    at.number_input(key="kappa").set_value(4.0).run()
    res = metrics.evaluate(decode(sp, "paper", kappa=4.0), 0.5)
    assert metric(at, "Mean latency") == f"{res.mean_latency:.2f} steps"
    assert qp(at, "kappa") == "4"


def test_simulate_form_offers_the_registered_datasets(env):
    from dynconf.engine.data import dataset_names

    at = app("runs")
    assert at.selectbox(key="sim_dataset").options == list(dataset_names())


def test_damaged_run_is_listed_with_reason_and_never_crashes(env):
    at = app("runs")
    problems = [plain(e.value) for e in at.error]
    assert any("broken" in p and "test.outputs.npy" in p for p in problems), problems
    table = at.table[0].value
    row = table[table.run == "broken"].iloc[0]
    assert row.status == "damaged" and "truncated" in row.problem
    assert "broken" not in at.selectbox(key="run").options


def test_oracle_page_shows_library_oracle(env, synth_test):
    _, _, dec = synth_test
    at = app("oracle", threshold="0.6")
    for variant in ("first_correct", "stays_correct"):
        for never in ("cap", "step1"):
            at.radio(key="oracle_variant").set_value(variant)
            at.radio(key="oracle_never").set_value(never).run()
            o = metrics.oracle(dec, variant, never)
            assert metric(at, f"Oracle accuracy (cap {dec.T})") == pct(o.accuracy)
            assert metric(at, "Oracle mean latency") == f"{o.mean_latency:.2f} steps"
    assert len(at.table[0].value) == 4


def test_selection_page_and_use_threshold(env, dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    at = app("selection", threshold="0.95")
    at.number_input(key="sel_tol").set_value(1.0).run()
    sel = metrics.select_threshold(
        decode(run.split("calibration")), decode(run.split("test")), tolerance=0.01
    )
    assert metric(at, "Chosen threshold C") == f"{sel.threshold:.4g}"
    assert metric(at, "On test") == pct(sel.test.accuracy)
    at.button(key="sel_use").click().run()
    assert exact_box(at).value == pytest.approx(sel.threshold)
    assert float(qp(at, "threshold")) == pytest.approx(sel.threshold, rel=1e-5)


def test_samples_page_follows_the_chosen_sample(env, synth_test):
    run, sp, dec = synth_test
    res = metrics.evaluate(dec, 0.6)
    i = int(np.flatnonzero(~res.correct)[0])
    at = app("samples", threshold="0.6")
    at.number_input(key="sample_pos").set_value(i).run()
    assert metric(at, "Sample id") == str(int(sp.ids[i]))
    assert metric(at, "Exit step") == f"{res.exit_steps[i]} of {run.T_max}"
    assert metric(at, "Label") == run.classes[sp.labels[i]]
    assert qp(at, "sample") == str(int(sp.ids[i]))  # the URL names the id, not the position
    # The synthetic run records no image mapping: the page says so instead of failing.
    assert any("Image unavailable" in x.value for x in at.info)


def test_policies_page_fits_every_registered_policy(env, dashboard_runs):
    from dynconf.core.policies import POLICIES, Patience, Threshold

    run = load_run(dashboard_runs / "synth")
    cal, test = decode(run.split("calibration")), decode(run.split("test"))
    at = app("policies")
    table = at.dataframe[0].value
    assert list(table["policy"]) == [*POLICIES, "oracle (stays correct)"]
    for i, cls in enumerate((Threshold, Patience)):
        want = cls().fit(cal, 0.0).evaluate(test)
        assert table["latency"].iloc[i] == f"{want.mean_latency:.3f}"
        assert table["acc"].iloc[i] == f"{100 * want.accuracy:.2f} %"
    assert table["latency"].iloc[-1] == f"{metrics.oracle(test, 'stays_correct').mean_latency:.3f}"
    at.number_input(key="pol_tol").set_value(2.0).run()
    assert not at.exception
    looser = at.dataframe[0].value
    assert float(looser["latency"].iloc[0]) <= float(table["latency"].iloc[0])


def run_T(root) -> int:
    return load_run(root / "synth").T_max


def test_compare_page_overlays_decoders(env):
    at = app("compare")
    at.multiselect(key="cmp_decoders").set_value(["paper", "margin"]).run()
    assert not at.exception
    table = at.table[0].value  # a static table: it wraps to the page, nothing cut off
    # Decoders that take a kappa say which (the legend and table must tell kappas apart).
    assert list(table["run / decoder"]) == [
        f"synth/test · paper (kappa = T_max = {run_T(env)})",
        f"synth/test · margin (kappa = T_max = {run_T(env)})",
    ]


def test_import_upload_validates_like_import(env, dashboard_runs, tmp_path):
    from dynconf.app import uploads
    from tests.helpers import synthetic_split

    buf = io.BytesIO()
    np.savez(buf, **synthetic_split(80, 12, 10, seed=5, neurons=100, dtype=np.float32))
    run = uploads.import_upload("mine", "outs.npz", buf.getvalue(), split="test")
    assert run.split_names == ("test",)
    assert (default_work_root() / "mine" / "meta.json").is_file()
    at = app()
    assert "mine (mine)" in at.selectbox(key="run").options  # labelled as the user's
    bad = io.BytesIO()
    np.save(bad, np.zeros((4, 10)))  # 2-D: not [T, N, K]
    with pytest.raises(Exception, match="labels|T, N, K"):
        uploads.import_upload("bad", "outs.npy", bad.getvalue())
    with pytest.raises(Exception, match="shipped run"):
        uploads.import_upload("synth", "outs.npz", buf.getvalue())
    with pytest.raises(Exception, match="torch"):
        uploads.import_upload("pt", "outs.pt", b"x")
    pickled = io.BytesIO()
    np.savez(pickled, outputs=np.array([object()], dtype=object), labels=np.zeros(1))
    with pytest.raises(Exception, match="pickle|objects"):
        uploads.import_upload("pickled", "p.npz", pickled.getvalue())


def test_failed_simulation_job_reports_its_log(env, tmp_path):
    job = jobs.start_job("doomed", ["--checkpoint", str(tmp_path / "nope.pt"), "--dataset",
                                  "digits", "--T", "4", "--splits", "test"])  # fmt: skip
    deadline = time.time() + 90
    while job.alive() and time.time() < deadline:
        time.sleep(0.2)
    assert job.status() == "failed"
    assert "nope.pt" in job.log_tail()
    assert [j.name for j in jobs.list_jobs()] == ["doomed"]
    at = app("runs")
    assert any("doomed" in plain(m.value) for m in at.markdown)


def test_browsing_pages_never_import_torch(dashboard_runs, tmp_path):
    script = textwrap.dedent(
        f"""
        import os, sys, json
        os.environ["DYNCONF_RUNS"] = {str(dashboard_runs)!r}
        os.environ["DYNCONF_WORK"] = {str(tmp_path / "work")!r}
        from streamlit.testing.v1 import AppTest
        from dynconf.app.routes import page_path
        at = AppTest.from_file({APP!r}, default_timeout=60).run()
        errors = [e.value for e in at.exception]
        for page in {PAGES!r}:
            at.switch_page(page_path(page)).run()
            errors += [e.value for e in at.exception]
        print(json.dumps({{"torch": "torch" in sys.modules, "errors": errors}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=180)  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "errors": []}


SHIPPED = ROOT / "cached_runs" / "digits"


@pytest.mark.skipif(not (SHIPPED / "meta.json").is_file(), reason="no shipped digits run yet")
def test_shipped_digits_run(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNCONF_RUNS", str(ROOT / "cached_runs"))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    run = load_run(SHIPPED)
    at = app("explorer", run="digits", threshold="0.9")
    split = at.selectbox(key="split").value
    sp = run.split(split)
    res = metrics.evaluate(decode(sp), 0.9, spikes=sp.spikes, neurons=run.meta.get("neurons"))
    assert metric(at, "Accuracy") == pct(res.accuracy)
    at.switch_page(page_path("samples")).run()
    assert not at.exception
    assert not any("Image unavailable" in x.value for x in at.info)  # digits images ship
    at.switch_page(page_path("home")).run()
    assert not at.exception


@pytest.mark.slow
def test_simulation_from_the_runs_page(env, digits_checkpoint, wait_for):
    def launch(at: AppTest, name: str, limit: int, T: int) -> None:
        at.selectbox(key="sim_pick").set_value("other path...")
        at.text_input(key="sim_other").set_value(str(digits_checkpoint))
        at.selectbox(key="sim_dataset").set_value("digits")
        at.number_input(key="sim_T").set_value(T)
        at.multiselect(key="sim_splits").set_value(["calibration", "test"])
        at.number_input(key="sim_limit").set_value(limit)
        at.text_input(key="sim_name").set_value(name)
        next(b for b in at.button if b.label == "Start simulation").click()
        at.run()
        assert not at.exception
        assert any(f"Started **{md_escape(name)}**" in x.value for x in at.success), [
            e.value for e in at.error
        ]

    at = app("runs")
    launch(at, "sim_small", limit=40, T=6)
    job = next(j for j in jobs.list_jobs() if j.name == "sim_small")
    assert "sim_small (mine)" not in at.selectbox(key="run").options  # not before it is done
    wait_for(lambda: not job.alive(), timeout=180)
    assert job.status() == "done", job.log_tail()
    assert job.progress()["done"] == job.progress()["total"] == 80
    at.run()
    assert "sim_small (mine)" in at.selectbox(key="run").options  # joined the list
    run = load_run(default_work_root() / "sim_small")
    assert run.T_max == 6 and run.meta["splits"] == {"calibration": 40, "test": 40}

    # A long job: shown as running, Cancel stops its process group, no run appears.
    launch(at, "sim_long", limit=0, T=256)
    job = next(j for j in jobs.list_jobs() if j.name == "sim_long")
    assert job.alive(), job.log_tail()
    at.run()
    assert any("sim_long" in plain(m.value) and "running" in m.value for m in at.markdown)
    at.button(key="cancel-sim_long").click().run()
    wait_for(lambda: not job.alive(), timeout=30)
    assert jobs.list_jobs()[0].status() == "cancelled"
    assert not (default_work_root() / "sim_long").exists()


def test_threshold_move_recomputes_only_the_threshold(env, monkeypatch):
    import dynconf.core.decoders
    from dynconf.core import metrics as m

    at = app("explorer", threshold="0.5")
    calls: dict[str, int] = {}

    def counting(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(dynconf.core.decoders, "decode")
    for name in ("sweep", "baseline_curve", "oracle_curve", "oracle", "select_threshold",
                 "evaluate", "capped_curve"):  # fmt: skip
        counting(m, name)
    for value in (0.55, 0.6, 0.65):
        slider(at).set_value(value).run()
        assert not at.exception
    # Per move: one policy evaluation, nothing threshold-independent, and no figure for the
    # closed download expander (its capped curve waits until it is opened).
    assert calls == {"evaluate": 3}
    at.expander[0]  # noqa: B018 - the downloads expander is there, closed
    assert not [c for c in at.get("download_button") if "explorer-plane" in c.proto.id]


def test_no_runs_at_all_guides_to_the_runs_page(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNCONF_RUNS", str(tmp_path / "empty"))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app()
    assert any("Runs" in w.value for w in at.sidebar.warning)
    for page in ("explorer", "runs"):
        at.switch_page(page_path(page)).run()
        assert not at.exception


def test_topk_run_reports_unusable_decoder_instead_of_crashing(env):
    at = app("explorer", run="synth_topk", decoder="step", threshold="0.5")
    assert any("top-k" in plain(e.value) for e in at.error), [e.value for e in at.error]
    assert not at.get("plotly_chart")
    at.selectbox(key="decoder").set_value("paper").run()
    assert not at.exception and not at.error
    assert metric(at, "Mean latency").endswith("steps")
    at.switch_page(page_path("samples")).run()
    assert not at.exception
    assert any("full per-step outputs" in x.value for x in at.info)


def test_run_with_garbage_meta_is_listed_not_fatal(dashboard_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "synth").symlink_to(dashboard_runs / "synth")
    (root / "odd").mkdir()
    (root / "odd" / "meta.json").write_text(
        json.dumps({"schema": 1, "splits": ["test"], "T_max": {"x": 1}, "model": 5})
    )
    (root / "nometa").mkdir()
    monkeypatch.setenv("DYNCONF_RUNS", str(root))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app("runs")
    table = at.table[0].value.set_index("run")
    assert table.loc["odd", "status"] == "damaged" and table.loc["odd", "problem"]
    assert table.loc["nometa", "status"] == "damaged"
    assert table.loc["synth", "status"] == "ok"
    at.switch_page(page_path("explorer")).run()
    assert not at.exception


def test_selection_page_shows_the_costs_on_both_splits(tmp_path, monkeypatch):
    """A run that holds spikes and synaptic operations: the Selection page shows what the
    chosen C saves of each on calibration and on test, equal to the library's selection."""
    from dynconf.core.roots import find_run

    monkeypatch.setenv("DYNCONF_RUNS", str(find_run("noisy_digits").parent))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    at = app("selection", run="noisy_digits")
    sel = dynconf_select("noisy_digits")
    for split, res in (("calibration", sel["calibration"]), ("test", sel["test"])):
        assert metric(at, f"Spikes saved on {split}") == pct(res["spike_saving"], 1)
        assert metric(at, f"Synaptic ops saved on {split}") == pct(res["synops_saving"], 1)


def dynconf_select(run: str) -> dict:
    """What `dynconf select RUN --json` prints, run in a child process."""
    out = subprocess.run(
        [sys.executable, "-m", "dynconf", "select", run, "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(out.stdout)

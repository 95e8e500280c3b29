"""State that stays: every page's controls in the URL and back after leaving the page, the
sidebar's threshold and kappa checks, and the sidebar in a real browser (rapid keyboard steps,
the 1024x768 presentation layout)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from dynconf.app.routes import page_path
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from tests.app.helpers import app, exact_box, slider

ROOT = Path(__file__).resolve().parents[2]


def qp(at, key: str) -> str | None:
    value = at.query_params.get(key)
    return value[-1] if isinstance(value, list) else value


def go(at, page: str):
    at.switch_page(page_path(page)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warnings(at) -> list[str]:
    return [w.value.replace("\\", "") for w in [*at.warning, *at.sidebar.warning]]


def calibrated(root: Path, run: str = "synth") -> float:
    r = load_run(root / run)
    return metrics.select_threshold(
        decode(r.split("calibration")), decode(r.split("test"))
    ).threshold


# --------------------------------------------------------------------------- URL state


def test_every_page_keeps_its_controls_after_leaving_and_in_the_url(env):
    sp = load_run(env / "synth").split("test")
    at = app("samples")
    at.number_input(key="sample_pos").set_value(7).run()
    go(at, "oracle")
    at.radio(key="oracle_variant").set_value("stays_correct").run()
    at.toggle(key="oracle_all").set_value(False).run()
    assert (qp(at, "oracle"), qp(at, "all")) == ("stays_correct", "0")
    go(at, "selection")
    at.number_input(key="sel_tol").set_value(1.5).run()
    assert qp(at, "tol") == "1.5"
    go(at, "compare")
    at.multiselect(key="cmp_runs").set_value(["synth", "synth_topk"])
    at.multiselect(key="cmp_decoders").set_value(["paper", "margin"])
    at.text_input(key="cmp_kappas").set_value("4, 16").run()
    assert qp(at, "runs") == "synth,synth_topk" and qp(at, "decoders") == "paper,margin"
    assert qp(at, "kappas") == "4, 16"
    go(at, "home")
    # Back on each page: the same controls, and the page's URL parameters again.
    go(at, "samples")
    assert at.number_input(key="sample_pos").value == 7
    assert qp(at, "sample") == str(int(sp.ids[7]))  # the id, not the position
    go(at, "oracle")
    assert at.radio(key="oracle_variant").value == "stays_correct"
    assert at.toggle(key="oracle_all").value is False
    assert qp(at, "oracle") == "stays_correct"
    go(at, "selection")
    assert at.number_input(key="sel_tol").value == 1.5 and qp(at, "tol") == "1.5"
    go(at, "compare")
    assert at.multiselect(key="cmp_runs").value == ["synth", "synth_topk"]
    assert at.multiselect(key="cmp_decoders").value == ["paper", "margin"]
    assert at.text_input(key="cmp_kappas").value == "4, 16"
    labels = list(at.table[0].value["run / decoder"])
    assert (
        "synth/test · paper (kappa = 4)" in labels and "synth/test · paper (kappa = 16)" in labels
    )


def test_deep_links_restore_page_controls(env):
    sp = load_run(env / "synth").split("test")
    i = 11
    at = app("samples", sample=str(int(sp.ids[i])))
    assert at.number_input(key="sample_pos").value == i
    assert at.metric[0].value == str(int(sp.ids[i]))
    at = app("oracle", oracle="stays_correct", never="step1")
    assert at.radio(key="oracle_variant").value == "stays_correct"
    assert at.radio(key="oracle_never").value == "step1"
    at = app("selection", tol="2")
    assert at.number_input(key="sel_tol").value == 2.0
    at = app("compare", runs="synth", decoders="margin,paper", kappas="8")
    assert at.multiselect(key="cmp_decoders").value == ["margin", "paper"]
    assert "synth/test · paper (kappa = 8)" in list(at.table[0].value["run / decoder"])


def test_bad_deep_links_say_what_was_used_instead(env):
    sp = load_run(env / "synth").split("test")
    missing = int(np.max(sp.ids)) + 1000
    at = app("samples", sample=str(missing))
    assert at.number_input(key="sample_pos").value == 0
    assert any(f"sample = {missing}" in w and "no sample has this id" in w for w in warnings(at))
    at = app("oracle", oracle="psychic")
    assert at.radio(key="oracle_variant").value == "first_correct"
    assert any("psychic" in w and "first_correct instead" in w for w in warnings(at))
    at = app("selection", tol="50")
    assert at.number_input(key="sel_tol").value == 0.0
    assert any("outside [0, 10]" in w for w in warnings(at))


def test_link_values_the_run_lacks_are_named_with_what_is_shown(env):
    at = app("oracle", split="train", decoder="foo")
    notes = warnings(at)
    assert at.selectbox(key="split").value == "test"
    assert any("split **train** is not a split" in w and "calibration" in w and "showing test" in w
               for w in notes), notes  # fmt: skip
    assert any("decoder **foo** is not a decoder" in w and "showing paper" in w
               for w in notes), notes  # fmt: skip
    at.selectbox(key="split").set_value("calibration").run()  # a choice retires the notice
    assert not any("**train**" in w for w in warnings(at))
    at = app("oracle", run="synht")
    notes = [e.value.replace("\\", "") for e in at.sidebar.warning]
    assert any("synht" in w and "closest: synth" in w and "showing" in w for w in notes), notes


def test_compare_link_keeps_the_good_values_and_names_the_bad(env):
    at = app("compare", runs="nope,synth", kappas="0,abc,8")
    assert at.multiselect(key="cmp_runs").value == ["synth"]
    assert at.text_input(key="cmp_kappas").value == "8"
    notes = warnings(at)
    assert any("nope is not one of the choices" in w and "showing synth" in w for w in notes)
    assert any("kappa 0 is not > 0" in w and "abc is not a number" in w and "showing 8" in w
               for w in notes), notes  # fmt: skip
    at = app("compare", kappas="abc")
    assert any("showing each run's T_max instead" in w for w in warnings(at)), warnings(at)


def test_out_of_range_threshold_link_is_replaced_with_a_message(env):
    at = app("oracle", threshold="1.7")
    want = calibrated(env)
    assert exact_box(at).value == pytest.approx(want)
    notes = warnings(at)
    assert any("1.7" in w and "outside [0, 1]" in w and f"{want:.4g}" in w for w in notes), notes


def test_exact_threshold_out_of_range_is_refused_with_a_message(env):
    at = app("oracle", threshold="0.6")
    exact_box(at).set_value(1.5).run()
    assert not at.exception
    assert exact_box(at).value == pytest.approx(0.6)
    assert slider(at).value == pytest.approx(0.6)
    assert qp(at, "threshold") == "0.6"
    assert any("1.5" in w and "outside [0, 1]" in w and "0.6" in w for w in warnings(at))
    exact_box(at).set_value(0.7).run()  # a good value clears it
    assert not any("outside" in w for w in warnings(at))
    assert qp(at, "threshold") == "0.7"


def test_kappa_zero_is_refused_with_a_message(env):
    at = app("oracle")
    at.number_input(key="kappa").set_value(0.0).run()
    assert not at.exception
    assert at.number_input(key="kappa").value is None and qp(at, "kappa") is None
    assert any("kappa must be > 0" in w and "T_max" in w for w in warnings(at))
    at.number_input(key="kappa").set_value(4.0).run()
    at.number_input(key="kappa").set_value(-1.0).run()
    assert at.number_input(key="kappa").value == 4.0 and qp(at, "kappa") == "4"
    assert any("kept kappa = 4" in w for w in warnings(at))
    at = app("oracle", kappa="0")
    assert at.number_input(key="kappa").value is None
    assert any("kappa 0" in w and "T_max" in w for w in warnings(at))


def test_stale_exact_box_in_a_slider_request_does_not_undo_the_step(env):
    """What a browser sends when a second slider step leaves before the first rerun returns:
    the new slider value and the box's old value. The step must win; C is one session value
    that each control's callback writes."""
    at = app("oracle", threshold="0.5")
    slider(at).set_value(0.505).run()
    assert exact_box(at).value == pytest.approx(0.505)
    assert at.session_state["threshold"] == pytest.approx(0.505)
    slider(at).set_value(0.51)
    exact_box(at).set_value(0.5)  # stale: the value before the last step
    at.run()
    assert slider(at).value == pytest.approx(0.51)
    assert exact_box(at).value == pytest.approx(0.51)
    assert qp(at, "threshold") == "0.51"
    # The mirror case: steps of the box with a stale slider.
    exact_box(at).set_value(0.6).run()
    exact_box(at).set_value(0.6001)
    slider(at).set_value(0.51)
    at.run()
    assert exact_box(at).value == pytest.approx(0.6001)
    assert qp(at, "threshold") == "0.6001"


def test_switching_run_resets_the_threshold_to_that_runs_choice(env):
    at = app("oracle", threshold="0.42")
    assert exact_box(at).value == pytest.approx(0.42)
    at.selectbox(key="run").set_value("synth_topk").run()
    # synth_topk has no calibration split: the default, not synth's 0.42.
    assert exact_box(at).value == pytest.approx(0.9)
    at.selectbox(key="run").set_value("synth").run()
    assert exact_box(at).value == pytest.approx(calibrated(env))


def test_run_selector_help_names_the_real_folders(env, tmp_path):
    at = app()
    text = at.selectbox(key="run").help.replace("\\", "")
    assert str(env) in text and str(tmp_path / "work") in text
    assert "DYNCONF_WORK" in text.replace("\\", "")


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser_server(dashboard_runs, tmp_path_factory):
    from tests.app.serve import serve_app

    root = tmp_path_factory.mktemp("state_runs")
    for name in ("synth", "synth_topk"):
        (root / name).symlink_to(dashboard_runs / name)
    with serve_app(root, root.parent / "work", root.parent / "streamlit.log") as info:
        yield info


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip("playwright.sync_api")
    from tests.app.serve import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with launch_chromium() as b:
        yield b


def _idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        polling="raf",
        timeout=30_000,
    )


@pytest.mark.browser
@pytest.mark.parametrize("attempt", range(3))
def test_rapid_keyboard_steps_are_never_lost(browser_server, chromium, attempt):
    """Six ArrowRight presses 0.12 s apart from C = 0.5 end at 0.53 everywhere, and the thumb
    never moves backwards while the queued reruns come back."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    # On a page of this part of the app (the sidebar is the same on every page).
    page.goto(f"{browser_server['url']}/oracle?run=synth&threshold=0.5")
    page.get_by_role("heading", name="Oracle upper bound", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    assert float(thumb.input_value()) == pytest.approx(0.5)
    # Record every value the thumb shows, from the page itself, at every animation frame.
    page.evaluate(
        """() => { window.__seen = []; const tick = () => {
              const s = document.querySelector('[data-testid="stSlider"] input[type="range"]');
              if (s) window.__seen.push(parseFloat(s.value));
              requestAnimationFrame(tick); }; tick(); }"""
    )
    thumb.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
        time.sleep(0.12)
    # Settled: both controls show the same value (the server has answered the last step).
    page.wait_for_function(
        """() => { const s = document.querySelector('[data-testid="stSlider"] input[type="range"]');
              const n = document.querySelector('input[aria-label="Exact threshold"]');
              return s && n && Math.abs(parseFloat(s.value) - parseFloat(n.value)) < 1e-9; }""",
        polling=100,
        timeout=60_000,
    )
    page.wait_for_timeout(2000)  # late replies of queued reruns would arrive now
    seen = page.evaluate("() => window.__seen")
    final = float(thumb.input_value())
    number = float(page.get_by_label("Exact threshold").input_value())
    backwards = [(a, b) for a, b in zip(seen, seen[1:], strict=False) if b < a - 1e-9]
    assert (final, number) == (pytest.approx(0.53), pytest.approx(0.53)), seen
    assert "threshold=0.53" in page.url
    assert not backwards, f"the thumb jumped back: {backwards}"
    page.close()


# Text the page cut short: a leaf element wider inside than its box, whose overflow is
# hidden or ellipsized (what "88.1..." and "Reduction ..." were); Plotly's SVG is not HTML
# text, and Streamlit's visually hidden "Skip to main content" link is 1 px wide on purpose.
CUT_TEXT = """() => {
  const cut = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.children.length || !el.innerText || !el.innerText.trim()) continue;
    if (el.closest('.js-plotly-plot') || el.clientWidth <= 1) continue;
    const cs = getComputedStyle(el);
    const hides = cs.textOverflow === 'ellipsis' || cs.overflow === 'hidden'
        || cs.overflowX === 'hidden';
    if (hides && el.scrollWidth > el.clientWidth + 1) cut.push(el.innerText.slice(0, 80));
  }
  return cut; }"""
BOXES = """() => {
  const box = sel => [...document.querySelectorAll(sel)].map(e => {
      const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
  return {slider: box('[data-testid="stSidebar"] [data-testid="stSlider"]')[0],
          main: box('[data-testid="stMainBlockContainer"]')[0],
          tables: box('[data-testid="stDataFrame"], [data-testid="stTable"]'),
          // [scrolled width, shown width] of each visible data grid and static table
          scroll: [...document.querySelectorAll(
              '[data-testid="stDataFrame"] .dvn-scroller, [data-testid="stTable"]')]
              .filter(e => e.offsetParent !== null)
              .map(e => [e.scrollWidth, e.clientWidth]),
          metrics: document.querySelectorAll('[data-testid="stMetric"]').length}; }"""
# Plotly legends that scroll (a scrollbar drawn) or whose last entry lies below the legend's
# box, and select boxes and buttons whose shown text is wider than their box.
CUT_LEGENDS = """() => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const title = (plot.querySelector('.gtitle') || {}).textContent || '(untitled)';
    for (const legend of plot.querySelectorAll('g.legend')) {
      const bar = legend.querySelector('.scrollbar');
      if (bar && bar.getBoundingClientRect().height > 0 && +bar.getAttribute('height') !== 0)
        out.push(title + ': legend scrolls');
      const bg = legend.querySelector('rect.bg');
      if (!bg) continue;
      const box = bg.getBoundingClientRect();
      for (const entry of legend.querySelectorAll('g.traces')) {
        const r = entry.getBoundingClientRect();
        if (r.height && (r.bottom > box.bottom + 2 || r.right > box.right + 2))
          out.push(title + ': legend entry cut: ' + entry.textContent);
      }
    }
  }
  return out; }"""
CUT_CONTROLS = """() => {
  const out = [];
  const sel = '[data-testid="stSelectbox"] [data-baseweb="select"] div, '
      + '[data-testid="stDownloadButton"] button p, [data-testid="stButton"] button p';
  for (const el of document.querySelectorAll(sel)) {
    if (el.offsetParent === null || !el.innerText || el.children.length > 1) continue;
    if (el.scrollWidth > el.clientWidth + 1) out.push(el.innerText.slice(0, 60));
  }
  for (const input of document.querySelectorAll('[data-testid="stSelectbox"] input')) {
    if (input.value && input.scrollWidth > input.clientWidth + 1) out.push(input.value);
  }
  return out; }"""
PRESENTATION = {
    "oracle": ("Oracle upper bound", "run=synth&threshold=0.5251"),
    "selection": ("Threshold selection", "run=synth&threshold=0.5251"),
    "samples": ("Samples", "run=synth&threshold=0.5251&show=wrong"),
    "compare": (
        "Compare runs and decoders",
        "run=synth&runs=synth,synth_topk&decoders=paper,mean,step,entropy,margin,gap&kappas=4,16",
    ),
    "policies": ("Exit policies", "run=synth&threshold=0.5251"),
    "runs": ("Runs", "run=synth"),
    "explorer": ("Threshold explorer", "run=synth&threshold=0.5251"),
}


def _layout_problems(page, name: str, width: int, height: int) -> dict:
    """What is cut, scrolls sideways or leaves the page on this page at this size."""
    problems = {}
    boxes = page.evaluate(BOXES)
    left, top, right, bottom = boxes["slider"]
    if not (top >= 0 and bottom <= height and right <= width):
        problems["slider"] = boxes["slider"]
    for table in boxes["tables"]:
        if table[2] > boxes["main"][2] + 1:
            problems["table"] = (table, boxes["main"])
    sideways = [w for w in boxes["scroll"] if w[0] > w[1] + 1]
    if sideways:
        problems["table scrolls sideways"] = sideways
    for what, script in (("cut text", CUT_TEXT), ("legend", CUT_LEGENDS),
                         ("control", CUT_CONTROLS)):  # fmt: skip
        found = page.evaluate(script)
        if found:
            problems[what] = found
    if name in ("oracle", "selection", "samples"):
        assert boxes["metrics"] >= 4, name  # the checks above saw the metrics
    return problems


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1024, 768), (1280, 800)], ids=["1024x768", "1280x800"])
def test_presentation_layout(browser_server, chromium, tmp_path, size):
    """At a projector's 1024x768 and a laptop's 1280x800: the threshold slider above the
    sidebar's fold, no text, legend, select box or button of the sidebar or of these pages
    cut short, and every table inside the page without scrolling sideways."""
    width, height = size
    page = chromium.new_page(viewport={"width": width, "height": height})
    problems = {}
    for name, (title, query) in PRESENTATION.items():
        page.goto(f"{browser_server['url']}/{name}?{query}")
        page.get_by_role("heading", name=title, exact=True).wait_for(timeout=90_000)
        page.locator('[data-testid="stSidebar"] [data-testid="stSlider"]').wait_for()
        if name != "runs":
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=90_000)
        if name in ("oracle", "selection", "compare", "policies"):
            page.locator('[data-testid="stDataFrame"], [data-testid="stTable"]').first.wait_for(
                state="attached", timeout=90_000
            )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(tmp_path / f"{name}_{width}.png"), full_page=True)
        for what, found in _layout_problems(page, name, width, height).items():
            problems[f"{name}: {what}"] = found
    assert not problems, problems
    page.close()


@pytest.mark.browser
def test_an_unknown_page_in_the_link_is_named(browser_server, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{browser_server['url']}/oracel?run=synth")
    page.get_by_text("There is no page oracel (closest: oracle); showing the home page").wait_for(
        timeout=60_000
    )
    page.close()


@pytest.mark.browser
def test_sample_downloads_are_named_with_the_sample_id(browser_server, chromium, dashboard_runs):
    from dynconf.core.store import load_run

    sp = load_run(dashboard_runs / "synth").split("test")
    sid = int(sp.ids[5])
    page = chromium.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(f"{browser_server['url']}/samples?run=synth&threshold=0.5&sample={sid}")
    page.get_by_role("heading", name="Samples", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="CSV").first
    with page.expect_download(timeout=120_000) as info:
        button.click()
    assert info.value.suggested_filename == f"sample_{sid}_confidence.csv"
    page.close()


def test_selection_latency_delta_names_what_it_is_against(env):
    run = load_run(env / "synth")
    sel = metrics.select_threshold(decode(run.split("calibration")), decode(run.split("test")))
    at = app("selection")
    box = next(m for m in at.metric if m.label == "Mean latency on test")
    assert box.value == f"{sel.test.mean_latency:.2f} steps"
    assert box.proto.delta == f"{sel.test.mean_latency - run.T_max:+.2f} steps vs T = {run.T_max}"

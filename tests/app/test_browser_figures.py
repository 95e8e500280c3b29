"""Charts drawn with the vendored Plotly.js (dynconf/app/plotlyjs.py) in a real Chromium: the
Oracle page's after a switch from the explorer and on a link opened in a new tab, following
its controls; the Policies page's three, its WebGL exit scatter drawn as an SVG scatter.
Streamlit's own Plotly.js is never fetched."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.app.serve import CHROMIUM, launch_chromium, serve_app

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

CHART = ".st-key-oracle-fig1 .js-plotly-plot"
# The traces Plotly.js holds for the Oracle chart, once drawn; and whether Streamlit's own
# Plotly.js chunk was ever fetched by the tab.
DRAWN = f"() => document.querySelector('{CHART}')?.data?.map(t => t.name) ?? null"
STREAMLIT_PLOTLY = (
    "() => performance.getEntriesByType('resource').some(e => /PlotlyChart/.test(e.name))"
)


@pytest.fixture(scope="module")
def server(dashboard_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle_runs")
    (root / "synth").symlink_to(dashboard_runs / "synth")
    with serve_app(root, root.parent / "work", root.parent / "streamlit.log") as info:
        yield {**info, "runs": root}


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


def library_traces(server, show_all: bool) -> list[str]:
    from dynconf.core.store import load_run
    from dynconf.core.view import View
    from dynconf.report import figures

    view = View(load_run(server["runs"] / "synth"), "test", "paper", None, disk=False)
    chart = figures.build_figure(
        "oracle_bound", view, threshold=0.5, variant="first_correct", never="cap",
        show_all=show_all,
    )  # fmt: skip
    return [t.name for t in chart.figure.data]


def wait_drawn(page, want: list[str]) -> None:
    try:
        page.wait_for_function(
            f"(want) => JSON.stringify(({DRAWN})()) === JSON.stringify(want)"
            f" && document.querySelector('{CHART} .main-svg .trace')",
            arg=want,
            timeout=60_000,
        )
    except playwright_api.TimeoutError:
        raise AssertionError(f"drawn {page.evaluate(DRAWN)}, want {want}") from None


@contextlib.contextmanager
def new_tab(browser):
    """A page in a browser context of its own at 1024x768 (nothing cached from another
    test), and the list its page errors are collected in."""
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, errors
    finally:
        context.close()


def test_switch_from_the_explorer_draws_with_the_vendored_bundle(server, browser):
    with new_tab(browser) as (page, errors):
        page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
        page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Oracle").first.click()
        page.get_by_role("heading", name="Oracle upper bound", exact=True).wait_for(timeout=60_000)
        wait_drawn(page, library_traces(server, show_all=True))
        assert not page.evaluate(STREAMLIT_PLOTLY)
        # Its control redraws it in place: the other oracle variants go.
        page.get_by_text("Also draw the other oracle variants").click()
        wait_drawn(page, library_traces(server, show_all=False))
        assert page.locator(CHART).count() == 1
        assert not errors, errors


def test_a_link_to_the_oracle_page_draws_it_in_a_new_tab(server, browser):
    with new_tab(browser) as (page, errors):
        page.goto(f"{server['url']}/oracle?run=synth&threshold=0.5&all=0")
        wait_drawn(page, library_traces(server, show_all=False))
        assert not page.evaluate(STREAMLIT_PLOTLY)
        # The chart spans the page's column (the component is as wide as its element).
        width = page.evaluate(f"() => document.querySelector('{CHART}').clientWidth")
        column = page.locator(".st-key-oracle-fig1").bounding_box()["width"]
        assert width == pytest.approx(column, abs=2)
        assert not errors, errors


def test_policies_page_draws_its_charts_with_the_vendored_bundle(server, browser):
    with new_tab(browser) as (page, errors):
        page.goto(f"{server['url']}/policies?run=synth&threshold=0.5")
        keys = ("policies-fronts", "policies-exit-histogram", "policies-exit-scatter")
        for key in keys:
            page.locator(f".st-key-{key} .js-plotly-plot .main-svg .trace").first.wait_for(
                timeout=120_000
            )
        types = page.evaluate(
            """(keys) => keys.map(k => [...new Set(document.querySelector(`.st-key-${k}
                .js-plotly-plot`)._fullData.map(t => t.type))])""",
            list(keys),
        )
        assert "scattergl" not in {t for found in types for t in found}
        assert types[2] == ["scatter"]  # the exit scatter, sent as scattergl, drawn in SVG
        # Every sample of the split is a point of the exit scatter.
        from dynconf.core.store import load_run

        n = len(load_run(server["runs"] / "synth").split("test").labels)
        points = page.evaluate(
            """() => document.querySelector('.st-key-policies-exit-scatter .js-plotly-plot')
                ._fullData
                .filter(t => t.name.startsWith('correct (') || t.name.startsWith('wrong ('))
                .reduce((s, t) => s + t.x.length, 0)"""
        )
        assert points == n
        assert not page.evaluate(STREAMLIT_PLOTLY)
        assert not errors, errors

"""The dashboard in a real Chromium (Playwright on Debian's /usr/bin/chromium).

Starts ``streamlit run app.py`` on a free port against a temporary runs root, opens a deep
link to the threshold explorer, moves the threshold slider with the keyboard, checks the
metrics against the library, downloads a PNG and saves docs/screenshot_explorer.png.
It also measures the timings docs/README_app.md reports; run with ``-s`` to see them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.app.serve import CHROMIUM, launch_chromium, serve_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(dashboard_runs, tmp_path_factory):
    """A real Streamlit server; shipped runs are linked in beside the synthetic one.

    The damaged run joins only in the last test, so the README screenshot shows a clean list.
    """
    root = tmp_path_factory.mktemp("browser_runs")
    (root / "synth").symlink_to(dashboard_runs / "synth")
    for run in sorted((ROOT / "cached_runs").glob("*/meta.json")):
        (root / run.parent.name).symlink_to(run.parent)
    with serve_app(root, root.parent / "work", root.parent / "streamlit.log") as info:
        yield {**info, "runs": root}


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


def metric_value(page, label: str):
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]')


def instant_value(page, label: str):
    """A metric of the instant explorer (drawn by the component, as text)."""
    box = page.locator(".dci-metric").filter(has_text=label).first
    return box.locator(".dci-value")


def move_slider(page, expected, count: int):
    """Press ArrowRight on the explorer's own slider ``count`` times; after each press wait
    until the component has redrawn everything for the new threshold and shows the library's
    numbers. Returns (seconds to redrawn, final threshold)."""
    slider = page.locator("input.dci-slider")
    moves = []
    for _ in range(count):
        now = round(float(slider.input_value()) + 0.005, 6)
        res = expected(now)
        slider.focus()
        t1 = time.perf_counter()
        page.keyboard.press("ArrowRight")
        # Poll every animation frame (expect() backs off up to 1 s and would inflate timings).
        page.wait_for_function(
            """([want, thr]) => {
                const root = document.querySelector('.dci-root');
                const box = [...document.querySelectorAll('.dci-metric')]
                    .find(m => m.innerText.startsWith('Mean latency'));
                return root && root.dataset.rendered === thr && box
                    && box.querySelector('.dci-value').innerText === want;
            }""",
            arg=[f"{res.mean_latency:.2f} steps", f"{now:.4f}"],
            polling="raf",
            timeout=30_000,
        )
        moves.append(time.perf_counter() - t1)
        playwright_api.expect(instant_value(page, "Accuracy")).to_have_text(
            f"{100 * res.accuracy:.2f} %"
        )
        playwright_api.expect(instant_value(page, "Spikes saved")).to_have_text(
            f"{100 * res.spike_saving:.1f} %"
        )
    return moves, now


def test_explorer_in_a_real_browser(server, browser, tmp_path):
    from PIL import Image

    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    run = load_run(server["runs"] / "synth")
    sp = run.split("test")
    dec = decode(sp, "paper")

    def expected(c: float):
        return metrics.evaluate(dec, c, spikes=sp.spikes, neurons=run.meta["neurons"])

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    t0 = time.perf_counter()
    # A deep link straight to a page, as a shared URL would be, on the server's first run.
    page.goto(f"{server['url']}/explorer?run=synth&split=test&decoder=paper&threshold=0.5")
    page.get_by_role("heading", name="Threshold explorer", exact=True).wait_for(timeout=60_000)
    first_content = time.perf_counter() - t0
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    first_chart = time.perf_counter() - t0
    playwright_api.expect(instant_value(page, "Mean latency")).to_have_text(
        f"{expected(0.5).mean_latency:.2f} steps", timeout=30_000
    )
    # The server's own numbers stay in the page, hidden once the component has drawn.
    playwright_api.expect(metric_value(page, "Mean latency")).to_be_hidden()
    assert page.locator(".dci-root .js-plotly-plot").count() == 4

    moves, now = move_slider(page, expected, 5)
    # On release the app's threshold follows: the sidebar, the URL (and so the other pages).
    number = page.get_by_label("Exact threshold")
    playwright_api.expect(number).to_have_value(f"{now:.4f}", timeout=30_000)
    page.wait_for_function(f"() => location.search.includes('threshold={now:.6g}')", timeout=30_000)
    # The server does not recompute what the browser has shown: no fallback at this C.
    playwright_api.expect(metric_value(page, "Mean latency")).to_have_count(0, timeout=30_000)
    # ... and the echo of that report never moves the explorer's slider back.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000
    )
    assert float(page.locator("input.dci-slider").input_value()) == pytest.approx(now)
    # The sidebar moves C: the explorer adopts it.
    number.fill("0.6")
    number.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.dci-root').dataset.rendered === '0.6000'", timeout=30_000
    )
    playwright_api.expect(instant_value(page, "Mean latency")).to_have_text(
        f"{expected(0.6).mean_latency:.2f} steps"
    )

    # Download the accuracy-latency chart as PNG (rendered by kaleido in the server).
    page.get_by_text("Download these charts").click()
    png_button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="PNG").first
    t2 = time.perf_counter()
    with page.expect_download(timeout=120_000) as info:
        png_button.click()
    download = info.value
    png_time = time.perf_counter() - t2
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert target.name == "accuracy_latency.png" and target.stat().st_size > 0
    with Image.open(target) as im:
        im.verify()
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size[0] > 500

    # The one-click figure pack: the same files as `dynconf export`, for the current view.
    pack = page.locator('[data-testid="stDownloadButton"]').filter(has_text="Figure pack")
    t3 = time.perf_counter()
    with page.expect_download(timeout=180_000) as info:
        pack.click()
    pack_time = time.perf_counter() - t3
    zpath = tmp_path / info.value.suggested_filename
    info.value.save_as(zpath)
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
        summary = json.loads(zf.read("metrics.json"))
    assert {"accuracy_latency.pdf", "exit_scatter.svg", "oracle_bound.png", "metrics.tex"} <= names
    assert summary["context"]["threshold"] == pytest.approx(0.6)
    assert summary["metrics"]["accuracy"] == pytest.approx(expected(0.6).accuracy)

    # The README screenshot: a real shipped run when there is one, else the synthetic run.
    shipped = [
        p.name for p in sorted(server["runs"].iterdir()) if p.name not in ("synth", "broken")
    ]
    name = "cifar10_resnet20" if "cifar10_resnet20" in shipped else (shipped or ["synth"])[0]
    shipped_timings = {}
    if name != "synth":
        # the same measurements on the real run (CIFAR-10: 10,000 test samples x 64 steps)
        ship = load_run(server["runs"] / name)
        ship_split = ship.split("test")
        ship_dec = decode(ship_split, "paper")

        def ship_expected(c: float):
            return metrics.evaluate(
                ship_dec, c, spikes=ship_split.spikes, neurons=ship.meta.get("neurons")
            )

        t4 = time.perf_counter()
        page.goto(f"{server['url']}/explorer?run={name}&split=test&decoder=paper&threshold=0.5")
        page.wait_for_function(
            "() => document.querySelector('.dci-root')?.dataset.rendered === '0.5000'",
            timeout=90_000,
        )
        shipped_timings["shipped_page_open_to_charts_s"] = round(time.perf_counter() - t4, 2)
        playwright_api.expect(instant_value(page, "Mean latency")).to_have_text(
            f"{ship_expected(0.5).mean_latency:.2f} steps"
        )
        ship_moves, _ = move_slider(page, ship_expected, 3)
        shipped_timings |= {
            "shipped_run": f"{name} (test split, {ship_split.N} samples, T_max {ship.T_max})",
            "shipped_slider_step_to_charts_redrawn_s": [round(m, 3) for m in ship_moves],
        }
    page.goto(f"{server['url']}/explorer?run={name}")
    page.locator(".dci-root[data-rendered^='0.']").wait_for(timeout=90_000)
    page.wait_for_timeout(1500)  # let Plotly finish its transitions
    page.screenshot(path=str(ROOT / "docs" / "screenshot_explorer.png"))
    # Nothing the explorer loads comes from outside this machine (Plotly.js is served inline).
    host = server["url"]
    outside = [u for u in seen if not u.startswith((host, "blob:", "data:", "about:"))]
    assert not outside, outside

    timings = {
        "server_start_to_ready_s": round(server["ready"] - server["started"], 2),
        "page_open_to_page_title_s": round(first_content, 2),
        "page_open_to_first_chart_s": round(first_chart, 2),
        "slider_step_to_charts_redrawn_s": [round(m, 3) for m in moves],
        "slider_step_to_charts_redrawn_median_s": round(sorted(moves)[len(moves) // 2], 3),
        "first_png_download_s": round(png_time, 2),
        "figure_pack_zip_s": round(pack_time, 2),
        "screenshot_run": name,
        **shipped_timings,
    }
    print("\nbrowser timings:", json.dumps(timings))
    if os.environ.get("DYNCONF_TIMINGS"):
        Path(os.environ["DYNCONF_TIMINGS"]).write_text(json.dumps(timings, indent=2) + "\n")


def test_clicking_an_explorer_point_picks_that_sample(server, browser):
    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    sp = load_run(server["runs"] / "synth").split("test")
    res = metrics.evaluate(decode(sp, "paper"), 0.5)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
    page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
    scatter = page.locator(".dci-scatter")
    scatter.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    # Screen position of the 4th "wrong" point, as the component painted it.
    position = int(np.flatnonzero(~res.correct)[3])
    point = page.evaluate("(i) => document.querySelector('.dci-root').dciView.pointOf(i)", position)
    page.mouse.click(point["x"], point["y"])
    link = page.get_by_text(f"Sample {int(sp.ids[position])} picked; open Samples")
    playwright_api.expect(link).to_be_visible(timeout=30_000)
    # The picked point is ringed: dark pixels on a circle of radius 7 px around it.
    ringed = page.evaluate(RING, point)
    assert ringed >= 12, ringed
    link.click()
    playwright_api.expect(metric_value(page, "Sample id")).to_have_text(
        str(int(sp.ids[position])), timeout=30_000
    )
    assert not page.locator('[data-testid="stException"]').count()


# Dark ring pixels on the circle of radius 7 CSS px around a point of the scatter's canvas.
RING = """(pt) => {
    const v = document.querySelector('.dci-root').dciView, cv = v.canvases.scatter;
    const r = cv.getBoundingClientRect(), dpr = devicePixelRatio, ctx = cv.getContext('2d');
    let dark = 0;
    for (let k = 0; k < 32; k++) {
        const a = 2 * Math.PI * k / 32;
        const x = Math.round((pt.x - r.left + 7 * Math.cos(a)) * dpr);
        const y = Math.round((pt.y - r.top + 7 * Math.sin(a)) * dpr);
        const d = ctx.getImageData(x, y, 1, 1).data;
        if (d[3] > 200 && d[0] + d[1] + d[2] < 150) dark++;
    }
    return dark; }"""


PAINTED = """() => {
    const v = document.querySelector('.dci-root').dciView, s = v.state;
    const gd = v.charts.scatter, fl = gd._fullLayout, ya = fl.yaxis, dpr = devicePixelRatio;
    const px = [], steps = [], pixels = [];
    const ctx = v.canvases.scatter.getContext('2d');
    for (let i = 0; i < v.p.N; i++) {
        // Plotly's own inverse mapping of the painted point: its exit step, jitter included.
        steps.push(ya.p2l(v.py[i] - ya._offset));
        px.push(v.px[i]);
    }
    // The points at both ends of the x axis against Plotly's own position of their ids.
    const ids = [...v.p.a.ids], xa = fl.xaxis;
    const ends = [ids.indexOf(Math.min(...ids)), ids.indexOf(Math.max(...ids))];
    const xEnds = ends.map(i => [v.px[i], xa._offset + xa.l2p(ids[i])]);
    const wrong = [...v.p.work.correct].findIndex(c => c === 0);
    const at = ctx.getImageData(Math.round(v.px[wrong] * dpr), Math.round(v.py[wrong] * dpr), 1, 1);
    return {steps, px, xEnds, ok: [...s.h.ok], bad: [...s.h.bad], cap_lat: [...s.cap.latency],
            cap_acc: [...s.cap.accuracy], wrong, pixel: [...at.data],
            wrongColor: v.look.points[1].color,
            plane: v.canvases.plane.getContext('2d').getImageData(0, 0, v.canvases.plane.width,
                v.canvases.plane.height).data.some(x => x > 0)};
}"""


def test_explorer_paints_the_librarys_exits(server, browser):
    """What the canvases show after a keyboard step is the library's answer at that C: each
    sample's point sits at its exit step (read back through Plotly's axis), the histogram's
    bars and the capped curve are the library's counts and curve, a wrong sample's point has
    the wrong colour, and the plane's overlay is not blank."""
    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    dec = decode(load_run(server["runs"] / "synth").split("test"), "paper")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
    page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
    page.locator("input.dci-slider").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.locator(".dci-root[data-rendered='0.5150']").wait_for(timeout=30_000)
    got = page.evaluate(PAINTED)
    res = metrics.evaluate(dec, 0.515)
    drawn = np.asarray(got["steps"])
    assert np.all(np.abs(drawn - res.exit_steps) <= 0.31)  # the fixed jitter is +-0.3
    # Plotly rounds its own positions to 0.01 px; a slope taken from them drifts far more.
    for painted, plotly_x in got["xEnds"]:
        assert abs(painted - plotly_x) <= 0.02, (painted, plotly_x)
    T = dec.T
    np.testing.assert_array_equal(
        got["ok"], np.bincount(res.exit_steps[res.correct], minlength=T + 1)[1:]
    )
    np.testing.assert_array_equal(
        got["bad"], np.bincount(res.exit_steps[~res.correct], minlength=T + 1)[1:]
    )
    curve = metrics.capped_curve(dec, 0.515)
    assert got["cap_lat"] == curve.latency.tolist() and got["cap_acc"] == curve.accuracy.tolist()
    assert got["wrong"] == int(np.flatnonzero(~res.correct)[0])
    # The canvas keeps colours premultiplied by alpha: reading back may differ by a unit.
    assert np.abs(np.subtract(got["pixel"][:3], got["wrongColor"])).max() <= 2
    assert got["pixel"][3] > 0
    assert got["plane"]
    page.close()


def test_clicking_a_point_picks_that_sample(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/samples?run=synth&threshold=0.5")
    scatter = page.locator(".js-plotly-plot").filter(has_text="Pick a sample")
    scatter.locator(".main-svg").first.wait_for(timeout=60_000)
    scatter.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    # Screen position of the 4th "wrong" point, from Plotly's own axis mapping.
    point = scatter.evaluate(
        """gd => { const t = gd._fullData[1], k = 3, r = gd.getBoundingClientRect();
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            return {x: r.left + xa._offset + xa.l2p(t.x[k]),
                    y: r.top + ya._offset + ya.l2p(t.y[k]), id: t.x[k]}; }"""
    )
    page.mouse.click(point["x"], point["y"])
    playwright_api.expect(metric_value(page, "Sample id")).to_have_text(
        str(point["id"]), timeout=30_000
    )
    playwright_api.expect(metric_value(page, "Answer at exit")).to_be_visible()
    assert not page.locator('[data-testid="stException"]').count()


def test_damaged_run_shows_reason_in_browser(server, browser, dashboard_runs):
    # A damaged run appearing while the server runs is picked up and reported, not fatal.
    (server["runs"] / "broken").symlink_to(dashboard_runs / "broken")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/runs")
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="broken").first
    playwright_api.expect(alert).to_contain_text("test.outputs.npy", timeout=60_000)
    assert not page.locator('[data-testid="stException"]').count()
    buf = io.BytesIO(page.screenshot())
    assert buf.getbuffer().nbytes > 0


# --------------------------------------------------------------------------- hostile text

PAYLOAD = (
    "x` ![p](http://127.0.0.1:8719/p.png) "
    "[Session expired: log in again](http://127.0.0.1:8719/phish) `y"
)
EVIL = "http://127.0.0.1:8719"


def watch_requests(page) -> list[str]:
    """Every URL the page asks for; requests to the attacker's host are recorded and aborted."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.route(f"{EVIL}/**", lambda route: route.abort())
    return seen


def assert_nothing_injected(page, seen: list[str]) -> None:
    assert page.locator(f'a[href^="{EVIL}"]').count() == 0
    assert page.locator(f'img[src^="{EVIL}"]').count() == 0
    assert not [url for url in seen if url.startswith(EVIL)], seen
    assert not page.locator('[data-testid="stException"]').count()


def test_run_name_in_the_url_draws_no_link_and_fetches_nothing(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    seen = watch_requests(page)
    page.goto(f"{server['url']}/explorer?run={urllib.parse.quote(PAYLOAD)}")
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="Session expired").first
    playwright_api.expect(alert).to_contain_text("from the link is not available", timeout=60_000)
    # The user sees the text exactly as it was in the link, as text.
    assert PAYLOAD.replace("`", "") in alert.inner_text().replace("`", "").replace("\u200b", "")
    page.get_by_role("heading", name="Threshold explorer", exact=True).wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    assert_nothing_injected(page, seen)


def test_dataset_field_on_home_draws_no_link_and_fetches_nothing(server, browser, dashboard_runs):
    run = server["runs"] / "hostile"
    shutil.copytree(dashboard_runs / "synth", run)
    meta = json.loads((run / "meta.json").read_text())
    # Without the URL payload's backticks: inside a run's own text they would make it code.
    meta["dataset"] = meta["notes"] = PAYLOAD.strip("x`y ")
    (run / "meta.json").write_text(json.dumps(meta))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    seen = watch_requests(page)
    page.goto(f"{server['url']}/?run=hostile")
    line = page.locator('[data-testid="stMarkdown"]').filter(has_text="Dataset").first
    playwright_api.expect(line).to_contain_text("Session expired", timeout=60_000)
    page.wait_for_timeout(500)
    assert_nothing_injected(page, seen)


def test_truncating_an_open_run_never_kills_the_server(server, browser, dashboard_runs):
    """A file shrinking under a server that has the run open must never end in SIGBUS."""
    run = server["runs"] / "victim"
    shutil.copytree(dashboard_runs / "synth", run)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/samples?run=victim&threshold=0.5&sample=500")
    playwright_api.expect(metric_value(page, "Sample id")).to_be_visible(timeout=60_000)
    os.truncate(run / "test.outputs.npy", 200)
    # The same session reruns (another sample: the page reads outputs[:, sample])...
    box = page.get_by_label(re.compile(r"Sample \(position"))
    box.fill("501")
    box.press("Enter")
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="victim").first
    playwright_api.expect(alert).to_contain_text("truncated", timeout=60_000)
    assert server["proc"].poll() is None, "the server died"
    # ... and a new session opens a link to it.
    page.goto(f"{server['url']}/samples?run=victim&threshold=0.5&sample=501")
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="victim").first
    playwright_api.expect(alert).to_contain_text("truncated", timeout=60_000)
    assert server["proc"].poll() is None, "the server died"
    with urllib.request.urlopen(f"{server['url']}/_stcore/health", timeout=5) as r:
        assert r.status == 200
    assert not page.locator('[data-testid="stException"]').count()


def test_explorer_metrics_are_never_cut_at_1024_px(server, browser):
    """A projector's 1024x768: every metric of the explorer shows its whole value (never
    cut to "88.1..."), inside the page."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
    page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
    boxes = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMainBlockContainer"]')
                .getBoundingClientRect();
            return [...document.querySelectorAll('.dci-metric:not([hidden])')].map(m => {
                const v = m.querySelector('.dci-value'), r = m.getBoundingClientRect();
                return {text: m.innerText, cut: v.scrollWidth > v.clientWidth + 1,
                        inside: r.left >= main.left - 1 && r.right <= main.right + 1}; }); }"""
    )
    assert len(boxes) == 5 and all(b["text"] for b in boxes), boxes
    assert not [b for b in boxes if b["cut"] or not b["inside"]], boxes
    assert page.locator(".dci-root .js-plotly-plot").count() == 4
    page.close()


def test_explorer_survives_leaving_and_coming_back(server, browser):
    """Samples and back in the same session: the component mounts again on the payload and
    Plotly the page already holds, at the threshold the app kept."""
    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    dec = decode(load_run(server["runs"] / "synth").split("test"), "paper")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
    page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
    slider = page.locator("input.dci-slider")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.locator(".dci-root[data-rendered='0.5050']").wait_for(timeout=30_000)
    page.mouse.click(5, 5)  # move the focus away: the release is reported
    page.wait_for_function("() => location.search.includes('threshold=0.505')", timeout=30_000)
    page.get_by_role("link", name="Samples").first.click()
    page.get_by_role("heading", name="Samples", exact=True).wait_for(timeout=60_000)
    page.get_by_role("link", name="Threshold explorer").first.click()
    page.locator(".dci-root[data-rendered='0.5050']").wait_for(timeout=60_000)
    playwright_api.expect(instant_value(page, "Mean latency")).to_have_text(
        f"{metrics.evaluate(dec, 0.505).mean_latency:.2f} steps"
    )
    assert page.locator(".dci-root .js-plotly-plot").count() == 4
    assert not errors, errors
    page.close()


GRID_ALL = """async ([thresholds]) => {
    const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const view = document.querySelector('.dci-root').dciView;
    const out = [];
    for (const c of thresholds) {
        view.receive({pid: view.pid, c, g: Math.round(c * 200), ext: 1e6 + out.length,
                      override: null});
        await frames();
        out.push({r: view.last, steps: Array.from(view.p.work.steps)});
    }
    return out;
}"""


def test_app_explorer_equals_the_library_at_every_slider_position(server, browser):
    """The app's explorer view (the core and view the HTML report and the widget run too)
    at every grid threshold: exit steps, accuracy and mean latency are the library's."""
    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    sp = load_run(server["runs"] / "synth").split("test")
    dec = decode(sp, "paper")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server['url']}/explorer?run=synth&threshold=0.5")
    page.locator(".dci-root[data-rendered='0.5000']").wait_for(timeout=60_000)
    thresholds = [g / 200 for g in range(201)]
    for js, c in zip(page.evaluate(GRID_ALL, [thresholds]), thresholds, strict=True):
        res = metrics.evaluate(dec, c, spikes=sp.spikes)
        np.testing.assert_array_equal(js["steps"], res.exit_steps, err_msg=f"C = {c}")
        assert (js["r"]["accuracy"], js["r"]["mean_latency"]) == (res.accuracy, res.mean_latency)
    page.close()

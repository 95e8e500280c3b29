"""The threshold explorer in a real browser: keyboard step, drag and first-chart times.

    python -m benchmarks.bench_browser [--steps 12] [--n 50000] [--t 256] [--skip-big]
                                       [--legacy] [--tmp DIR]
    python -m benchmarks.bench_browser --first-chart 4 [--baseline DIR] [--empty-cache]

Starts the app (tests/app/serve.py: ``streamlit run app.py`` on a free port) on the shipped
CIFAR-10 run (cached_runs/cifar10_resnet20: N = 10,000, T = 64) and on a synthetic run of
N x T (default 50,000 x 256, K = 10, float16, written chunk by chunk to a temporary folder
with dynconf.core.store.save_run), and drives Debian's Chromium through Playwright:

- first chart, cold: a fresh server, the explorer deep link opened, until the first Plotly
  chart is on screen; warm: the same link opened again in a new tab of the same server;
- keyboard step: ArrowRight on the explorer's own threshold slider, timed inside the page
  from the keydown event (performance.now) to the frame after the last chart was redrawn
  for that threshold (a MutationObserver on the component's ``data-rendered`` attribute,
  which it sets after every chart's Plotly.react has resolved, then requestAnimationFrame);
  after each step the page must show the library's mean latency for that threshold;
- drag: the slider's thumb dragged with the mouse for about 2 s (four mouse events per
  Playwright call); updates per second are the component's redraws showing a new threshold,
  counted in the page over that time (printed beside the slider's input events per second:
  the component paints at most once per animation frame, whatever the input rate); then the
  page itself moves the slider one grid step at every animation frame for 2 s (an "input"
  event, as a drag sends) and counts the redraws: whether the explorer keeps up with a
  frame-rate drag, which Playwright's mouse cannot send here.

``--legacy`` measures the page as it was before the instant explorer (every step a Streamlit
rerun): the sidebar slider is stepped, and a step ends at the frame after the metric shows
the new value, every chart has been redrawn and the rerun is over. Drag updates are the
metric's changes during the drag.

``--first-chart R`` instead compares the explorer's first chart with a one-chart Streamlit
page (``st.title`` and one ``st.plotly_chart``) served beside the app in the same run, warm
and cold, interleaved (benchmarks/first_chart.py); with ``--baseline DIR`` another tree's app
(e.g. ``git archive HEAD | tar -x -C DIR``) is served and measured beside them. Each opening
prints where its time went (server messages, script chunks, long tasks) on stderr. A cold
server finds its analysis cache on disk filled by an earlier one (a restarted app); with
``--empty-cache`` it starts on an empty one.

The last line is one JSON object: step_ms_median_10k, step_ms_median_50k, first_chart_s_warm,
first_chart_s_cold, updates_per_s_drag (and the per-step lists).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app.serve import launch_chromium, serve_app  # noqa: E402

SHIPPED = REPO / "cached_runs" / "cifar10_resnet20"


def synthetic_run(path: Path, n: int, t: int, k: int = 10, seed: int = 0, chunk: int = 2000):
    """A converted-SNN-like run of n samples x t steps (see tests/helpers.synthetic_split),
    built chunk by chunk so that no float64 [t, n, k] array is ever held."""
    from dynconf.core.store import save_run

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    outputs = np.empty((t, n, k), np.float16)
    ramp = np.minimum(1.0, np.arange(1, t + 1) / 2.0)[:, None, None]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        m = hi - lo
        margin = np.clip(rng.normal(6.0, 2.5, m), 0.0, None)
        clean = rng.normal(0.0, 1.0, (m, k))
        clean[np.arange(m), labels[lo:hi]] += margin
        confused = rng.random(m) < 0.08
        clean[np.flatnonzero(confused), (labels[lo:hi][confused] + 1) % k] += 2.0
        noise = rng.normal(0.0, 2.5, (t, m, k)).astype(np.float32)
        outputs[:, lo:hi] = (ramp * clean[None] + noise).astype(np.float16)
    neurons = 2000
    rate = rng.uniform(0.05, 0.15, n)
    spikes = (neurons * rate[None, :] * (0.8 + 0.4 * rng.random((t, n)))).astype(np.float32)
    save_run(
        path,
        {"test": {"outputs": outputs, "labels": labels, "spikes": spikes}},
        dataset="synthetic",
        model=f"synthetic SNN ({n} x {t}, benchmark)",
        classes=[f"class {c}" for c in range(k)],
        neurons=neurons,
    )


def expected_latency(run_dir: Path, thresholds) -> dict[float, str]:
    """The library's mean-latency text at each threshold (what the page must show)."""
    from dynconf.core import metrics
    from dynconf.core.decoders import decode
    from dynconf.core.store import load_run

    dec = decode(load_run(run_dir).split("test"), "paper")
    return {c: f"{metrics.evaluate(dec, c).mean_latency:.2f} steps" for c in thresholds}


FIRST_CHART = ".js-plotly-plot .main-svg"

# In-page timing of one step (instant explorer): keydown -> the component's data-rendered
# attribute names the new threshold -> next animation frame.
ARM_INSTANT = """([want]) => new Promise(resolve => {
    const root = document.querySelector('.dci-root');
    let t0 = null;
    const obs = new MutationObserver(() => {
        if (t0 !== null && root.dataset.rendered === want) {
            obs.disconnect();
            requestAnimationFrame(() => { window.__step = performance.now() - t0; });
        }
    });
    obs.observe(root, {attributes: true, attributeFilter: ['data-rendered']});
    window.addEventListener('keydown', () => { t0 = performance.now(); },
                            {capture: true, once: true});
    window.__step = null;
    resolve(true);
})"""

# The same for the page before: the metric text, every chart redrawn and the rerun over.
ARM_LEGACY = """([want]) => new Promise(resolve => {
    const charts = [...document.querySelectorAll('.js-plotly-plot')];
    const touched = new Set();
    let t0 = null;
    const latency = () => {
        const box = [...document.querySelectorAll('[data-testid="stMetric"]')]
            .find(m => m.innerText.startsWith('Mean latency'));
        return box && box.querySelector('[data-testid="stMetricValue"]').innerText;
    };
    const check = () => {
        if (t0 === null || window.__step !== null) return;
        const done = latency() === want && touched.size === charts.length
            && !document.querySelector('[data-testid="stStatusWidget"]');
        if (done) requestAnimationFrame(() => { window.__step = performance.now() - t0; });
        else requestAnimationFrame(check);
    };
    const obs = new MutationObserver(records => {
        if (t0 === null) return;
        for (const r of records) {
            charts.forEach((c, i) => { if (c.contains(r.target)) touched.add(i); });
        }
    });
    obs.observe(document.body, {subtree: true, childList: true, attributes: true});
    const start = () => { t0 = performance.now(); requestAnimationFrame(check); };
    window.addEventListener('keydown', start, {capture: true, once: true});
    window.__step = null;
    resolve(true);
})"""


def open_explorer(browser, url: str, run: str, c: float, legacy: bool) -> tuple:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t0 = time.perf_counter()
    page.goto(f"{url}/explorer?run={run}&split=test&decoder=paper&threshold={c}")
    page.locator(FIRST_CHART).first.wait_for(timeout=180_000)
    first = time.perf_counter() - t0
    if legacy:
        page.locator(FIRST_CHART).nth(3).wait_for(timeout=180_000)
    else:
        page.wait_for_function(
            f"() => document.querySelector('.dci-root')?.dataset.rendered === '{c:.4f}'",
            timeout=180_000,
        )
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
    )
    return page, first


def steps(page, run_dir: Path, c0: float, count: int, legacy: bool, compute=None) -> list[float]:
    grid = [round(c0 + 0.005 * (i + 1), 6) for i in range(count)]
    want = expected_latency(run_dir, grid)
    if legacy:
        slider = (
            page.locator('[data-testid="stSlider"]')
            .first.locator('[role="slider"], input[type="range"]')
            .first
        )
    else:
        slider = page.locator("input.dci-slider")
    out = []
    for c in grid:
        slider.focus()
        page.evaluate(ARM_LEGACY if legacy else ARM_INSTANT, [want[c] if legacy else f"{c:.4f}"])
        page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function("() => window.__step !== null", timeout=60_000, polling="raf")
        except Exception:
            state = page.evaluate(
                """() => { const r = document.querySelector('.dci-root');
                return r && {rendered: r.dataset.rendered, status: r.querySelector('.dci-status')
                    .textContent, slider: r.querySelector('.dci-slider').value}; }"""
            )
            raise RuntimeError(f"step to C = {c} never finished: {state}") from None
        out.append(round(page.evaluate("() => window.__step"), 1))
        if not legacy:
            if compute is not None:  # the component's own split: arithmetic vs drawing
                compute.append(
                    round(page.evaluate("() => window.__dynconfInstant.timing.compute_ms"), 2)
                )
            shown = page.locator(".dci-metric").filter(has_text="Mean latency")
            text = shown.locator(".dci-value").inner_text()
            assert text == want[c], (c, text, want[c])
        page.wait_for_timeout(150)  # keys 150 ms apart (a person holding the key: ~30/s)
    return out


def drag(page, legacy: bool, seconds: float = 2.0) -> float:
    """Updates per second while the thumb is dragged across the slider."""
    if legacy:
        box = (
            page.locator('[data-testid="stSlider"]')
            .first.locator('input[type="range"]')
            .first.bounding_box()
        )
        track = page.locator('[data-testid="stSlider"]').first.bounding_box()
        page.evaluate(
            """() => { window.__updates = 0; const seen = {v: null};
            const obs = new MutationObserver(() => {
                const box = [...document.querySelectorAll('[data-testid="stMetric"]')]
                    .find(m => m.innerText.startsWith('Mean latency'));
                const v = box && box.innerText;
                if (v !== seen.v) { seen.v = v; window.__updates++; } });
            obs.observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
        )
    else:
        box = page.locator("input.dci-slider").bounding_box()
        track = box
        # A redraw counts when it shows a threshold the previous one did not.
        page.evaluate(
            """() => { window.__updates = 0; window.__inputs = 0;
            const root = document.querySelector('.dci-root'); let last = root.dataset.rendered;
            new MutationObserver(() => {
                if (root.dataset.rendered === last) return;
                last = root.dataset.rendered; window.__updates++;
            }).observe(root, {attributes: true, attributeFilter: ['data-rendered']});
            document.querySelector('input.dci-slider').addEventListener('input',
                () => window.__inputs++); }"""
        )
    y = box["y"] + box["height"] / 2
    x0, x1 = track["x"] + 0.3 * track["width"], track["x"] + 0.7 * track["width"]
    page.mouse.move(box["x"] + box["width"] / 2 if legacy else x0, y)
    page.mouse.down()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        n += 1
        frac = (n % 40) / 40
        x = x0 + (x1 - x0) * (frac if (n // 40) % 2 == 0 else 1 - frac)
        # Four mouse events per call: one Playwright round trip here takes longer than a
        # frame, and a person's drag sends a mousemove every frame or more often.
        page.mouse.move(x, y, steps=4)
        page.wait_for_timeout(16)
    elapsed = time.perf_counter() - t0
    updates = page.evaluate("() => window.__updates")
    if not legacy:
        inputs = page.evaluate("() => window.__inputs")
        rates = f"{inputs / elapsed:.1f} slider input events/s, {updates / elapsed:.1f} redraws/s"
        print("drag:", rates)
    page.mouse.up()
    return round(updates / elapsed, 1)


# The slider moved one grid step at every animation frame for ~2 s by the page itself (an
# "input" event, as a drag sends): whether the explorer keeps up with a frame-rate drag, which
# Playwright's mouse (one acknowledged round trip per event) cannot send on this machine.
FRAME_DRIVE = """([seconds]) => new Promise(resolve => {
    const root = document.querySelector('.dci-root');
    const slider = document.querySelector('input.dci-slider');
    let updates = 0, frames = 0, last = root.dataset.rendered, dir = 1;
    const obs = new MutationObserver(() => {
        if (root.dataset.rendered !== last) { last = root.dataset.rendered; updates++; }
    });
    obs.observe(root, {attributes: true, attributeFilter: ['data-rendered']});
    const t0 = performance.now();
    const tick = () => {
        const now = performance.now();
        if (now - t0 >= 1000 * seconds) {
            obs.disconnect();
            resolve({updates_per_s: updates / ((now - t0) / 1000),
                     frames_per_s: frames / ((now - t0) / 1000)});
            return;
        }
        let v = Math.round(parseFloat(slider.value) * 200) + dir;
        if (v > 160 || v < 60) { dir = -dir; v += 2 * dir; }
        slider.value = String(v / 200);
        slider.dispatchEvent(new Event('input', {bubbles: true}));
        frames++;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
})"""


def frame_drive(page, seconds: float = 2.0) -> dict:
    out = page.evaluate(FRAME_DRIVE, [seconds])
    return {k: round(v, 1) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--t", type=int, default=256)
    ap.add_argument("--skip-big", action="store_true", help="only the shipped run")
    ap.add_argument("--legacy", action="store_true", help="the page before: sidebar slider")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="with --first-chart: another tree's root, its app served beside this one's",
    )
    ap.add_argument(
        "--empty-cache",
        action="store_true",
        help="with --first-chart: every server starts on an empty analysis cache folder",
    )
    ap.add_argument(
        "--first-chart",
        type=int,
        default=0,
        metavar="R",
        help="only compare the first chart with a one-chart page, R repeats (warm and cold)",
    )
    args = ap.parse_args()
    if args.first_chart:
        from benchmarks.first_chart import compare

        print(json.dumps(compare(args.first_chart, args.tmp, args.baseline, args.empty_cache)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench_browser_", dir=args.tmp))
    try:
        runs = tmp / "runs"
        runs.mkdir()
        (runs / SHIPPED.name).symlink_to(SHIPPED)
        big = runs / "synth_big"
        if not args.skip_big:
            t0 = time.perf_counter()
            synthetic_run(big, args.n, args.t)
            print(f"synthetic run {args.n} x {args.t} written in {time.perf_counter() - t0:.1f} s")
        # Room for the big run's analysis: the default 512 MB budget would evict it.
        os.environ.setdefault("DYNCONF_CACHE_MB", "6000")
        result: dict = {}
        with serve_app(runs, tmp / "work", tmp / "streamlit.log", timeout=120) as server, \
                launch_chromium() as browser:  # fmt: skip
            url = server["url"]
            page, cold = open_explorer(browser, url, SHIPPED.name, 0.5, args.legacy)
            page.close()
            page, warm = open_explorer(browser, url, SHIPPED.name, 0.5, args.legacy)
            print(f"first chart: cold {cold:.2f} s, warm {warm:.2f} s")
            compute_small: list[float] = []
            small = steps(page, SHIPPED, 0.5, args.steps, args.legacy, compute_small)
            print("steps 10k (ms):", small)
            rate = drag(page, args.legacy)
            print(f"drag: {rate} updates/s")
            per_frame = None if args.legacy else frame_drive(page)
            print("slider moved at every frame by the page:", per_frame)
            page.close()
            result = {
                "step_ms_median_10k": statistics.median(small),
                "step_ms_median_50k": None,
                "first_chart_s_warm": round(warm, 2),
                "first_chart_s_cold": round(cold, 2),
                "updates_per_s_drag": rate,
                "updates_per_s_per_frame_input": per_frame and per_frame["updates_per_s"],
                "frames_per_s_per_frame_input": per_frame and per_frame["frames_per_s"],
                "steps_ms_10k": small,
                "compute_ms_median_10k": statistics.median(compute_small)
                if compute_small
                else None,
                "mode": "legacy" if args.legacy else "instant",
            }
            if not args.skip_big:
                page, first_big = open_explorer(browser, url, big.name, 0.5, args.legacy)
                print(f"first chart on the big run (decode included): {first_big:.2f} s")
                compute_large: list[float] = []
                large = steps(page, big, 0.5, args.steps, args.legacy, compute_large)
                print(f"steps {args.n // 1000}k (ms):", large)
                per_frame_big = None if args.legacy else frame_drive(page)
                print("big run, slider moved at every frame by the page:", per_frame_big)
                page.close()
                result |= {
                    "step_ms_median_50k": statistics.median(large),
                    "steps_ms_50k": large,
                    "compute_ms_median_50k": statistics.median(compute_large)
                    if compute_large
                    else None,
                    "updates_per_s_per_frame_input_50k": per_frame_big
                    and per_frame_big["updates_per_s"],
                    "first_chart_s_big_cold": round(first_big, 2),
                    "big_run": f"{args.n} x {args.t}",
                }
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

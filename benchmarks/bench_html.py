"""The interactive HTML report: file size, first chart from disk and keyboard-step latency.

    python -m benchmarks.bench_html [--repeats 3] [--steps 15] [--n 50000] [--t 256]
                                    [--skip-big] [--tmp DIR]

Writes the report of the shipped CIFAR-10 run (cached_runs/cifar10_resnet20, test split,
N = 10,000, T = 64, decoder paper, no images) with ``dynconf export RUN --html FILE``, and of
a synthetic N x T run (default 50,000 x 256; benchmarks/bench_browser.synthetic_run), then
opens each from ``file://`` in Debian's Chromium through Playwright with every request
other than the file itself blocked and counted:

- first chart: a new browser context per repeat, from navigation start (the page's
  performance.now() origin) to the first animation frame in which the accuracy-latency
  plane's Plotly SVG is in the document; medians over ``--repeats``;
- keyboard step: ArrowRight on the explorer's slider, timed in the page from the keydown
  event to the frame after the view's ``data-rendered`` names the new threshold (the
  arithmetic, the metrics and the canvas painting of all four charts); after each step the
  page must show the library's mean latency at that threshold.

Targets: CIFAR-10 file <= 5 MB, first chart <= 1.5 s, keyboard step <= 50 ms median; the
50,000 x 256 file <= 25 MB and working. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_browser import ARM_INSTANT, expected_latency, synthetic_run  # noqa: E402
from tests.app.serve import launch_chromium  # noqa: E402

SHIPPED = REPO / "cached_runs" / "cifar10_resnet20"
FIRST = "() => document.querySelector('.dci-plane .main-svg') ? performance.now() : null"


def export(run_dir: Path, out: Path) -> float:
    """Write the report with the command line; its wall time in seconds (with the policy
    table where the run has a calibration split)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "dynconf", "export", str(run_dir), "--html", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def open_file(browser, path: Path) -> tuple:
    """A fresh context and page on the file; (page, first-chart seconds, blocked requests)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    blocked: list[str] = []

    def route(r):
        if r.request.url == path.as_uri():
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="commit")
    first_ms = page.wait_for_function(FIRST, timeout=180_000, polling="raf").json_value()
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=180_000)
    return context, page, first_ms / 1000.0, blocked


def key_steps(page, run_dir: Path, count: int) -> list[float]:
    """ArrowRight steps from the current C; each checked against the library."""
    c0 = page.evaluate("window.dynconfReport.view.c")
    g0 = round(c0 * 200)
    page.evaluate(f"window.dynconfReport.setThreshold({g0} / 200)")
    page.wait_for_function(f"document.querySelector('.dci-root').dataset.rendered === "
                           f"'{g0 / 200:.4f}'")  # fmt: skip
    grid = [(g0 + i + 1) / 200 for i in range(count)]
    want = expected_latency(run_dir, grid)
    slider = page.locator("input.dci-slider")
    out = []
    for c in grid:
        slider.focus()
        page.evaluate(ARM_INSTANT, [f"{c:.4f}"])
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => window.__step !== null", timeout=60_000, polling="raf")
        out.append(round(page.evaluate("() => window.__step"), 1))
        shown = page.locator(".dci-metric").filter(has_text="Mean latency")
        text = shown.locator(".dci-value").inner_text()
        if text != want[c]:
            raise RuntimeError(f"at C = {c} the report shows {text}, the library {want[c]}")
    return out


def measure(browser, run_dir: Path, path: Path, repeats: int, count: int) -> dict:
    firsts, steps, blocked = [], [], []
    for k in range(repeats):
        context, page, first, seen = open_file(browser, path)
        firsts.append(round(first, 3))
        blocked += seen
        if k == 0:
            steps = key_steps(page, run_dir, count)
        context.close()
    return {
        "bytes": path.stat().st_size,
        "first_chart_s": firsts,
        "first_chart_s_median": statistics.median(firsts),
        "step_ms": steps,
        "step_ms_median": statistics.median(steps),
        "requests_blocked": len(blocked),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args(argv)
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="bench_html_"))
    tmp.mkdir(parents=True, exist_ok=True)
    result: dict = {"load_avg_start": os.getloadavg()[0]}
    cifar = tmp / "cifar10_resnet20.html"
    result["export_s_10k"] = round(export(SHIPPED, cifar), 1)
    big = None
    if not args.skip_big:
        big_run = tmp / f"synth_{args.n}x{args.t}"
        if not (big_run / "meta.json").exists():
            synthetic_run(big_run, args.n, args.t)
        big = tmp / f"synth_{args.n}x{args.t}.html"
        result["export_s_big"] = round(export(big_run, big), 1)
    with launch_chromium() as browser:
        result["cifar10_10k"] = measure(browser, SHIPPED, cifar, args.repeats, args.steps)
        if big is not None:
            big_numbers = measure(browser, big_run, big, args.repeats, args.steps)
            result["big"] = {"N": args.n, "T": args.t, **big_numbers}
    r10 = result["cifar10_10k"]
    result["summary"] = {
        "mb_10k": round(r10["bytes"] / 1e6, 2),
        "first_chart_s_10k": r10["first_chart_s_median"],
        "step_ms_median_10k": r10["step_ms_median"],
        "mb_big": round(result["big"]["bytes"] / 1e6, 2) if big else None,
        "first_chart_s_big": result["big"]["first_chart_s_median"] if big else None,
        "step_ms_median_big": result["big"]["step_ms_median"] if big else None,
        "requests": r10["requests_blocked"] + (result["big"]["requests_blocked"] if big else 0),
        "load_avg_end": os.getloadavg()[0],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

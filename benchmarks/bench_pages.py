"""Page switches and Classroom playback in a real browser, this tree against another.

    python -m benchmarks.bench_pages [--repeats 4] [--baseline DIR] [--tmp DIR]

Serves the app of this tree and, with ``--baseline DIR``, the app of another tree (for
example ``git archive HEAD | tar -x -C DIR``) on the same runs (cached_runs/), side by side,
and drives Debian's Chromium at 1024x768, interleaving the two servers at every repeat:

- page switch to Oracle: the explorer deep link on the CIFAR-10 run is opened and left to
  settle (its analysis is cached), then the "Oracle" menu entry is clicked; the time runs to
  the frame at which the Oracle page's first chart is on screen and the app is idle;
- Classroom "fast": on the teaching run (noisy_digits, T = 64) Play is pressed at t = 1 with
  "fast" chosen (and "stop when all have answered" off where the page has it); the time runs
  until t = 64 is shown, and the distinct steps the page showed are counted (a step skipped
  is a step a class never saw).

The last line is one JSON object: per tree, the median switch time (s), the playback time
(s) and the steps shown, with the ratios of this tree to the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app.serve import launch_chromium, serve_app  # noqa: E402

RUNS = REPO / "cached_runs"
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# Every distinct step the Classroom shows while playing: the browser player's own steps, or
# the server-driven page's progress text ("Time step t = k of T").
STEPS_SEEN = """() => { window.__seen = new Set(); const tick = () => {
    const p = document.querySelector('.dcp-root');
    if (p && p.dataset.step) window.__seen.add(+p.dataset.step);
    for (const el of document.querySelectorAll('[data-testid="stProgress"], p')) {
        const m = /Time step t = (\\d+) of/.exec(el.innerText || '');
        if (m) window.__seen.add(+m[1]);
    }
    requestAnimationFrame(tick); }; tick(); }"""


def settle(page) -> None:
    page.wait_for_function(IDLE, polling="raf", timeout=120_000)


def switch_to_oracle(browser, url: str) -> float:
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{url}/explorer?run=cifar10_resnet20&threshold=0.5")
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
    settle(page)
    page.wait_for_timeout(1500)
    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Oracle").first.click()
    page.get_by_role("heading", name="Oracle upper bound", exact=True).wait_for(timeout=60_000)
    page.locator('[data-testid="stMain"] .js-plotly-plot .main-svg').first.wait_for(
        timeout=60_000
    )
    settle(page)
    took = time.perf_counter() - t0
    page.close()
    return took


def classroom_fast(browser, url: str) -> tuple[float, int, int]:
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{url}/classroom?run=noisy_digits")
    page.get_by_role("heading", name="Classroom", exact=True).wait_for(timeout=60_000)
    settle(page)
    page.get_by_text("fast", exact=True).click()
    settle(page)
    toggle = page.get_by_role("switch", name="Stop when all have answered")
    if toggle.count() and toggle.is_checked():
        page.get_by_text("Stop when all have answered").click()
        settle(page)
    page.evaluate(STEPS_SEEN)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Play").click()
    # Over when step 64 was shown and the page offers Play again (the server-driven page), or
    # when the browser's player reports its play finished.
    page.wait_for_function(
        "() => (window.__dynconfClassroom && window.__dynconfClassroom.done !== null) || "
        "(window.__seen.has(64) && [...document.querySelectorAll('button')]"
        ".some(b => b.innerText.trim() === 'Play'))",
        polling="raf",
        timeout=180_000,
    )
    took = time.perf_counter() - t0
    seen = page.evaluate("() => window.__seen.size")
    painted = page.evaluate(
        "() => { const c = window.__dynconfClassroom; if (!c) return [0, null];"
        " const p = c.painted; return [p.length, (p[p.length - 1][1] - p[0][1]) / 1000]; }"
    )
    page.close()
    return took, seen, painted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--baseline", type=Path, default=None, help="another tree's root")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--skip-switch", action="store_true", help="only the Classroom")
    args = ap.parse_args()
    trees = {"this": REPO, **({"baseline": args.baseline} if args.baseline else {})}
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="bench_pages_"))
    tmp.mkdir(parents=True, exist_ok=True)
    out: dict = {name: {"switch_s": [], "classroom_s": [], "steps_shown": []} for name in trees}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                serve_app(RUNS, tmp / f"work_{name}", tmp / f"{name}.log", app_root=root)
            )
            for name, root in trees.items()
        }
        browser = stack.enter_context(launch_chromium())
        for info in servers.values():  # warm each server's caches once
            if not args.skip_switch:
                switch_to_oracle(browser, info["url"])
        for rep in range(0 if args.skip_switch else args.repeats):
            for name, info in servers.items():
                s = switch_to_oracle(browser, info["url"])
                out[name]["switch_s"].append(round(s, 3))
                print(f"[{rep}] {name}: switch to Oracle {s:.2f} s", flush=True)
        for name, info in servers.items():
            took, seen, painted = classroom_fast(browser, info["url"])
            out[name]["classroom_s"].append(round(took, 2))
            out[name]["steps_shown"].append(seen)
            print(f"{name}: Classroom fast, Play to t = 64 in {took:.1f} s, {seen} distinct "
                  f"steps shown ({painted[0]} painted by the browser, first to last "
                  f"{painted[1]} s)", flush=True)
            out[name].setdefault("painted_span_s", []).append(painted[1])
    summary = {
        name: {
            "switch_s_median": statistics.median(v["switch_s"]) if v["switch_s"] else None,
            "classroom_fast_s": v["classroom_s"][0],
            "classroom_steps_shown": v["steps_shown"][0],
            **v,
        }
        for name, v in out.items()
    }
    if "baseline" in summary and not args.skip_switch:
        summary["switch_ratio"] = round(
            summary["this"]["switch_s_median"] / summary["baseline"]["switch_s_median"], 3
        )
    if "baseline" in summary:
        summary["classroom_ratio"] = round(
            summary["this"]["classroom_fast_s"] / summary["baseline"]["classroom_fast_s"], 3
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Page switches, the Policies page's first render and Classroom playback in a real browser,
this tree against another.

    python -m benchmarks.bench_pages [--repeats 4] [--baseline DIR] [--tmp DIR]
                                     [--policy-repeats 1] [--skip-switch] [--skip-floor]
                                     [--skip-classroom]

Serves the app of this tree and, with ``--baseline DIR``, the app of another tree (for
example ``git archive HEAD | tar -x -C DIR``) on the same runs (cached_runs/), side by side,
and drives Debian's Chromium at 1024x768, interleaving the servers at every repeat:

- page switch to Oracle: the explorer deep link on the CIFAR-10 run is opened and left to
  settle (its analysis is cached), then the "Oracle" menu entry is clicked; the time runs to
  the frame at which the Oracle page's own chart has its first trace drawn and the app is
  idle (no status widget, no stale element left from the explorer). The same is measured on
  a minimal two-page Streamlit app served beside them (the floor: a start page with one
  ``st.plotly_chart``, switched to a page with one chart of the Oracle figure's size);
- Policies page, first render (benchmarks/policies_page.py): cold (fresh server, empty
  analysis cache folder), warm in memory (same server, new tab) and warm from disk (fresh
  server on the filled cache folder), from navigation start to its last chart drawn;
- Classroom "fast": on the teaching run (noisy_digits, T = 64) Play is pressed at t = 1 with
  "fast" chosen (and "stop when all have answered" off where the page has it); the time runs
  until t = 64 is shown, and the distinct steps the page showed are counted (a step skipped
  is a step a class never saw).

Every timed opening also prints where its time went, measured inside the page
(benchmarks/page_timing.py): the first and last websocket message from the server, the
heading, the chart's element and its first trace drawn, the script chunks fetched (the
largest named) and the main thread's long tasks (parsing, re-mounting, drawing).

The last line is one JSON object: per tree, the median switch time (s) with the breakdown of
the median run, the Policies page's times, the playback time (s) and the steps shown, the
load average at start and end, and the ratios of this tree to the baseline and to the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import page_timing, policies_page  # noqa: E402
from benchmarks.first_chart import streamlit  # noqa: E402
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


def new_page(browser):
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.add_init_script(page_timing.TIMELINE)
    return page


def timed_switch(
    browser, url: str, path: str, chart_at: str, menu: str, heading: str, chart: str
) -> dict:
    """Open ``url + path``, wait for ``chart_at`` drawn and the app idle, then click the menu
    entry ``menu``: seconds until ``heading`` is shown, ``chart`` (an element's selector) has
    its first trace drawn and the app is idle, with the page's own breakdown."""
    page = new_page(browser)
    page.goto(url + path)
    page.locator(f"{chart_at} .main-svg").first.wait_for(timeout=120_000)
    settle(page)
    page.wait_for_timeout(1500)
    page.evaluate(page_timing.ARM, [heading, chart, True])
    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=menu).first.click()
    page.wait_for_function("() => window.__timeline.done", polling="raf", timeout=120_000)
    took = time.perf_counter() - t0
    out = {"s": round(took, 3), **page.evaluate(page_timing.BREAKDOWN)}
    page.close()
    return out


def switch_to_oracle(browser, url: str) -> dict:
    """The explorer (its analysis cached), then "Oracle" until its chart is drawn."""
    return timed_switch(
        browser, url, "/explorer?run=cifar10_resnet20&threshold=0.5", ".js-plotly-plot",
        "Oracle", "Oracle upper bound", ".st-key-oracle-fig1 .js-plotly-plot",
    )  # fmt: skip


def switch_on_floor(browser, url: str) -> dict:
    """The floor app: its start page (one st.plotly_chart), then a page with one chart."""
    return timed_switch(
        browser, url, "/", ".st-key-floor-a", "Oracle floor", "Oracle floor",
        ".st-key-floor-b .js-plotly-plot",
    )  # fmt: skip


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


def median_breakdown(runs: list[dict]) -> dict:
    """The breakdown of the run whose total is the median (a real run, not a mix)."""
    ordered = sorted(runs, key=lambda r: r["s"])
    return ordered[(len(ordered) - 1) // 2]


def switches(browser, servers: dict, floor_url: str | None, repeats: int) -> dict:
    """Page switches to Oracle, the trees (and the floor app) interleaved at every repeat."""
    targets = {name: (switch_to_oracle, info["url"]) for name, info in servers.items()}
    if floor_url:
        targets["floor"] = (switch_on_floor, floor_url)
    for fn, url in targets.values():  # warm each server's caches once
        fn(browser, url)
    runs: dict = {name: [] for name in targets}
    for rep in range(repeats):
        for name, (fn, url) in targets.items():
            r = fn(browser, url)
            runs[name].append(r)
            print(f"[{rep}] {name}: switch {r['s']:.2f} s: {page_timing.where_time_went(r)}",
                  flush=True)  # fmt: skip
    out = {}
    for name, rs in runs.items():
        out[name] = {
            "switch_s_median": statistics.median(r["s"] for r in rs),
            "switch_s": [r["s"] for r in rs],
            "breakdown_of_median": median_breakdown(rs),
        }
    return out


def policies(browser, trees: dict, tmp: Path, repeats: int, limit_s: float) -> dict:
    """The Policies page's first render, cold and warm, per tree (medians over repeats; an
    opening not drawn within ``limit_s`` counts as that limit)."""
    runs: dict = {name: {"cold": [], "warm_memory": [], "warm_disk": []} for name in trees}
    for rep in range(repeats):
        got = policies_page.measure(browser, trees, RUNS, tmp, rep, limit_s)
        for name, stages in got.items():
            for stage, r in stages.items():
                if r["s"] is None:  # not drawn in time: counted as the limit
                    r = {**r, "s": limit_s}
                runs[name][stage].append(r)
                print(f"[{rep}] {name}: Policies first render, {stage}: {r['s']:.2f} s: "
                      f"{page_timing.where_time_went(r)}", flush=True)  # fmt: skip
    return {
        name: {
            **{
                f"{stage}_s_median": statistics.median(r["s"] for r in rs)
                for stage, rs in stages.items()
            },
            **{f"{stage}_breakdown": median_breakdown(rs) for stage, rs in stages.items()},
        }  # fmt: skip
        for name, stages in runs.items()
    }


def classroom(browser, servers: dict) -> dict:
    out = {}
    for name, info in servers.items():
        took, seen, painted = classroom_fast(browser, info["url"])
        print(f"{name}: Classroom fast, Play to t = 64 in {took:.1f} s, {seen} distinct "
              f"steps shown ({painted[0]} painted by the browser, first to last "
              f"{painted[1]} s)", flush=True)  # fmt: skip
        out[name] = {"classroom_fast_s": round(took, 2), "classroom_steps_shown": seen,
                     "painted_span_s": painted[1]}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--baseline", type=Path, default=None, help="another tree's root")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--skip-switch", action="store_true", help="no page switch")
    ap.add_argument("--skip-floor", action="store_true", help="no floor app beside the trees")
    ap.add_argument("--skip-classroom", action="store_true", help="no Classroom playback")
    ap.add_argument("--policy-repeats", type=int, default=1,
                    help="Policies page first renders per tree (0: none)")  # fmt: skip
    ap.add_argument("--policy-limit", type=float, default=600.0,
                    help="seconds an opening of the Policies page may take")  # fmt: skip
    args = ap.parse_args()
    trees = {"this": REPO, **({"baseline": args.baseline} if args.baseline else {})}
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="bench_pages_"))
    tmp.mkdir(parents=True, exist_ok=True)
    summary: dict = {"load_avg_start": os.getloadavg()}
    with launch_chromium() as browser:
        with contextlib.ExitStack() as stack:
            # The servers get an analysis cache folder of this run's (nothing from before).
            stack.enter_context(policies_page.cache_dir(tmp / "cache_switch"))
            servers = {
                name: stack.enter_context(
                    serve_app(RUNS, tmp / f"work_{name}", tmp / f"{name}.log", app_root=root)
                )
                for name, root in trees.items()
            }
            floor_url = None
            if not (args.skip_switch or args.skip_floor):
                entry = page_timing.floor_app(tmp / "floor")
                env = {**os.environ, "PYTHONPATH": str(REPO)}
                floor_url = stack.enter_context(streamlit(str(entry), env, tmp / "floor.log"))
            if not args.skip_switch:
                summary["switch"] = switches(browser, servers, floor_url, args.repeats)
            if not args.skip_classroom:
                summary["classroom"] = classroom(browser, servers)
        if args.policy_repeats:
            summary["policies_page"] = policies(
                browser, trees, tmp, args.policy_repeats, args.policy_limit
            )
    summary["load_avg_end"] = os.getloadavg()
    summary.update(ratios(summary))
    print(json.dumps(summary))


def ratios(summary: dict) -> dict:
    """This tree against the baseline and the floor, and the targets."""
    out: dict = {"targets": {"switch_s": 1.0, "policies_warm_s": 3.0, "policies_cold_s": 8.0}}
    sw = summary.get("switch", {})
    if "this" in sw:
        this = sw["this"]["switch_s_median"]
        out["switch_s_median"] = this
        if "baseline" in sw:
            out["switch_ratio"] = round(this / sw["baseline"]["switch_s_median"], 3)
        if "floor" in sw:
            out["switch_over_floor"] = round(this / sw["floor"]["switch_s_median"], 3)
    cl = summary.get("classroom", {})
    if "this" in cl and "baseline" in cl:
        out["classroom_ratio"] = round(
            cl["this"]["classroom_fast_s"] / cl["baseline"]["classroom_fast_s"], 3
        )
    pol = summary.get("policies_page", {})
    for stage in ("cold", "warm_memory", "warm_disk"):
        if "this" in pol:
            out[f"policies_{stage}_s"] = pol["this"][f"{stage}_s_median"]
        if "this" in pol and "baseline" in pol:
            out[f"policies_{stage}_ratio"] = round(
                pol["this"][f"{stage}_s_median"] / pol["baseline"][f"{stage}_s_median"], 3
            )
    return out


if __name__ == "__main__":
    main()

"""The Policies page's first render on the CIFAR-10 run, for benchmarks/bench_pages.py.

Per tree, three openings of ``/policies?run=cifar10_resnet20`` in a new tab, each timed from
navigation start to the frame at which its last chart (the exit scatter) is drawn and the
app is idle, with the page's breakdown (benchmarks/page_timing.py):

- cold: a fresh server with an empty analysis cache folder (DYNCONF_CACHE_DIR): imports,
  decode and every fit;
- warm, memory: the same server again (its analyses and fits in memory);
- warm, disk: a fresh server on the cache folder the cold opening filled (the fits and the
  decoded view read back from disk).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from benchmarks import page_timing
from tests.app.serve import serve_app

PATH = "/policies?run=cifar10_resnet20"
LAST_CHART = ".st-key-policies-exit-scatter .js-plotly-plot"


def first_render(browser, url: str, limit_s: float = 600.0) -> dict:
    """Seconds to the page drawn (None when not within ``limit_s``), with its breakdown and
    what the page said when the time ran out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.add_init_script(page_timing.TIMELINE)
    t0 = time.perf_counter()
    page.goto(url + PATH)
    page.evaluate(page_timing.ARM, ["Exit policies", LAST_CHART, False])
    try:
        page.wait_for_function(
            "() => window.__timeline.done", polling="raf", timeout=limit_s * 1000
        )
        took = round(time.perf_counter() - t0, 3)
        shown = None
    except PlaywrightTimeout:
        took = None
        shown = page.evaluate(
            "() => (document.querySelector('[data-testid=\"stMain\"]')?.innerText ?? '')"
            ".slice(0, 300)"
        )
    out = {"s": took, **page.evaluate(page_timing.BREAKDOWN)}
    if shown is not None:
        out["not_drawn_after_s"], out["page_text"] = limit_s, shown
    page.close()
    return out


@contextlib.contextmanager
def cache_dir(path: Path):
    """DYNCONF_CACHE_DIR set to ``path`` for the servers started inside."""
    old = os.environ.get("DYNCONF_CACHE_DIR")
    os.environ["DYNCONF_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DYNCONF_CACHE_DIR", None)
        else:
            os.environ["DYNCONF_CACHE_DIR"] = old


def measure(browser, trees: dict, runs: Path, tmp: Path, rep: int, limit_s: float) -> dict:
    """{tree: {"cold": .., "warm_memory": .., "warm_disk": ..}} for one repeat, the trees
    interleaved at each stage."""
    out: dict = {name: {} for name in trees}
    for name, root in trees.items():
        cache = tmp / f"cache_policies_{name}_{rep}"
        log = tmp / f"pol_{name}.log"
        with cache_dir(cache), serve_app(runs, tmp / f"work_pol_{name}_{rep}", log,
                                         app_root=root) as info:  # fmt: skip
            out[name]["cold"] = first_render(browser, info["url"], limit_s)
            out[name]["warm_memory"] = first_render(browser, info["url"], limit_s)
    for name, root in trees.items():
        cache = tmp / f"cache_policies_{name}_{rep}"
        log = tmp / f"pol_{name}.log"
        with cache_dir(cache), serve_app(runs, tmp / f"work_pol_{name}_{rep}", log,
                                         app_root=root) as info:  # fmt: skip
            out[name]["warm_disk"] = first_render(browser, info["url"], limit_s)
    return out

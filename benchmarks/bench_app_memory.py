"""Server memory while the explorer cycles through views: RSS against DYNCONF_CACHE_MB.

    python -m benchmarks.bench_app_memory [--views 100] [--cache-mb 512] [--run cifar10_resnet20]
                                          [--in-process-only] [--skip-in-process]
                                          [--baseline DIR]

Two measurements on the shipped CIFAR-10 run (cached_runs/cifar10_resnet20, N = 10,000,
T = 64), both cycling 8 decoder/split pairs (test and calibration, four decoders) and 60
kappas (geometric, 1 to 256), one new view per step:

- in process (where the memory goes): the app's own cache (dynconf.app.memcache.MemoryCache,
  budget --cache-mb) filled with views (dynconf.core.view.View) and their instant-explorer
  payloads, as the explorer asks for them; the resident size (VmRSS) after each view next to
  the bytes the cache counts. Run twice in fresh processes: "unreleased", with the release of
  evicted memory turned off (memcache.release_memory and tune_allocator made no-ops), and
  "released", as the app runs;
- the real server: ``streamlit run app.py`` (tests/app/serve.py) with DYNCONF_CACHE_MB set, and
  Debian's Chromium (Playwright) opening the explorer's deep link for each view in turn until
  its first chart is drawn and the rerun is over; the server's VmRSS after each view.

What the server's memory is bounded by: the cache's budget, plus a constant (the interpreter
with Streamlit, numpy and Plotly loaded, the view being built before the cache evicts down to
the budget, allocator slack). Streamlit keeps each disconnected session (one per deep link
opened here) for two minutes with its session state and the download builders of its last
rerun; those hold only keys and weak references (dynconf/app/state.py), so they add no
view. ``--baseline DIR`` runs the same cycle first against another tree's app.py (an older
version, for a before/after in one run).

The last line is one JSON object: cache_mb, views, the load average before and after, per
mode peak_mb, final_mb, over_budget_mb (peak minus the budget), final_over_budget_mb,
slope_mb_per_view (least-squares slope of the RSS over the last half of the views: 0 when
memory no longer grows), bounded (peak at most the budget + CONSTANT_MB and a slope under
FLAT_MB_PER_VIEW), and the per-view RSS lists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAIRS = [(s, d) for s in ("test", "calibration") for d in ("paper", "mean", "margin", "entropy")]
FIRST_CHART = ".js-plotly-plot .main-svg"


def kappas(n: int = 60) -> list[float]:
    import numpy as np

    return [float(f"{k:.4g}") for k in np.geomspace(1.0, 256.0, n)]


def views(count: int) -> list[tuple[str, str, float]]:
    ks = kappas()
    return [(*PAIRS[i % len(PAIRS)], ks[i % len(ks)]) for i in range(count)]


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def in_process(run_dir: Path, count: int, cache_mb: float, release: bool) -> dict:
    """The app's cache and views without a server (module doc); run in a fresh process."""
    from dynconf.app import instant, memcache
    from dynconf.core.store import load_run
    from dynconf.core.view import View

    if not release:
        memcache.release_memory = lambda: None
        memcache.tune_allocator = lambda: False
    memcache.tune_allocator()
    cache = memcache.MemoryCache(budget=int(cache_mb * 1e6))
    run = cache.get(("run",), lambda: load_run(run_dir, mmap=False), group="run", anchor=True)
    out, counted = [], []
    for split, decoder, kappa in views(count):
        def build(s=split, d=decoder, k=kappa):
            return View(run, s, d, k, disk=False)

        view = cache.get(("view", split, decoder, kappa), build, group="run", measure=View.nbytes)
        res = view.evaluate(0.5)
        instant.payload(view, res, run.classes)
        view.capped(0.5)
        cache.settle()
        out.append(round(rss_mb(), 1))
        counted.append(round(cache.nbytes / 1e6, 1))
    return {"rss_mb": out, "cache_counted_mb": counted}


def run_in_process(run_dir: Path, count: int, cache_mb: float, release: bool) -> dict:
    code = (
        f"import json, sys; from pathlib import Path; sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.bench_app_memory import in_process\n"
        f"print(json.dumps(in_process(Path({str(run_dir)!r}), {count}, {cache_mb!r}, "
        f"{release!r})))\n"
    )
    env = dict(os.environ, DYNCONF_CACHE_DIR="off")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def browser_cycle(run_dir: Path, count: int, cache_mb: float, tmp: Path,
                  app_root: Path = ROOT) -> dict:  # fmt: skip
    """The real server (the app.py of ``app_root``) and Chromium (module doc)."""
    from tests.app.serve import launch_chromium, serve_app

    os.environ["DYNCONF_CACHE_MB"] = str(cache_mb)
    os.environ["DYNCONF_CACHE_DIR"] = str(tmp / "analysis-cache")
    out, seconds, missed = [], [], []
    serving = serve_app(run_dir.parent, tmp / "work", tmp / "server.log", app_root=app_root)
    with serving as server, launch_chromium() as browser:
        pid = server["proc"].pid
        start = rss_mb(pid)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for i, (split, decoder, kappa) in enumerate(views(count)):
            t0 = time.perf_counter()
            page.goto(f"{server['url']}/explorer?run={run_dir.name}&split={split}"
                      f"&decoder={decoder}&kappa={kappa:g}&threshold=0.5")  # fmt: skip
            drawn = _wait_for_chart(page)
            if not drawn:
                missed.append(i + 1)
            seconds.append(round(time.perf_counter() - t0, 2))
            out.append(round(rss_mb(pid), 1))
            print(f"view {i + 1:3d} {split:<11} {decoder:<7} kappa {kappa:<7g} "
                  f"server RSS {out[-1]:7.1f} MB ({seconds[-1]:.1f} s)", flush=True)  # fmt: skip
    return {"rss_start_mb": round(start, 1), "rss_mb": out, "view_s": seconds,
            "views_without_chart": missed}  # fmt: skip


def _wait_for_chart(page, timeout_ms: int = 120_000) -> bool:
    """The explorer's first chart drawn and the rerun over; False (and the page's error
    text printed) when it is not within the timeout: the cycle goes on, the view is named."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(FIRST_CHART).first.wait_for(timeout=timeout_ms)
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
            timeout=timeout_ms,
        )
        return True
    except PlaywrightTimeout:
        alerts = page.locator('[data-testid="stAlert"], [data-testid="stException"]')
        texts = [alerts.nth(i).inner_text()[:200] for i in range(min(alerts.count(), 3))]
        print(f"  no chart within {timeout_ms / 1000:.0f} s: {texts}", flush=True)
        return False


def slope(values: list[float]) -> float:
    """Least-squares slope (per step) of ``values``; 0 for fewer than two."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    cov = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    return cov / sum((i - mean_x) ** 2 for i in range(n))


CONSTANT_MB = 250.0  # the server beyond its budget: 184 to 200 MB measured at 256 and 512 MB
FLAT_MB_PER_VIEW = 1.0  # a slope below this over the last half of the views: no growth


def summary(rss: list[float], cache_mb: float) -> dict:
    peak = max(rss)
    rate = slope(rss[len(rss) // 2 :])
    return {
        "peak_mb": peak,
        "final_mb": rss[-1],
        "over_budget_mb": round(peak - cache_mb, 1),
        "final_over_budget_mb": round(rss[-1] - cache_mb, 1),
        "slope_mb_per_view": round(rate, 2),
        "bounded": peak <= cache_mb + CONSTANT_MB and rate < FLAT_MB_PER_VIEW,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def server_cycle(run_dir: Path, args, app_root: Path, name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="dynconf-memory-") as tmp:
        got = browser_cycle(run_dir, args.views, args.cache_mb, Path(tmp), app_root)
    out = {**summary(got["rss_mb"], args.cache_mb), **got}
    print(f"{name}: start {got['rss_start_mb']:.0f} MB, peak {out['peak_mb']:.0f} MB, final "
          f"{out['final_mb']:.0f} MB (budget {args.cache_mb:.0f} MB), slope over the last "
          f"{len(got['rss_mb']) - len(got['rss_mb']) // 2} views "
          f"{out['slope_mb_per_view']:+.2f} MB/view; bounded by the budget + "
          f"{CONSTANT_MB:.0f} MB: {out['bounded']}", flush=True)  # fmt: skip
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--cache-mb", type=float, default=512.0)
    parser.add_argument("--run", default="cifar10_resnet20")
    parser.add_argument("--in-process-only", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a tree whose app.py is cycled first (before/after)")  # fmt: skip
    args = parser.parse_args(argv)
    run_dir = ROOT / "cached_runs" / args.run
    result: dict = {"run": args.run, "views": args.views, "cache_mb": args.cache_mb,
                    "load_before": load_average()}  # fmt: skip
    if not args.skip_in_process:
        for name, release in (("unreleased", False), ("released", True)):
            got = run_in_process(run_dir, args.views, args.cache_mb, release)
            result[f"in_process_{name}"] = {**summary(got["rss_mb"], args.cache_mb), **got}
            print(f"in process, {name}: peak {max(got['rss_mb']):.0f} MB, final "
                  f"{got['rss_mb'][-1]:.0f} MB, cache counts at most "
                  f"{max(got['cache_counted_mb']):.0f} MB", flush=True)  # fmt: skip
    if not args.in_process_only:
        if args.baseline is not None:
            root = args.baseline.resolve()
            result["server_baseline"] = server_cycle(run_dir, args, root, f"baseline ({root})")
        result["server"] = server_cycle(run_dir, args, ROOT, "server")
    result["load_after"] = load_average()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Figure pack time per preset: the export before and after it drew from one view.

Three ways to make the pack of one run (PNG, SVG and PDF of every figure, CSV, metrics.tex),
interleaved per repeat so that load on the machine hits them alike:

- ``before``: the former path. Every number recomputed from the run (decode, sweep, oracles,
  selection, every policy fitted), the former eight figures, and each image rendered on its
  own, one after the other, on a one-tab browser that reloads its page after each image (as
  kaleido's server does).
- ``cli``: ``dynconf export`` now. A new view (everything computed once), every figure of
  every page built once from it, all images handed to one browser at once.
- ``app``: the app's figure pack now. The page's cached view, whose selection and fitted
  policies the pages already hold, so only figures and images are made.

Each row gives the median wall time and where it went (computing and building figures,
rendering images). Browser start-up is paid once per process and kept out of the rows.

    python benchmarks/bench_export.py --run cached_runs/cifar10_resnet20 --presets paper-1col
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynconf.core.selection import calibration_split, default_split  # noqa: E402
from dynconf.core.store import load_run  # noqa: E402
from dynconf.core.view import View  # noqa: E402
from dynconf.report import export, figures, render  # noqa: E402
from dynconf.report.presets import preset_names  # noqa: E402

# The figures the pack held before it drew every page.
BEFORE = ("accuracy_latency", "exit_histogram", "exit_scatter", "threshold_response",
          "oracle_bound", "pareto_selection", "policy_fronts", "accuracy_by_T")  # fmt: skip


def before(run, split, cal, preset, one_tab) -> tuple[float, float, int]:
    """The former path: recompute, eight figures, one image at a time."""
    t0 = time.perf_counter()
    view = View(run, split, disk=False)  # nothing kept from an earlier call
    threshold = view.selection(cal).threshold
    params = {"threshold": threshold, "calibration": cal}
    charts = []
    for name in BEFORE:
        spec = figures.FIGURES[name]
        chart = figures.build_figure(name, view, **{k: v for k, v in params.items()
                                                    if k in spec.params})  # fmt: skip
        if chart is not None:
            charts.append(chart)
    t1 = time.perf_counter()
    n = 0
    for chart in charts:
        for fmt in export.FORMATS:
            one_tab.render_many([export.image_job(chart.figure, fmt, preset)])
            n += 1
    return t1 - t0, time.perf_counter() - t1, n


def after(view, cal, preset, threshold=None) -> tuple[float, float, int]:
    """collect_figures + pack_files: every figure once from ``view``, images in one batch."""
    t0 = time.perf_counter()
    charts, res, ctx = export.collect_figures(view, threshold, cal)
    t1 = time.perf_counter()
    files = export.pack_files(view.run, charts, res, ctx, preset=preset)
    n = sum(1 for name in files if name.rsplit(".", 1)[-1] in export.FORMATS)
    return t1 - t0, time.perf_counter() - t1, n


def summarize(samples: list[tuple[float, float, int]]) -> dict:
    walls = [a + b for a, b, _ in samples]
    return {
        "median_s": round(statistics.median(walls), 2),
        "min_s": round(min(walls), 2),
        "max_s": round(max(walls), 2),
        "figures_s": round(statistics.median(a for a, _, _ in samples), 2),
        "images_s": round(statistics.median(b for _, b, _ in samples), 2),
        "images": samples[0][2],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "cached_runs" / "cifar10_resnet20"))
    parser.add_argument("--presets", default=",".join(preset_names()))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-before", action="store_true", help="time only the new paths")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    split = default_split(run)
    cal = calibration_split(run, split)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]

    t0 = time.perf_counter()
    shared = render.renderer()
    shared.render_many([export.image_job(figures.build_figure(
        "accuracy_by_T", View(run, split, disk=False)).figure, "svg", presets[0])])  # fmt: skip
    start_s = time.perf_counter() - t0
    # The former renderer: kaleido's one-request server, a fresh page for every image.
    one_tab = None if args.skip_before else render.Renderer(tabs=1, reload_every=1)
    app_view = View(run, split, disk=False)
    app_view.policies(cal), app_view.selection(cal)  # what the pages have already computed
    app_threshold = app_view.selection(cal).threshold

    rows = {}
    for preset in presets:
        got: dict[str, list] = {"before": [], "cli": [], "app": []}
        for _ in range(args.repeats):
            if one_tab is not None:
                got["before"].append(before(run, split, cal, preset, one_tab))
            got["cli"].append(after(View(run, split, disk=False), cal, preset))
            got["app"].append(after(app_view, cal, preset, app_threshold))
        rows[preset] = {k: summarize(v) for k, v in got.items() if v}
        if "before" in rows[preset]:
            for k in ("cli", "app"):
                rows[preset][f"{k}_speedup"] = round(
                    rows[preset]["before"]["median_s"] / rows[preset][k]["median_s"], 2
                )
        print(preset, json.dumps(rows[preset]), flush=True)
    if one_tab is not None:
        one_tab.close()
    result = {
        "benchmark": "bench_export",
        "run": Path(args.run).name,
        "repeats": args.repeats,
        "browser_start_s": round(start_s, 2),
        "tabs": shared.tabs,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "presets": rows,
    }
    render.close_renderer()
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

"""Figure pack time per preset: ``dynconf export`` cold and warm, and the app's figure pack.

Rows, per preset, interleaved per repeat so that load on the machine hits them alike:

- ``cli_cold``: ``python -m dynconf export RUN --preset P --out DIR`` in a fresh process with
  an empty analysis cache: decode, selection, every exit policy fitted and swept, every
  figure built, every image rendered, from interpreter start to exit.
- ``cli_warm``: the same command again on that cache (what a second export of a run costs).
- ``app``: the app's figure pack (collect_figures + pack_files) in this process, from a view
  whose selection and fitted policies the pages already hold, its browser already started.

With ``--baseline DIR`` (a checkout of another version, e.g. ``git archive HEAD | tar -x -C
/tmp/base_e``), each CLI row is run by that tree's code too, on the very same run folder,
alternating which goes first; ``*_speedup`` is the baseline median over ours.

Every CLI run reports where its time went (seconds, from inside the process): ``imports``,
``load_run``, ``decode``, ``selection``, ``fits`` (the policies fitted or read back),
``fronts`` (swept or read back), ``figures`` (building them), ``browser_start`` (kaleido and
Chromium; on a thread of its own in the current code, so it overlaps the rest),
``images_wait`` (waiting for images after the last figure is built) and ``write``. The
load average is printed with every run; the medians are over ``--repeats`` runs.

    python benchmarks/bench_export.py --presets paper-1col --repeats 3 --baseline /tmp/base_e
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Runs the export command with timers around its phases; written for both trees, so a
# name one of them lacks is skipped. The phases go, as JSON, to the file named by argv[1].
PHASES = r"""
import functools, json, sys, time
t0 = time.perf_counter()
import dynconf.cli as cli
import dynconf.cli.export as cexp
from dynconf.core import view as cview
from dynconf.report import export as rexp, render
phases = {"imports": time.perf_counter() - t0}
def timed(owner, name, label):
    f = getattr(owner, name, None)
    if f is None:
        return
    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - t
    setattr(owner, name, g)
timed(cexp, "load_run", "load_run")
timed(cview.View, "_decode", "decode")
timed(cview.View, "selection", "selection")
timed(cview.View, "policy_comparison", "fits")
if hasattr(rexp, "fronts_of"):
    timed(rexp, "fronts_of", "fronts")
else:
    timed(cview.View, "policy_fronts", "fronts")
timed(rexp, "build_figure", "figures")
timed(render.Renderer, "__init__", "browser_start")
timed(rexp, "results", "images_wait")
timed(rexp, "render_many", "images_wait")
timed(rexp, "write_files", "write")
out, argv = sys.argv[1], sys.argv[2:]
code = cli.main(argv)
with open(out, "w") as fh:
    json.dump({"code": cli.__file__, **{k: round(v, 3) for k, v in phases.items()}}, fh)
sys.exit(code)
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


def cli_export(tree: Path, run: Path, preset: str, cache: Path, out: Path) -> dict:
    """One ``dynconf export`` in a new process of ``tree``'s code: wall seconds, phases."""
    phases = out.with_suffix(".json")
    env = {**os.environ, "DYNCONF_CACHE_DIR": str(cache), "PYTHONPATH": str(tree)}
    before = load()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PHASES, str(phases), "export", str(run), "--preset", preset,
         "--out", str(out)],
        cwd=tree, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"export failed in {tree}: {proc.stderr.strip()[-2000:]}")
    files = sorted(p.name for p in out.iterdir())
    timings = json.loads(phases.read_text())
    if not timings.pop("code").startswith(str(tree)):
        raise SystemExit(f"the export in {tree} ran another tree's code")
    return {"wall_s": round(wall, 2), "load": [before, load()], "files": len(files),
            "phases": timings}  # fmt: skip


def app_pack(view, cal: str, preset: str, threshold: float) -> dict:
    """The app's figure pack from a view that already holds its selection and policies."""
    from dynconf.report import export

    before = load()
    t0 = time.perf_counter()
    charts, res, ctx = export.collect_figures(view, threshold, cal)
    t1 = time.perf_counter()
    files = export.pack_files(view.run, charts, res, ctx, preset=preset)
    wall = time.perf_counter() - t0
    phases = {"figures": round(t1 - t0, 3), "images_wait": round(wall - (t1 - t0), 3)}
    return {"wall_s": round(wall, 2), "load": [before, load()], "files": len(files),
            "phases": phases}  # fmt: skip


def summarize(samples: list[dict]) -> dict:
    walls = [s["wall_s"] for s in samples]
    names = sorted({k for s in samples for k in s["phases"]})
    return {
        "median_s": round(statistics.median(walls), 2),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs_s": walls,
        "load": [s["load"] for s in samples],
        "files": samples[0]["files"],
        "breakdown_median_s": {
            k: round(statistics.median(s["phases"].get(k, 0.0) for s in samples), 2) for k in names
        },
    }


def cli_rounds(trees: dict[str, Path], run: Path, preset: str, repeats: int, work: Path):
    """{(tree, cold|warm): [samples]}: per repeat, each tree cold then warm on its own new
    cache, the trees in alternating order."""
    got: dict[tuple[str, str], list] = {(t, k): [] for t in trees for k in ("cold", "warm")}
    for r in range(repeats):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for kind in ("cold", "warm"):
            for tag in order:
                cache = work / f"cache-{tag}-{preset}-{r}"
                out = work / f"out-{tag}-{preset}-{r}-{kind}"
                sample = cli_export(trees[tag], run, preset, cache, out)
                got[(tag, kind)].append(sample)
                print(f"  {preset} {tag} {kind}: {sample['wall_s']} s (load {sample['load']})",
                      flush=True)  # fmt: skip
    return got


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "cached_runs" / "cifar10_resnet20"))
    parser.add_argument("--presets", default="paper-1col")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="a checkout of the code to compare with")
    parser.add_argument("--skip-app", action="store_true", help="time only the CLI")
    args = parser.parse_args(argv)
    run = Path(args.run).resolve()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    trees = {"ours": ROOT}
    if args.baseline:
        trees["baseline"] = Path(args.baseline).resolve()

    app_view = app_cal = app_threshold = None
    if not args.skip_app:
        from dynconf.core.selection import calibration_split, default_split
        from dynconf.core.store import load_run
        from dynconf.core.view import View
        from dynconf.report import render

        loaded = load_run(run)
        split = default_split(loaded)
        app_cal = calibration_split(loaded, split)
        app_view = View(loaded, split, disk=False)
        app_view.policies(app_cal), app_view.selection(app_cal)  # what the pages hold
        app_threshold = app_view.selection(app_cal).threshold
        render.renderer()  # an app server's browser is up before anyone asks for a pack

    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for preset in presets:
            got = cli_rounds(trees, run, preset, args.repeats, Path(tmp))
            row = {f"{tag}_cli_{kind}": summarize(s) for (tag, kind), s in got.items()}
            if "baseline" in trees:
                for kind in ("cold", "warm"):
                    base, ours = row[f"baseline_cli_{kind}"], row[f"ours_cli_{kind}"]
                    row[f"cli_{kind}_speedup"] = round(base["median_s"] / ours["median_s"], 2)
            if app_view is not None:
                packs = [app_pack(app_view, app_cal, preset, app_threshold)
                         for _ in range(args.repeats)]  # fmt: skip
                row["ours_app"] = summarize(packs)
            rows[preset] = row
            print(preset, json.dumps(row), flush=True)
    if app_view is not None:
        from dynconf.report import render

        render.close_renderer()
    return {
        "benchmark": "bench_export",
        "run": run.name,
        "repeats": args.repeats,
        "baseline": args.baseline,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "presets": rows,
    }


if __name__ == "__main__":
    print(json.dumps(main()))

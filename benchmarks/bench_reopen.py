"""Opening a big run's view again: decode and precompute, or read them from the disk cache.

    python -m benchmarks.bench_reopen [--n 50000] [--t 256] [--k 10] [--repeats 3]
                                      [--run-dir DIR]

A synthetic run of N x T x K (two splits, float32 outputs; dynconf.core.store.save_run into a
temporary folder, or an existing run with --run-dir) is opened in a fresh process per try,
as a server start opens it: ``load_run`` (read into memory), then the explorer's view of the
test split (dynconf.core.view.View): decoded confidences, the slider grid's sweep, the
threshold rule's records, one threshold's result, its capped curve, the baseline and the
oracle curve. Three modes, interleaved per repeat:

- ``no_cache``: DYNCONF_CACHE_DIR=off, every open decodes and precomputes (as before the
  disk cache);
- ``first``: an empty cache folder, the open that writes the entry;
- ``reopen``: the same folder again, the open that reads it.

Every mode must give the same mean latency and sweep. The last line is one JSON object:
n, t, k, per mode the median open_s and load_s, and the entry's size on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPEN = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from dynconf.core.store import load_run
from dynconf.core.view import View
run = load_run({run!r}, mmap=False)
t1 = time.perf_counter()
view = View(run, "test")
view.decoded, view.sweep, view.baseline, view.oracle_curve()
res = view.evaluate(0.5)
view.capped(0.5)
t2 = time.perf_counter()
print(json.dumps({{"load_s": t1 - t0, "open_s": t2 - t1, "mean_latency": res.mean_latency,
                  "sweep": float(view.sweep.accuracy.sum())}}))
"""


def make_run(path: Path, n: int, t: int, k: int) -> None:
    from benchmarks.bench_policies import synthetic_outputs
    from dynconf.core.store import save_run

    splits = {}
    for name, seed in (("calibration", 0), ("test", 1)):
        outputs, labels = synthetic_outputs(n, t, k, seed)
        splits[name] = {"outputs": outputs, "labels": labels}
    save_run(path, splits, dataset="synthetic", model="synthetic", overwrite=True)


def open_once(run_dir: Path, cache_dir: str) -> dict:
    env = dict(os.environ, DYNCONF_CACHE_DIR=cache_dir)
    code = OPEN.format(root=str(ROOT), run=str(run_dir))
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-dir", default=None, help="an existing run (skips writing one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dynconf-reopen-") as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp) / "big"
        if args.run_dir is None:
            make_run(run_dir, args.n, args.t, args.k)
        times: dict[str, list] = {"no_cache": [], "first": [], "reopen": []}
        seen, entry_mb = set(), None
        for r in range(args.repeats):
            cache = Path(tmp) / f"cache{r}"
            for mode, folder in (("no_cache", "off"), ("first", str(cache)),
                                 ("reopen", str(cache))):  # fmt: skip
                got = open_once(run_dir, folder)
                times[mode].append(got)
                seen.add((got["mean_latency"], got["sweep"]))
                print(f"repeat {r + 1} {mode:<8} load {got['load_s']:6.2f} s  "
                      f"open {got['open_s']:6.2f} s", flush=True)  # fmt: skip
            entry_mb = sum(p.stat().st_size for p in cache.glob("*.npz")) / 1e6
            shutil.rmtree(cache, ignore_errors=True)
    if len(seen) != 1:
        raise SystemExit(f"the modes disagree: {sorted(seen)}")
    result = {"n": args.n, "t": args.t, "k": args.k, "repeats": args.repeats,
              "cache_entry_mb": round(entry_mb or 0.0, 1),
              "load_avg": os.getloadavg()[0]}  # fmt: skip
    for mode, rows in times.items():
        result[f"{mode}_open_s"] = round(statistics.median(x["open_s"] for x in rows), 3)
        result[f"{mode}_load_s"] = round(statistics.median(x["load_s"] for x in rows), 3)
        result[f"{mode}_open_s_all"] = [round(x["open_s"], 3) for x in rows]
    result["reopen_speedup"] = round(result["no_cache_open_s"] / result["reopen_open_s"], 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

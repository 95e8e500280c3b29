"""How long ``import dynconf`` takes, and that it stays free of torch, Streamlit and Plotly.

    python -m benchmarks.bench_import_time [--repeats 15]

Each repeat starts fresh interpreters, interleaved: ``python -X importtime -c "import
dynconf"`` (the package's own cumulative import time, read from the interpreter's report, and
the process's wall time) and the baseline ``python -c pass`` (interpreter start-up alone), so
both see the same machine load. It also runs ``import dynconf`` followed by touching the
notebook API's names (``dynconf.load`` and the rest of ``dynconf.__all__``, where present),
which must still import no engine: torch is imported only when a network is simulated or
recorded. Prints one line per repeat, then the medians; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "streamlit", "plotly", "kaleido", "pandas")
TARGET_IMPORT_MS = 500.0  # `import dynconf` itself, cumulative, median
TOUCH_API = (
    "import dynconf\n"
    "for name in getattr(dynconf, '__all__', ()):\n"
    "    getattr(dynconf, name)\n"
)


def timed_import(code: str) -> tuple[float, float, list[str]]:
    """(wall ms, dynconf's cumulative import ms, heavy top-level modules imported)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = (time.perf_counter() - start) * 1e3
    own, heavy = 0.0, set()
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if name == "dynconf":
            own = int(cumulative) / 1e3
        if name.split(".")[0] in HEAVY:
            heavy.add(name.split(".")[0])
    return wall, own, sorted(heavy)


def baseline_ms() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1e3


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    walls, owns, bases, api_walls, heavy = [], [], [], [], set()
    for i in range(args.repeats):
        base = baseline_ms()
        wall, own, found = timed_import("import dynconf")
        api_wall, _, api_found = timed_import(TOUCH_API)
        heavy.update(found + api_found)
        walls.append(wall)
        owns.append(own)
        bases.append(base)
        api_walls.append(api_wall)
        print(f"repeat {i + 1}: import dynconf {own:.1f} ms (process {wall:.1f} ms, "
              f"python -c pass {base:.1f} ms; with the API names {api_wall:.1f} ms)")  # fmt: skip
    result = {
        "repeats": args.repeats,
        "import_dynconf_ms": round(statistics.median(owns), 2),
        "process_ms": round(statistics.median(walls), 2),
        "baseline_process_ms": round(statistics.median(bases), 2),
        "overhead_over_baseline_ms": round(statistics.median(walls) - statistics.median(bases), 2),
        "with_api_names_process_ms": round(statistics.median(api_walls), 2),
        "heavy_modules_imported": sorted(heavy),
        "target_import_ms": TARGET_IMPORT_MS,
        "meets_target": statistics.median(owns) <= TARGET_IMPORT_MS and not heavy,
    }
    print(
        f"median: import dynconf {result['import_dynconf_ms']} ms; process "
        f"{result['process_ms']} ms against {result['baseline_process_ms']} ms for "
        f"python -c pass; heavy modules: {result['heavy_modules_imported'] or 'none'}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

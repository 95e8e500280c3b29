"""A reader racing overwrites of a split sees the old split or the new one, never an error.

A writer switches meta.json to the new split's files and then removes the old ones; a
reader that read meta.json just before the switch used to find those files gone ("file is
missing"). The tests race real writers against real readers, bounded in tries and seconds,
and check every read: it succeeds, and it holds one whole split (all outputs equal the
marker of one writer, never a mix).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from dynconf.core.store import add_split, load_run, save_run
from tests.helpers import synthetic_split

REPO = Path(__file__).resolve().parents[2]


def marked(fill: float, n: int = 30, T: int = 6, K: int = 4) -> dict[str, np.ndarray]:
    """A split whose outputs all equal ``fill``, so a loaded split tells its writer."""
    arrays = synthetic_split(n, T, K, seed=0, neurons=10, dtype=np.float32)
    arrays["outputs"] = np.full_like(arrays["outputs"], fill)
    return arrays


def test_threads_reading_while_a_split_is_replaced_see_old_or_new(tmp_path):
    run_dir = save_run(tmp_path / "r", {"same": marked(0.0)}).path
    stop, errors, seen = threading.Event(), [], set()

    def read() -> None:
        while not stop.is_set():
            try:
                outputs = np.asarray(load_run(run_dir, check_values=False).split("same").outputs)
            except Exception as exc:  # any error is the failure under test
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            values = np.unique(outputs)
            if len(values) != 1:
                errors.append(f"a mixed split: {values}")
                return
            seen.add(float(values[0]))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + 20
    try:
        for i in range(1, 61):  # bounded: 60 overwrites or 20 s
            add_split(run_dir, "same", **marked(float(i)), overwrite=True)
            if errors or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=30)
    assert not errors, errors[:3]
    assert len(seen) > 1  # the readers did see the split change


START_TOGETHER = """
import os, sys, time
from dynconf.cli import main
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(sys.argv[2:]))
"""


def test_imports_overwriting_a_split_while_evaluate_reads_it(tmp_path):
    """4 `import --split same --overwrite` and 2 `evaluate --split same`, started together,
    3 trials: every command succeeds, and every evaluate reads one whole split."""
    sources = []
    for i in range(4):
        sources.append(tmp_path / f"o{i}.npz")
        np.savez(sources[-1], **synthetic_split(400, 16, 10, seed=i, neurons=50))
    run_dir = tmp_path / "r"
    save_run(run_dir, {"same": synthetic_split(400, 16, 10, seed=9, neurons=50)})
    importing = [["import", str(s), "--out", str(run_dir), "--split", "same", "--overwrite"]
                 for s in sources]  # fmt: skip
    reading = [["evaluate", str(run_dir), "--split", "same", "--threshold", "0.5", "--json"]] * 2
    for trial in range(3):
        go = tmp_path / f"go-{trial}"
        procs = [
            subprocess.Popen([sys.executable, "-c", START_TOGETHER, str(go), *argv], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for argv in importing + reading
        ]  # fmt: skip
        time.sleep(1.5)  # every interpreter started and waiting on the go file
        go.write_text("go")
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        assert [code for code, _, _ in results] == [0] * 6, [r for r in results if r[0]]
        for _, out, _ in results[4:]:
            assert json.loads(out)["N"] == 400
        assert load_run(run_dir).meta["splits"] == {"same": 400}
        assert not [p for p in os.listdir(run_dir) if p.startswith(".dynconf-tmp-")]

"""Safety of the store: nothing lost, nothing hangs, every accepted meta is safe.

Each test first reproduces a failure of hostile use (a killed or starved
`--overwrite`, racing writers, leftovers, a FIFO, a truncated memory map, a zip bomb, metadata
that passed validation but crashed pages, sums that overflow) and then checks the guarantee.
Kill and race tests are bounded in tries and time and assert the invariant on every try.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import store as runs
from dynconf.core.atomic import (
    TMP_PREFIX,
    DestinationError,
    new_folder_atomic,
    remove_stale_temps,
)
from dynconf.core.format import check_run_name
from dynconf.core.importing import import_outputs
from dynconf.core.locking import RunLockedError, lock_path, run_lock
from dynconf.core.store import add_split, list_runs, load_run, run_stamp, save_run
from dynconf.errors import DataError, RunFormatError
from tests.helpers import synthetic_split

REPO = Path(__file__).resolve().parents[2]


def small(n=20, T=5, K=4, seed=0, fill=None):
    arrays = synthetic_split(n, T, K, seed=seed, neurons=10, dtype=np.float32)
    if fill is not None:  # a marker: every output equals `fill`, so a loaded split is identifiable
        arrays["outputs"] = np.full_like(arrays["outputs"], fill)
    return arrays


def meta_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX))


def array_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".npy"))


def py(script: str, *args: str, timeout: float = 60, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# --------------------------------------------------------------------------- 1. atomic replacement


class _DiskFull:
    """A file object that accepts `budget` bytes, then fails like a full disk."""

    def __init__(self, fh, budget: int):
        self.fh, self.budget = fh, budget

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self.budget:
            self.fh.write(data[: self.budget])
            self.budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


def _full_disk_after(monkeypatch, budget: int) -> None:
    """The array writer of the store gets `budget` bytes in all, then ENOSPC."""
    state = {"left": budget}
    real = runs.write_new_file

    def starved(path, write):
        def limited(fh):
            wrapper = _DiskFull(fh, state["left"])
            try:
                write(wrapper)
            finally:
                state["left"] = wrapper.budget

        return real(path, limited)

    monkeypatch.setattr(runs, "write_new_file", starved)


@pytest.mark.parametrize("only_split", [True, False])
def test_overwrite_split_on_full_disk_keeps_the_old_split(tmp_path, monkeypatch, only_split):
    splits = {"test": small(fill=1.0)} if only_split else {"test": small(fill=1.0), "x": small()}
    run_dir = save_run(tmp_path / "r", splits).path
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    total = sum(len(data) for name, data in before.items() if name.startswith("test."))
    for budget in range(0, total, max(1, total // 12)):  # fails in every file and header
        with monkeypatch.context() as m:
            _full_disk_after(m, budget)
            with pytest.raises(DestinationError, match="cannot write .*No space left"):
                add_split(run_dir, "test", **small(fill=2.0), overwrite=True)
        assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
        assert float(load_run(run_dir).split("test").outputs[0, 0, 0]) == 1.0
    run = add_split(run_dir, "test", **small(fill=2.0), overwrite=True)  # space again: works
    assert float(run.split("test").outputs[0, 0, 0]) == 2.0


def test_replaced_split_uses_a_fresh_stem_and_removes_the_old_files(tmp_path):
    run_dir = save_run(tmp_path / "r", {"test": small(fill=1.0), "cal": small(n=8)}).path
    assert "files" not in meta_of(run_dir)  # existing runs: default stems, unchanged format
    run = add_split(run_dir, "test", **small(n=9, fill=2.0), overwrite=True)
    stem = meta_of(run_dir)["files"]["test"]
    assert stem.startswith("test~") and run.split("test").N == 9
    assert array_files(run_dir) == sorted(
        [f"{stem}.{r}.npy" for r in ("labels", "outputs", "spikes", "ids")]
        + [f"cal.{r}.npy" for r in ("labels", "outputs", "spikes", "ids")]
    )
    assert list(meta_of(run_dir)["splits"]) == ["test", "cal"]  # order kept
    run = add_split(run_dir, "test", **small(n=7, fill=3.0), overwrite=True)  # back to "test"
    assert "files" not in meta_of(run_dir) and run.split("test").N == 7
    assert sum(name.startswith("test") for name in array_files(run_dir)) == 4
    assert runs.disk_bytes(run)["test"] > 0
    assert [h.get("replaced_split") for h in meta_of(run_dir)["history"]] == ["test", "test"]


REPLACE_LOOP = """
import sys, numpy as np
from dynconf.core.store import add_split
labels = np.zeros(3000, np.int64)
print("ready", flush=True)
for i in range(10_000):
    fill = float(i % 2 + 1)
    add_split(sys.argv[1], "test", np.full((16, 3000, 10), fill, np.float32), labels,
              overwrite=True)
"""


def test_sigkill_during_split_overwrite_always_leaves_old_or_new(tmp_path):
    run_dir = save_run(tmp_path / "r", {"test": small(n=3000, T=16, K=10, fill=1.0)}).path
    seen = set()
    for delay in (0.05, 0.12, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0):
        proc = subprocess.Popen(
            [sys.executable, "-c", REPLACE_LOOP, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = load_run(run_dir)  # full validation, every time
        fill = float(run.split("test").outputs[3, 5, 7])
        assert fill in (1.0, 2.0) and run.split("test").N == 3000
        assert np.all(np.asarray(run.split("test").outputs) == fill)  # never a mix
        seen.add(fill)
    # The next write removes what the kills left (temporary and unreferenced split files).
    run = add_split(run_dir, "test", **small(n=3000, T=16, K=10, fill=5.0), overwrite=True)
    assert temps(run_dir) == []
    assert len(array_files(run_dir)) == 4  # one split: labels, outputs, spikes, ids


def test_history_that_is_not_a_list_is_refused_before_anything_is_touched(tmp_path):
    run_dir = save_run(tmp_path / "r", {"test": small()}).path
    meta = meta_of(run_dir)
    (run_dir / "meta.json").write_text(json.dumps({**meta, "history": "nope"}))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    with pytest.raises(RunFormatError, match="'history' must be a list"):
        load_run(run_dir)
    with pytest.raises(RunFormatError, match="'history' must be a list"):
        add_split(run_dir, "test", **small(seed=3), overwrite=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


@pytest.mark.parametrize(
    "stem",
    ["../test", "test.x", "cal~abcd", "test~", "test~XYZ!", "test/a", "", 5, "test~abc"],
)
def test_file_stems_are_validated(tmp_path, stem):
    run_dir = save_run(tmp_path / "r", {"test": small(), "cal": small()}).path
    (run_dir / "meta.json").write_text(json.dumps({**meta_of(run_dir), "files": {"test": stem}}))
    with pytest.raises(RunFormatError, match="'files'"):
        load_run(run_dir)


# --------------------------------------------------------------------------- 2. concurrent writers


IMPORT_AT = """
import os, sys, time
from dynconf.cli import main
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(sys.argv[2:]))
"""


def _start_together(tmp_path, *argvs):
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORT_AT, str(go), *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    time.sleep(0.8)  # both interpreters started and waiting on the go file
    go.write_text("go")
    return [(p.wait(timeout=60), *p.communicate()) for p in procs]


@pytest.fixture
def two_files(tmp_path):
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"o{seed}.npz"
        np.savez(path, **small(n=50, seed=seed))
        paths.append(path)
    return paths


def test_two_imports_creating_one_run_keep_both_splits(tmp_path, two_files):
    for attempt in range(3):
        run_dir = tmp_path / f"r{attempt}"
        results = _start_together(
            tmp_path,
            ["import", str(two_files[0]), "--out", str(run_dir), "--split", "test"],
            ["import", str(two_files[1]), "--out", str(run_dir), "--split", "calibration"],
        )
        assert [code for code, _, _ in results] == [0, 0], results
        assert sorted(load_run(run_dir).meta["splits"]) == ["calibration", "test"]
        assert temps(tmp_path) == [] and temps(run_dir) == []


def test_two_imports_of_one_split_the_second_is_refused(tmp_path, two_files):
    for attempt in range(3):
        run_dir = tmp_path / f"r{attempt}"
        results = _start_together(
            tmp_path,
            ["import", str(two_files[0]), "--out", str(run_dir)],
            ["import", str(two_files[1]), "--out", str(run_dir)],
        )
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 2], results
        refused = next(err for code, _, err in results if code == 2)
        assert "already exists" in refused and refused.count("\n") == 1
        winner = next(i for i, (code, _, _) in enumerate(results) if code == 0)
        with np.load(two_files[winner]) as f:  # the run holds exactly the winner's data
            assert np.array_equal(load_run(run_dir).split("test").outputs, f["outputs"])


def test_two_imports_adding_splits_to_one_run_keep_both(tmp_path, two_files):
    for attempt in range(3):
        run_dir = save_run(tmp_path / f"r{attempt}", {"base": small(n=50)}).path
        results = _start_together(
            tmp_path,
            ["import", str(two_files[0]), "--out", str(run_dir), "--split", "a"],
            ["import", str(two_files[1]), "--out", str(run_dir), "--split", "b"],
        )
        assert [code for code, _, _ in results] == [0, 0], results
        assert sorted(load_run(run_dir).meta["splits"]) == ["a", "b", "base"]


def test_a_slow_import_never_replaces_a_run_created_meanwhile(tmp_path, two_files):
    """The case: import A of a new run is slow; B creates the run meanwhile; A then
    moved B's run aside. Here the test plays B while holding the lock that A must wait on."""
    run_dir = tmp_path / "r"
    with run_lock(run_dir):
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynconf", "import", str(two_files[0]), "--out", str(run_dir)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # A has read its file and waits for the lock (or is about to)
        assert proc.poll() is None and not run_dir.exists()
        save_run(run_dir, {"test": small(n=50, fill=7.0)})  # B creates the run
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "split 'test' already exists" in err
    assert float(load_run(run_dir).split("test").outputs[0, 0, 0]) == 7.0  # B's run, intact


def test_save_run_never_moves_an_existing_run_aside_without_overwrite(tmp_path):
    run_dir = tmp_path / "r"
    started, release = threading.Event(), threading.Event()
    errors = []

    def writer():  # another writer of this process holds the lock for a while
        with run_lock(run_dir):
            started.set()
            release.wait(10)

    holder = threading.Thread(target=writer)
    holder.start()
    started.wait(10)

    def slow_create():
        try:
            save_run(run_dir, {"test": small(fill=1.0)})  # waits for the lock
        except RunFormatError as exc:
            errors.append(str(exc))

    creator = threading.Thread(target=slow_create)
    creator.start()
    time.sleep(0.3)
    # Meanwhile someone else creates the run (this thread does not hold the lock; it plays an
    # older writer that did not lock at all, the worst case).
    os.rename(save_run(tmp_path / "other", {"test": small(fill=9.0)}).path, run_dir)
    release.set()
    holder.join(10)
    creator.join(10)
    assert errors and "already exists" in errors[0]
    assert float(load_run(run_dir).split("test").outputs[0, 0, 0]) == 9.0


def test_lock_times_out_with_a_clear_message_and_dies_with_its_holder(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNCONF_LOCK_TIMEOUT", "0.3")
    run_dir = tmp_path / "r"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time\nfrom dynconf.core.locking import run_lock\n"
         "with run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)",
         str(run_dir)],
        cwd=REPO, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == b"locked"
    t0 = time.monotonic()
    with pytest.raises(RunLockedError, match="another process is writing this run"):
        save_run(run_dir, {"test": small()})
    assert time.monotonic() - t0 < 5
    proc = py(
        "import sys\nfrom dynconf.cli import main\nsys.exit(main(sys.argv[1:]))",
        "import", str(_npz(tmp_path)), "--out", str(run_dir),
        env={"DYNCONF_LOCK_TIMEOUT": "0.3"},
    )  # fmt: skip
    assert proc.returncode == 2 and "another process is writing" in proc.stderr
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(run_dir, timeout=5):  # the kernel released the dead holder's lock
        pass
    save_run(run_dir, {"test": small()})
    assert lock_path(run_dir).exists()
    assert [r.name for r in list_runs(tmp_path)] == ["r"]  # the lock file is never listed


def _npz(tmp_path: Path) -> Path:
    path = tmp_path / "o.npz"
    if not path.exists():
        np.savez(path, **small(n=30))
    return path


def test_lock_is_reentrant_and_serialises_threads(tmp_path):
    run_dir = tmp_path / "r"
    order = []
    with run_lock(run_dir), run_lock(run_dir):  # re-entrant: import holds it around save_run
        t = threading.Thread(target=lambda: (run_lock(run_dir).__enter__(), order.append("t")))
        t.start()
        time.sleep(0.2)
        order.append("main")
    t.join(5)
    assert order == ["main", "t"]


# --------------------------------------------------------------------------- 3. stale leftovers


KILL_WHILE_WRITING = """
import sys, time
from dynconf.core import store
real = store.write_npy
def stuck(path, arr):
    real(path, arr)
    print("writing", flush=True)
    time.sleep(60)
store.write_npy = stuck
import numpy as np
arrays = {"outputs": np.ones((3, 10, 4), np.float32), "labels": np.zeros(10, np.int64)}
if sys.argv[2] == "save":
    store.save_run(sys.argv[1], {"test": arrays})
else:
    store.add_split(sys.argv[1], "more", **arrays)
"""


def _kill_mid_write(target: Path, mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_WHILE_WRITING, str(target), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    _kill_mid_write(tmp_path / "new", "save")
    left = temps(tmp_path)
    assert len(left) == 1 and str(os.getpid()) not in left[0]  # the dead writer's folder
    assert list_runs(tmp_path) == []  # never listed
    save_run(tmp_path / "other", {"test": small()})  # the next write to that folder
    assert temps(tmp_path) == [] and not (tmp_path / "new").exists()

    run_dir = save_run(tmp_path / "r", {"test": small(T=3)}).path
    _kill_mid_write(run_dir, "add")
    assert len(temps(run_dir)) == 1
    assert load_run(run_dir).split_names == ("test",)
    add_split(run_dir, "cal", **small(n=5, T=3))
    assert temps(run_dir) == []


def test_stale_rules_age_owner_and_the_moved_aside_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    # An overwrite killed between its two renames leaves the old run only under its trash name.
    moved = save_run(tmp_path / "gone", {"test": small(fill=4.0)}).path
    trash = tmp_path / f"{TMP_PREFIX}{dead}-0123456789ab-old-gone"
    os.rename(moved, trash)
    legacy = tmp_path / f"{TMP_PREFIX}r-0123456789ab"  # older dynconf: no pid in the name
    legacy.mkdir()
    old = time.time() - 2 * 24 * 3600
    os.utime(legacy, (old, old))
    fresh_legacy = tmp_path / f"{TMP_PREFIX}s-0123456789ab"
    fresh_legacy.mkdir()
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-0123456789ab-x"  # ours: maybe being written
    live.write_bytes(b"x")
    dead_file = tmp_path / f"{TMP_PREFIX}{dead}-0123456789ab-y"
    dead_file.write_bytes(b"y")
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([legacy.name, dead_file.name, trash.name])
    assert fresh_legacy.exists() and live.exists()
    assert float(load_run(tmp_path / "gone").split("test").outputs[0, 0, 0]) == 4.0  # restored


# --------------------------------------------------------------------------- 4. FIFOs


LOAD = """
import sys
from dynconf.core.store import load_run, list_runs
from dynconf.errors import DataError, RunFormatError
try:
    load_run(sys.argv[1])
except RunFormatError as exc:
    print("refused:", exc)
print("listed:", [(r.name, r.ok) for r in list_runs(sys.argv[2])])
"""


@pytest.mark.parametrize("name", ["test.outputs.npy", "test.labels.npy", "meta.json",
                                  "test.spikes.npy"])  # fmt: skip
def test_a_fifo_in_a_run_is_refused_without_hanging(tmp_path, name):
    run_dir = save_run(tmp_path / "r", {"test": small()}).path
    (run_dir / name).unlink()
    os.mkfifo(run_dir / name)
    proc = py(LOAD, str(run_dir), str(tmp_path), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "not a regular file" in proc.stdout
    assert "listed: [('r', False)]" in proc.stdout


def test_fifo_import_sources_are_refused(tmp_path):
    os.mkfifo(tmp_path / "o.npz")
    os.mkfifo(tmp_path / "labels.npy")
    np.save(tmp_path / "outs.npy", small()["outputs"])
    script = """
import sys
from dynconf.core.importing import import_outputs
from dynconf.errors import DataError, RunFormatError
for src, labels in ((sys.argv[1], None), (sys.argv[2], sys.argv[3])):
    try:
        import_outputs(src, sys.argv[4], labels_path=labels)
    except RunFormatError as exc:
        print("refused:", exc)
"""
    proc = py(script, str(tmp_path / "o.npz"), str(tmp_path / "outs.npy"),
              str(tmp_path / "labels.npy"), str(tmp_path / "r"), timeout=30)  # fmt: skip
    assert proc.stdout.count("not a regular file") == 2, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- 5. mmap and stamps


TRUNCATE = """
import os, sys
from dynconf.core.store import load_run
run = load_run(sys.argv[1], mmap=sys.argv[2] == "mmap")
os.truncate(os.path.join(sys.argv[1], "test.outputs.npy"), 200)
print(float(run.split("test").outputs[:, 500, :].sum()), flush=True)
"""


def test_truncating_a_file_cannot_sigbus_a_reader_that_loaded_without_mmap(tmp_path):
    arrays = small(n=1000, T=4, K=10, fill=0.5)
    save_run(tmp_path / "a", {"test": arrays})
    save_run(tmp_path / "b", {"test": arrays})
    crashed = py(TRUNCATE, str(tmp_path / "a"), "mmap")
    assert crashed.returncode == -signal.SIGBUS  # the failure: a memory map of a cut file
    safe = py(TRUNCATE, str(tmp_path / "b"), "read")
    assert safe.returncode == 0 and float(safe.stdout) == 4 * 10 * 0.5
    run = load_run(save_run(tmp_path / "c", {"test": arrays}).path, mmap=False)
    out = run.split("test").outputs
    assert not isinstance(out, np.memmap) and not out.flags.writeable
    assert np.array_equal(out, arrays["outputs"])


def test_run_stamp_changes_with_any_array_file(tmp_path):
    run_dir = save_run(tmp_path / "r", {"test": small(), "cal": small(n=8)}).path
    stamp = run_stamp(run_dir)
    assert run_stamp(run_dir) == stamp
    spikes = run_dir / "cal.spikes.npy"
    st = spikes.stat()
    os.utime(spikes, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size, new mtime
    assert run_stamp(run_dir) != stamp
    stamp = run_stamp(run_dir)
    add_split(run_dir, "cal", **small(n=8, seed=4), overwrite=True)
    assert run_stamp(run_dir) != stamp
    stamp = run_stamp(run_dir)
    outputs = run_dir / "test.outputs.npy"
    st = outputs.stat()
    with open(outputs, "r+b") as f:  # same mtime, new size
        f.truncate(300)
    os.utime(outputs, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run_stamp(run_dir) != stamp
    assert run_stamp(tmp_path / "missing")  # never raises


# --------------------------------------------------------------------------- 7. zip bombs


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A real bomb: ~1 MB of deflated zeros that inflate to 1 GiB of float32 outputs."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    shape, dtype = (64, 40960, 100), np.dtype(np.float32)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("outputs.npy", "w", force_zip64=True) as f:
            header = {"descr": dtype.str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(f, header)
            zeros = bytes(1 << 24)
            for _ in range(int(np.prod(shape)) * dtype.itemsize // len(zeros)):
                f.write(zeros)
        with zf.open("labels.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(40960, np.int64))
    assert path.stat().st_size < 1_200_000
    return path


BOMB = """
import sys
from dynconf.core.importing import import_outputs
from dynconf.errors import DataError, RunFormatError
try:
    import_outputs(sys.argv[1], sys.argv[2], max_bytes=int(sys.argv[3]))
except RunFormatError as exc:
    print("refused:", exc)
# peak resident memory of this process (VmHWM: reset by exec, unlike ru_maxrss), in MiB
print(next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) // 1024)
"""


def test_zip_bomb_is_refused_before_inflating(tmp_path, zip_bomb):
    t0 = time.monotonic()
    proc = py(BOMB, str(zip_bomb), str(tmp_path / "r"), str(256 << 20))
    seconds = time.monotonic() - t0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("refused:") and "more than the limit" in lines[0], proc.stderr
    assert int(lines[1]) < 250  # peak MiB: nothing near the 1 GiB was allocated
    assert seconds < 20 and not (tmp_path / "r").exists()


def test_npz_member_larger_than_the_limit_is_refused_from_its_header(tmp_path):
    arrays = small(n=1000, T=8, K=10)
    np.savez_compressed(tmp_path / "o.npz", **arrays)
    with pytest.raises(RunFormatError, match="more than the limit"):
        import_outputs(tmp_path / "o.npz", tmp_path / "r", max_bytes=100_000)
    run = import_outputs(tmp_path / "o.npz", tmp_path / "r", max_bytes=1 << 20)
    assert run.split("test").N == 1000


# --------------------------------------------------------------------------- 8. metadata


def _run_with_meta(tmp_path, **changes) -> Path:
    run_dir = save_run(tmp_path / "r", {"test": small(), "cal": small(n=8)}).path
    meta = {**meta_of(run_dir), **changes}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    return run_dir


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"snn_accuracy_by_T": {"abc": 0.5}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": {"1" * 23: 0.5}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": {"0": 0.5}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": {"6": 0.5}}, "snn_accuracy_by_T"),  # T_max is 5
        ({"snn_accuracy_by_T": {"01": 0.5}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": {"1": 1.5}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": {"1": 0.5, "test": {"1": 0.5}}}, "snn_accuracy_by_T"),  # mixed
        ({"snn_accuracy_by_T": {"test": {"x": 0.5}}}, "snn_accuracy_by_T"),
        ({"snn_accuracy_by_T": [0.5]}, "snn_accuracy_by_T"),
        ({"id_scheme": 5}, "id_scheme"),
        ({"id_source": [1, 2]}, "id_source"),
        ({"id_source": {"test": 3}}, "id_source"),
        ({"notes": 5}, "notes"),
        ({"dataset": ["x"]}, "dataset"),
        ({"model": None}, "model"),
        ({"arch": 3}, "arch"),
        ({"levels": "4"}, "levels"),
        ({"history": [1]}, "history"),
        ({"history": {"a": 1}}, "history"),
        ({"checkpoint": ""}, "checkpoint"),
        ({"checkpoint": "../model.pt"}, "checkpoint"),
        ({"created": {"command": 5}}, "created.command"),
        ({"created": {"training_commands": "x"}}, "training_commands"),
        ({"created": {"wall_time_s": "1"}}, "created.wall_time_s"),
        ({"created": {"seed": True}}, "created.seed"),
        ({"ann_accuracy": "x"}, "ann_accuracy"),
        ({"ann_accuracy": 1.5}, "ann_accuracy"),
        ({"ann_accuracy": {"test": {"a": 1}}}, "ann_accuracy"),
        ({"files": {"nope": "nope"}}, "files"),
        ({"files": ["test"]}, "files"),
    ],
)
def test_meta_that_would_crash_a_consumer_is_refused(tmp_path, changes, message):
    with pytest.raises(RunFormatError, match=message):
        load_run(_run_with_meta(tmp_path, **changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"snn_accuracy_by_T": {"1": 0.5, "5": 0.9}},
        {"snn_accuracy_by_T": {"test": {"1": 0.5}, "cal": {"5": 1.0}}},
        {"snn_accuracy_by_T": {}},
        {"ann_accuracy": 0.9, "id_scheme": "idx", "id_source": {"test": "test"}},
        {"ann_accuracy": {"test": 0.9, "cal": 0}, "history": [{"added_split": "cal"}]},
        {"created": {"command": "c", "seed": 1, "limit": None, "anything": [1, {"x": 2}]}},
        {"files": {"test": "test"}},
    ],
)
def test_accepted_meta_is_safe_for_every_consumer(tmp_path, changes):
    from dynconf.report.overview import accuracy_by_T

    run = load_run(_run_with_meta(tmp_path, **changes))
    for split in run.split_names:  # what Home and export draw from these fields
        accuracy_by_T(run.meta, split)
    created = run.meta.get("created") or {}
    assert created.get("command") is None or isinstance(created["command"], str)


# --------------------------------------------------------------------------- 9. huge outputs


def test_outputs_whose_sums_overflow_are_refused_at_import_and_load(tmp_path):
    arrays = small()
    arrays["outputs"] = arrays["outputs"].astype(np.float64)
    arrays["outputs"][:, 3, 1] = 1e308  # every value finite, S_2 = 2e308 = inf
    np.savez(tmp_path / "huge.npz", **arrays)
    with pytest.raises(RunFormatError, match="accumulated outputs S_t are not finite"):
        import_outputs(tmp_path / "huge.npz", tmp_path / "r")
    assert not (tmp_path / "r").exists()
    run_dir = save_run(tmp_path / "ok", {"test": small()}).path
    np.save(run_dir / "test.outputs.npy", arrays["outputs"])  # float64 now: still a valid dtype
    with pytest.raises(RunFormatError, match="test.outputs.npy: the accumulated outputs"):
        load_run(run_dir)
    arrays["outputs"][:, 3, 1] = 1e150  # finite sums, but beyond what metrics can combine
    np.save(run_dir / "test.outputs.npy", arrays["outputs"])
    with pytest.raises(RunFormatError, match="exceeds 1e\\+150"):
        load_run(run_dir)


# --------------------------------------------------------------------------- 11. run names


def test_run_names_are_checked_where_runs_are_created(tmp_path):
    assert check_run_name("my-run_2") == "my-run_2"
    for bad in ("x" * 65, "x" * 300, ".hidden", "-dash", "a.b", "a/b", "é", "", "a b"):
        with pytest.raises(RunFormatError, match="run name"):
            check_run_name(bad)
    np.savez(tmp_path / "o.npz", **small())
    with pytest.raises(RunFormatError, match=r"run name 'xxx.*\(300 characters\)"):
        import_outputs(tmp_path / "o.npz", tmp_path / ("x" * 300))
    with pytest.raises(RunFormatError, match="run name"):
        save_run(tmp_path / "a.b", {"test": small()})
    # A run with an older, freer name still loads and still gains splits.
    legacy = save_run(tmp_path / "legacy", {"test": small()}).path.rename(tmp_path / "old.run")
    assert load_run(legacy).split_names == ("test",)
    assert import_outputs(tmp_path / "o.npz", legacy, split="cal").split_names == ("test", "cal")


def test_destination_errors_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DestinationError, match="cannot write .*file"):
        save_run(tmp_path / "file" / "r", {"test": small()})
    np.savez(tmp_path / "o.npz", **small())
    with pytest.raises(DestinationError, match="cannot write"):
        import_outputs(tmp_path / "o.npz", tmp_path / "file" / "sub" / "r")


def test_a_new_folder_appears_whole_or_not_at_all(tmp_path):
    def fill(folder: Path) -> int:
        (folder / "a").write_text("1")
        (folder / "sub").mkdir()
        (folder / "sub" / "b").write_text("2")
        return 2

    dest = tmp_path / "made" / "tree"
    assert new_folder_atomic(dest, fill) == 2
    assert (dest / "sub" / "b").read_text() == "2"
    with pytest.raises(DataError, match="already exists"):
        new_folder_atomic(dest, fill)

    def half_then_fail(folder: Path) -> None:
        (folder / "a").write_text("1")
        raise DataError("the source is damaged")

    with pytest.raises(DataError, match="damaged"):
        new_folder_atomic(tmp_path / "other", half_then_fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made"]  # no temp folder left

    def disk_full(folder: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DestinationError, match="No space left"):
        new_folder_atomic(tmp_path / "full", disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made"]

"""Background simulation jobs: one detached ``python -m dynconf simulate`` per job.

The Runs page starts simulations that take minutes, while Streamlit reruns its script on
every click; so a job is a process in its own session (it outlives the script run that
started it and is cancelled as a group, workers included) plus three files in
``WORK/.jobs/``:

- ``NAME.job.json``      what was started (written atomically), and whether it was cancelled;
- ``NAME.progress.json`` written by ``simulate --progress-file`` (done, total, eta_s);
- ``NAME.log``           the process's stdout and stderr.

A job is judged by those files and /proc, so the jobs of an earlier server process are still
listed. The run appears as ``WORK/NAME`` only when the simulation completes (simulate writes
it atomically), which is how "done" is told from "failed".

The user's own runs (directories of the work root, never the shipped runs root) can also be
renamed and deleted here (:func:`rename_run`, :func:`delete_run`): both refuse a run a job
is still writing, and both are atomic as seen by a run listing (one ``rename``; a deleted
run is first renamed to a hidden folder, then removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dynconf.core.atomic import write_json_atomic
from dynconf.core.format import check_run_name as check_format_name
from dynconf.core.roots import default_work_root, runs_roots
from dynconf.errors import DynconfError

# The folder holding this dynconf package: put first on the job's PYTHONPATH, so
# `sys.executable -m dynconf` runs this very copy from any working directory (a clone that is
# not installed as well as an installed package).
PACKAGE_PARENT = Path(__file__).resolve().parents[1]
JOBS_FOLDER = ".jobs"  # hidden: run listings skip it

# Popen handles of the jobs this process started (keyed by job file), so finished ones are
# reaped and their exit codes known. Jobs of an earlier process are judged by their files.
_PROCS: dict[str, subprocess.Popen] = {}


def jobs_dir(work_root: Path | str | None = None) -> Path:
    return Path(work_root if work_root is not None else default_work_root()) / JOBS_FOLDER


def check_run_name(name: str, runs_root: Path | str | None = None) -> None:
    """Refuse a name that is not a plain folder name (dynconf.core.format.check_run_name: at
    most 64 ASCII letters, digits, '-' or '_'), or that a run in a runs folder already uses
    (``runs_root``, else every folder of dynconf.core.roots.runs_roots)."""
    check_format_name(name)
    folders = [Path(runs_root)] if runs_root is not None else runs_roots()
    if any((folder / name).exists() for folder in folders):
        raise DynconfError(f"'{name}' is a shipped run; choose another name")


@dataclass
class Job:
    """One background simulation, as stored in its job file."""

    name: str
    pid: int
    out: str  # the run directory it will create
    progress_file: str
    log_file: str
    started: float  # time.time()
    cmd: list[str]
    cancelled: bool = False

    @property
    def job_file(self) -> Path:
        return Path(self.progress_file).with_name(f"{self.name}.job.json")

    def progress(self) -> dict[str, Any]:
        try:
            return json.loads(Path(self.progress_file).read_text())
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        proc = _PROCS.get(str(self.job_file))
        if proc is not None:
            return proc.poll() is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has finished

    def returncode(self) -> int | None:
        """The exit code, for jobs this process started and that have finished."""
        proc = _PROCS.get(str(self.job_file))
        return None if proc is None else proc.poll()

    def status(self) -> str:
        """running, cancelled, done (the run exists) or failed."""
        if self.alive():
            return "running"
        if self.cancelled:
            return "cancelled"
        if (Path(self.out) / "meta.json").is_file():
            return "done"
        return "failed"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def progress_words(prog: dict[str, Any]) -> str:
    """A job's progress in words ("120 / 200 images · about 8 s left"); never "starting"
    once images are done (the eta is 0 then, which read as "not started")."""
    done, total, eta = prog.get("done", 0), prog.get("total") or 0, prog.get("eta_s")
    text = f"{done:,} / {total:,} images"
    if total and done >= total:
        return text + " · done, writing the run"
    if eta:
        return text + f" · about {eta:.0f} s left"
    return text + (" · starting" if not done else " · estimating the time left")


def _save(job: Job) -> None:
    job.job_file.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(job.job_file, asdict(job))


def list_jobs(work_root: Path | str | None = None) -> list[Job]:
    """Every job under the work root, newest first; unreadable job files are skipped."""
    folder = jobs_dir(work_root)
    if not folder.is_dir():
        return []
    jobs = []
    for f in sorted(folder.glob("*.job.json")):
        if f.name.startswith("."):
            continue  # an atomic write's temporary file
        try:
            jobs.append(Job(**json.loads(f.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(jobs, key=lambda j: -j.started)


def start_job(
    name: str,
    args: list[str],
    *,
    work_root: Path | str | None = None,
    runs_root: Path | str | None = None,
) -> Job:
    """Launch ``python -m dynconf simulate ARGS --out WORK/NAME --progress-file ...``.

    Refuses a bad name, a name taken by a shipped run (``runs_root``) or by an existing run
    in the work root, and a name whose job is still running.
    """
    check_run_name(name, runs_root)
    work = Path(work_root if work_root is not None else default_work_root())
    out = work / name
    if out.exists():
        raise DynconfError(f"a run named {name!r} already exists")
    if any(job.name == name and job.alive() for job in list_jobs(work)):
        raise DynconfError(f"a job named {name!r} is already running")
    folder = jobs_dir(work)
    folder.mkdir(parents=True, exist_ok=True)
    progress = folder / f"{name}.progress.json"
    log = folder / f"{name}.log"
    progress.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "dynconf", "simulate", *args,
           "--out", str(out), "--progress-file", str(progress)]  # fmt: skip
    log.unlink(missing_ok=True)
    with open(log, "x") as fh:  # created afresh: never opens a FIFO left in its place
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_job_environment(),
            start_new_session=True,  # survives the caller; killpg reaches its workers
        )
    job = Job(name, proc.pid, str(out), str(progress), str(log), time.time(), cmd)
    _PROCS[str(job.job_file)] = proc
    _save(job)
    return job


def _job_environment() -> dict[str, str]:
    """The caller's environment with this package's folder first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p
    )
    return env


def cancel_job(job: Job) -> None:
    """Stop the job's process group (if still running) and mark it cancelled."""
    if job.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGTERM)
    job.cancelled = True
    _save(job)


def forget_job(job: Job) -> None:
    """Remove a job from the list (its log stays for inspection)."""
    for path in (job.job_file, Path(job.progress_file)):
        path.unlink(missing_ok=True)
    _PROCS.pop(str(job.job_file), None)


# --------------------------------------------------------------------------- own runs


def own_run_dir(name: str, work_root: Path | str | None = None) -> Path:
    """``WORK/NAME`` if it is one of the user's runs: a plain name, a real directory directly
    in the work root (no symlink out of it) with a meta.json, and not in the shipped runs
    root. Anything else is refused with a DynconfError."""
    check_format_name(name)
    work = Path(work_root if work_root is not None else default_work_root()).resolve()
    for shipped in (root.resolve() for root in runs_roots()):
        if work == shipped or shipped in work.parents or work in shipped.parents:
            raise DynconfError("the work root overlaps the shipped runs; runs there are not yours")
    path = work / name
    if path.is_symlink() or not path.is_dir() or path.resolve().parent != work:
        raise DynconfError(f"{name!r} is not one of your runs in {work}")
    if not (path / "meta.json").is_file():
        raise DynconfError(f"{name!r} in {work} is not a run (no meta.json)")
    if any(job.alive() and Path(job.out) == path for job in list_jobs(work)):
        raise DynconfError(f"a simulation is still writing {name!r}; cancel it first")
    return path


def _forget_finished_jobs_of(path: Path, work: Path) -> None:
    for job in list_jobs(work):
        if Path(job.out) == path and not job.alive():
            forget_job(job)


def rename_run(name: str, new: str, work_root: Path | str | None = None) -> Path:
    """Rename one of the user's runs (one atomic ``rename``); returns the new path."""
    path = own_run_dir(name, work_root)
    check_run_name(new)  # plain name, not a shipped run's
    target = path.parent / new
    if os.path.lexists(target):
        raise DynconfError(f"a run named {new!r} already exists")
    _forget_finished_jobs_of(path, path.parent)
    os.rename(path, target)
    return target


def delete_run(name: str, work_root: Path | str | None = None) -> None:
    """Delete one of the user's runs: hidden at once (atomic rename), then removed."""
    path = own_run_dir(name, work_root)
    _forget_finished_jobs_of(path, path.parent)
    hidden = path.parent / f".deleting-{name}-{time.monotonic_ns()}"
    os.rename(path, hidden)  # gone from every listing in one step
    shutil.rmtree(hidden, ignore_errors=True)

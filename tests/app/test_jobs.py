"""dynconf.jobs: background simulations started, followed, cancelled and listed (no Streamlit).

The jobs are real ``python -m dynconf simulate`` processes on the digits checkpoint.
"""

from __future__ import annotations

import json
import os

import pytest

from dynconf import jobs
from dynconf.core.store import load_run
from dynconf.errors import DynconfError


@pytest.fixture
def roots(tmp_path):
    """(work root, shipped-runs root with one run 'shipped' in it)."""
    shipped = tmp_path / "shipped"
    (shipped / "shipped").mkdir(parents=True)
    return tmp_path / "work", shipped


def simulate_args(checkpoint, T: int, limit: int | None) -> list[str]:
    args = ["--checkpoint", str(checkpoint), "--dataset", "digits", "--T", str(T),
            "--splits", "test"]  # fmt: skip
    return args + (["--limit", str(limit)] if limit else [])


def test_a_short_job_runs_to_a_complete_run(roots, digits_checkpoint, wait_for):
    work, shipped = roots
    job = jobs.start_job(
        "small", simulate_args(digits_checkpoint, 2, 20), work_root=work, runs_root=shipped
    )
    assert job.job_file == work / ".jobs" / "small.job.json"
    assert job.cmd[1:4] == ["-m", "dynconf", "simulate"]
    assert job.cmd[-4:] == ["--out", str(work / "small"), "--progress-file", job.progress_file]
    stored = json.loads(job.job_file.read_text())
    assert stored == {**job.__dict__, "cancelled": False}
    assert [j.name for j in jobs.list_jobs(work)] == ["small"]
    # Nobody else's jobs: the default work root is another folder.
    assert jobs.jobs_dir(work) != jobs.jobs_dir()

    wait_for(lambda: not job.alive(), timeout=180)
    assert job.returncode() == 0, job.log_tail()
    assert job.status() == "done", job.log_tail()
    assert job.progress()["done"] == job.progress()["total"] == 20
    run = load_run(work / "small")
    assert run.T_max == 2 and run.meta["splits"] == {"test": 20}

    # A later server process knows the job from its files alone (no Popen handle).
    jobs._PROCS.clear()
    (again,) = jobs.list_jobs(work)
    assert again.name == "small" and not again.alive() and again.status() == "done"
    assert again.returncode() is None

    # The run now exists: the name is taken.
    with pytest.raises(DynconfError, match="already exists"):
        jobs.start_job("small", simulate_args(digits_checkpoint, 2, 20), work_root=work)
    jobs.forget_job(again)
    assert jobs.list_jobs(work) == []
    assert not os.path.exists(again.progress_file)
    assert os.path.exists(again.log_file)  # the log stays for inspection


def test_cancel_stops_a_long_job_and_leaves_no_run(roots, digits_checkpoint, wait_for):
    work, shipped = roots
    job = jobs.start_job(
        "long", simulate_args(digits_checkpoint, 512, None), work_root=work, runs_root=shipped
    )
    assert job.alive() and job.status() == "running"
    with pytest.raises(DynconfError, match="already running"):
        jobs.start_job("long", simulate_args(digits_checkpoint, 2, 20), work_root=work)
    # Wait until it is really simulating (its work folder exists), then cancel.
    wait_for(lambda: (work / ".long.partial").is_dir() or not job.alive(), timeout=180)
    assert job.alive(), job.log_tail()
    jobs.cancel_job(job)
    wait_for(lambda: not job.alive(), timeout=30)
    assert job.returncode() not in (None, 0)
    assert job.status() == "cancelled"
    assert json.loads(job.job_file.read_text())["cancelled"] is True
    assert jobs.list_jobs(work)[0].status() == "cancelled"
    assert not (work / "long").exists()
    jobs.cancel_job(job)  # cancelling a finished job is harmless


def test_names_are_checked_before_anything_starts(roots):
    work, shipped = roots
    for bad in ("", ".hidden", "a/b", "../up", "sp ace"):
        with pytest.raises(DynconfError, match="letters, digits"):
            jobs.start_job(bad, [], work_root=work, runs_root=shipped)
    with pytest.raises(DynconfError, match="shipped run"):
        jobs.start_job("shipped", [], work_root=work, runs_root=shipped)
    jobs.check_run_name("my-run_2", shipped)  # fine
    assert not work.exists()  # nothing was written or started


def test_listing_skips_unreadable_and_temporary_job_files(roots):
    work, _ = roots
    folder = jobs.jobs_dir(work)
    folder.mkdir(parents=True)
    old = {"name": "old", "pid": 2**22 + 1, "out": str(work / "old"),
           "progress_file": str(folder / "old.progress.json"),
           "log_file": str(folder / "old.log"), "started": 1.0, "cmd": ["x"]}  # fmt: skip
    new = {**old, "name": "new", "started": 2.0, "out": str(work / "new")}
    (folder / "old.job.json").write_text(json.dumps(old))
    (folder / "new.job.json").write_text(json.dumps(new))
    (folder / "garbage.job.json").write_text("{not json")
    (folder / "odd.job.json").write_text(json.dumps({"name": "odd"}))
    (folder / ".dynconf-tmp-0123-new.job.json").write_text(json.dumps(new))
    listed = jobs.list_jobs(work)
    assert [j.name for j in listed] == ["new", "old"]  # newest first
    assert listed[1].job_file == folder / "old.job.json"
    assert [j.status() for j in listed] == ["failed", "failed"]  # no process, no run
    assert listed[0].progress() == {} and listed[0].log_tail() == ""
    assert jobs.list_jobs(work / "nowhere") == []

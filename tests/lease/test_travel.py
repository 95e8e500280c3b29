"""What travels to the GPU machine: the size check, hiding big tracked runs, and undoing it,
in a real git repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dynconf.errors import DataError
from lease import travel

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path):
    """A checkout with a small tracked file, a big tracked run and an ignored folder."""
    repo = tmp_path / "repo"
    (repo / "cached_runs" / "cifar10_resnet20").mkdir(parents=True)
    (repo / "cached_runs" / "cifar10_resnet20" / "test.outputs.npy").write_bytes(b"x" * 5000)
    (repo / "cached_runs" / "digits").mkdir()
    (repo / "cached_runs" / "digits" / "meta.json").write_text("{}")
    (repo / "code.py").write_text("print(1)\n")
    (repo / ".gitignore").write_text("/checkpoints/\n")
    (repo / "checkpoints").mkdir()
    (repo / "checkpoints" / "last.pt").write_bytes(b"y" * 9000)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    (repo / "notes.txt").write_text("untracked, not ignored: travels\n")
    return repo


def test_check_counts_tracked_untracked_and_carried_files_but_not_ignored_ones(repo):
    report = travel.check(repo)
    names = {f["path"] for f in report["largest"]}
    assert "notes.txt" in names and "checkpoints/last.pt" not in names
    assert report["bytes"] == 5000 + 2 + 9 + len("/checkpoints/\n") + 32
    carried = travel.check(repo, ["checkpoints"])
    assert carried["bytes"] == report["bytes"] + 9000 and carried["fits"]


def test_hide_takes_a_run_out_of_travel_and_restore_brings_it_back(repo):
    before = travel.check(repo)["bytes"]
    assert travel.hide(repo, ["cached_runs/cifar10_resnet20", "cached_runs/absent"]) == [
        "cached_runs/cifar10_resnet20"
    ]
    assert travel.check(repo)["bytes"] == before - 5000
    assert (repo / "cached_runs" / "cifar10_resnet20" / "test.outputs.npy").is_file()
    assert "cifar10_resnet20" not in git(repo, "ls-files")
    assert "?? cached_runs" not in git(repo, "status", "--porcelain")  # not offered as new
    assert travel.hide(repo, ["cached_runs/cifar10_resnet20"]) == []  # already hidden
    assert travel.hidden_paths(repo) == ["cached_runs/cifar10_resnet20"]

    assert travel.restore(repo) == ["cached_runs/cifar10_resnet20"]
    assert git(repo, "status", "--porcelain").strip() == "?? notes.txt"
    assert travel.check(repo)["bytes"] == before
    assert travel.hidden_paths(repo) == [] and travel.restore(repo) == []


def test_a_run_with_uncommitted_changes_is_not_hidden(repo):
    (repo / "cached_runs" / "cifar10_resnet20" / "test.outputs.npy").write_bytes(b"changed")
    with pytest.raises(DataError, match="uncommitted changes"):
        travel.hide(repo, ["cached_runs/cifar10_resnet20"])
    assert "cifar10_resnet20" in git(repo, "ls-files")


def test_restore_says_when_a_hidden_run_changed_meanwhile(repo):
    travel.hide(repo, ["cached_runs/cifar10_resnet20"])
    (repo / "cached_runs" / "cifar10_resnet20" / "test.outputs.npy").write_bytes(b"changed")
    with pytest.raises(DataError, match="differ from HEAD: cached_runs/cifar10_resnet20"):
        travel.restore(repo)
    assert "cifar10_resnet20" in git(repo, "ls-files")  # tracked again all the same


def test_prepare_packs_the_data_hides_the_big_runs_and_ignores_the_lease_folder(repo, tmp_path):
    from PIL import Image

    data = tmp_path / "data" / "cifar10" / "train" / "cat"
    data.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(data / f"{i:04d}.jpg")
    done = subprocess.run(
        [sys.executable, "-m", "lease.travel", "prepare", "--repo", str(repo),
         "--data-root", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["hidden"] == ["cached_runs/cifar10_resnet20"]
    assert report["pack"]["files"] == 3 and report["data_pack"] == ".lease/cifar10.jpgpack"
    assert (repo / ".lease" / "cifar10.jpgpack").is_file()
    assert report["check"]["fits"]
    travelling = {f["path"] for f in report["check"]["largest"]}
    assert ".lease/cifar10.jpgpack" in travelling  # counted as carried
    assert ".lease" not in git(repo, "status", "--porcelain")  # ignored: only carried
    assert travel.restore(repo) == ["cached_runs/cifar10_resnet20"]


def test_the_real_checkout_fits_once_prepared():
    """This repository: what would travel with the big runs hidden and a 21 MB pack."""
    tracked = travel.travelling_files(ROOT)
    hidden = sum(size for name, size in tracked if name.startswith(travel.BIG_RUNS))
    total = sum(size for _, size in tracked) - hidden + 21 * 10**6
    assert total < travel.LIMIT_BYTES, f"{total / 2**20:.1f} MiB would travel"

"""`simulate` and `record` under torchrun: 2 CPU processes (gloo) write the same run as one
process, array for array and id for id; the meta says which rank made which samples; a rank
that crashes leaves no run, and the same command resumes from the batches it finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dynconf.core.store import load_run
from dynconf.engine.distributed import World, shard, shards_of

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "cached_runs" / "digits" / "model.pt"
# what may differ between a 1-process and a 2-process run: timings and who did what
VARYING = ("wall_time_s", "simulation_seconds", "recording_seconds", "date", "shards",
           "world_size", "writers")  # fmt: skip

pytestmark = pytest.mark.slow


def env_with(user_dir: Path | None = None, **extra) -> dict:
    paths = [str(ROOT)] + ([str(user_dir)] if user_dir else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}


def launch(cwd: Path, words: list[str], processes: int, env: dict, timeout: int = 420):
    """``python -m dynconf WORDS`` in one process, or under torchrun in ``processes``."""
    cwd.mkdir(parents=True, exist_ok=True)
    if processes == 1:
        head = [sys.executable, "-m", "dynconf"]
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(processes), "-m", "dynconf"]  # fmt: skip
    return subprocess.run(
        [*head, *words], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_same_run(one: Path, two: Path, world_size: int) -> dict:
    """Every array equal (values and dtype) and the meta equal but for VARYING; returns the
    2-process run's shards."""
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    arrays = [name for name in files if name.endswith(".npy")]
    assert any(name.endswith(".synops.npy") for name in arrays)
    for name in arrays:
        a, b = np.load(one / name), np.load(two / name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    meta_one, meta_two = (json.loads((p / "meta.json").read_text()) for p in (one, two))
    assert meta_one["created"]["world_size"] == 1
    assert meta_two["created"]["world_size"] == world_size
    shards = meta_two["created"]["shards"]
    for meta in (meta_one, meta_two):
        for key in VARYING:
            meta["created"].pop(key, None)
    assert meta_one == meta_two
    return shards


def assert_shards_cover(shards: dict, sizes: dict, ranks: set) -> None:
    assert set(shards) == set(sizes)
    for split, parts in shards.items():
        edges = [p["samples"] for p in parts]
        assert edges[0][0] == 0 and edges[-1][1] == sizes[split]
        assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))
        assert {p["rank"] for p in parts} == ranks


def test_shards_are_contiguous_whole_blocks():
    blocks = [list(shard(7, World(rank=r, size=3))) for r in range(3)]
    assert blocks == [[0, 1], [2, 3], [4, 5, 6]]
    assert shards_of([0, 0, 1, 1, 1], [32, 32, 32, 32, 8]) == [
        {"rank": 0, "samples": [0, 64]},
        {"rank": 1, "samples": [64, 136]},
    ]


def test_two_process_simulate_equals_one_process(tmp_path):
    words = ["simulate", "--checkpoint", str(CHECKPOINT), "--dataset", "digits", "--T", "8",
             "--splits", "calibration,test", "--limit", "150", "--batch-size", "32",
             "--out", "run", "--no-progress", "--json"]  # fmt: skip
    env = env_with()
    one = launch(tmp_path / "one", words, 1, env)
    assert one.returncode == 0, one.stderr
    two = launch(tmp_path / "two", words, 2, env)
    assert two.returncode == 0, two.stderr
    # --json: one object on stdout, from rank 0 only
    result = json.loads(two.stdout)
    assert result["world_size"] == 2 and result["splits"] == {"calibration": 150, "test": 150}
    shards = assert_same_run(tmp_path / "one" / "run", tmp_path / "two" / "run", 2)
    assert_shards_cover(shards, {"calibration": 150, "test": 150}, {0, 1})
    # 5 batches of 32: rank 0 takes 2, rank 1 the other 3
    assert shards["test"] == [
        {"rank": 0, "writer": 0, "samples": [0, 64]},
        {"rank": 1, "writer": 0, "samples": [64, 150]},
    ]
    assert not (tmp_path / "two" / ".run.partial").exists()
    run = load_run(tmp_path / "two" / "run")
    assert run.split("test").synops.dtype == np.int64 and run.split("test").synops.min() > 0


USER_MODULE = '''
"""A user's own SpikingJelly CNN for 8x8 digits; DYNCONF_TEST_CRASH makes rank 1 fail."""
import os

import torch
from torch import nn
from spikingjelly.activation_based import layer, neuron


class CrashOnRankOne(nn.Module):
    """Raises on rank 1's second batch when DYNCONF_TEST_CRASH is set (a dying process)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        crash = os.environ.get("DYNCONF_TEST_CRASH") and os.environ.get("RANK") == "1"
        if crash and self.calls > 8:  # T = 8 calls per batch: the second batch
            raise RuntimeError("rank 1 lost its GPU")
        return x


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(
        CrashOnRankOne(),
        layer.Conv2d(1, 8, 3, padding=1), neuron.IFNode(v_threshold=0.5), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(8 * 4 * 4, 10),
    )
'''


@pytest.fixture
def user_package(tmp_path):
    pytest.importorskip("spikingjelly.activation_based")
    package = tmp_path / "user_code" / "my_snns"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cnn.py").write_text(textwrap.dedent(USER_MODULE))
    return package.parent


RECORD = ["record", "--model", "my_snns.cnn:build_model", "--dataset", "digits", "--T", "8",
          "--splits", "calibration,test", "--limit", "120", "--batch-size", "24",
          "--out", "run", "--no-progress", "--json"]  # fmt: skip


def test_two_process_record_equals_one_process_and_survives_a_crash(tmp_path, user_package):
    env = env_with(user_package)
    one = launch(tmp_path / "one", RECORD, 1, env)
    assert one.returncode == 0, one.stderr
    two = launch(tmp_path / "two", RECORD, 2, env)
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout)["splits"] == {"calibration": 120, "test": 120}
    shards = assert_same_run(tmp_path / "one" / "run", tmp_path / "two" / "run", 2)
    assert_shards_cover(shards, {"calibration": 120, "test": 120}, {0, 1})
    meta = json.loads((tmp_path / "two" / "run" / "meta.json").read_text())
    assert meta["recording"]["synops"] == "recorded" and meta["neurons"] == 8 * 8 * 8

    # rank 1 dies on its second batch: no run, the finished batches stay in the work folder
    crashed = tmp_path / "crash"
    died = launch(crashed, RECORD, 2, env_with(user_package, DYNCONF_TEST_CRASH="1"))
    assert died.returncode != 0 and "rank 1 lost its GPU" in died.stderr
    assert not (crashed / "run").exists()
    finished = sorted((crashed / ".run.partial").glob("*.npz"))
    assert finished
    # the same command, now in one process, resumes and gives the uninterrupted run
    resumed = launch(crashed, RECORD, 1, env)
    assert resumed.returncode == 0, resumed.stderr
    shards = assert_same_run(tmp_path / "one" / "run", crashed / "run", 1)
    assert {p["rank"] for parts in shards.values() for p in parts} == {0, 1}
    assert not (crashed / ".run.partial").exists()
    assert_provenance_is_consistent(crashed / "run")


def assert_provenance_is_consistent(run_dir: Path) -> None:
    """After a 2-process job was killed and resumed in one process: the writers are the two
    process groups, oldest first; every shard names a writer that had its rank; the run's
    world_size is the merging writer's."""
    created = json.loads((run_dir / "meta.json").read_text())["created"]
    writers = created["writers"]
    assert [w["world_size"] for w in writers] == [2, 1]
    assert created["world_size"] == writers[-1]["world_size"] == 1
    for parts in created["shards"].values():
        for part in parts:
            assert part["rank"] < writers[part["writer"]]["world_size"]
    used = {p["writer"] for parts in created["shards"].values() for p in parts}
    assert used == {0, 1}

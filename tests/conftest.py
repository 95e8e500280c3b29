"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import build_synthetic_run, synthetic_split


@pytest.fixture(scope="session", autouse=True)
def analysis_cache_dir(tmp_path_factory):
    """Every test (and every process it starts) keeps its analysis cache in one folder of
    the test session, never in the user's cache: runs built by tests share names and sizes."""
    folder = tmp_path_factory.mktemp("analysis_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DYNCONF_CACHE_DIR", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="session")
def dashboard_runs(tmp_path_factory) -> Path:
    """A runs root: a good synthetic run ("synth"), the same stored as top-k only
    ("synth_topk", where per-step decoders cannot work) and a damaged run ("broken")."""
    from dynconf.core.store import save_run

    root = tmp_path_factory.mktemp("runs")
    build_synthetic_run(root / "synth")
    save_run(
        root / "synth_topk",
        {"test": synthetic_split(300, 16, 10, 4, 2000)},
        dataset="synthetic",
        model="synthetic SNN, top-k storage",
        storage="topk",
        topk=3,
    )
    broken = build_synthetic_run(root / "broken", n_test=50, n_cal=30, seed=3).path
    data = (broken / "test.outputs.npy").read_bytes()
    (broken / "test.outputs.npy").write_bytes(data[: len(data) // 2])  # a half-copied file
    return root


# --------------------------------------------------------------------------- core runs


@pytest.fixture
def synthetic_run(tmp_path):
    """A fresh valid run (test 600, calibration 400, T 16, K 10, spikes) in tmp_path."""
    return build_synthetic_run(tmp_path / "synth")


@pytest.fixture
def outputs_npz(tmp_path) -> Path:
    """An importable outputs file: outputs [12, 300, 10] float32, labels, spikes, ids."""
    path = tmp_path / "outputs.npz"
    np.savez(path, **synthetic_split(300, 12, 10, seed=7, neurons=500, dtype=np.float32))
    return path


# SNN engine fixtures (trained digits model) live in their own module.
pytest_plugins = ("tests.snn_fixtures",)


@pytest.fixture
def env(dashboard_runs, tmp_path, monkeypatch):
    """The app's environment for AppTest: the dashboard runs as shipped runs, an empty work
    folder, no dataset root (so no test depends on a local data copy)."""
    monkeypatch.setenv("DYNCONF_RUNS", str(dashboard_runs))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    return dashboard_runs

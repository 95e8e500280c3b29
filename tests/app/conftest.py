"""Fixtures of the app's tests: a digits checkpoint to simulate, and waiting for a job."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CHECKPOINT = ROOT / "cached_runs" / "digits" / "model.pt"


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """The shipped digits run's checkpoint, else a one-epoch digits CNN trained here."""
    if SHIPPED_CHECKPOINT.is_file():
        return SHIPPED_CHECKPOINT
    out = tmp_path_factory.mktemp("ckpt")
    subprocess.run(
        [sys.executable, "-m", "dynconf", "train", "--dataset", "digits", "--arch",
         "digits_cnn", "--epochs", "1", "--out", str(out), "--no-progress"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out / "model.pt"


def wait_until(predicate, timeout: float = 120.0) -> None:
    """Poll ``predicate`` every 0.2 s; fail the test after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def wait_for():
    return wait_until

"""`record` on the command line: a user's own model module, weights, a dataset's splits; the
run equals record_run on the same batches; a kill -9 resumes; bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dynconf.core.store import load_run
from dynconf.engine.data import load_digits
from dynconf.record import record_run

pytest.importorskip("spikingjelly.activation_based")

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = '''
"""A user's own package: a SpikingJelly MLP for 8x8 digits."""
import time

import torch
from torch import nn
from spikingjelly.activation_based import neuron


class Slow(nn.Module):
    """Waits a little at every step, so a test can kill the recording half-way."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return x


def build_model(hidden=32, delay=0.0):
    torch.manual_seed(0)
    return nn.Sequential(
        Slow(delay), nn.Flatten(), nn.Linear(64, hidden), neuron.IFNode(v_threshold=0.5),
        nn.Linear(hidden, 10),
    )
'''

# `record` through the real CLI entry point, also before it is registered in LAZY_COMMANDS
DRIVER = (
    "import sys, dynconf.cli as cli; "
    "cli.LAZY_COMMANDS.setdefault('record', ('dynconf.cli.record', 'record a model')); "
    "sys.exit(cli.main(sys.argv[1:]))"
)


@pytest.fixture
def user_package(tmp_path):
    package = tmp_path / "user_code" / "my_snns"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mlp.py").write_text(textwrap.dedent(USER_MODULE))
    return package.parent


def record_cli(user_dir, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_dir), str(ROOT)])}
    command = [sys.executable, "-c", DRIVER, "record", *args, "--threads", "1", "--no-progress"]
    return command, env


def run_cli(user_dir, *args, timeout=180):
    command, env = record_cli(user_dir, *args)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def saved_weights(tmp_path, user_dir):
    sys.path.insert(0, str(user_dir))
    try:
        from my_snns.mlp import build_model
    finally:
        sys.path.remove(str(user_dir))
    model = build_model(hidden=24)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # weights that differ from the freshly built model's
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_record_command_equals_record_run_on_the_same_batches(tmp_path, user_package):
    model, weights = saved_weights(tmp_path, user_package)
    out = tmp_path / "cli_run"
    done = run_cli(
        user_package,
        "--model", "my_snns.mlp:build_model", "--model-kwargs", '{"hidden": 24}',
        "--weights", str(weights), "--dataset", "digits", "--T", "8",
        "--splits", "calibration,test", "--limit", "50", "--batch-size", "16",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["splits"] == {"calibration": 50, "test": 50}
    assert summary["framework"] == "spikingjelly" and summary["neurons"] == 24
    run = load_run(out)
    assert run.meta["dataset"] == "digits" and run.meta["id_scheme"] == "sklearn-digits-index"
    assert run.meta["id_source"] == {"calibration": "train", "test": "test"}
    assert run.meta["model"] == "my_snns.mlp:build_model"
    assert run.meta["created"]["command"].startswith("python -m dynconf record --model")
    assert run.classes == [str(d) for d in range(10)]

    # the same model and images through the library give the same arrays
    from dynconf.engine.data.base import evenly_spaced

    torch.set_num_threads(1)
    digits = load_digits()
    plan = {}
    for name in ("calibration", "test"):
        split = digits.splits[name]
        split = split.take(evenly_spaced(len(split), 50))
        plan[name] = [(x, y, split.ids[pos]) for x, y, pos in split.batches(16)]
    direct = record_run(model, plan, T=8, out=tmp_path / "lib", progress=False)
    for name in ("calibration", "test"):
        for role in ("outputs", "spikes", "labels", "ids"):
            np.testing.assert_array_equal(
                np.asarray(getattr(run.split(name), role)),
                np.asarray(getattr(direct.split(name), role)),
            )


def test_killed_record_command_resumes_to_the_uninterrupted_run(tmp_path, user_package):
    args = [
        "--model", "my_snns.mlp:build_model", "--model-kwargs", '{"delay": 0.01}',
        "--dataset", "digits", "--T", "8", "--splits", "test", "--limit", "160",
        "--batch-size", "8",
    ]  # fmt: skip
    out = tmp_path / "killed"
    work = tmp_path / ".killed.partial"
    command, env = record_cli(user_package, *args, "--out", str(out))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work.glob("test-*.npz"))) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    finished = len(list(work.glob("test-*.npz")))
    assert 3 <= finished < 20 and not out.exists(), "the kill should land mid-run"

    resumed = run_cli(user_package, *args, "--out", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert not work.exists()
    # the uninterrupted recording of the same model and images (the CLI equals the library)
    sys.path.insert(0, str(user_package))
    try:
        from my_snns.mlp import build_model
    finally:
        sys.path.remove(str(user_package))
    from dynconf.engine.data.base import evenly_spaced

    torch.set_num_threads(1)
    split = load_digits().splits["test"]
    split = split.take(evenly_spaced(len(split), 160))
    batches = [(x, y, split.ids[pos]) for x, y, pos in split.batches(8)]
    whole = record_run(build_model(), batches, T=8, out=tmp_path / "whole", progress=False)
    a, b = load_run(out).split("test"), whole.split("test")
    for role in ("outputs", "spikes", "labels", "ids"):
        np.testing.assert_array_equal(np.asarray(getattr(a, role)), np.asarray(getattr(b, role)))


class Unpicklable:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "my_snns.mlp"], "--model must be PKG.MODULE:FUNCTION"),
        (["--model", "no_such_pkg.mod:f"], "cannot import no_such_pkg.mod"),
        (["--model", "my_snns.mlp:missing"], "has no function 'missing'"),
        (["--model", "my_snns.mlp:build_model", "--model-kwargs", "{"], "not JSON"),
        (["--model", "my_snns.mlp:build_model", "--model-kwargs", '{"x": 1}'], "failed"),
        (["--model", "my_snns.mlp:build_model", "--weights", "WRONG"], "do not fit the model"),
        (["--model", "my_snns.mlp:build_model", "--weights", "PICKLE"], "not a loadable"),
        (["--model", "my_snns.mlp:build_model", "--weights", "nope.pt"], "no such file"),
        (["--model", "my_snns.mlp:build_model", "--T", "0"], "T must be"),
    ],
)
def test_record_command_bad_input_is_refused(tmp_path, user_package, monkeypatch, args, message):
    """In-process through the command's own parser (the subprocess test below checks the
    one-line `error:` contract once)."""
    import argparse

    from dynconf.cli import record
    from dynconf.errors import DynconfError

    monkeypatch.syspath_prepend(str(user_package))
    wrong = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    pickle = tmp_path / "pickle.pt"
    torch.save({"x": Unpicklable()}, pickle)
    args = [str(wrong) if a == "WRONG" else str(pickle) if a == "PICKLE" else a for a in args]
    parser = argparse.ArgumentParser()
    record.add_arguments(parser)
    parsed = parser.parse_args(
        [*args, "--dataset", "digits", "--limit", "8", "--out", str(tmp_path / "r")]
    )
    parsed.no_progress = True
    with pytest.raises(DynconfError, match=message) as info:
        record.run_command(parsed)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "r").exists()


def test_record_command_error_is_one_line_and_never_unpickles(tmp_path, user_package):
    pickle = tmp_path / "pickle.pt"
    torch.save({"x": Unpicklable()}, pickle)
    done = run_cli(
        user_package, "--model", "my_snns.mlp:build_model", "--weights", str(pickle),
        "--dataset", "digits", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --weights"), lines
    assert "not a loadable state dict" in lines[0]
    assert "this must never run" not in done.stdout + done.stderr
    assert not (tmp_path / "r").exists()

"""`simulate`: checkpoint -> run directory; matches a direct simulation, resumes after a kill."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dynconf.core.store import load_run
from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dynconf.engine.data import load_digits
from dynconf.engine.snn import SpikingNetwork, simulate


def simulate_cli(checkpoint, out, *extra, T=16, limit=60):
    return [
        sys.executable,
        "-m",
        "dynconf",
        "simulate",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        "digits",
        "--T",
        str(T),
        "--splits",
        "calibration,test",
        "--out",
        str(out),
        "--limit",
        str(limit),
        "--no-progress",
        "--threads",
        "1",
        "--json",
        *extra,
    ]


def test_simulate_writes_a_valid_run_matching_a_direct_simulation(digits_checkpoint, tmp_path):
    out = tmp_path / "digits_run"
    progress = tmp_path / "progress.json"
    done = subprocess.run(
        simulate_cli(digits_checkpoint, out, "--progress-file", str(progress)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    run = load_run(out)
    assert run.T_max == 16 and run.split_names == ("calibration", "test")
    assert run.meta["splits"] == {"calibration": 60, "test": 60} == summary["splits"]
    assert run.meta["neurons"] == 16 * 64 + 32 * 64 + 64 * 16
    assert run.meta["id_scheme"] == "sklearn-digits-index"
    assert run.meta["created"]["command"].startswith("python -m dynconf simulate")
    trained_by = torch.load(digits_checkpoint, weights_only=True)["command"]
    assert run.meta["created"]["training_commands"] == [trained_by]
    assert (out / "model.pt").is_file() and run.meta["checkpoint"] == "model.pt"
    assert json.loads(progress.read_text())["state"] == "complete"
    assert not list(tmp_path.glob(".*.partial"))

    # the stored outputs are those of a direct simulation of the same images
    test = run.split("test")
    digits = load_digits()
    split = digits.splits["test"]
    positions = np.searchsorted(split.ids, test.ids)
    assert np.array_equal(split.ids[positions], test.ids)
    assert np.array_equal(split.labels[positions], test.labels)
    ann = model_from_checkpoint(load_checkpoint(digits_checkpoint))
    x = next(split.take(positions).batches(len(positions)))[0]
    torch.set_num_threads(1)
    direct = simulate(SpikingNetwork(ann), x, T=16)
    np.testing.assert_allclose(np.asarray(test.outputs), direct.outputs, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(test.spikes), direct.spikes)
    # accuracy summaries in meta agree with the stored outputs
    acc16 = (np.asarray(test.outputs).cumsum(0)[-1].argmax(1) == test.labels).mean()
    assert run.meta["snn_accuracy_by_T"]["test"]["16"] == pytest.approx(acc16)


def test_simulate_refuses_to_overwrite_and_reports_bad_input(digits_checkpoint, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    done = subprocess.run(simulate_cli(digits_checkpoint, out), capture_output=True, text=True)
    assert done.returncode != 0 and "already exists" in done.stderr
    assert "Traceback" not in done.stderr
    missing = subprocess.run(
        simulate_cli(tmp_path / "absent.pt", tmp_path / "new"), capture_output=True, text=True
    )
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_killed_simulation_resumes_and_matches_an_uninterrupted_one(digits_checkpoint, tmp_path):
    out = tmp_path / "resumed"
    command = simulate_cli(digits_checkpoint, out, "--batch-size", "8", T=48, limit=120)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    work = tmp_path / ".resumed.partial"
    deadline = time.time() + 120
    while len(list(work.glob("*.npz"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    finished_before_kill = len(list(work.glob("*.npz")))
    assert finished_before_kill >= 3 and not out.exists(), "the kill should land mid-run"
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = subprocess.run(
        simulate_cli(
            digits_checkpoint, tmp_path / "straight", "--batch-size", "8", T=48, limit=120
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr
    a, b = load_run(out), load_run(tmp_path / "straight")
    for split in ("calibration", "test"):
        np.testing.assert_array_equal(
            np.asarray(a.split(split).outputs), np.asarray(b.split(split).outputs)
        )
        np.testing.assert_array_equal(a.split(split).ids, b.split(split).ids)
    assert not work.exists()


def test_partial_results_of_other_settings_are_never_spliced_in(digits_checkpoint, tmp_path):
    out = tmp_path / "run"
    work = tmp_path / ".run.partial"
    work.mkdir()
    (work / "settings.json").write_text('{"T": 999}')
    done = subprocess.run(simulate_cli(digits_checkpoint, out), capture_output=True, text=True)
    assert done.returncode != 0 and "other settings" in done.stderr
    assert not out.exists()

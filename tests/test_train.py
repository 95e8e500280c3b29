"""Training: learning-rate schedule, safe checkpoints, and resuming after a real kill."""

import json
import subprocess
import sys
import time

import pytest
import torch

from dynconf.errors import DataError
from dynconf.train import (
    learning_rate,
    load_checkpoint,
    model_from_checkpoint,
    train,
    training_commands,
)
from tests.snn_fixtures import train_args


def test_learning_rate_schedules():
    total, warm = 100, 10
    assert learning_rate(0, total, warm, 0.1, "cosine") == pytest.approx(0.01)
    assert learning_rate(9, total, warm, 0.1, "cosine") == pytest.approx(0.1)
    assert learning_rate(55, total, warm, 0.1, "cosine") == pytest.approx(0.05)
    assert learning_rate(100, total, warm, 0.1, "cosine") == pytest.approx(0.0, abs=1e-12)
    cosine = [learning_rate(s, total, warm, 0.1, "cosine") for s in range(warm, total)]
    onecycle = [learning_rate(s, total, warm, 0.1, "onecycle") for s in range(warm, total)]
    assert all(a >= b for a, b in zip(cosine, cosine[1:], strict=False))
    assert all(a >= b for a, b in zip(onecycle, onecycle[1:], strict=False))


def test_trained_checkpoint_is_safe_and_complete(digits_checkpoint):
    ckpt = torch.load(digits_checkpoint, weights_only=True)  # loads without unpickling code
    assert set(ckpt) >= {"model", "config", "history", "result"}
    result = json.loads(ckpt["result"])
    assert result["ann_test_accuracy"] > 0.85
    assert len(json.loads(ckpt["history"])) == 12
    model = model_from_checkpoint(load_checkpoint(digits_checkpoint))
    assert not model.training


def test_hostile_or_broken_checkpoints_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    hostile = tmp_path / "hostile.pt"
    torch.save({"model": Payload(), "config": {}}, hostile)
    with pytest.raises(DataError, match="cannot be loaded safely"):
        load_checkpoint(hostile)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="cannot be loaded safely"):
        load_checkpoint(truncated)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(DataError, match="not a dynconf checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


def test_wrong_architecture_in_checkpoint_is_a_clear_error(digits_checkpoint):
    ckpt = load_checkpoint(digits_checkpoint)
    ckpt["config"] = dict(ckpt["config"], arch="resnet20")
    with pytest.raises(DataError, match="do not fit resnet20"):
        model_from_checkpoint(ckpt)


def test_training_resumes_after_a_kill(tmp_path):
    out = tmp_path / "ckpt"
    command = [
        sys.executable,
        "-m",
        "dynconf",
        "train",
        "--dataset",
        "digits",
        "--arch",
        "digits_cnn",
        "--epochs",
        "30",
        "--batch-size",
        "64",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
        "--json",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    killed_at = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert 1 <= killed_at < 30, "the kill should land mid-training"
    assert not (out / "model.pt").exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming from {out / 'last.pt'} after epoch {killed_at}" in done.stderr
    result = json.loads(done.stdout)
    assert result["epochs"] == 30
    history = json.loads(torch.load(out / "model.pt", weights_only=True)["history"])
    assert [h["epoch"] for h in history] == list(range(1, 31))
    assert result["ann_test_accuracy"] > 0.85


def test_init_continues_from_the_given_weights(digits_checkpoint, tmp_path):
    started = json.loads(torch.load(digits_checkpoint, weights_only=True)["result"])
    # a learning rate of ~0 keeps the weights: the result must be the initial model's accuracy,
    # where one epoch from random weights would be near chance
    tuned = train(train_args(tmp_path / "ft", init=str(digits_checkpoint), epochs=1, lr=1e-9))
    assert tuned["ann_test_accuracy"] == pytest.approx(started["ann_test_accuracy"], abs=0.03)
    scratch = train(train_args(tmp_path / "scratch", epochs=1, lr=1e-9))
    assert scratch["ann_test_accuracy"] < 0.5
    config = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)["config"]
    assert config["init"]["checkpoint"] == str(digits_checkpoint)
    assert config["init"]["epochs"] == 12
    # a second warm restart keeps the whole chain of commands, oldest first
    train(train_args(tmp_path / "ft2", init=str(tmp_path / "ft" / "model.pt"), epochs=1, lr=1e-9))
    chained = torch.load(tmp_path / "ft2" / "model.pt", weights_only=True)
    first = torch.load(digits_checkpoint, weights_only=True)["command"]
    tuned_command = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)["command"]
    commands = training_commands(chained)
    assert commands == [first, tuned_command, chained["command"]]


@pytest.mark.parametrize(
    ("override", "message"),
    [({"levels": 3}, "its levels is 4"), ({"seed": 1}, "held out other calibration images")],
)
def test_init_refuses_another_network_or_hold_out(digits_checkpoint, tmp_path, override, message):
    args = train_args(tmp_path / "ft", init=str(digits_checkpoint), epochs=1, **override)
    with pytest.raises(DataError, match=message):
        train(args)


def test_training_commands_reads_checkpoints_from_before_the_chain_was_recorded():
    # such a restart recorded only the command of the checkpoint it started from
    old = {"config": {"init": {"command": "train A"}}, "command": "train B"}
    assert training_commands(old) == ["train A", "train B"]
    assert training_commands({"config": {}, "command": "train A"}) == ["train A"]

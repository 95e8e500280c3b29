"""Training: learning-rate schedule, safe checkpoints, and resuming after a real kill."""

import json
import math
import subprocess
import sys
import time

import pytest
import torch

from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint, training_commands
from dynconf.engine.config import parse_train_levels
from dynconf.engine.train import learning_rate
from dynconf.errors import DataError
from tests.snn_fixtures import train_args, train_quietly


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
    assert learning_rate(57, total, warm, 0.1, "constant") == 0.1
    # cyclic: a cosine restarted every cycle, each cycle ending near 0 (no warm-up here)
    cyclic = [learning_rate(s, total, 0, 0.1, "cyclic", cycle_steps=20) for s in range(total)]
    assert cyclic[0] == cyclic[20] == cyclic[40] == pytest.approx(0.1)
    assert cyclic[10] == pytest.approx(0.05)
    assert cyclic[19] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))
    assert cyclic[:20] == cyclic[20:40]
    assert all(a > b for a, b in zip(cyclic[:19], cyclic[1:20], strict=True))


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
    tuned = train_quietly(
        train_args(tmp_path / "ft", init=str(digits_checkpoint), epochs=1, lr=1e-9)
    )
    assert tuned["ann_test_accuracy"] == pytest.approx(started["ann_test_accuracy"], abs=0.03)
    scratch = train_quietly(train_args(tmp_path / "scratch", epochs=1, lr=1e-9))
    assert scratch["ann_test_accuracy"] < 0.5
    config = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)["config"]
    assert config["init"]["checkpoint"] == str(digits_checkpoint)
    assert config["init"]["epochs"] == 12
    # a second warm restart keeps the whole chain of commands, oldest first
    train_quietly(
        train_args(tmp_path / "ft2", init=str(tmp_path / "ft" / "model.pt"), epochs=1, lr=1e-9)
    )
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
        train_quietly(args)


def test_training_commands_reads_checkpoints_from_before_the_chain_was_recorded():
    # such a restart recorded only the command of the checkpoint it started from
    old = {"config": {"init": {"command": "train A"}}, "command": "train B"}
    assert training_commands(old) == ["train A", "train B"]
    assert training_commands({"config": {}, "command": "train A"}) == ["train A"]


def test_weight_averaging_is_the_mean_of_the_epochs_with_batchnorm_refitted(
    digits_checkpoint, tmp_path
):
    from dynconf.engine.data import load_digits

    out = tmp_path / "swa"
    iterates, results = [], []
    # a constant rate does not depend on --epochs, so growing --epochs resumes one trajectory
    for epochs in (1, 2, 3):
        args = train_args(
            out,
            init=str(digits_checkpoint),
            epochs=epochs,
            schedule="constant",
            lr=0.02,
            warmup_epochs=0.0,
            average_from=2,
        )
        results.append(train_quietly(args))
        iterates.append(torch.load(out / "last.pt", weights_only=True)["model"])
    assert "averaged_epochs" not in results[0]
    assert [r["averaged_epochs"] for r in results[1:]] == [1, 2]
    final = torch.load(out / "model.pt", weights_only=True)
    history = json.loads(final["history"])
    assert [h.get("averaged_epochs") for h in history] == [None, 1, 2]
    model = model_from_checkpoint(final)
    for name, value in model.named_parameters():
        expected = (iterates[1][name] + iterates[2][name]) / 2
        torch.testing.assert_close(value.detach(), expected, rtol=0, atol=1e-6)
        assert not torch.equal(iterates[1][name], iterates[2][name]), "the epochs should differ"

    # reference for the first BatchNorm: the mean over the same training batches of the batch
    # mean and unbiased variance of the first convolution's output, under the averaged weights
    conv, norm = model.features[0], model.features[1]
    means, variances = [], []
    batches = load_digits().splits["train"].batches(64, shuffle=True, augment=False, seed=3)
    with torch.no_grad():
        for x, _, _ in batches:
            h = conv(x).transpose(0, 1).flatten(1)
            means.append(h.mean(1))
            variances.append(h.var(1, unbiased=True))
    tolerance = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_mean, torch.stack(means).mean(0), **tolerance)
    torch.testing.assert_close(norm.running_var, torch.stack(variances).mean(0), **tolerance)
    stale = iterates[2]["features.1.running_mean"]
    assert not torch.allclose(norm.running_mean, stale, atol=1e-4), "statistics were not refitted"
    assert results[-1]["ann_test_accuracy"] > 0.85


def test_a_broken_weight_average_in_last_pt_is_a_clear_error(digits_checkpoint, tmp_path):
    out = tmp_path / "swa"
    args = train_args(out, init=str(digits_checkpoint), epochs=1, average_from=1)
    train_quietly(args)
    state = torch.load(out / "last.pt", weights_only=True)
    state["average"]["params"].pop(next(iter(state["average"]["params"])))
    torch.save(state, out / "last.pt")
    with pytest.raises(DataError, match="broken weight average"):
        train_quietly(train_args(out, init=str(digits_checkpoint), epochs=2, average_from=1))
    with pytest.raises(DataError, match="--average-from"):
        train_quietly(train_args(tmp_path / "neg", epochs=1, average_from=-1))


def test_train_levels_cycle_per_batch_and_the_checkpoint_keeps_levels(tmp_path, monkeypatch):
    from dynconf.engine.models import QCFS, qcfs_layers

    first_layer, levels = [], []  # levels of the first QCFS layer at each training forward
    forward = QCFS.forward

    def recording_forward(self, x):
        if self.training:
            first_layer[:] = first_layer or [self]
            if self is first_layer[0]:
                levels.append(self.levels)
        return forward(self, x)

    monkeypatch.setattr(QCFS, "forward", recording_forward)
    result = train_quietly(train_args(tmp_path / "mix", epochs=2, train_levels=(4, 16)))
    ckpt = torch.load(tmp_path / "mix" / "model.pt", weights_only=True)
    batches = math.ceil(ckpt["config"]["train_size"] / 64)
    # the cycle restarts with --levels at every epoch
    expected_epoch = [(4, 16)[i % 2] for i in range(batches)]
    assert levels == expected_epoch * 2
    assert ckpt["config"]["levels"] == 4
    assert ckpt["config"]["train_levels"] == [4, 16]
    history = json.loads(ckpt["history"])
    assert all(0.0 <= h["calibration_accuracy_L16"] <= 1.0 for h in history)
    # evaluation and the stored network use --levels, not the last training batch's levels
    assert {layer.levels for layer in qcfs_layers(model_from_checkpoint(ckpt))} == {4}
    assert result["ann_test_accuracy"] > 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [("8,16", "must include --levels 4"), ("4,x", "expected integers"), ("4,0", ">= 1")],
)
def test_train_levels_are_checked(text, message):
    with pytest.raises(DataError, match=message):
        parse_train_levels(text, 4)
    assert parse_train_levels(None, 4) == [4]
    assert parse_train_levels("4, 8,64", 4) == [4, 8, 64]

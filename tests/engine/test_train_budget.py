"""Time-boxed training on any GPU: the time budget, bf16, the compile probe, float16 weights,
`--limit`, `--checkpoint-every`, and the training set held on the device."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from dynconf.engine import train as train_module
from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint, train_config_of
from dynconf.engine.data import load_digits
from dynconf.engine.data.base import ArraySplit
from dynconf.engine.evaluate import evaluate_ann
from dynconf.engine.speed import (
    CompileProbe,
    check_budget_settings,
    epochs_that_fit,
    round_weights_to_half,
)
from dynconf.errors import DataError
from tests.snn_fixtures import train_args, train_quietly


def test_epochs_that_fit():
    # 100 s budget, first epoch 10 s, then 9 s each: 1 + floor(90 / 9) = 11
    assert epochs_that_fit(100, 10, 9, 400) == 11
    assert epochs_that_fit(100, 10, 9, 5) == 5  # capped by --epochs
    assert epochs_that_fit(100, 120, 9, 400) == 1  # the first epoch alone overran
    assert epochs_that_fit(100, 10, 9.0001, 400) == 10  # never one more than fits
    assert epochs_that_fit(100, 10, 0, 7) == 7


def test_budget_settings_are_checked():
    check_budget_settings(None, 0.0)
    check_budget_settings(60, 1.0)
    with pytest.raises(DataError, match="--warmup-epochs 1 or more"):
        check_budget_settings(60, 0.5)
    with pytest.raises(DataError, match="above 0"):
        check_budget_settings(0, 1.0)
    for bad in (dict(amp="fp8"), dict(checkpoint_every=0), dict(limit=0)):
        with pytest.raises(DataError):
            train_quietly(train_args("unused", epochs=1, **bad))


def weights(path) -> dict:
    return load_checkpoint(path)["model"]


def test_a_budget_run_is_the_run_of_the_epochs_it_chose(tmp_path):
    """The budget only picks the epoch count after the (all warm-up) first epoch, so the
    command with `--epochs N` and no budget trains exactly the same weights."""
    sized = train_quietly(train_args(tmp_path / "a", epochs=3, time_budget_s=1e6, threads=1))
    plain = train_quietly(train_args(tmp_path / "b", epochs=3, threads=1))
    assert sized["epochs"] == plain["epochs"] == 3
    a, b = weights(tmp_path / "a" / "model.pt"), weights(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ckpt = load_checkpoint(tmp_path / "a" / "model.pt")
    first = json.loads(ckpt["history"])[0]
    assert first["sized_epochs"] == 3 and first["epoch_estimate_s"] > 0
    assert ckpt["config"]["time_budget_s"] == 1e6 and ckpt["config"]["epochs"] == 3
    assert "time_budget_s" not in load_checkpoint(tmp_path / "b" / "model.pt")["config"]


def test_a_tight_budget_stops_after_the_first_epoch_and_a_resume_keeps_the_count(tmp_path):
    out = tmp_path / "tight"
    result = train_quietly(train_args(out, epochs=50, time_budget_s=1e-3, threads=1))
    assert result["epochs"] == 1
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt["config"]["epochs"] == 1
    assert train_config_of(ckpt).epochs == 1
    # A run killed after sizing resumes with the sized count, not --epochs: pretend epoch 1
    # had sized the run to 3 epochs.
    (out / "model.pt").unlink()
    last = torch.load(out / "last.pt", weights_only=True)
    last["config"]["epochs"] = 3
    torch.save(last, out / "last.pt")
    resumed = train_quietly(train_args(out, epochs=50, time_budget_s=1e-3, threads=1))
    assert resumed["epochs"] == 3
    assert [h["epoch"] for h in json.loads(load_checkpoint(out / "model.pt")["history"])] == [
        1,
        2,
        3,
    ]


def test_bf16_training_learns_and_evaluation_stays_float32(tmp_path):
    result = train_quietly(train_args(tmp_path / "bf16", epochs=4, amp="bf16", threads=1))
    assert result["ann_test_accuracy"] > 0.7  # 10 classes: chance is 0.1
    ckpt = load_checkpoint(tmp_path / "bf16" / "model.pt")
    assert ckpt["config"]["amp"] == "bf16"
    assert all(t.dtype == torch.float32 for t in ckpt["model"].values() if t.is_floating_point())


def test_half_weights_store_exactly_the_network_that_was_evaluated(tmp_path):
    result = train_quietly(train_args(tmp_path / "half", epochs=2, half_weights=True, threads=1))
    ckpt = load_checkpoint(tmp_path / "half" / "model.pt")
    model = model_from_checkpoint(ckpt)
    halves = {k for k, t in ckpt["model"].items() if t.dtype == torch.float16}
    multi_dim = {n for n, p in model.named_parameters() if p.ndim > 1}
    assert halves == multi_dim and result["half_weights"] == len(multi_dim)
    assert ckpt["model"]["features.1.running_var"].dtype == torch.float32
    # the float32 model rebuilt from the float16 file is the one whose accuracy was recorded
    assert evaluate_ann(model, load_digits().splits["test"]) == result["ann_test_accuracy"]


def test_round_weights_to_half_is_exact_and_refuses_what_float16_cannot_hold():
    layer = torch.nn.Linear(3, 2)
    names = round_weights_to_half(layer)
    assert names == ["weight"]
    assert torch.equal(layer.weight, layer.weight.half().float())
    with torch.no_grad():
        layer.weight[0, 0] = 1e6
    with pytest.raises(DataError, match="does not fit float16"):
        round_weights_to_half(layer)


def test_limit_trains_and_evaluates_on_a_few_images_but_records_the_whole_hold_out(tmp_path):
    result = train_quietly(train_args(tmp_path / "few", epochs=1, limit=100, threads=1))
    ckpt = load_checkpoint(tmp_path / "few" / "model.pt")
    full = load_digits()
    assert ckpt["config"]["train_size"] == 100 and ckpt["config"]["limit"] == 100
    assert ckpt["config"]["calibration_ids"] == full.splits["calibration"].ids.tolist()
    # accuracy over 100 test images comes in steps of 1 %
    assert round(result["ann_test_accuracy"] * 100, 9) == round(result["ann_test_accuracy"] * 100)


def test_checkpoint_every_writes_last_pt_that_often_and_after_the_last_epoch(tmp_path, monkeypatch):
    written = []
    real = train_module.save_checkpoint

    def recording(obj, path):
        written.append((path.name, obj.get("epoch")))
        real(obj, path)

    monkeypatch.setattr(train_module, "save_checkpoint", recording)
    train_quietly(train_args(tmp_path / "every", epochs=5, checkpoint_every=2, threads=1))
    assert written == [("last.pt", 2), ("last.pt", 4), ("last.pt", 5), ("model.pt", None)]


class StepClock:
    """A clock that says what each probed step cost: eager 2 s, compile 30 s, compiled 1 s."""

    def __init__(self):
        self.t, self.model = 0.0, None

    def now(self):
        return self.t


def run_probe(eager_cost, compiled_cost, steps=100):
    clock = StepClock()
    probe = CompileProbe("eager", "compiled", steps, clock)
    used = []
    for step in range(steps):
        model = probe.model_for(step)
        used.append(model)
        cost = eager_cost if model == "eager" else compiled_cost
        clock.t += 30.0 if (model == "compiled" and "compiled" not in used[:-1]) else cost
    return probe, used


def test_the_compile_probe_keeps_the_faster_model():
    probe, used = run_probe(eager_cost=2.0, compiled_cost=1.0)
    w = probe.window
    assert w == 10 and used[: 2 * w] == ["eager"] * (2 * w)
    assert set(used[2 * w :]) == {"compiled"}
    assert probe.report == {
        "eager_step_s": 2.0,
        "compile_s": 30.0,
        "compiled_step_s": 1.0,
        "compiled_kept": True,
    }
    probe, used = run_probe(eager_cost=1.0, compiled_cost=1.5)
    assert not probe.report["compiled_kept"]
    assert set(used[probe.done_at :]) == {"eager"}
    short = CompileProbe("eager", "compiled", 5, StepClock())
    assert [short.model_for(i) for i in range(5)] == ["compiled"] * 5 and short.report is None
    probe, _ = run_probe(eager_cost=2.0, compiled_cost=1.0, steps=6)  # the shortest probed
    assert probe.window == 1 and probe.report["compiled_kept"]


@pytest.mark.slow
def test_compile_trains_with_the_probe_and_drops_the_partial_batch(tmp_path):
    """A real torch.compile on the CPU (about a minute: inductor compiles C++ kernels)."""
    pytest.importorskip("torch._inductor")
    config = train_args(
        tmp_path / "compiled", arch="digits_mlp", epochs=1, compile=True, threads=2, batch_size=32
    )
    try:
        result = train_quietly(config)
    except Exception as exc:  # no C compiler for inductor on this machine
        pytest.skip(f"torch.compile unavailable here: {exc}")
    history = json.loads(load_checkpoint(tmp_path / "compiled" / "model.pt")["history"])
    report = history[0]["compile"]
    assert set(report) == {"eager_step_s", "compile_s", "compiled_step_s", "compiled_kept"}
    assert result["compile"] == report and report["compile_s"] > 0
    ckpt = load_checkpoint(tmp_path / "compiled" / "model.pt")
    assert ckpt["config"]["compile"] is True
    # 958 training images at batch 32: 29 full batches, the last 30 images dropped
    assert ckpt["config"]["train_size"] == 958
    assert history[0]["train_accuracy"] * (29 * 32) == pytest.approx(
        round(history[0]["train_accuracy"] * 29 * 32)
    )


@pytest.mark.parametrize("augment", [False, True])
def test_a_split_held_on_the_device_gives_the_same_batches(augment):
    split = load_digits().splits["train"]
    on_device = list(split.batches(100, shuffle=True, augment=augment, seed=3, device="cpu"))
    from_numpy = list(split.batches(100, shuffle=True, augment=augment, seed=3))
    assert len(on_device) == len(from_numpy) == -(-len(split) // 100)
    for (xa, ya, pa), (xb, yb, pb) in zip(on_device, from_numpy, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and np.array_equal(pa, pb)
    held = split._held_on("cpu")
    assert held[0].data_ptr() == torch.from_numpy(split.images).data_ptr()  # a view on a CPU
    assert split._held_on("cpu") is held  # copied once


def test_a_taken_split_does_not_share_the_held_copy():
    split = load_digits().splits["test"]
    split._held_on("cpu")
    part = split.take(np.arange(10))
    assert isinstance(part, ArraySplit) and "_held" not in vars(part)
    x, y, _ = next(part.batches(10, device="cpu"))
    assert torch.equal(y, torch.from_numpy(split.labels[:10]))
    assert dataclasses.fields(part)  # still a plain dataclass

"""`ann`: ANN accuracy at more QCFS levels, against a per-sample reference and the SNN."""

import json

import pytest
import torch

from dynconf import cli
from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dynconf.engine.data import load_digits
from dynconf.engine.evaluate import evaluate_ann
from dynconf.engine.models import build_model, qcfs_layers
from dynconf.engine.snn import SpikingNetwork, simulate


def ann_json(capsys, *argv) -> dict:
    code = cli.main(["ann", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def reference_accuracy(ckpt: dict, split, levels: int) -> float:
    """A network built at ``levels`` from the start, one image at a time."""
    cfg = ckpt["config"]
    model = build_model(cfg["arch"], levels, cfg["num_classes"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    x, y, _ = next(split.batches(len(split)))
    with torch.no_grad():
        hits = [int(model(x[i : i + 1]).argmax(1).item() == y[i].item()) for i in range(len(y))]
    return sum(hits) / len(hits)


def test_ann_accuracy_matches_a_network_built_at_those_levels(capsys, digits_checkpoint):
    out = ann_json(
        capsys, "--checkpoint", str(digits_checkpoint), "--dataset", "digits", "--levels", "4,16"
    )
    ckpt = load_checkpoint(digits_checkpoint)
    calibration = load_digits(seed=0).splits["calibration"]
    assert out["trained_levels"] == 4 and out["split"] == "calibration"
    assert set(out["accuracy_by_levels"]) == {"4", "16"}
    for levels in (4, 16):
        expected = reference_accuracy(ckpt, calibration, levels)
        assert out["accuracy_by_levels"][str(levels)] == pytest.approx(expected, abs=1e-12)
    # evaluate_ann at other levels gives the model its own levels back
    model = model_from_checkpoint(ckpt)
    assert evaluate_ann(model, calibration, levels=16) == out["accuracy_by_levels"]["16"]
    assert {layer.levels for layer in qcfs_layers(model)} == {4}
    # without --levels: the checkpoint's own
    own = ann_json(capsys, "--checkpoint", str(digits_checkpoint), "--dataset", "digits")
    assert own["accuracy_by_levels"] == {"4": out["accuracy_by_levels"]["4"]}


def test_ann_at_levels_T_stands_in_for_the_snn_at_T(capsys, digits_checkpoint):
    """The SNN at T steps resolves about T levels: its accuracy is near the ANN's at L = T."""
    T = 64
    out = ann_json(
        capsys, "--checkpoint", str(digits_checkpoint), "--dataset", "digits",
        "--split", "test", "--levels", str(T),
    )  # fmt: skip
    model = model_from_checkpoint(load_checkpoint(digits_checkpoint)).float()
    test = load_digits(seed=0).splits["test"]
    x, y, _ = next(test.batches(len(test)))
    outputs = simulate(SpikingNetwork(model), x, T).outputs  # [T, N, K], per step
    snn_accuracy = (outputs.sum(0).argmax(1) == y.numpy()).mean()
    assert abs(out["accuracy_by_levels"][str(T)] - snn_accuracy) <= 0.01
    assert {layer.levels for layer in qcfs_layers(model)} == {4}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--levels", "4,x"], "expected integers"),
        (["--levels", "0"], ">= 1"),
        (["--split", "nope"], "no split nope"),
    ],
)
def test_bad_ann_arguments_are_one_line_errors(capsys, digits_checkpoint, argv, message):
    code = cli.main(["ann", "--checkpoint", str(digits_checkpoint), "--dataset", "digits", *argv])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1


def test_ann_refuses_a_checkpoint_of_another_dataset(capsys, digits_checkpoint):
    code = cli.main(["ann", "--checkpoint", str(digits_checkpoint), "--dataset", "cifar10"])
    _, err = capsys.readouterr()
    assert code == 2 and "trained on digits, not cifar10" in err

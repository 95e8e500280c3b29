"""The architecture added through the registry as its worked example: a QCFS MLP for digits.

It must train like any other architecture (one file plus one registry entry) and convert
like one: the SNN run for T = L steps tracks the quantised ANN it came from.
"""

import torch

from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dynconf.engine.data import load_digits
from dynconf.engine.models import ARCHITECTURES, qcfs_layers
from dynconf.engine.snn import SpikingNetwork, simulate
from tests.snn_fixtures import train_args, train_quietly


def test_digits_mlp_trains_and_its_snn_at_T_equal_L_tracks_the_ann(tmp_path):
    assert "digits_mlp" in ARCHITECTURES
    result = train_quietly(train_args(tmp_path / "mlp", arch="digits_mlp", epochs=5, threads=1))
    assert result["ann_test_accuracy"] > 0.9
    ckpt = load_checkpoint(tmp_path / "mlp" / "model.pt")
    assert ckpt["config"]["arch"] == "digits_mlp"
    ann = model_from_checkpoint(ckpt)
    levels = ckpt["config"]["levels"]
    assert len(qcfs_layers(ann)) == 2
    test = load_digits().splits["test"]
    x, y, _ = next(test.batches(len(test)))
    with torch.no_grad():
        ann_pred = ann(x).argmax(1).numpy()
    snn = SpikingNetwork(ann)
    outputs = simulate(snn, x, T=levels).outputs
    assert snn.neurons == 128 + 128
    snn_pred = outputs.sum(0).argmax(1)
    assert (snn_pred == ann_pred).mean() >= 0.95
    ann_accuracy = (ann_pred == y.numpy()).mean()
    assert abs((snn_pred == y.numpy()).mean() - ann_accuracy) <= 0.02

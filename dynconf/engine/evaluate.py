"""Top-1 accuracy of the quantised ANN: what `train` reports each epoch and `ann` reports."""

from __future__ import annotations


def evaluate_ann(model, split, batch_size: int = 500, levels: int | None = None) -> float:
    """Top-1 accuracy of the (quantised) ANN on a split, on the device the model is on.

    ``levels``: evaluate with every QCFS layer at this many levels instead of its own (see
    ``models.set_levels``); the layers get their own levels back afterwards.
    """
    import torch

    from dynconf.engine.models import qcfs_layers, set_levels

    own_levels = [layer.levels for layer in qcfs_layers(model)]
    device = next(model.parameters()).device
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        if levels is not None:
            set_levels(model, levels)
        with torch.no_grad():
            for x, y, _ in split.batches(batch_size, device=device):
                logits = model(x.contiguous(memory_format=torch.channels_last))
                correct += (logits.argmax(1) == y).sum()
    finally:
        for layer, own in zip(qcfs_layers(model), own_levels, strict=True):
            layer.levels = own
    return correct.item() / len(split)

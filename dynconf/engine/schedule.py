"""The learning-rate schedules and the running weight average of `train` (engine/train.py).

Pure functions of the step (and of the model's parameters for the average), so a resumed
run continues the same schedule and the same average as an uninterrupted one.
"""

from __future__ import annotations

import math


def learning_rate(
    step: int,
    total_steps: int,
    warmup_steps: int,
    peak: float,
    schedule: str,
    cycle_steps: int = 1,
) -> float:
    """Linear warm-up to ``peak``, then one of:

    - ``cosine``: cosine from ``peak`` to 0 over the remaining steps;
    - ``onecycle``: linear from ``peak`` to ``peak/1000``;
    - ``constant``: ``peak``;
    - ``cyclic``: a cosine from ``peak`` towards 0 restarted every ``cycle_steps`` steps (one
      epoch in ``train``), so each epoch ends at a low rate: the points that weight averaging
      collects are each well converged yet spread along the trajectory.
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    if schedule == "cyclic":
        return 0.5 * peak * (1.0 + math.cos(math.pi * (step % cycle_steps) / cycle_steps))
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * peak * (1.0 + math.cos(math.pi * progress))
    return peak * (1.0 - progress * (1.0 - 1e-3))


def update_average(average: dict | None, model) -> dict:
    """Fold the model's current parameters into their running mean (one more epoch averaged)."""
    import torch

    with torch.no_grad():
        if average is None:
            params = {name: p.detach().clone() for name, p in model.named_parameters()}
            return {"params": params, "count": 1}
        count = average["count"] + 1
        for name, p in model.named_parameters():
            average["params"][name] += (p.detach() - average["params"][name]) / count
        return {"params": average["params"], "count": count}

"""Time-boxed training on any GPU: timed steps, the compile probe, the time budget.

`train` can size its schedule from a timed first epoch so that it ends within a given time
(``--time-budget``), try ``torch.compile`` and keep it only if its steps are measured faster
(``--compile``), and store float16 weights, which halves model.pt and is exactly the network
evaluated (``--half-weights``). The pieces are here; engine/train.py uses them.

Timings wait for the device (``torch.cuda.synchronize``) at the few steps that are timed, not
at every step: a GPU runs ahead of Python, so an unsynchronised clock would time the launches,
not the work.
"""

from __future__ import annotations

import math
import time

from dynconf.errors import DataError


def epochs_that_fit(budget_s: float, elapsed_s: float, epoch_s: float, max_epochs: int) -> int:
    """How many epochs in all, the ones done included, fit into ``budget_s`` seconds.

    ``elapsed_s``: what the first epoch took (compile time and warm-up included);
    ``epoch_s``: what each further epoch is expected to take. At least 1, at most
    ``max_epochs``.
    """
    if epoch_s <= 0:
        return max_epochs
    more = math.floor(max(0.0, budget_s - elapsed_s) / epoch_s)
    return max(1, min(max_epochs, 1 + more))


def check_budget_settings(time_budget_s: float | None, warmup_epochs: float) -> None:
    """The budget sizes the cosine after epoch 1, so epoch 1 must not depend on its length."""
    if time_budget_s is None:
        return
    if not time_budget_s > 0:
        raise DataError(f"--time-budget {time_budget_s}: must be a number of seconds above 0")
    if warmup_epochs < 1:
        raise DataError(
            "--time-budget sizes the schedule after the first epoch, so that epoch must be all "
            f"warm-up: use --warmup-epochs 1 or more (not {warmup_epochs})"
        )


class Clock:
    """Wall-clock readings taken after the device has finished its queued work."""

    def __init__(self, device):
        import torch

        self._sync = (
            (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        )

    def now(self) -> float:
        self._sync()
        return time.perf_counter()


class CompileProbe:
    """The first epoch with ``--compile``: eager steps, then compiled ones, timed; the faster wins.

    With a window of ``w`` steps: steps ``w`` to ``2w`` time the eager model (the first ``w``
    warm it up), step ``2w`` is the first compiled call (it compiles), steps ``3w + 1`` to
    ``4w + 1`` time the compiled model once it is warm. Every step trains: both models share
    the same parameters, so nothing is spent on the comparison except the compile itself.
    An epoch too short for a window (under 6 steps) uses the compiled model throughout.
    """

    def __init__(self, eager, compiled, steps_per_epoch: int, clock: Clock):
        self.eager, self.compiled, self.clock = eager, compiled, clock
        self.window = min(10, (steps_per_epoch - 2) // 4)  # so step 4w + 1 exists
        self.marks: dict[int, float] = {}
        self.keep_compiled = True
        self.report: dict | None = None

    def model_for(self, step: int):
        """The model that runs training step ``step`` of the first epoch (counting from 0)."""
        w = self.window
        if w >= 1 and step in (w, 2 * w, 2 * w + 1, 3 * w + 1, 4 * w + 1):
            self.marks[step] = self.clock.now()
        if w >= 1 and step == 4 * w + 1:
            self._decide()
        if w >= 1 and step < 2 * w:
            return self.eager
        return self.compiled if self.keep_compiled else self.eager

    @property
    def done_at(self) -> int:
        """The first step after the probe (its timings disturb no later window)."""
        return 4 * self.window + 2 if self.window >= 1 else 0

    def _decide(self) -> None:
        w, m = self.window, self.marks
        eager = (m[2 * w] - m[w]) / w
        compiled = (m[4 * w + 1] - m[3 * w + 1]) / w
        self.keep_compiled = compiled < eager
        self.report = {
            "eager_step_s": round(eager, 5),
            "compile_s": round(m[2 * w + 1] - m[2 * w], 2),
            "compiled_step_s": round(compiled, 5),
            "compiled_kept": self.keep_compiled,
        }


def round_weights_to_half(model) -> list[str]:
    """Round every conv/linear weight (parameters of 2 or more dimensions) to float16 in place.

    The model keeps float32 tensors holding float16 values, so evaluating and simulating it
    afterwards uses exactly the weights a float16 ``model.pt`` stores. BatchNorm parameters
    and statistics and the QCFS thresholds stay float32 (a running variance can be too small
    for float16). Returns the names of the rounded parameters.
    """
    import torch

    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(p.half().float())
                if not torch.isfinite(p).all():
                    raise DataError(f"weight {name} does not fit float16 (--half-weights)")
                names.append(name)
    return names

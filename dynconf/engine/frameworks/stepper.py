"""Any network behind two methods: ``step(x_t) -> logits_t`` and ``reset()`` (framework
``callable``).

For networks of other frameworks, or SpikingJelly/snnTorch ones stepped in a way of the
user's own: ``reset()`` is called before and after every batch and ``step`` once per time step
with that step's ``[B, ...]`` frame. ``step`` returns the class scores ``[B, K]``, or
``(scores, spikes)`` where ``spikes [B]`` is the number of hidden spikes each sample emitted
in that step; the run then holds them (pass ``neurons=`` to record_run for per-neuron rates).
Synaptic operations are not counted: dynconf cannot see inside such a network.
"""

from __future__ import annotations

from dynconf.engine.frameworks.base import Adapter
from dynconf.errors import DynconfError


def claims(model) -> bool:
    return callable(getattr(model, "step", None)) and callable(getattr(model, "reset", None))


class StepperAdapter(Adapter):
    name = "callable"
    label = "callable"

    def setup(self) -> None:
        model, step_mode = self.model, self.requested_step_mode
        if not claims(model):
            raise DynconfError(
                f"framework='callable' needs an object with step(x_t) -> logits_t and reset() "
                f"methods; {type(model).__name__} has "
                + ("no step()" if not callable(getattr(model, "step", None)) else "no reset()")
            )
        if step_mode not in (None, "s"):
            raise DynconfError("framework='callable' is stepped one step at a time")
        self.reports_spikes: bool | None = None

    def reset(self) -> None:
        self.model.reset()

    def forward(self, x):
        return self.model.step(x)

    def read(self, raw):
        if isinstance(raw, (tuple, list)):
            if len(raw) != 2:
                raise DynconfError(
                    f"step() returned {len(raw)} items; return logits [B, K] or "
                    "(logits [B, K], spikes [B])"
                )
            return raw[0]
        return raw

    def step_spikes(self, raw, multi: bool, T: int, batch: int):
        import torch

        has_spikes = isinstance(raw, (tuple, list)) and not callable(self.readout)
        if self.reports_spikes is None:
            self.reports_spikes = has_spikes
        elif self.reports_spikes != has_spikes:
            raise DynconfError("step() returned spikes at some steps and not at others")
        if not (has_spikes and self.count_spikes):
            return None
        spikes = torch.as_tensor(raw[1]).detach()
        if spikes.shape != (batch,):
            raise DynconfError(
                f"step() returned spikes of shape {tuple(spikes.shape)}, expected [B] = [{batch}]"
            )
        return spikes.reshape(1, batch).cpu()

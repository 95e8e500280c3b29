"""SpikingJelly (``spikingjelly.activation_based``) networks: single-step or multi-step.

A network's step mode is that of its neuron modules (``step_mode`` 's' or 'm', set by the
user or by ``functional.set_step_mode``): a single-step network is called T times with
``[B, ...]`` frames and returns ``[B, K]`` each time; a multi-step one is called once with
``[T, B, ...]`` and returns ``[T, B, K]``. State is cleared with ``functional.reset_net``
before and after every batch. Hidden spikes are counted on every ``BaseNode`` and
``SimpleBaseNode`` (IF, LIF, PLIF, ... and what ``ann2snn`` converts ReLUs into); synaptic
operations on every Linear/Conv layer fed by them (engine/synops.py).
"""

from __future__ import annotations

from dynconf.engine.frameworks.base import Adapter, SpikeCounter, outermost
from dynconf.engine.synops import SynopsCounter
from dynconf.errors import DynconfError

STEP_MODES = {"s": False, "m": True}  # SpikingJelly's names -> multi-step


def claims(model) -> bool:
    """Whether any module of ``model`` comes from SpikingJelly (without importing it)."""
    modules = getattr(model, "modules", None)
    return callable(modules) and any(
        type(m).__module__.startswith("spikingjelly.") for m in modules()
    )


class SpikingJellyAdapter(Adapter):
    name = "spikingjelly"
    label = "SpikingJelly"
    package = "spikingjelly"

    def setup(self) -> None:
        model, step_mode = self.model, self.requested_step_mode
        from spikingjelly.activation_based import functional, neuron

        self._functional = functional
        kinds = (neuron.BaseNode, neuron.SimpleBaseNode)
        neurons = outermost(model, lambda m: isinstance(m, kinds))
        if not neurons:
            raise DynconfError(
                "the model has SpikingJelly modules but no neuron modules (BaseNode or "
                "SimpleBaseNode subclasses); use framework='callable' for other neurons"
            )
        modes = {getattr(m, "step_mode", "s") for m in neurons.values()}
        if step_mode is not None:
            if step_mode not in STEP_MODES:
                raise DynconfError(f"step_mode must be 's' or 'm', got {step_mode!r}")
            self.multi_step = STEP_MODES[step_mode]
        elif len(modes) == 1:
            self.multi_step = STEP_MODES[modes.pop()]
        else:
            raise DynconfError(
                "the model's neuron modules mix single-step ('s') and multi-step ('m') modes; "
                "pass step_mode='s' or 'm' to say how the network is called"
            )
        if self.count_spikes:
            self.counter = SpikeCounter(
                neurons, spikes_of=_first_tensor, is_multi=lambda m: m.step_mode == "m"
            )
        if self.count_synops:
            self.synops = SynopsCounter(model, neurons.values())

    def reset(self) -> None:
        self._functional.reset_net(self.model)

    def forward(self, x):
        return self.model(x)


def _first_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output

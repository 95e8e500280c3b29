"""snnTorch networks built of stateful neurons (``init_hidden=True``), stepped T times.

With ``init_hidden=True`` every neuron keeps its own state and the network is called with one
step's input at a time (snnTorch's ``nn.Sequential`` style). Before and after every batch the
state is cleared with ``snntorch.utils.reset`` and, because that function only looks at the
network's top-level children, also with each neuron's own ``reset_mem()``, so neurons nested
in sub-modules are cleared too.

The readout says which of the network's return values are the class scores: an output layer
built with ``output=True`` returns ``(spikes, ..., membrane)``; ``"membrane"`` takes the last
item, ``"spikes"`` the first, ``"output"`` a network that returns one tensor (a final
``nn.Linear``, or spikes of a neuron with ``output=False``), or a callable picks them itself.
The default takes the membrane of a tuple and a single tensor as it is. Hidden spikes are
counted on every ``snntorch.SpikingNeuron``, synaptic operations on every Linear/Conv layer
fed by them (engine/synops.py).
"""

from __future__ import annotations

from dynconf.engine.frameworks.base import Adapter, SpikeCounter, outermost
from dynconf.engine.synops import SynopsCounter
from dynconf.errors import DynconfError


def claims(model) -> bool:
    """Whether any module of ``model`` comes from snnTorch (without importing it)."""
    modules = getattr(model, "modules", None)
    return callable(modules) and any(type(m).__module__.startswith("snntorch.") for m in modules())


class SnnTorchAdapter(Adapter):
    name = "snntorch"
    label = "snnTorch"
    package = "snntorch"
    readouts = ("membrane", "spikes", "output")

    def setup(self) -> None:
        model, step_mode = self.model, self.requested_step_mode
        import snntorch
        from snntorch import utils

        self._utils = utils
        if step_mode not in (None, "s"):
            raise DynconfError("snnTorch networks are stepped one step at a time (step_mode='s')")
        self.neurons = outermost(model, lambda m: isinstance(m, snntorch.SpikingNeuron))
        if not self.neurons:
            raise DynconfError("the model has snnTorch modules but no snnTorch neurons")
        stateless = [name for name, m in self.neurons.items() if not getattr(m, "init_hidden", 0)]
        if stateless:
            raise DynconfError(
                f"snnTorch neurons {', '.join(stateless)} are built with init_hidden=False: "
                "their state is passed by hand, so only your own loop can step them; build them "
                "with init_hidden=True, or use framework='callable'"
            )
        no_reset = [name for name, m in self.neurons.items() if not callable(_reset_of(m))]
        if no_reset:
            raise DynconfError(
                f"snnTorch neurons {', '.join(no_reset)} have no reset_mem(), so their state "
                "cannot be cleared between batches; use framework='callable'"
            )
        self._seen_kind: str | None = None
        if self.count_spikes:
            self.counter = SpikeCounter(
                self.neurons, spikes_of=_spikes_of, is_multi=lambda m: False
            )
        if self.count_synops:
            self.synops = SynopsCounter(model, self.neurons.values())

    def reset(self) -> None:
        self._utils.reset(self.model)
        for module in self.neurons.values():
            _reset_of(module)()

    def forward(self, x):
        return self.model(x)

    def read(self, raw):
        is_tuple = isinstance(raw, (tuple, list))
        readout = self.readout or ("membrane" if is_tuple else "output")
        self._seen_kind = readout
        if readout == "output":
            if is_tuple:
                raise DynconfError(
                    f"the model returns {len(raw)} tensors; pass readout='membrane' or 'spikes' "
                    "(an output layer built with output=True returns (spikes, ..., membrane))"
                )
            return raw
        if not is_tuple:
            if readout == "spikes":
                return raw
            raise DynconfError(
                "readout='membrane' needs the output neuron built with output=True (it then "
                "returns (spikes, membrane)); this model returns one tensor: use readout='output'"
            )
        return raw[-1] if readout == "membrane" else raw[0]

    def readout_name(self) -> str:
        if callable(self.readout):
            return super().readout_name()
        return self.readout or self._seen_kind or "auto"


def _spikes_of(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _reset_of(module):
    return getattr(module, "reset_mem", None)

"""dynconf's own QCFS SNN (``dynconf.engine.snn.SpikingNetwork``) as one more adapter.

`simulate` is `record` with this adapter: each batch runs in the fast multi-step mode
(``dynconf.engine.snn.simulate``, ``chunk`` steps per call) with direct encoding, giving the
per-step outputs, the hidden spike counts of the IF layers and the synaptic operations
(engine/synops.py) at once. Given the trained ANN (``ann=``), each batch also records how
many of its samples the ANN classifies correctly (``extra_ann_correct``), from which the run's
``ann_accuracy`` is computed.
"""

from __future__ import annotations

from dynconf.engine.frameworks.base import Adapter
from dynconf.errors import DynconfError


def claims(model) -> bool:
    """Whether ``model`` is a converted QCFS network (a dynconf SpikingNetwork)."""
    from dynconf.engine.snn import SpikingNetwork

    return isinstance(model, SpikingNetwork)


class QcfsAdapter(Adapter):
    name = "qcfs"
    label = "dynconf QCFS"
    package = None
    seconds_key = "simulation_seconds"

    def __init__(self, model, *, ann=None, chunk: int = 4, **options):
        self.ann, self.chunk = ann, int(chunk)
        options.setdefault("count_synops", True)  # the simulation counts them at no cost
        super().__init__(model, **options)

    def setup(self) -> None:
        if not claims(self.model):
            raise DynconfError(
                f"framework='qcfs' needs a dynconf SpikingNetwork, got {type(self.model).__name__}"
            )
        if self.requested_step_mode not in (None, "m"):
            raise DynconfError("dynconf's QCFS networks are simulated multi-step")
        if self.chunk < 1:
            raise DynconfError("--chunk must be at least 1")
        self.multi_step = True

    def reset(self) -> None:
        self.model.reset()

    def record_batch(self, frames):
        import torch

        from dynconf.engine.snn import simulate

        if frames.encoder != "direct":
            raise DynconfError("dynconf's QCFS networks are driven by direct encoding")
        result = simulate(self.model, frames.x, frames.T, chunk=self.chunk)
        outputs = torch.from_numpy(result.outputs.astype("float32"))
        spikes = torch.from_numpy(result.spikes.astype("float64")) if self.count_spikes else None
        synops = torch.from_numpy(result.synops.astype("int64")) if self.count_synops else None
        return outputs, spikes, synops

    def extras(self, x, y) -> dict:
        if self.ann is None:
            return {}
        import torch

        with torch.no_grad():
            predicted = self.ann(x).argmax(1).cpu()
        return {"ann_correct": int((predicted == torch.as_tensor(y)).sum())}

    def run_meta(self, extras, sizes) -> dict:
        if self.ann is None:
            return {}
        return {"ann_accuracy": {s: extras[s]["ann_correct"] / sizes[s] for s in sizes}}

    def hidden_neurons(self) -> int | None:
        return self.model.neurons

    def describe(self) -> dict:
        info = super().describe()
        info["chunk"] = self.chunk
        return info

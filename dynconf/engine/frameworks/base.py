"""What a framework adapter is: reset a network, drive it for T steps, count its hidden spikes.

The recorder (dynconf/engine/record.py) knows nothing of SpikingJelly or snnTorch: it hands
each batch's ``Frames`` to an ``Adapter`` and gets back the per-step outputs ``[T, B, K]``
and the hidden spikes ``[T, B]``. An adapter says how its framework resets state
(``reset``), how one call is made (``forward``: one step, or all T steps for a multi-step
network) and which modules are neurons; the time loop, the checks of the output's shape
and the spike counting are the same for all and live here.

Synaptic operations are counted by ``engine/synops.py``'s hooks on the Linear/Conv layers
(``Adapter.synops``, set by the adapters whose framework has neuron modules).

Spikes are counted with forward hooks on the neuron modules (``SpikeCounter``): each call's
spike tensor gives, per sample, the number of its elements that are non-zero (a spike event;
for 0/1 spikes the sum), and its shape gives the layer's neuron count. A neuron module whose
output the network returns as its own output (an snnTorch output layer read out by its
membrane or spikes, a SpikingJelly network ending in a neuron) is the output layer, not a
hidden one: it is found on the first call by identity and left out, and both lists go into
the run's meta so a user can see what was counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dynconf.errors import DynconfError

if TYPE_CHECKING:
    from dynconf.engine.frameworks.encoders import Frames


def tensors_in(value: Any) -> list:
    """The tensors of a model's return value (a tensor, or tuples/lists of them)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_in(item)]
    return []


def outermost(model, is_neuron: Callable[[Any], bool]) -> dict[str, Any]:
    """``{qualified name: module}`` of the neuron modules not inside another neuron module."""
    found: dict[str, Any] = {}
    for name, module in model.named_modules():
        if is_neuron(module) and not any(name.startswith(f"{p}.") for p in found):
            found[name or "<model>"] = module
    return found


class SpikeCounter:
    """Forward hooks that count, per call, the spikes each sample's neurons emitted.

    ``spikes_of(output)`` picks the spike tensor from a module's output; ``is_multi(module)``
    says whether that call's output is ``[T, B, ...]`` (all steps) or ``[B, ...]`` (one).
    """

    def __init__(
        self,
        modules: dict[str, Any],
        spikes_of: Callable[[Any], Any],
        is_multi: Callable[[Any], bool],
    ):
        self.modules = modules
        self.neurons: dict[str, int] = {}  # per layer, from its first call's output shape
        self.output_layers: list[str] | None = None  # found on the first forward pass
        self._rows: dict[str, list] = {name: [] for name in modules}
        self._first: dict[str, list] | None = {}
        self._spikes_of, self._is_multi = spikes_of, is_multi
        self._handles = [
            module.register_forward_hook(self._hook(name)) for name, module in modules.items()
        ]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            spikes = self._spikes_of(output)
            lead = 2 if self._is_multi(module) else 1
            if spikes.ndim < lead:
                raise DynconfError(
                    f"neuron module {name} returned shape {tuple(spikes.shape)}; expected "
                    f"{'[T, B, ...]' if lead == 2 else '[B, ...]'}"
                )
            counts = spikes.detach().reshape(*spikes.shape[:lead], -1).ne(0).sum(-1)
            self._rows[name].append(counts if lead == 2 else counts.unsqueeze(0))
            self.neurons.setdefault(name, math.prod(spikes.shape[lead:]))
            if self._first is not None:
                self._first.setdefault(name, []).append(spikes)

        return hook

    def take(self, model_output: Any, multi: bool, T: int, batch: int):
        """Hidden spikes of the forward pass just made: ``[T, B]`` (multi-step) or ``[1, B]``.

        In a single-step pass a module called more than once fires each time within the same
        step, so its calls are summed; in a multi-step pass its rows are the steps, in order.
        """
        import torch

        if self.output_layers is None:
            returned = tensors_in(model_output)
            self.output_layers = [
                name
                for name, seen in (self._first or {}).items()
                if any(s is r for s in seen for r in returned)
            ]
            self._first = None
        total = None
        for name, rows in self._rows.items():
            if not rows or name in self.output_layers:
                rows.clear()
                continue
            counts = torch.cat(rows)
            rows.clear()
            if counts.shape[1:] != (batch,):
                raise DynconfError(
                    f"neuron module {name} saw a batch of {counts.shape[1]} samples, not {batch}"
                )
            if not multi:
                counts = counts.sum(0, keepdim=True)
            elif counts.shape[0] != T:
                raise DynconfError(
                    f"neuron module {name} produced {counts.shape[0]} steps in one multi-step "
                    f"call, not T = {T}; pass count_spikes=False or step_mode='s'"
                )
            total = counts if total is None else total + counts
        if total is None:
            total = torch.zeros((T if multi else 1, batch), dtype=torch.int64)
        return total

    def hidden_layers(self) -> dict[str, int]:
        """``{layer: neurons}`` of the hidden neuron modules that have fired or been called."""
        hidden = set(self.neurons) - set(self.output_layers or [])
        return {name: self.neurons[name] for name in self.modules if name in hidden}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class Adapter:
    """One framework's way of driving a network. Subclasses set the class attributes and
    implement ``setup`` (checks and counters, reading the options the constructor keeps as
    attributes), ``reset``, ``forward`` and, where they have named readouts, ``read``."""

    name = ""  # the registry key: framework="spikingjelly"
    label = ""  # how messages name it: "SpikingJelly"
    package: str | None = None  # distribution whose version goes into the run's meta
    readouts: tuple[str, ...] = ("output",)  # named readouts this framework understands

    seconds_key = "recording_seconds"  # the run's created.<key>: compute time of the batches

    def __init__(
        self,
        model,
        *,
        step_mode=None,
        readout=None,
        count_spikes=True,
        count_synops=False,
        steps_itself=False,
    ):
        self.model = model
        self.multi_step = False
        self.counter: SpikeCounter | None = None
        self.synops = None  # a SynopsCounter (engine/synops.py) where the framework has one
        if readout is not None and not callable(readout) and readout not in self.readouts:
            raise DynconfError(
                f"readout {readout!r} is not one of {self.label}'s ({', '.join(self.readouts)}) "
                "nor a callable"
            )
        self.readout = readout
        self.requested_step_mode = step_mode  # None (the model's own), "s" or "m"
        self.count_spikes = bool(count_spikes)
        self.count_synops = bool(count_synops)
        self.steps_itself = bool(steps_itself)
        self.setup()

    # --------------------------------------------------------------- what subclasses define

    def setup(self) -> None:
        """Find the framework's neurons, check the model and options, make the counters."""

    def reset(self) -> None:
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError

    def read(self, raw):
        """The class scores in what ``forward`` returned (subclasses with named readouts)."""
        if isinstance(raw, (tuple, list)):
            raise DynconfError(
                f"the model returned a {type(raw).__name__} of {len(raw)} items; pass "
                "readout=<callable> that picks the class scores"
            )
        return raw

    def step_spikes(self, raw, multi: bool, T: int, batch: int):
        """Hidden spikes of the call just made, ``[steps, B]``, or None when not counted."""
        if self.counter is None:
            return None
        return self.counter.take(raw, multi, T, batch)

    def extras(self, x, y) -> dict:
        """Per-batch numbers besides the arrays (summed over a split into the run's meta)."""
        return {}

    def run_meta(self, extras: dict[str, dict], sizes: dict[str, int]) -> dict:
        """What the summed ``extras`` of each split (``{split: {name: sum}}``) put in the run's
        meta; ``sizes``: samples per split."""
        return {}

    def hidden_neurons(self) -> int | None:
        """The hidden neuron count, where the adapter knows it without a spike counter."""
        return None

    # --------------------------------------------------------------- shared

    @property
    def device(self):
        import torch

        params = getattr(self.model, "parameters", None)
        buffers = getattr(self.model, "buffers", None)
        for source in (params, buffers):
            if callable(source):
                for tensor in source():
                    return tensor.device
        return torch.device("cpu")

    @property
    def step_mode(self) -> str:
        return "multi-step" if self.multi_step else "single-step"

    def readout_name(self) -> str:
        if callable(self.readout):
            return f"callable {getattr(self.readout, '__name__', type(self.readout).__name__)}"
        return self.readout or "output"

    def scores(self, raw):
        return self.readout(raw) if callable(self.readout) else self.read(raw)

    def record_batch(self, frames: Frames):
        """Reset, drive the network for T steps, reset again; returns CPU float32 outputs
        ``[T, B, K]``, hidden spikes ``[T, B]`` and synaptic operations int64 ``[T, B]`` (each
        None when not counted)."""
        self.reset()
        try:
            if self.steps_itself:
                return self._record_self_stepping(frames)
            if self.multi_step:
                return self._record_multi_step(frames)
            return self._record_single_step(frames)
        finally:
            self.reset()

    def _call(self, x, what: str):
        """One call of the network; a failure inside it is one line that names the likely fix."""
        try:
            return self.forward(x)
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())
            raise DynconfError(
                f"the network failed on {what} of shape {tuple(x.shape)} ({reason}); "
                f"{SELF_STEPPING_HINT}"
            ) from None

    def _record_multi_step(self, frames: Frames):
        import torch

        T, B = frames.T, frames.batch
        if self.synops is not None:
            self.synops.begin(T, B)
        raw = self._call(frames.sequence(), "[T, B, ...] frames")
        z = check_scores(self.scores(raw), (T, B), "the multi-step output")
        outputs = z.detach().to("cpu", torch.float32).clone()
        spikes = self.step_spikes(raw, True, T, B)
        spikes = None if spikes is None else spikes.to("cpu", torch.float64)
        synops = None if self.synops is None else self.synops.take().cpu()
        return outputs, spikes, synops

    def _record_single_step(self, frames: Frames):
        import torch

        T, B = frames.T, frames.batch
        outputs, spikes = None, None
        synops = None if self.synops is None else torch.zeros((T, B), dtype=torch.int64)
        for t in range(T):
            if self.synops is not None:
                self.synops.begin(1, B)
            raw = self._call(frames.at(t), f"the frame of step {t + 1}")
            if self.synops is not None:
                synops[t].copy_(self.synops.take()[0])
            z = check_scores(self.scores(raw), (B,), f"the output at step {t + 1}")
            if outputs is None:
                outputs = torch.empty((T, B, z.shape[-1]), dtype=torch.float32)
            elif z.shape[-1] != outputs.shape[-1]:
                raise DynconfError(
                    f"the output at step {t + 1} has {z.shape[-1]} classes, "
                    f"step 1 had {outputs.shape[-1]}"
                )
            outputs[t].copy_(z.detach())
            counts = self.step_spikes(raw, False, T, B)
            if counts is not None:
                if spikes is None:
                    spikes = torch.zeros((T, B), dtype=torch.float64)
                spikes[t].copy_(counts[0])
        return outputs, spikes, synops

    def _record_self_stepping(self, frames: Frames):
        """A model whose forward loops over time itself: called once with the batch, its
        per-step outputs taken from the module that produced them (frameworks/selfstepping.py)."""
        import torch

        from dynconf.engine.frameworks.selfstepping import StepCapture

        T, B = frames.T, frames.batch
        if frames.encoder != "direct":
            raise DynconfError("steps_itself=True: the model encodes its input itself (direct)")
        # synaptic operations need to know each call's steps: a multi-step body's only
        synops_counter = self.synops if self.multi_step else None
        if synops_counter is not None:
            synops_counter.begin(T, B)
        with StepCapture(self.model, B) as capture:
            try:
                raw = self._call(frames.x, "[B, ...] inputs")
            except DynconfError:  # a counter saw steps other than T: say why
                capture.check_steps(T)
                raise
            per_step = capture.per_step(check_scores(self.scores(raw), (B,), "the output"), T)
        outputs = per_step.detach().to("cpu", torch.float32).clone()
        spikes = self.step_spikes(per_step, True, T, B)
        spikes = None if spikes is None else spikes.to("cpu", torch.float64)
        synops = None if synops_counter is None else synops_counter.take().cpu()
        return outputs, spikes, synops

    def describe(self) -> dict:
        """What was detected, for the log line and the run's meta."""
        info: dict[str, Any] = {
            "framework": self.name,
            "framework_version": package_version(self.package),
            "step_mode": self.step_mode,
            "readout": self.readout_name(),
        }
        if self.counter is not None:
            info["neuron_modules"] = len(self.counter.modules)
        if self.steps_itself:
            info["steps_itself"] = True
        return info

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()
        if self.synops is not None:
            self.synops.close()


SELF_STEPPING_HINT = (
    "if its forward loops over time itself (repeats the input T times and returns the mean), "
    "record it with steps_itself=True (--steps-itself), or pass its per-step body instead "
    "(for SpikingJelly's CSNN: net.conv_fc)"
)


def check_scores(z, lead: tuple[int, ...], what: str):
    """The model's class scores must be a float tensor ``[*lead, K]`` with K >= 2."""
    import torch

    want = "[" + ", ".join(["T"] * (len(lead) == 2) + ["B", "K"]) + "]"
    sizes = " = [" + ", ".join(str(n) for n in lead) + ", K]"
    if not isinstance(z, torch.Tensor):
        raise DynconfError(f"{what} is a {type(z).__name__}, expected a tensor {want}")
    if z.ndim != len(lead) + 1 or tuple(z.shape[:-1]) != lead:
        hint = ""
        if len(lead) == 2 and z.ndim == 2:
            hint = (
                " (a multi-step network must return every step's output, not only the last or "
                f"the mean; {SELF_STEPPING_HINT})"
            )
        raise DynconfError(
            f"{what} has shape {tuple(z.shape)}, expected {want}{sizes} "
            f"(one row of class scores per sample){hint}"
        )
    if z.shape[-1] < 2:
        raise DynconfError(f"{what} has K = {z.shape[-1]} class scores; at least 2 are needed")
    if not z.is_floating_point():
        raise DynconfError(f"{what} has dtype {z.dtype}; class scores must be floating point")
    return z


def package_version(package: str | None) -> str | None:
    if package is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None

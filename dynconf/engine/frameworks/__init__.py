"""The frameworks a user's own SNN can come from, by name: the one list is ``FRAMEWORKS``.

Each framework is one module here with ``claims(model)`` (does this model look like one of
ours? answered without importing the framework) and an ``Adapter`` subclass (base.py) that
resets, steps and counts spikes; dynconf's own QCFS SNN is one of them (qcfs.py), so
`simulate` is `record` with that adapter. ``record_run`` (dynconf/engine/record.py) and the
`record` command read this registry; ``framework="auto"`` asks each module in order. Importing this
package imports neither SpikingJelly nor snnTorch: an adapter imports its framework when it
is made.
"""

from __future__ import annotations

from dynconf.engine.frameworks import qcfs, snntorch, spikingjelly, stepper
from dynconf.engine.frameworks.base import Adapter
from dynconf.engine.frameworks.encoders import (
    ENCODERS,
    CallableEncoder,
    Encoder,
    Frames,
    make_encoder,
    poisson_seed,
)
from dynconf.errors import DynconfError

# name -> (claims(model), adapter class, pip packages it needs); "auto" tries them in order
FRAMEWORKS = {
    "spikingjelly": (spikingjelly.claims, spikingjelly.SpikingJellyAdapter, "spikingjelly loguru"),
    "snntorch": (snntorch.claims, snntorch.SnnTorchAdapter, "snntorch"),
    "qcfs": (qcfs.claims, qcfs.QcfsAdapter, None),
    "callable": (stepper.claims, stepper.StepperAdapter, None),
}


def framework_names() -> tuple[str, ...]:
    return tuple(FRAMEWORKS)


def detect_framework(model) -> str:
    """The framework ``model`` belongs to, or a DynconfError saying why none fits."""
    found = [name for name, (claims, _, _) in FRAMEWORKS.items() if claims(model)]
    modular = [name for name in found if name != "callable"]
    if len(modular) > 1:
        raise DynconfError(
            f"the model mixes modules of {' and '.join(modular)}; pass framework= to choose"
        )
    if found:
        return found[0]
    raise DynconfError(
        f"cannot tell which framework {type(model).__name__} is built with: it has no "
        "SpikingJelly or snnTorch modules and no step()/reset() methods; pass "
        "framework='callable' with an object whose step(x_t) returns logits_t and reset() "
        "clears its state"
    )


def make_adapter(
    model,
    framework: str = "auto",
    *,
    step_mode=None,
    readout=None,
    count_spikes=True,
    count_synops=False,
    steps_itself=False,
    **options,
) -> Adapter:
    """The adapter that drives ``model`` (``framework="auto"``: detected); ``options`` go to
    the adapter's constructor (``qcfs``: ``ann=``, ``chunk=``)."""
    if framework == "auto":
        framework = detect_framework(model)
    if framework not in FRAMEWORKS:
        raise DynconfError(
            f"unknown framework {framework!r}; choose auto or one of {', '.join(FRAMEWORKS)}"
        )
    _, adapter_class, packages = FRAMEWORKS[framework]
    if framework != "callable":
        import torch

        if not isinstance(model, torch.nn.Module):
            raise DynconfError(
                f"framework={framework!r} needs a torch.nn.Module, got {type(model).__name__}"
            )
    try:
        return adapter_class(
            model,
            step_mode=step_mode,
            readout=readout,
            count_spikes=count_spikes,
            count_synops=count_synops,
            steps_itself=steps_itself,
            **options,
        )
    except ModuleNotFoundError as exc:
        raise DynconfError(
            f"framework {framework!r} needs the package {exc.name!r}, which is not installed "
            f"(pip install {packages})"
        ) from None


__all__ = [
    "ENCODERS",
    "FRAMEWORKS",
    "Adapter",
    "CallableEncoder",
    "Encoder",
    "Frames",
    "make_encoder",
    "detect_framework",
    "framework_names",
    "make_adapter",
    "poisson_seed",
]

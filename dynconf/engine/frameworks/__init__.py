"""The frameworks a user's own SNN can come from, by name: the one list is ``FRAMEWORKS``.

Each framework is one module here with ``claims(model)`` (does this model look like one of
ours? answered without importing the framework) and an ``Adapter`` subclass (base.py) that
resets, steps and counts spikes. ``record_run`` (dynconf/engine/record.py) and the `record`
command read this registry; ``framework="auto"`` asks each module in order. Importing this
package imports neither SpikingJelly nor snnTorch: an adapter imports its framework when it
is made.
"""

from __future__ import annotations

from dynconf.engine.frameworks import snntorch, spikingjelly, stepper
from dynconf.engine.frameworks.base import Adapter
from dynconf.engine.frameworks.encoders import ENCODERS, Frames, poisson_seed
from dynconf.errors import DynconfError

# name -> (claims(model), adapter class, pip packages it needs); "auto" tries them in order
FRAMEWORKS = {
    "spikingjelly": (spikingjelly.claims, spikingjelly.SpikingJellyAdapter, "spikingjelly loguru"),
    "snntorch": (snntorch.claims, snntorch.SnnTorchAdapter, "snntorch"),
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
) -> Adapter:
    """The adapter that drives ``model`` (``framework="auto"``: detected)."""
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
    "Frames",
    "detect_framework",
    "framework_names",
    "make_adapter",
    "poisson_seed",
]

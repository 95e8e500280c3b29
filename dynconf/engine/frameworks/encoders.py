"""How one batch of inputs becomes the T frames a spiking network is driven with.

An encoder is a class with a registry name (``ENCODERS``), as in SpikingJelly's
``encoding`` package; every framework adapter takes its input through a ``Frames`` object,
so an encoding means the same thing whichever framework steps the network:

- ``direct`` (``DirectEncoder``): the static input ``x [B, ...]`` itself at every step (the
  usual encoding of converted and directly trained image SNNs);
- ``poisson`` (``PoissonEncoder``): rate coding; frame t is ``(u_t < x)`` as 0/1 in x's
  dtype, with ``u_t`` uniform draws of x's shape, so x must lie in [0, 1]. The draws of a
  batch come from a ``torch.Generator`` on x's device seeded with
  ``poisson_seed(seed, split, batch_index)``, one ``torch.rand`` per step in step order, so a
  batch's frames are the same on every run and after a resume (CPU and GPU generators give
  different draws);
- ``sequence`` (``SequenceEncoder``): inputs that already are sequences, ``x [B, T, ...]``
  (event frames); frame t is ``x[:, t]``;
- a user's callable ``f(x, t) -> frame_t`` (``CallableEncoder``), called for t = 0, 1, ...
  in order; ``make_encoder`` wraps it.

To add an encoding, write an ``Encoder`` subclass with a ``name`` and add it to ``ENCODERS``.
``at(t)`` serves single-step networks (called for t = 0, 1, ... in order), ``sequence()``
multi-step ones (``[T, B, ...]``, the same frames stacked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dynconf.errors import DataError

if TYPE_CHECKING:
    import torch


def poisson_seed(seed: int, split: str, batch_index: int) -> int:
    """The generator seed of one batch's rate-coded frames (stable across processes)."""
    digest = hashlib.blake2b(f"{seed}:{split}:{batch_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class Encoder:
    """One encoding of a batch into frames. ``start(x, T, seed)`` checks the batch and
    returns the per-batch state; ``frame(x, t, state)`` makes frame t (taken in step order)."""

    name = ""

    def start(self, x: torch.Tensor, T: int, seed: int) -> Any:
        if x.ndim < 1:
            raise DataError("inputs must have a batch dimension [B, ...], got a scalar")
        return None

    def frame(self, x: torch.Tensor, t: int, state: Any) -> torch.Tensor:
        raise NotImplementedError

    def stack(self, x: torch.Tensor, T: int, state: Any) -> torch.Tensor:
        """All T frames ``[T, B, ...]`` (subclasses override where a faster form exists)."""
        import torch

        return torch.stack([self.frame(x, t, state) for t in range(T)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DirectEncoder(Encoder):
    """The analog input itself at every step."""

    name = "direct"

    def frame(self, x, t, state):
        return x

    def stack(self, x, T, state):
        return x.unsqueeze(0).repeat(T, *([1] * x.ndim))


class PoissonEncoder(Encoder):
    """Rate coding of inputs in [0, 1], seeded per batch."""

    name = "poisson"

    def start(self, x, T, seed):
        import torch

        super().start(x, T, seed)
        if not x.is_floating_point():
            raise DataError("poisson encoding needs floating-point inputs in [0, 1]")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"poisson encoding needs inputs in [0, 1], got values from {lo:g} to {hi:g} "
                "(record raw pixels with --transform none / transform='none', or use "
                "encoder='direct')"
            )
        generator = torch.Generator(device=x.device)
        generator.manual_seed(seed)
        return generator

    def frame(self, x, t, state):
        import torch

        draws = torch.rand(x.shape, generator=state, device=x.device)
        return (draws < x).to(x.dtype)


class SequenceEncoder(Encoder):
    """Inputs that already are sequences ``[B, T, ...]``."""

    name = "sequence"

    def start(self, x, T, seed):
        if x.ndim < 2 or x.shape[1] != T:
            raise DataError(
                f"sequence inputs must be [B, T, ...] with T = {T} steps, got shape "
                f"{tuple(x.shape)}"
            )
        return None

    def frame(self, x, t, state):
        return x[:, t]

    def stack(self, x, T, state):
        return x.transpose(0, 1).contiguous()


class CallableEncoder(Encoder):
    """A user's function ``f(x, t) -> frame_t [B, ...]``, called in step order."""

    def __init__(self, function: Callable):
        self.function = function
        self.name = f"callable {getattr(function, '__name__', type(function).__name__)}"

    def frame(self, x, t, state):
        import torch

        frame = self.function(x, t)
        if not isinstance(frame, torch.Tensor) or frame.ndim < 1 or frame.shape[0] != x.shape[0]:
            shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise DataError(
                f"encoder {self.name} returned {shape} at step {t + 1}; expected a tensor "
                f"[B, ...] with B = {x.shape[0]}"
            )
        return frame

    def __repr__(self) -> str:
        return f"CallableEncoder({self.name.split(' ', 1)[1]})"


ENCODERS: dict[str, type[Encoder]] = {
    DirectEncoder.name: DirectEncoder,
    PoissonEncoder.name: PoissonEncoder,
    SequenceEncoder.name: SequenceEncoder,
}


def make_encoder(spec: str | Encoder | Callable) -> Encoder:
    """An encoder from its registry name, an ``Encoder`` instance, or a callable ``f(x, t)``."""
    if isinstance(spec, Encoder):
        return spec
    if isinstance(spec, str):
        if spec not in ENCODERS:
            raise DataError(f"unknown encoder {spec!r}; choose one of {', '.join(ENCODERS)}")
        return ENCODERS[spec]()
    if callable(spec):
        return CallableEncoder(spec)
    raise DataError(f"encoder must be a name, an Encoder or a callable, got {type(spec).__name__}")


def check_encoder(encoder) -> Encoder:
    """The encoder ``encoder`` names (a one-line DataError when it names none)."""
    return make_encoder(encoder)


class Frames:
    """The T input frames of one batch under one encoding."""

    def __init__(self, x: torch.Tensor, T: int, encoder: str | Encoder | Callable, seed: int = 0):
        self.x, self.T = x, T
        self.encoding = make_encoder(encoder)
        self.encoder = self.encoding.name
        self._state = self.encoding.start(x, T, seed)
        self._next = 0
        self.batch = int(x.shape[0])

    def at(self, t: int) -> torch.Tensor:
        """Frame t (0-based) as ``[B, ...]``; frames must be taken in step order."""
        if t != self._next:
            raise RuntimeError(f"frames are made in step order: asked for {t}, next {self._next}")
        self._next += 1
        return self.encoding.frame(self.x, t, self._state)

    def sequence(self) -> torch.Tensor:
        """All T frames as ``[T, B, ...]`` (what a multi-step network takes)."""
        if self._next:
            raise RuntimeError("sequence() after at(): the frames were already started")
        self._next = self.T
        return self.encoding.stack(self.x, self.T, self._state)

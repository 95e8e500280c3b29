"""How one batch of inputs becomes the T frames a spiking network is driven with.

Every framework adapter takes its input through a ``Frames`` object, so the three encodings
mean the same thing whichever framework steps the network:

- ``direct``: the static input ``x [B, ...]`` itself at every step (the usual encoding of
  converted and directly trained image SNNs);
- ``poisson``: rate coding; frame t is ``(u_t < x)`` as 0/1 in x's dtype, with ``u_t`` uniform
  draws of x's shape, so x must lie in [0, 1]. The draws of a batch come from a
  ``torch.Generator`` on x's device seeded with ``poisson_seed(seed, split, batch_index)``, one
  ``torch.rand`` per step in step order, so a batch's frames are the same on every run and
  after a resume (CPU and GPU generators give different draws);
- ``sequence``: inputs that already are sequences, ``x [B, T, ...]`` (event frames); frame t
  is ``x[:, t]``.

``at(t)`` serves single-step networks (called for t = 0, 1, ... in order), ``sequence()``
multi-step ones (``[T, B, ...]``, the same frames stacked).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from dynconf.errors import DataError

if TYPE_CHECKING:
    import torch

ENCODERS = ("direct", "poisson", "sequence")


def check_encoder(encoder: str) -> str:
    if encoder not in ENCODERS:
        raise DataError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    return encoder


def poisson_seed(seed: int, split: str, batch_index: int) -> int:
    """The generator seed of one batch's rate-coded frames (stable across processes)."""
    digest = hashlib.blake2b(f"{seed}:{split}:{batch_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class Frames:
    """The T input frames of one batch under one encoding."""

    def __init__(self, x: torch.Tensor, T: int, encoder: str, seed: int = 0):
        import torch

        check_encoder(encoder)
        self.x, self.T, self.encoder = x, T, encoder
        self._next = 0
        if encoder == "sequence":
            if x.ndim < 2 or x.shape[1] != T:
                raise DataError(
                    f"sequence inputs must be [B, T, ...] with T = {T} steps, got shape "
                    f"{tuple(x.shape)}"
                )
        elif x.ndim < 1:
            raise DataError("inputs must have a batch dimension [B, ...], got a scalar")
        self.batch = int(x.shape[0])
        if encoder == "poisson":
            if not x.is_floating_point():
                raise DataError("poisson encoding needs floating-point inputs in [0, 1]")
            lo, hi = float(x.min()), float(x.max())
            if lo < 0.0 or hi > 1.0:
                raise DataError(
                    f"poisson encoding needs inputs in [0, 1], got values from {lo:g} to {hi:g} "
                    "(rescale them, or use encoder='direct')"
                )
            self._generator = torch.Generator(device=x.device)
            self._generator.manual_seed(seed)

    def at(self, t: int) -> torch.Tensor:
        """Frame t (0-based) as ``[B, ...]``; poisson frames must be taken in step order."""
        import torch

        if self.encoder == "direct":
            return self.x
        if self.encoder == "sequence":
            return self.x[:, t]
        if t != self._next:
            raise RuntimeError(
                f"poisson frames are drawn in order: asked for {t}, next {self._next}"
            )
        self._next += 1
        draws = torch.rand(self.x.shape, generator=self._generator, device=self.x.device)
        return (draws < self.x).to(self.x.dtype)

    def sequence(self) -> torch.Tensor:
        """All T frames as ``[T, B, ...]`` (what a multi-step network takes)."""
        import torch

        if self.encoder == "direct":
            return self.x.unsqueeze(0).repeat(self.T, *([1] * self.x.ndim))
        if self.encoder == "sequence":
            return self.x.transpose(0, 1).contiguous()
        return torch.stack([self.at(t) for t in range(self.T)])

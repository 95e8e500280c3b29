"""What a confidence decoder is, and the shared softmax arithmetic of the decoders.

A decoder turns the accumulated output S_t (and the current step's output z_t) into one
confidence per step and sample; the exit policies only ever see that number. Every decoder
is causal (c_t uses outputs up to step t) and never changes the answer: the prediction is
argmax S_t whatever the decoder (docs/METHOD.md section 2).

One decoder is one module in this folder defining ``DECODER = SomeDecoder()``; the registry
in ``dynconf/core/decoders/__init__.py`` is the only list of them (docs/ARCHITECTURE.md,
"add a decoder"). The same arrays feed three callers, so the methods take any leading shape:
``S`` and ``z`` are ``[..., K]`` float64 and ``steps`` (the 1-based t of each row, float64)
broadcasts against ``S.shape[:-1]``: ``[T, 1]`` when a whole split is decoded, ``[B]`` when
the engine's early exit decodes one step of a batch whose samples are at different steps.

Numerics: softmax terms are exp((S - max S) / scale), so the largest term is exactly 1 and
nothing overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynconf.errors import RunFormatError


def softmax_terms(x: np.ndarray, scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x', e, Z) with x' = (x - max x) / scale, e = exp(x'), Z = sum e over the last axis."""
    shifted = (x - x.max(axis=-1, keepdims=True)) / scale
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=-1)


@dataclass
class TopkBlock:
    """A slice of a split stored as top-k (see dynconf/core/topk.py), for decoders that can
    work from it: the top-k accumulated values (descending) and the stored log-normalisers
    log sum_k exp((S_t[k] - max S_t) / s)."""

    split_name: str
    values: np.ndarray  # [T, B, k] float64
    lognorm_rows: np.ndarray  # [M + 1, T, B]: one row per stored kappa, the last for s = t
    kappas: tuple[float, ...]

    def lognorm(self, kappa: float | None) -> np.ndarray:
        """log-normaliser for scale kappa (None: scale s = t, the mean decoder's)."""
        if kappa is None:
            return np.asarray(self.lognorm_rows[len(self.kappas)], dtype=np.float64)
        for row, stored in enumerate(self.kappas):
            if math.isclose(stored, kappa, rel_tol=1e-9):
                return np.asarray(self.lognorm_rows[row], dtype=np.float64)
        listed = ", ".join(f"{s:g}" for s in self.kappas) or "none"
        raise RunFormatError(
            f"split '{self.split_name}' is stored as top-k with kappa in {{{listed}}}; "
            f"kappa={kappa:g} needs the full outputs or a re-import with that kappa"
        )

    def top(self, n: int) -> np.ndarray:
        """The n largest accumulated values, [T, B, n] float64."""
        if self.values.shape[2] < n:
            raise RunFormatError(
                f"split '{self.split_name}': this decoder needs top-k with k >= {n}"
            )
        return np.asarray(self.values[:, :, :n], dtype=np.float64)


class Decoder:
    """Base class of a confidence decoder; subclasses set the class attributes and
    override ``confidence`` (and ``confidence_topk`` when top-k storage can serve it)."""

    name: str = ""
    label: str = ""  # one line for menus and captions: the formula in words
    uses_kappa: bool = True  # reads the softmax scale kappa (default T_max)

    def logits(self, S: np.ndarray, z: np.ndarray, steps, kappa) -> np.ndarray:
        """What this decoder puts through a softmax (its per-class probabilities)."""
        return S / kappa

    def probabilities(self, S: np.ndarray, z: np.ndarray, steps, kappa) -> np.ndarray:
        """Per-class probabilities p_t the confidence is read from, [..., K]."""
        _, e, Z = softmax_terms(self.logits(S, z, steps, kappa), 1.0)
        return e / Z[..., None]

    def confidence(self, S: np.ndarray, z: np.ndarray, steps, kappa) -> np.ndarray:
        raise NotImplementedError

    def confidence_topk(self, block: TopkBlock, kappa) -> np.ndarray:
        raise NotImplementedError

    @property
    def topk(self) -> bool:
        """Whether a split stored as top-k can feed this decoder."""
        return type(self).confidence_topk is not Decoder.confidence_topk

    def __repr__(self) -> str:
        return f"<decoder {self.name}>"

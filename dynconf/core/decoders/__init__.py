"""Confidence decoders: per-step outputs -> confidence c_t, prediction and correctness [T, N].

The exit rule (metrics.py) only sees a confidence per step and sample; this module is where
the readings of "confidence" differ (method.md section 2). All decoders are causal: c_t uses
outputs up to step t only. The prediction is always argmax of the accumulated output S_t (the
SNN's answer at step t), whatever the decoder, so decoders change *when* a sample exits, never
*what* it answers at a given step.

Decoders (values in [0, 1]):
  paper    max softmax(S_t / kappa), kappa fixed (default T_max): the paper's confidence
  mean     max softmax(S_t / t): softmax of the mean output (kappa = t)
  step     max softmax(z_t): the current step's output alone
  entropy  1 - H(p_t) / log K with p_t = softmax(S_t / kappa)
  margin   p_t[top1] - p_t[top2] with p_t = softmax(S_t / kappa)

Numerics: float64 throughout; softmax terms are computed as exp((S - max S) / kappa), so the
largest term is exactly 1 and nothing overflows; S_t is a sequential cumulative sum (the same
order as a per-step loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dynconf.errors import DynconfError, RunFormatError

DECODERS = ("paper", "mean", "step", "entropy", "margin")
DECODER_LABELS = {
    "paper": "paper: max softmax(S_t / kappa)",
    "mean": "mean output: max softmax(S_t / t)",
    "step": "per-step output: max softmax(z_t)",
    "entropy": "normalised entropy: 1 - H(p_t) / log K",
    "margin": "margin: top-1 minus top-2 of p_t",
}
USES_KAPPA = ("paper", "entropy", "margin")
TOPK_DECODERS = ("paper", "mean", "margin")  # computable from storage "topk"
CHUNK_ELEMENTS = 1 << 23  # float64 work arrays stay around 64 MiB


@dataclass(eq=False)
class Decoded:
    """Per-step confidence, prediction and correctness of one split under one decoder.

    Arrays are read-only so that caches built on them (metrics.PolicyCache) stay valid.
    """

    decoder: str
    kappa: float | None  # the scale used (paper/entropy/margin); None for mean and step
    confidence: np.ndarray  # [T, N] float64
    prediction: np.ndarray  # [T, N] int32, argmax S_t
    correct: np.ndarray  # [T, N] bool
    labels: np.ndarray  # [N] int64
    cache: dict = field(default_factory=dict, repr=False)  # metrics' precomputations

    def __post_init__(self):
        for arr in (self.confidence, self.prediction, self.correct, self.labels):
            arr.flags.writeable = False

    @property
    def T(self) -> int:
        return int(self.confidence.shape[0])

    @property
    def N(self) -> int:
        return int(self.confidence.shape[1])

    @property
    def label(self) -> str:
        if self.kappa is None:
            return self.decoder
        return f"{self.decoder} (kappa={self.kappa:g})"


def _check_decoder(decoder: str, kappa, T: int) -> float | None:
    if decoder not in DECODERS:
        raise DynconfError(f"unknown decoder {decoder!r} (choose from {', '.join(DECODERS)})")
    if decoder not in USES_KAPPA:
        return None
    if kappa is None:
        return float(T)
    try:
        kappa = float(kappa)
    except (TypeError, ValueError):
        raise DynconfError(f"kappa must be a number, got {kappa!r}") from None
    if not math.isfinite(kappa) or kappa <= 0:
        raise DynconfError(f"kappa must be a finite number > 0, got {kappa}")
    return kappa


def _confidence_block(S: np.ndarray, z: np.ndarray, decoder: str, kappa: float | None):
    """Confidence [T, B] from accumulated S and per-step z, both [T, B, K] float64."""
    T, _, K = S.shape
    if decoder == "step":
        x = z - z.max(axis=2, keepdims=True)
        return 1.0 / np.exp(x).sum(axis=2)
    scale = np.arange(1, T + 1, dtype=np.float64)[:, None, None] if decoder == "mean" else kappa
    x = (S - S.max(axis=2, keepdims=True)) / scale
    e = np.exp(x)
    Z = e.sum(axis=2)
    if decoder in ("paper", "mean"):
        return 1.0 / Z
    if decoder == "margin":
        second = np.partition(x, K - 2, axis=2)[:, :, K - 2]
        return (1.0 - np.exp(second)) / Z
    # entropy: H = log Z - sum p x  (since log p = x - log Z)
    H = np.log(Z) - (e * x).sum(axis=2) / Z
    return np.clip(1.0 - H / math.log(K), 0.0, 1.0)


def decode_outputs(
    outputs: np.ndarray, labels: np.ndarray, decoder: str = "paper", kappa: float | None = None
) -> Decoded:
    """Decode per-step outputs [T, N, K] (not accumulated) with labels [N]."""
    outputs = np.asarray(outputs) if not isinstance(outputs, np.memmap) else outputs
    if outputs.ndim != 3:
        raise DynconfError(f"outputs must be [T, N, K], got shape {outputs.shape}")
    T, N, K = outputs.shape
    if K < 2:
        raise DynconfError("need at least 2 classes")
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != (N,):
        raise DynconfError(f"labels must have shape ({N},), got {labels.shape}")
    kappa = _check_decoder(decoder, kappa, T)
    confidence = np.empty((T, N), np.float64)
    prediction = np.empty((T, N), np.int32)
    block = max(1, CHUNK_ELEMENTS // (T * K))
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        z = np.asarray(outputs[:, lo:hi], dtype=np.float64)
        S = np.cumsum(z, axis=0)
        prediction[:, lo:hi] = S.argmax(axis=2)
        confidence[:, lo:hi] = _confidence_block(S, z, decoder, kappa)
    correct = prediction == labels[None, :]
    return Decoded(decoder, kappa, confidence, prediction, correct, labels)


def _decode_topk(split, decoder: str, kappa: float | None) -> Decoded:
    if decoder not in TOPK_DECODERS:
        raise RunFormatError(
            f"split '{split.name}' is stored as top-k only; decoder '{decoder}' needs the full "
            f"outputs (available: {', '.join(TOPK_DECODERS)}). Re-import with --storage full."
        )
    if decoder == "mean":
        row = len(split.topk_kappas)  # the last row holds scale s = t
    else:
        matches = [
            i for i, s in enumerate(split.topk_kappas) if math.isclose(s, kappa, rel_tol=1e-9)
        ]
        if not matches:
            stored = ", ".join(f"{s:g}" for s in split.topk_kappas) or "none"
            raise RunFormatError(
                f"split '{split.name}' is stored as top-k with kappa in {{{stored}}}; "
                f"kappa={kappa:g} needs the full outputs or a re-import with that kappa"
            )
        row = matches[0]
    if decoder == "margin" and split.topk_values.shape[2] < 2:
        raise RunFormatError(f"split '{split.name}': the margin decoder needs top-k with k >= 2")
    T, N = split.T, split.N
    confidence = np.empty((T, N), np.float64)
    prediction = np.empty((T, N), np.int32)
    block = max(1, CHUNK_ELEMENTS // T)
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        lognorm = np.asarray(split.lognorm[row, :, lo:hi], dtype=np.float64)
        top1 = np.exp(-lognorm)  # max p_t = 1 / sum exp((S - S1)/s)
        if decoder == "margin":
            vals = np.asarray(split.topk_values[:, lo:hi, :2], dtype=np.float64)
            confidence[:, lo:hi] = top1 * (1.0 - np.exp((vals[:, :, 1] - vals[:, :, 0]) / kappa))
        else:
            confidence[:, lo:hi] = top1
        prediction[:, lo:hi] = split.topk_indices[:, lo:hi, 0]
    labels = np.asarray(split.labels).astype(np.int64)
    correct = prediction == labels[None, :]
    return Decoded(decoder, kappa, confidence, prediction, correct, labels)


def decode(split, decoder: str = "paper", kappa: float | None = None) -> Decoded:
    """Decode one split of a run (runs.SplitData). kappa None -> T_max (paper's default)."""
    kappa = _check_decoder(decoder, kappa, split.T)
    if split.outputs is None:
        return _decode_topk(split, decoder, kappa)
    return decode_outputs(split.outputs, split.labels, decoder, kappa)

"""Decode a whole split: per-step outputs (or top-k storage) -> confidence, prediction and
correctness, each [T, N], under one decoder from the registry.

The prediction is always argmax of the accumulated output S_t (the SNN's answer at step t),
whatever the decoder, so decoders change *when* a sample exits, never *what* it answers at a
given step. Work is done in float64 slices of samples (S_t is a sequential cumulative sum,
the same order as a per-step loop), so an ImageNet-sized memory map is never loaded whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dynconf.core.decoders.base import TopkBlock
from dynconf.core.decoders.registry import DECODERS, get_decoder
from dynconf.errors import DynconfError, RunFormatError

CHUNK_ELEMENTS = 1 << 23  # float64 work arrays stay around 64 MiB


@dataclass(eq=False)
class Decoded:
    """Per-step confidence, prediction and correctness of one split under one decoder, with
    the split's costs where the run holds them.

    Arrays are read-only so that caches built on them (the threshold policy's) stay valid.
    ``spikes`` and ``synops`` ([T, N] per step) and ``neurons`` (hidden neuron count) travel
    with the data, so every result computed from it (dynconf.core.results.summarize) reports
    spikes and synaptic operations at exit without being handed them again.
    """

    decoder: str
    kappa: float | None  # the scale used; None for decoders without kappa
    confidence: np.ndarray  # [T, N] float64
    prediction: np.ndarray  # [T, N] int32, argmax S_t
    correct: np.ndarray  # [T, N] bool
    labels: np.ndarray  # [N] int64
    cache: dict = field(default_factory=dict, repr=False)  # policies' precomputations
    spikes: np.ndarray | None = field(default=None, repr=False)
    synops: np.ndarray | None = field(default=None, repr=False)
    neurons: int | None = None

    def __post_init__(self):
        for arr in (self.confidence, self.prediction, self.correct, self.labels):
            arr.flags.writeable = False

    @property
    def T(self) -> int:
        return int(self.confidence.shape[0])

    @property
    def N(self) -> int:
        return int(self.confidence.shape[1])

    def with_confidence(self, confidence: np.ndarray) -> Decoded:
        """The same split (prediction, labels, costs) with another per-step score in place of
        the confidence: how policies that reshape the confidence reuse the threshold rule."""
        return Decoded(
            self.decoder, self.kappa, confidence, self.prediction, self.correct, self.labels,
            spikes=self.spikes, synops=self.synops, neurons=self.neurons,
        )  # fmt: skip

    @property
    def label(self) -> str:
        """e.g. "paper (kappa = 27)" or "mean"."""
        text = kappa_label(self.decoder, self.kappa, self.T)
        return f"{self.decoder} ({text})" if text else self.decoder


def kappa_label(decoder: str, kappa: float | None, T_max: int) -> str:
    """The one way dynconf names a decoder's kappa: "" when the decoder takes none,
    "kappa = 30" when given, "kappa = T_max = 64" for the default."""
    if not get_decoder(decoder).uses_kappa:
        return ""
    if kappa is None:
        return f"kappa = T_max = {T_max}"
    return f"kappa = {float(kappa):g}"


def check_kappa(decoder: str, kappa, T: int) -> float | None:
    """The kappa a decoder will use: None for decoders without one, T (T_max) by default."""
    if not get_decoder(decoder).uses_kappa:
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


def _steps(T: int) -> np.ndarray:
    return np.arange(1, T + 1, dtype=np.float64)[:, None]


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
    kappa = check_kappa(decoder, kappa, T)
    rule = get_decoder(decoder)
    confidence = np.empty((T, N), np.float64)
    prediction = np.empty((T, N), np.int32)
    steps = _steps(T)
    block = max(1, CHUNK_ELEMENTS // (T * K))
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        z = np.asarray(outputs[:, lo:hi], dtype=np.float64)
        S = np.cumsum(z, axis=0)
        prediction[:, lo:hi] = S.argmax(axis=2)
        confidence[:, lo:hi] = rule.confidence(S, z, steps, kappa)
    correct = prediction == labels[None, :]
    return Decoded(decoder, kappa, confidence, prediction, correct, labels)


def _decode_topk(split, decoder: str, kappa: float | None) -> Decoded:
    rule = get_decoder(decoder)
    if not rule.topk:
        servable = [name for name, d in DECODERS.items() if d.topk]
        raise RunFormatError(
            f"split '{split.name}' is stored as top-k only; decoder '{decoder}' needs the full "
            f"outputs (available: {', '.join(servable)}). Re-import with --storage full."
        )
    T, N = split.T, split.N
    confidence = np.empty((T, N), np.float64)
    prediction = np.empty((T, N), np.int32)
    block = max(1, CHUNK_ELEMENTS // T)
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        view = TopkBlock(
            split.name, split.topk_values[:, lo:hi], split.lognorm[:, :, lo:hi], split.topk_kappas
        )
        confidence[:, lo:hi] = rule.confidence_topk(view, kappa)
        prediction[:, lo:hi] = split.topk_indices[:, lo:hi, 0]
    labels = np.asarray(split.labels).astype(np.int64)
    correct = prediction == labels[None, :]
    return Decoded(decoder, kappa, confidence, prediction, correct, labels)


def decode(
    split, decoder: str = "paper", kappa: float | None = None, neurons: int | None = None
) -> Decoded:
    """Decode one split of a run (store.SplitData). kappa None -> T_max (paper's default).

    The split's spikes and synops (when it holds them) and ``neurons`` (the run's hidden
    neuron count, ``run.meta["neurons"]``; decode_split reads it) ride along on the result."""
    kappa = check_kappa(decoder, kappa, split.T)
    if split.outputs is None:
        dec = _decode_topk(split, decoder, kappa)
    else:
        dec = decode_outputs(split.outputs, split.labels, decoder, kappa)
    dec.spikes = getattr(split, "spikes", None)
    dec.synops = getattr(split, "synops", None)
    dec.neurons = None if neurons is None else int(neurons)
    return dec


def decode_split(run, name: str, decoder: str = "paper", kappa: float | None = None) -> Decoded:
    """Decode split ``name`` of a loaded run, its costs and the run's neuron count with it."""
    return decode(run.split(name), decoder, kappa, neurons=run.meta.get("neurons"))


def class_probabilities(outputs: np.ndarray, decoder: str, kappa: float | None) -> np.ndarray:
    """p_t over classes for one sample's per-step outputs [T, K]: what ``decoder`` reads.

    Its row maximum is the paper/mean/step confidence exactly (tested).
    """
    z = np.asarray(outputs, dtype=np.float64)
    T = z.shape[0]
    kappa = check_kappa(decoder, kappa, T)
    return get_decoder(decoder).probabilities(np.cumsum(z, axis=0), z, _steps(T)[:, 0], kappa)

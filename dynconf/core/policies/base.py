"""What an exit policy is: a causal rule that decides, after every step, which samples stop.

A policy is fitted on a calibration split (its operating parameter chosen there) and then
evaluated on any split, giving each sample an exit step tau_i and the answer argmax S_tau
(dynconf/core/results.py turns those into metrics). Causal means the decision at step t uses
outputs up to t only, so the same rule can run inside a real simulation: ``online`` returns
the per-step form the engine's early exit drives (dynconf/engine/snn.py), and tests check
that it exits every sample where the cached-run form says.

One policy is one module in this folder; the registry (registry.py) is the only list
(docs/ARCHITECTURE.md, "add an exit policy").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.results import PolicyResult, baseline_counts, summarize
from dynconf.errors import DynconfError


class OnlineRule:
    """The per-step form of a fitted policy, for a batch whose rows are samples.

    ``step`` gets the accumulated output S_t and the step's output z_t of every active row
    ([B, K] float64) and each row's own step t ([B], 1-based: rows refilled with new samples
    are at other steps) and returns which rows stop now. Rules with memory keep it per row:
    ``keep`` drops the rows that left (``index``: the rows that stay, in order), ``restart``
    clears rows handed to new samples.
    """

    def step(self, S: np.ndarray, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def keep(self, index: np.ndarray) -> None:
        pass

    def restart(self, rows: np.ndarray) -> None:
        pass


@dataclass
class ExitPolicy:
    """Base class of a fitted exit policy; subclasses are dataclasses of their parameters."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line: the rule in words
    # The decoder whose confidence the policy reads, where it needs one in particular (None:
    # whichever the split was decoded with); comparison and CLI decode accordingly.
    decoder: ClassVar[str | None] = None
    # Whether it reads per-class probabilities from the split's full per-step outputs
    # (attach_outputs), which top-k storage does not hold.
    needs_outputs: ClassVar[bool] = False

    @property
    def params(self) -> dict:
        return asdict(self)

    @property
    def threshold_value(self) -> float | None:
        """The confidence threshold C, for policies that have one."""
        value = getattr(self, "threshold", None)
        return None if value is None else float(value)

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        """tau_i for every sample of a decoded split, 1-based int."""
        raise NotImplementedError

    def describe(self) -> str:
        """The parameters in a few words, for tables ("C=0.52, k=3")."""
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())

    def extras(self, dec: Decoded, steps: np.ndarray) -> dict:
        """Policy-specific numbers for PolicyResult.extras (e.g. coverage); none by default."""
        return {}

    def evaluate(self, dec: Decoded, spikes=None, neurons=None, synops=None) -> PolicyResult:
        steps = self.exit_steps(dec)
        res = summarize(
            dec,
            steps,
            policy=self.name,
            params=self.params,
            threshold=self.threshold_value,
            spikes=spikes,
            neurons=neurons,
            synops=synops,
        )
        res.extras = self.extras(dec, steps)
        return res

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        raise NotImplementedError

    @classmethod
    def candidates(cls, cal: Decoded) -> list[ExitPolicy]:
        """The operating points swept on calibration, most eager first."""
        raise NotImplementedError

    @classmethod
    def fit(cls, cal: Decoded, tolerance: float = 0.0) -> ExitPolicy:
        """The fastest candidate whose calibration accuracy is at least the baseline at T_max
        minus ``tolerance`` (ties: more correct, then the later, more conservative one)."""
        need = accuracy_needed(cal, tolerance)
        best, best_key = None, None
        for order, policy in enumerate(cls.candidates(cal)):
            steps = policy.exit_steps(cal)
            n_correct = int(summarize(cal, steps).n_correct)
            if n_correct < need:
                continue
            key = (int(steps.sum(dtype=np.int64)), -n_correct, -order)
            if best_key is None or key < best_key:
                best, best_key = policy, key
        if best is None:
            raise DynconfError(f"no {cls.name} operating point reaches the calibration target")
        return best


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} values]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def json_floats(values) -> list:
    """Floats for params/JSON: +-inf (a step nobody / everybody passes) as "inf" / "-inf",
    which float() reads back, since JSON has no infinities."""
    return [float(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]


def check_floats(values, what: str) -> tuple[float, ...]:
    """A tuple of floats (accepting "inf" / "-inf"), none NaN."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise DynconfError(f"{what} must be numbers, got {values!r}") from None
    if any(math.isnan(v) for v in out):
        raise DynconfError(f"{what} must not be NaN")
    return out


def attach_outputs(dec: Decoded, outputs) -> Decoded:
    """Keep the split's per-step outputs [T, N, K] (not accumulated) on dec, for policies
    that read per-class probabilities (needs_outputs). Returns dec."""
    if outputs is None:
        return dec
    shape = getattr(outputs, "shape", ())
    if len(shape) != 3 or tuple(shape[:2]) != (dec.T, dec.N):
        raise DynconfError(f"outputs must be [{dec.T}, {dec.N}, K], got shape {tuple(shape)}")
    dec.cache["outputs"] = outputs
    return dec


def split_outputs(dec: Decoded, policy: str):
    outputs = dec.cache.get("outputs")
    if outputs is None:
        raise DynconfError(
            f"policy '{policy}' needs the split's full per-step outputs (per-class "
            "probabilities); a top-k split cannot serve it (re-import with --storage full)"
        )
    return outputs


def accuracy_needed(cal: Decoded, tolerance: float) -> int:
    """Correct calibration samples a fitted policy needs: baseline at T_max - tolerance, as
    an exact count (accuracy >= baseline - tolerance <=> count >= ceil(...))."""
    tolerance = float(tolerance)
    if not math.isfinite(tolerance) or tolerance < 0:
        raise DynconfError(f"tolerance must be >= 0, got {tolerance}")
    return math.ceil(int(baseline_counts(cal)[-1]) - tolerance * cal.N - 1e-9)


def check_threshold(threshold) -> float:
    try:
        c = float(threshold)
    except (TypeError, ValueError):
        raise DynconfError(f"threshold must be a number, got {threshold!r}") from None
    if math.isnan(c):
        raise DynconfError("threshold must not be NaN")
    return c

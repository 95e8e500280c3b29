"""What an exit policy is: a causal rule that decides, after every step, which samples stop.

One protocol, in scikit-learn's style, for every policy of the registry:

- ``__init__`` takes hyperparameters only and stores them unchanged (``get_params`` /
  ``set_params`` read and write them). A hyperparameter left ``None`` is chosen by the fit.
- ``fit(calibration, tolerance=0.0)`` learns from a decoded calibration split and returns
  ``self``; what it learned is kept in attributes ending in ``_`` (``threshold_``, ``k_``,
  ``thresholds_``, ...). The operating point it picks is the fastest whose calibration
  accuracy is at least the T_max baseline minus ``tolerance`` (ties: more correct, then the
  more conservative one).
- ``evaluate(decoded)`` runs the fitted rule on any split and returns a PolicyResult with
  each sample's exit step tau_i and the answer argmax S_tau (results.py makes the metrics,
  with the split's spikes and synaptic operations where it carries them).
- ``online(decoder, kappa, T_max)`` is the per-step form the engine's early exit drives
  (dynconf/engine/snn.py); tests check it exits every sample where ``evaluate`` says.

A policy whose hyperparameters fix the rule completely (``ready()``, e.g. ``Threshold(0.9)``
or ``Patience(0.8, k=3)``) needs no calibration: it is fitted from them on first use.

Causal means the decision at step t uses outputs up to t only. One policy is one module in
this folder; the registry (registry.py) is the only list (docs/ARCHITECTURE.md, "add an exit
policy"); docs/POLICIES.md defines each rule.
"""

from __future__ import annotations

import inspect
import math
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


class ExitPolicy:
    """Base class of the exit policies (module doc: the protocol)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line: the rule in words
    # The decoder whose confidence the policy reads, where it needs one in particular (None:
    # whichever the split was decoded with); comparison and CLI decode accordingly.
    decoder: ClassVar[str | None] = None
    # Whether it reads per-class probabilities from the split's full per-step outputs
    # (attach_outputs), which top-k storage does not hold.
    needs_outputs: ClassVar[bool] = False
    # Bumped when the fit's result changes for the same data and hyperparameters, so fits
    # cached on disk (comparison.FitStore) by an earlier version are fitted again.
    fit_version: ClassVar[int] = 1

    # -- hyperparameters (scikit-learn's get_params / set_params)

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The hyperparameters: the arguments of ``__init__``."""
        signature = inspect.signature(cls.__init__)
        return tuple(p for p in signature.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params) -> ExitPolicy:
        unknown = sorted(set(params) - set(self.param_names()))
        if unknown:
            raise DynconfError(f"policy '{self.name}' has no parameter {unknown[0]!r}")
        for key, value in params.items():
            setattr(self, key, value)
        self.clear_fit()
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitted state (attributes ending in "_")

    def fitted_state(self) -> dict:
        """The fitted attributes, by name (JSON-ready through state_to_json)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def set_fitted(self, state: dict) -> ExitPolicy:
        """Restore fitted attributes (from fitted_state, e.g. read back from a cache)."""
        for key, value in state.items():
            setattr(self, key, value)
        return self

    def clear_fit(self) -> None:
        for key in list(self.fitted_state()):
            delattr(self, key)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted_state())

    def ready(self) -> bool:
        """Whether the hyperparameters alone fix the rule (no calibration needed)."""
        return False

    def fit_given(self) -> None:
        """Set the fitted attributes from complete hyperparameters (only when ready())."""
        raise NotImplementedError

    def check_fitted(self) -> None:
        if self.is_fitted:
            return
        if not self.ready():
            raise DynconfError(
                f"policy '{self.name}' is not fitted: call fit(calibration) or give all of "
                f"its parameters ({', '.join(self.param_names())})"
            )
        self.fit_given()

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> ExitPolicy:
        raise NotImplementedError

    # -- what the fitted rule does

    @property
    def params(self) -> dict:
        """The fitted rule's parameters, JSON-ready (PolicyResult.params, tables, CLI)."""
        self.check_fitted()
        return state_to_json({k[:-1]: v for k, v in self.fitted_state().items()})

    @property
    def threshold_value(self) -> float | None:
        """The confidence threshold C, for policies that have one."""
        self.check_fitted()
        value = getattr(self, "threshold_", None)
        return None if value is None else float(value)

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        """tau_i for every sample of a decoded split, 1-based int."""
        raise NotImplementedError

    def describe(self) -> str:
        """The fitted parameters in a few words, for tables ("threshold=0.52, k=3")."""
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())

    def extras(self, dec: Decoded, steps: np.ndarray) -> dict:
        """Policy-specific numbers for PolicyResult.extras (e.g. coverage); none by default."""
        return {}

    def result(self, dec: Decoded, steps: np.ndarray, spikes=None, neurons=None, synops=None):
        """The PolicyResult of this fitted policy exiting ``dec``'s samples at ``steps``."""
        res = summarize(
            dec, steps, policy=self.name, params=self.params, threshold=self.threshold_value,
            spikes=spikes, neurons=neurons, synops=synops,
        )  # fmt: skip
        res.extras = self.extras(dec, steps)
        return res

    def evaluate(self, dec: Decoded, spikes=None, neurons=None, synops=None) -> PolicyResult:
        """The fitted rule on ``dec``; its costs come with it (keywords override them)."""
        self.check_fitted()
        return self.result(dec, self.exit_steps(dec), spikes, neurons, synops)

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        raise NotImplementedError

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        """Fitted operating points along the policy's own trade-off, eager to conservative,
        for drawing its front (comparison.policy_fronts); the fit picks one of these or an
        exact point between them."""
        raise NotImplementedError


def fastest(cal: Decoded, tolerance: float, candidates: list[ExitPolicy], what: str):
    """The fastest fitted candidate whose calibration accuracy meets the target (module doc;
    ties: more correct, then the later, more conservative one)."""
    need = accuracy_needed(cal, tolerance)
    best, best_key = None, None
    for order, policy in enumerate(candidates):
        steps = policy.exit_steps(cal)
        n_correct = int(summarize(cal, steps).n_correct)
        if n_correct < need:
            continue
        key = (int(steps.sum(dtype=np.int64)), -n_correct, -order)
        if best_key is None or key < best_key:
            best, best_key = policy, key
    if best is None:
        raise DynconfError(f"no {what} operating point reaches the calibration target")
    return best


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} values]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def state_to_json(value):
    """Fitted values for JSON: tuples as lists, +-inf as "inf" / "-inf" (JSON has none)."""
    if isinstance(value, dict):
        return {k: state_to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [state_to_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return value


def state_from_json(value):
    """The inverse of state_to_json: lists as tuples, "inf" / "-inf" as floats."""
    if isinstance(value, dict):
        return {k: state_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(state_from_json(v) for v in value)
    if value in ("inf", "-inf"):
        return float(value)
    return value


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


def check_tolerance(tolerance) -> float:
    tolerance = float(tolerance)
    if not math.isfinite(tolerance) or tolerance < 0:
        raise DynconfError(f"tolerance must be >= 0, got {tolerance}")
    return tolerance

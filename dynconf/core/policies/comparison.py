"""Every exit policy fitted the same way on a calibration split and reported on another.

Each policy of the registry chooses its operating point on calibration with the same rule
(the fastest whose calibration accuracy is at least the T_max baseline minus a tolerance),
then runs unchanged on the evaluation split. Next to the stays-correct oracle (the latency no
causal rule can beat at full-length accuracy) that says how much of the gap between the
threshold rule and the oracle a policy closes.

A split is given either decoded (a Decoded: every policy then runs on that decoder and
kappa) or as a function ``decode(decoder, kappa) -> Decoded`` (``split_decoder`` makes one
from a stored split). The function form lets a policy read the decoder it needs (topk_gap
reads the raw gap through ``gap``), lets conformal read per-class probabilities from the
full outputs, and lets ``kappa="auto"`` choose the decoder's kappa on calibration: the split
is decoded at each kappa of a grid, the threshold rule fitted on each, and the kappa of the
fastest that meets the target is kept (ties: more correct, then the kappa nearest T_max),
after which every policy runs at that kappa.

``policy_fronts`` then runs each fitted policy's calibration candidates (at most 200, spread
over its sweep) on the evaluation split and marks their Pareto front: how far the point chosen
on calibration stays from the best the policy could have done on that split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dynconf.core.analysis_cache import AnalysisCache, cache_key
from dynconf.core.decoders import Decoded, check_kappa, decode, get_decoder
from dynconf.core.oracle import OracleResult, oracle
from dynconf.core.pareto import pareto_front
from dynconf.core.policies.base import (
    ExitPolicy,
    accuracy_needed,
    attach_outputs,
    state_from_json,
    state_to_json,
)
from dynconf.core.policies.registry import POLICIES, get_policy
from dynconf.core.policies.threshold import Threshold
from dynconf.core.results import PolicyResult, summarize
from dynconf.errors import DynconfError

DecodeFn = Callable[[str, "float | None"], Decoded]
KAPPA_FACTORS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4)  # the auto grid, times T_max


def split_decoder(split, neurons: int | None = None) -> DecodeFn:
    """decode(decoder, kappa) for one stored split, memoised, with its full per-step outputs
    attached (for policies that read per-class probabilities) when it has them; its spikes
    and synops (and ``neurons``, the run's hidden neuron count) travel with each decoding."""
    held: dict = {}

    def decode_split(decoder: str, kappa: float | None) -> Decoded:
        key = (decoder, check_kappa(decoder, kappa, split.T))
        if key not in held:
            held[key] = attach_outputs(decode(split, decoder, kappa, neurons), split.outputs)
        return held[key]

    return decode_split


@dataclass(eq=False)
class PolicyFit:
    """One policy chosen on calibration and reported on the evaluation split."""

    name: str
    params: dict
    calibration: PolicyResult
    test: PolicyResult
    latency_vs_threshold: float | None  # test mean latency / the threshold rule's
    gap_closed: float | None  # share of (threshold latency - oracle latency) it saves
    decoder: str = ""  # the decoder and kappa it read
    kappa: float | None = None
    description: str = ""  # its parameters in a few words
    policy: ExitPolicy | None = field(default=None, repr=False)  # the fitted policy

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "description": self.description,
            "decoder": self.decoder,
            "kappa": self.kappa,
            "calibration": self.calibration.to_dict(per_sample=False),
            "test": {
                **self.test.to_dict(per_sample=False),
                "latency_vs_threshold": self.latency_vs_threshold,
                "gap_closed": self.gap_closed,
            },
        }


@dataclass(eq=False)
class PolicyComparison:
    tolerance: float
    fits: list[PolicyFit]
    oracle: OracleResult  # stays correct, on the evaluation split
    decoder: str = ""
    kappa: float | None = None  # the kappa every policy ran at (chosen, with kappa="auto")
    kappa_search: list[dict] = field(default_factory=list)  # the auto grid on calibration
    skipped: dict[str, str] = field(default_factory=dict)  # policy -> why it could not run

    def to_dict(self) -> dict:
        return {
            "tolerance": self.tolerance,
            "decoder": self.decoder,
            "kappa": self.kappa,
            "kappa_search": self.kappa_search,
            "policies": [f.to_dict() for f in self.fits],
            "oracle": self.oracle.to_dict(),
            "skipped": self.skipped,
        }


def _as_function(split, what: str) -> DecodeFn:
    if isinstance(split, Decoded):

        def given(decoder: str, kappa) -> Decoded:
            if decoder != split.decoder or (kappa is not None and kappa != split.kappa):
                raise DynconfError(
                    f"the {what} split is decoded with {split.label}; a policy needs decoder "
                    f"'{decoder}': pass decode functions (split_decoder) instead"
                )
            return split

        return given
    if callable(split):
        return split
    raise DynconfError(f"the {what} split must be a Decoded or a decode(decoder, kappa) function")


def choose_kappa(cal: DecodeFn, decoder: str, tolerance: float, T: int, grid=None):
    """The kappa whose fitted threshold is fastest on calibration (module doc), with the grid's
    calibration numbers."""
    grid = [T * f for f in KAPPA_FACTORS] if grid is None else [float(k) for k in grid]
    search, best, best_key = [], None, None
    for kappa in grid:
        dec = cal(decoder, kappa)
        res = Threshold().fit(dec, tolerance).evaluate(dec)
        search.append(
            {"kappa": dec.kappa, "accuracy": res.accuracy, "mean_latency": res.mean_latency}
        )
        key = (res.mean_latency, -res.n_correct, abs(math.log(dec.kappa / T)))
        if res.n_correct >= accuracy_needed(dec, tolerance) and (best is None or key < best_key):
            best, best_key = dec.kappa, key
    return best, search


@dataclass(eq=False)
class FitStore:
    """Where compare_policies keeps fitted policies between runs: an AnalysisCache and what
    identifies the calibration data (the run's stamp and the split's name). An entry holds
    the fitted attributes (JSON) and the calibration exit steps, keyed by those, the policy,
    its hyperparameters, decoder, kappa and tolerance."""

    cache: AnalysisCache
    source: tuple  # (run stamp, calibration split name)

    def key(self, policy: ExitPolicy, cal: Decoded, tolerance: float) -> str:
        params = state_to_json(policy.get_params())
        return cache_key("policy-fit", policy.fit_version, *self.source, policy.name, params,
                         cal.decoder, cal.kappa, float(tolerance))  # fmt: skip

    def load(self, policy: ExitPolicy, cal: Decoded, tolerance: float):
        entry = self.cache.get(self.key(policy, cal, tolerance))
        if entry is None or "calibration_steps" not in entry.arrays:
            return None
        steps = entry.arrays["calibration_steps"].astype(np.int32)
        if steps.shape != (cal.N,):
            return None
        policy.set_fitted(state_from_json(entry.meta["fitted"]))
        return steps

    def save(self, policy: ExitPolicy, cal: Decoded, tolerance: float, steps) -> None:
        meta = {"policy": policy.name, "fitted": state_to_json(policy.fitted_state())}
        arrays = {"calibration_steps": np.asarray(steps, np.int16 if cal.T < 32768 else np.int32)}
        self.cache.put(self.key(policy, cal, tolerance), arrays, meta)


def fit_policy(cls, cal: Decoded, tolerance: float, store: FitStore | None = None):
    """(fitted policy, its calibration result): from the store when it holds the fit."""
    policy = cls()
    steps = store.load(policy, cal, tolerance) if store is not None else None
    if steps is None:
        policy.fit(cal, tolerance)
        steps = policy.exit_steps(cal)
        if store is not None:
            store.save(policy, cal, tolerance, steps)
    return policy, policy.result(cal, steps)


def _resolve(cal, test, decoder, kappa, tolerance, kappa_grid):
    """(cal_fn, test_fn, decoder, kappa, auto-kappa search) for compare_policies."""
    given = isinstance(cal, Decoded)
    if given != isinstance(test, Decoded):
        raise DynconfError("give calibration and test both decoded or both as decode functions")
    if given:
        if cal.decoder != test.decoder or cal.kappa != test.kappa:
            raise DynconfError("calibration and test must use the same decoder and kappa")
        if decoder is not None or kappa is not None:
            raise DynconfError("decoder and kappa come from the decoded splits")
        decoder, kappa = cal.decoder, cal.kappa
    decoder = decoder or "paper"
    get_decoder(decoder)
    cal_fn, test_fn = _as_function(cal, "calibration"), _as_function(test, "test")
    base = cal_fn(decoder, None if kappa == "auto" else kappa)
    search = []
    if kappa == "auto":
        if not get_decoder(decoder).uses_kappa:
            raise DynconfError(f"decoder '{decoder}' takes no kappa, so none can be chosen")
        kappa, search = choose_kappa(cal_fn, decoder, tolerance, base.T, kappa_grid)
        base = cal_fn(decoder, kappa)
    return cal_fn, test_fn, decoder, base.kappa, search


def _splits_for(cls, cal_fn, test_fn, decoder: str, kappa):
    """The calibration and test decodings a policy reads (its own decoder, if it has one)."""
    need = cls.decoder or decoder
    c = cal_fn(need, kappa if get_decoder(need).uses_kappa else None)
    t = test_fn(need, c.kappa)
    if cls.needs_outputs and ("outputs" not in c.cache or "outputs" not in t.cache):
        raise DynconfError(
            f"policy '{cls.name}' needs the splits' full per-step outputs (per-class "
            "probabilities); top-k storage or a bare Decoded cannot serve it"
        )
    return c, t


def compare_policies(
    cal,
    test,
    tolerance: float = 0.0,
    test_spikes=None,
    neurons=None,
    names=None,
    *,
    decoder: str | None = None,
    kappa=None,
    kappa_grid=None,
    store: FitStore | None = None,
    on_fit: Callable[[PolicyFit], None] | None = None,
) -> PolicyComparison:
    """Fit ``names`` (default: every registered policy that can run on what is given) on
    ``cal``, report them on ``test``. cal and test: Decoded, or decode functions (module doc)
    with ``decoder`` (default paper) and ``kappa`` (a number, None for T_max, or "auto").
    Costs come with the decoded splits; ``test_spikes`` / ``neurons`` override the test's.
    ``store`` keeps and reuses fits on disk; ``on_fit`` sees each PolicyFit once it is ready
    (threshold first, so every later one carries its ratio to the threshold rule)."""
    cal_fn, test_fn, decoder, kappa, search = _resolve(
        cal, test, decoder, kappa, tolerance, kappa_grid
    )
    explicit = names is not None
    names = list(POLICIES) if names is None else list(names)
    best = oracle(test_fn(decoder, kappa), "stays_correct", "cap")
    # The threshold rule is the reference of every ratio: fitted first, reported in order.
    work = sorted(names, key=lambda n: n != "threshold")
    reference, fits, skipped = None, {}, {}
    for name in work:
        cls = get_policy(name)
        try:
            c, t = _splits_for(cls, cal_fn, test_fn, decoder, kappa)
        except DynconfError as exc:
            if explicit:
                raise
            skipped[name] = str(exc)
            continue
        policy, on_cal = fit_policy(cls, c, tolerance, store)
        on_test = policy.evaluate(t, test_spikes, neurons)
        if name == "threshold":
            reference = on_test
        ratio, gap = _against(reference, best, on_test)
        fits[name] = PolicyFit(policy.name, policy.params, on_cal, on_test, ratio, gap,
                               c.decoder, c.kappa, policy.describe(), policy)  # fmt: skip
        if on_fit is not None:
            on_fit(fits[name])
    ordered = [fits[n] for n in names if n in fits]
    return PolicyComparison(float(tolerance), ordered, best, decoder, kappa, search, skipped)


def _against(reference: PolicyResult | None, best: OracleResult, res: PolicyResult):
    """(latency / the threshold rule's, share of the threshold-to-oracle gap closed)."""
    if reference is None:
        return None, None
    room = reference.mean_latency - best.mean_latency
    ratio = res.mean_latency / reference.mean_latency if reference.mean_latency else None
    gap = (reference.mean_latency - res.mean_latency) / room if room > 0 else None
    return ratio, gap


MAX_FRONT_CANDIDATES = 200  # candidates evaluated per policy for its front (spread over all)


@dataclass(eq=False)
class PolicyFront:
    """One policy's operating points (its calibration candidates) on the evaluation split.

    ``mean_latency``/``accuracy``: every evaluated candidate, in the policy's candidate order;
    ``on_front`` marks the Pareto-optimal ones (dynconf.core.pareto.pareto_front). The
    fitted point (``fit.test``) is chosen on calibration, so it need not lie on this front:
    the distance is what choosing on calibration costs on the evaluation split.
    """

    name: str
    decoder: str
    kappa: float | None
    descriptions: list[str]  # each evaluated candidate's parameters in a few words
    mean_latency: np.ndarray
    accuracy: np.ndarray
    on_front: np.ndarray
    n_candidates: int  # before thinning to at most max_points
    fit: PolicyFit  # the policy chosen on calibration (its test point is the chosen point)

    def front(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(mean latency, accuracy, description) of the front's points, fast to slow; of
        candidates at the very same point (pareto_front keeps them all) only the first."""
        index = np.flatnonzero(self.on_front)
        index = index[np.argsort(self.mean_latency[index], kind="stable")]
        lat, acc = self.mean_latency[index], self.accuracy[index]
        repeat = np.zeros(len(index), bool)
        repeat[1:] = (lat[1:] == lat[:-1]) & (acc[1:] == acc[:-1])
        index = index[~repeat]
        return self.mean_latency[index], self.accuracy[index], [self.descriptions[i] for i in index]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "decoder": self.decoder,
            "kappa": self.kappa,
            "n_candidates": self.n_candidates,
            "descriptions": self.descriptions,
            "mean_latency": self.mean_latency.tolist(),
            "accuracy": self.accuracy.tolist(),
            "on_front": self.on_front.tolist(),
            "chosen": {
                "params": self.fit.params,
                "accuracy": self.fit.test.accuracy,
                "mean_latency": self.fit.test.mean_latency,
            },
        }


def thin(items: list, max_points: int) -> list:
    """At most ``max_points`` of ``items`` spread evenly over the list, first and last kept."""
    if max_points < 1:
        raise DynconfError(f"max_points must be >= 1, got {max_points}")
    if len(items) <= max_points:
        return list(items)
    index = np.unique(np.linspace(0, len(items) - 1, num=max_points).round().astype(int))
    return [items[i] for i in index]


def policy_fronts(
    comparison: PolicyComparison, cal, test, max_points: int = MAX_FRONT_CANDIDATES
) -> list[PolicyFront]:
    """Every fitted policy of ``comparison`` swept over its calibration candidates
    (``policy.candidates``, thinned to ``max_points``) on the evaluation split, at the decoder and
    kappa it was fitted at, with the Pareto front marked. ``cal`` and ``test``: what was
    given to compare_policies (Decoded or decode functions)."""
    if isinstance(cal, Decoded) != isinstance(test, Decoded):
        raise DynconfError("give calibration and test both decoded or both as decode functions")
    cal_fn, test_fn = _as_function(cal, "calibration"), _as_function(test, "test")
    out = []
    for fit in comparison.fits:
        c, t = cal_fn(fit.decoder, fit.kappa), test_fn(fit.decoder, fit.kappa)
        fitted = fit.policy if fit.policy is not None else get_policy(fit.name)().fit(c)
        everyone = fitted.candidates(c)
        chosen = thin(everyone, max_points)
        lat, acc = np.empty(len(chosen)), np.empty(len(chosen))
        for i, policy in enumerate(chosen):
            res = summarize(t, policy.exit_steps(t))
            lat[i], acc[i] = res.mean_latency, res.accuracy
        out.append(
            PolicyFront(
                fit.name,
                fit.decoder,
                fit.kappa,
                [p.describe() for p in chosen],
                lat,
                acc,
                pareto_front(lat, acc),
                len(everyone),
                fit,
            )
        )
    return out

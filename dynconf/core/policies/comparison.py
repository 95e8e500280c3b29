"""Every exit policy fitted the same way on a calibration split and reported on another.

Each policy of the registry chooses its operating point on calibration with the same rule
(the fastest whose calibration accuracy is at least the T_max baseline minus a tolerance),
then runs unchanged on the evaluation split. Next to the stays-correct oracle (the latency no
causal rule can beat at full-length accuracy) that says how much of the gap between the
threshold rule and the oracle a policy closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynconf.core.decoders import Decoded
from dynconf.core.oracle import OracleResult, oracle
from dynconf.core.policies.registry import POLICIES
from dynconf.core.results import PolicyResult
from dynconf.errors import DynconfError


@dataclass(eq=False)
class PolicyFit:
    """One policy chosen on calibration and reported on the evaluation split."""

    name: str
    params: dict
    calibration: PolicyResult
    test: PolicyResult
    latency_vs_threshold: float | None  # test mean latency / the threshold rule's
    gap_closed: float | None  # share of (threshold latency - oracle latency) it saves


@dataclass(eq=False)
class PolicyComparison:
    tolerance: float
    fits: list[PolicyFit]
    oracle: OracleResult  # stays correct, on the evaluation split


def compare_policies(
    cal: Decoded,
    test: Decoded,
    tolerance: float = 0.0,
    test_spikes=None,
    neurons=None,
    names=None,
) -> PolicyComparison:
    """Fit ``names`` (default: every registered policy) on ``cal``, report them on ``test``."""
    if cal.decoder != test.decoder or cal.kappa != test.kappa:
        raise DynconfError("calibration and test must use the same decoder and kappa")
    names = list(POLICIES) if names is None else list(names)
    results = []
    for name in names:
        policy = POLICIES[name].fit(cal, tolerance)
        results.append((policy, policy.evaluate(cal), policy.evaluate(test, test_spikes, neurons)))
    best = oracle(test, "stays_correct", "cap")
    reference = next((r for p, _, r in results if p.name == "threshold"), None)
    fits = []
    for policy, on_cal, on_test in results:
        ratio = gap = None
        if reference is not None:
            ratio = on_test.mean_latency / reference.mean_latency
            room = reference.mean_latency - best.mean_latency
            gap = (reference.mean_latency - on_test.mean_latency) / room if room > 0 else None
        fits.append(PolicyFit(policy.name, policy.params, on_cal, on_test, ratio, gap))
    return PolicyComparison(float(tolerance), fits, best)

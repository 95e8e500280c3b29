"""The metrics of Dynamic Confidence in one place: what the CLI, the app and notebooks call.

Everything here works on a decoded split (dynconf.core.decoders.Decoded) and is exact: exit
steps and correct counts are integers, accuracies are counts / N. This module only gathers
the functions; each lives with its job: the threshold rule and its fast sweep in
policies/threshold.py, results in results.py, the front in pareto.py, choosing a threshold in
selection.py, the oracle in oracle.py.
"""

from __future__ import annotations

from dynconf.core.decoders import Decoded
from dynconf.core.oracle import NEVER_CORRECT, ORACLE_VARIANTS, OracleResult, oracle, oracle_curve
from dynconf.core.pareto import ACC_SLACK, LAT_SLACK, NEAR_EPS, Sweep, near_front, pareto_front
from dynconf.core.policies.threshold import ThresholdCache, threshold_cache
from dynconf.core.results import Curve, PolicyResult, baseline_curve
from dynconf.core.selection import Selection, select_threshold

policy_cache = threshold_cache


def exit_steps(dec: Decoded, threshold):
    """tau_i = min{t : c_t > C} for every sample, 1-based int32."""
    return threshold_cache(dec).exit_steps(threshold)


def evaluate(dec: Decoded, threshold, spikes=None, neurons=None, synops=None) -> PolicyResult:
    """Dynamic Confidence at one threshold (strict >). spikes, synops [T, N] optional."""
    return threshold_cache(dec).evaluate(threshold, spikes, neurons, synops=synops)


def capped_curve(dec: Decoded, threshold) -> Curve:
    """The threshold rule with every exit capped at T' = 1..T."""
    return threshold_cache(dec).capped_curve(threshold)


def sweep(dec: Decoded, thresholds=None, acc_slack=ACC_SLACK, lat_slack=LAT_SLACK) -> Sweep:
    """Accuracy and mean latency for many thresholds (default: default_thresholds)."""
    return threshold_cache(dec).sweep(thresholds, acc_slack, lat_slack)


def default_thresholds(dec: Decoded, n: int = 1000):
    return threshold_cache(dec).default_thresholds(n)


__all__ = [
    "ACC_SLACK",
    "LAT_SLACK",
    "NEAR_EPS",
    "NEVER_CORRECT",
    "ORACLE_VARIANTS",
    "Curve",
    "OracleResult",
    "ThresholdCache",
    "PolicyResult",
    "Selection",
    "Sweep",
    "baseline_curve",
    "capped_curve",
    "default_thresholds",
    "evaluate",
    "exit_steps",
    "near_front",
    "oracle",
    "oracle_curve",
    "pareto_front",
    "policy_cache",
    "select_threshold",
    "sweep",
]

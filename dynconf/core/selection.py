"""Choosing the threshold on a calibration split and reporting it on another (docs/METHOD.md
section 4), and which splits play those roles by default.

The test split takes no part in the choice; the robust band says how much the choice hinges
on one exact value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynconf.core.decoders import Decoded
from dynconf.core.pareto import ACC_SLACK, LAT_SLACK, Sweep
from dynconf.core.policies.threshold import choose_threshold, threshold_cache
from dynconf.core.results import PolicyResult, baseline_counts
from dynconf.errors import DynconfError

CALIBRATION_NAMES = ("calibration", "calib", "val", "validation", "train")


def default_split(run: Any) -> str:
    """The split results are reported on: test when the run has one."""
    return "test" if "test" in run.split_names else run.split_names[0]


def calibration_split(run: Any, split: str) -> str | None:
    """The split thresholds are chosen on: never the evaluated split, never test."""
    for name in CALIBRATION_NAMES:
        if name in run.split_names and name != split:
            return name
    return None


@dataclass(eq=False)
class Selection:
    """A threshold chosen on one split and reported on another (docs/METHOD.md section 4)."""

    threshold: float
    tolerance: float
    target_accuracy: float  # calibration baseline at T_max minus tolerance
    calibration: PolicyResult
    test: PolicyResult
    band: tuple[float, float]  # see select_threshold
    sweep: Sweep  # on the calibration split
    decoder: str
    kappa: float | None

    def to_dict(self, per_sample: bool = False) -> dict:
        return {
            "threshold": float(self.threshold),
            "decoder": self.decoder,
            "kappa": self.kappa,
            "tolerance": float(self.tolerance),
            "target_accuracy": float(self.target_accuracy),
            "band": [float(self.band[0]), float(self.band[1])],
            "acc_slack": self.sweep.acc_slack,
            "lat_slack": self.sweep.lat_slack,
            "calibration": self.calibration.to_dict(per_sample),
            "test": self.test.to_dict(per_sample),
        }


def select_threshold(
    cal_dec: Decoded,
    test_dec: Decoded,
    tolerance: float = 0.0,
    thresholds=None,
    acc_slack: float = ACC_SLACK,
    lat_slack: float = LAT_SLACK,
    test_spikes=None,
    neurons=None,
    cal_spikes=None,
    test_synops=None,
    cal_synops=None,
) -> Selection:
    """Lowest-latency swept threshold whose calibration accuracy >= calibration baseline at
    T_max - tolerance (ties: higher accuracy, then the higher, more conservative threshold);
    reported on the test split. The grid always contains 1.0, which never exits early and so
    always meets the target.

    band = (lowest, highest) threshold of the contiguous run of swept thresholds containing
    the choice in which every point is near the front (near_front with acc_slack, lat_slack)
    and keeps calibration accuracy >= target - acc_slack.

    ``test_spikes`` / ``cal_spikes`` (hidden spikes per step, [T, N]) add spikes at exit to
    the test / calibration results, ``test_synops`` / ``cal_synops`` synaptic operations.
    """
    if cal_dec.decoder != test_dec.decoder or cal_dec.kappa != test_dec.kappa:
        raise DynconfError("calibration and test must use the same decoder and kappa")
    tolerance = float(tolerance)
    choice = choose_threshold(cal_dec, tolerance, thresholds, acc_slack, lat_slack)
    sw, best, need, N = choice.sweep, choice.index, choice.need, cal_dec.N
    # Band: the contiguous run of thresholds around the choice that stay near the front and
    # keep calibration accuracy within acc_slack of the target.
    near = sw.near_front & (sw.n_correct >= need - acc_slack * N - 1e-9)
    lo = hi = best
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < len(near) - 1 and near[hi + 1]:
        hi += 1
    threshold = float(sw.thresholds[best])
    return Selection(
        threshold=threshold,
        tolerance=tolerance,
        target_accuracy=int(baseline_counts(cal_dec)[-1]) / N - tolerance,
        calibration=threshold_cache(cal_dec).evaluate(
            threshold, cal_spikes, neurons, synops=cal_synops
        ),
        test=threshold_cache(test_dec).evaluate(
            threshold, test_spikes, neurons, synops=test_synops
        ),
        band=(float(sw.thresholds[lo]), float(sw.thresholds[hi])),
        sweep=sw,
        decoder=cal_dec.decoder,
        kappa=cal_dec.kappa,
    )

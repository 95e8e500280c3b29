"""Exit policies: causal rules that decide when each sample stops (one module per policy).

base.py says what a policy is, registry.py lists them, threshold.py is Dynamic Confidence
(c_t > C) and patience.py the same with the answer held for k steps.
"""

from dynconf.core.policies.base import ExitPolicy, OnlineRule
from dynconf.core.policies.patience import Patience
from dynconf.core.policies.registry import POLICIES, get_policy
from dynconf.core.policies.threshold import Threshold, ThresholdCache, threshold_cache

__all__ = [
    "POLICIES",
    "ExitPolicy",
    "OnlineRule",
    "Patience",
    "Threshold",
    "ThresholdCache",
    "get_policy",
    "threshold_cache",
]

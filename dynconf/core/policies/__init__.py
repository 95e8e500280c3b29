"""Exit policies: causal rules that decide when each sample stops (one module per policy).

base.py says what a policy is, registry.py lists them, threshold.py is Dynamic Confidence
(c_t > C), patience.py the same with the answer held for k steps, schedule.py one threshold
per step, topk_gap.py SNNCutoff's per-step rule on the raw top-2 gap, conformal.py
SpikeCP-style conformal sets at checkpoints and learned.py a cross-fitted stopping model;
comparison.py fits them all the same way (docs/POLICIES.md). Every policy follows one
scikit-learn-style protocol: ``Policy(**hyperparameters).fit(calibration).evaluate(split)``.
"""

from dynconf.core.policies.base import ExitPolicy, OnlineRule, attach_outputs
from dynconf.core.policies.conformal import Conformal
from dynconf.core.policies.learned import Learned
from dynconf.core.policies.patience import Patience
from dynconf.core.policies.registry import POLICIES, get_policy
from dynconf.core.policies.schedule import Schedule
from dynconf.core.policies.threshold import Threshold, ThresholdCache, threshold_cache
from dynconf.core.policies.topk_gap import TopkGap

__all__ = [
    "POLICIES",
    "Conformal",
    "ExitPolicy",
    "Learned",
    "OnlineRule",
    "Patience",
    "Schedule",
    "Threshold",
    "ThresholdCache",
    "TopkGap",
    "attach_outputs",
    "get_policy",
    "threshold_cache",
]

"""The one list of exit policies.

The CLI (`evaluate --policy`), the engine's early exit and the policy comparisons read
``POLICIES``. To add a policy, write a module in this folder with a subclass of
``ExitPolicy`` following its protocol (base.py: hyperparameters in ``__init__``, ``fit``
setting attributes that end in ``_``, ``exit_steps``, ``online``, ``candidates``), then name
it in the import and in the tuple below
(docs/ARCHITECTURE.md, "add an exit policy").
"""

from dynconf.core.policies.base import ExitPolicy
from dynconf.core.policies.conformal import Conformal
from dynconf.core.policies.learned import Learned
from dynconf.core.policies.patience import Patience
from dynconf.core.policies.schedule import Schedule
from dynconf.core.policies.threshold import Threshold
from dynconf.core.policies.topk_gap import TopkGap
from dynconf.errors import DynconfError

POLICIES: dict[str, type[ExitPolicy]] = {
    p.name: p for p in (Threshold, Patience, Schedule, TopkGap, Conformal, Learned)
}


def get_policy(name: str) -> type[ExitPolicy]:
    try:
        return POLICIES[name]
    except (KeyError, TypeError):
        raise DynconfError(f"unknown policy {name!r} (choose from {', '.join(POLICIES)})") from None

"""Exit-policy fronts kept in the analysis cache, so a second export reads them.

A front (dynconf.core.policies.comparison.policy_fronts) evaluates every calibration
candidate of every fitted policy on each sample of the evaluation split: seconds for a
CIFAR-10 run, more than drawing and rendering the whole pack. It is a pure function of

- the run's files (its stamp) and the evaluation and calibration splits,
- the decoder and kappa the view reads,
- each fitted policy: its name, hyperparameters, fitted state, decoder and kappa,
- the number of candidates swept, and the code of dynconf.core that sweeps them,

so it is kept under a key made of all of these (dynconf.core.analysis_cache) and read back
instead of swept. A key that cannot be made (a run held only in memory, a fit without its
policy, the cache turned off) sweeps as before; a damaged or mismatched entry is a miss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FORMAT = 1  # bump when what an entry holds changes


def fronts_of(
    view: Any, calibration: str, tolerance: float, comparison: Any, auto_kappa: bool = False
) -> list:
    """The view's policy fronts on ``calibration``'s fits (``comparison``, fitted with the
    same ``auto_kappa``): read from the analysis cache when held there, else the view's own
    (swept once, then stored). The key names each fit's decoder and kappa, so fits whose
    kappa was chosen on calibration share an entry only with fits of that same kappa."""
    from dynconf.report import viewdata

    if not callable(getattr(view, "policy_fronts", None)):
        return viewdata.policies(view, calibration, tolerance)[1]
    cache, key = _cache_and_key(view, calibration, tolerance, comparison)
    if cache is not None:
        fronts = _restore(cache.get(key), comparison)
        if fronts is not None:
            return fronts
    fronts = view.policy_fronts(calibration, tolerance, auto_kappa)
    if cache is not None:
        cache.put(key, *_state(fronts))
    return fronts


def _cache_and_key(view, calibration, tolerance, comparison) -> tuple[Any, str | None]:
    from dynconf.core.policies.base import state_to_json
    from dynconf.core.policies.comparison import MAX_FRONT_CANDIDATES

    disk_cache = getattr(view, "disk_cache", None)
    cache = disk_cache(small=True) if callable(disk_cache) else None
    fits = list(getattr(comparison, "fits", ()))
    if cache is None or not fits or any(fit.policy is None for fit in fits):
        return None, None
    described = [
        (fit.name, fit.decoder, fit.kappa, state_to_json(fit.policy.get_params()),
         state_to_json(fit.policy.fitted_state()))
        for fit in fits
    ]  # fmt: skip
    key = view.disk_key("policy-fronts", FORMAT, calibration, float(tolerance), described,
                        MAX_FRONT_CANDIDATES, core_digest())  # fmt: skip
    return (cache, key) if key is not None else (None, None)


def core_digest() -> str:
    """A digest of dynconf.core's source: any change to the code that sweeps a front makes
    a new key."""
    from dynconf.core.analysis_cache import code_digest

    return code_digest("core")


def _state(fronts: list) -> tuple[dict, dict]:
    """(arrays, meta) of an analysis-cache entry holding ``fronts``."""
    arrays, meta = {}, []
    for i, front in enumerate(fronts):
        arrays[f"latency_{i}"] = np.asarray(front.mean_latency, np.float64)
        arrays[f"accuracy_{i}"] = np.asarray(front.accuracy, np.float64)
        arrays[f"on_front_{i}"] = np.asarray(front.on_front, bool)
        kappa = None if front.kappa is None else float(front.kappa)
        meta.append({"name": front.name, "decoder": front.decoder, "kappa": kappa,
                     "descriptions": list(front.descriptions),
                     "n_candidates": int(front.n_candidates)})  # fmt: skip
    return arrays, {"fronts": meta}


def _restore(entry: Any, comparison: Any) -> list | None:
    """The fronts an entry holds, each joined to its fit in ``comparison``; None when the
    entry is missing or does not match the fits."""
    from dynconf.core.policies.comparison import PolicyFront

    if entry is None:
        return None
    fits, meta = list(comparison.fits), entry.meta.get("fronts")
    if not isinstance(meta, list) or len(meta) != len(fits):
        return None
    out = []
    try:
        for i, (fit, m) in enumerate(zip(fits, meta, strict=True)):
            lat, acc = entry.arrays[f"latency_{i}"], entry.arrays[f"accuracy_{i}"]
            on_front = entry.arrays[f"on_front_{i}"].astype(bool)
            if m["name"] != fit.name or not len(lat) == len(acc) == len(on_front) == len(
                m["descriptions"]
            ):
                return None
            out.append(PolicyFront(fit.name, m["decoder"], m["kappa"], list(m["descriptions"]),
                                   lat, acc, on_front, int(m["n_candidates"]), fit))  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
    return out

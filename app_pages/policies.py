"""Policies: every exit rule of the registry chosen on calibration, compared on the split."""

import pandas as pd
import streamlit as st

from dynconf.core.formatting import pct
from dynconf.core.policies import POLICIES
from dynconf.core.selection import calibration_split
from ui import caches, state

ctx = state.context()
st.title("Exit policies")
st.caption(
    "Each exit rule picks its operating point on the calibration split (the fastest whose "
    "accuracy is at least the full-length baseline minus the tolerance) and is then run "
    "unchanged on the evaluation split. The stays-correct oracle is the latency no causal "
    "rule can beat at full-length accuracy."
)
cal = calibration_split(ctx.run, ctx.split)
if cal is None:
    st.warning(
        f"Run {ctx.run.name} has no calibration split besides '{ctx.split}', so no policy can "
        "be fitted. Simulate or import one on the Runs page."
    )
    st.stop()
tol = st.number_input(
    "Tolerance (accuracy points below the baseline)",
    min_value=0.0,
    max_value=10.0,
    value=0.0,
    step=0.1,
    format="%.2f",
    key="pol_tol",
)
comparison = caches.get_policy_comparison(
    ctx.listing.path, cal, ctx.split, ctx.decoder, ctx.kappa, tol / 100.0
)
rows = []
for fit in comparison.fits:
    rows.append(
        {
            "policy": fit.name,
            "rule": POLICIES[fit.name].summary,
            "parameters": ", ".join(f"{k} = {v:.4g}" for k, v in fit.params.items()),
            f"accuracy on {cal} (%)": round(100 * fit.calibration.accuracy, 2),
            f"accuracy on {ctx.split} (%)": round(100 * fit.test.accuracy, 2),
            f"mean latency on {ctx.split}": round(fit.test.mean_latency, 3),
            "latency vs threshold": None
            if fit.latency_vs_threshold is None
            else round(fit.latency_vs_threshold, 3),
            "gap to the oracle closed": "n/a" if fit.gap_closed is None else pct(fit.gap_closed, 1),
        }
    )
orc = comparison.oracle
rows.append(
    {
        "policy": "oracle (stays correct)",
        "rule": "knows the label: stops once the answer stays right to T_max",
        "parameters": "",
        f"accuracy on {cal} (%)": None,
        f"accuracy on {ctx.split} (%)": round(100 * orc.accuracy, 2),
        f"mean latency on {ctx.split}": round(orc.mean_latency, 3),
        "latency vs threshold": None,
        "gap to the oracle closed": "",
    }
)
st.dataframe(pd.DataFrame(rows), hide_index=True)
baseline = comparison.fits[0].test.baseline_accuracy
st.caption(
    f"Baseline at T = {ctx.run.T_max} on {ctx.split}: {pct(baseline)}. Decoder "
    f"{ctx.decoder} {ctx.kappa_label}; change it in the sidebar. Every policy here is causal "
    "and also runs inside a real simulation (`dynconf.engine.snn.simulate_early_exit`)."
)

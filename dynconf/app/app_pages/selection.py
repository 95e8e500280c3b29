"""Threshold selection: choose C on a calibration split's Pareto front, report it on test."""

import pandas as pd
import streamlit as st

from dynconf.app import caches, charts, state
from dynconf.app.text import md_escape
from dynconf.core.formatting import pct
from dynconf.core.pareto import band_text
from dynconf.core.selection import calibration_split
from dynconf.report import figures

ctx = state.context()
st.title("Threshold selection")
st.caption(
    "Sweep C on calibration data, keep the non-dominated (latency, accuracy) points, pick the "
    "fastest C whose calibration accuracy is within the tolerance of the full-length baseline, "
    "then report that C on the evaluation split, which took no part in the choice."
)
others = [s for s in ctx.run.split_names if s != ctx.split]
if not others:
    st.warning(
        f"Run {md_escape(ctx.run.name)} has only the '{md_escape(ctx.split)}' split, so there "
        "is nothing to calibrate "
        "on. Simulate a calibration split (Runs page) or pick another split in the sidebar."
    )
    st.stop()
default = calibration_split(ctx.run, ctx.split) or others[0]
c1, c2 = st.columns(2)
# Both controls are in the URL (?cal=, ?tol=) and come back with the page.
cal = state.url_widget(
    c1.selectbox, "Calibration split", key="sel_cal", param="cal", default=default, options=others
)
tol = state.url_tolerance(
    c2.number_input,
    key="sel_tol",
    param="tol",
    help="0 means: no accuracy loss against running all T_max steps, on calibration data.",
)
if cal == "test" or ctx.split != "test":
    st.warning(
        f"Calibrating on '{md_escape(cal)}' and evaluating on '{md_escape(ctx.split)}': make "
        "sure the "
        "evaluation split played no part in choosing C."
    )

sel = caches.get_selection(ctx.listing.path, cal, ctx.split, ctx.decoder, ctx.kappa, tol / 100.0)
lo, hi = sel.band
m = [*st.columns(2), *st.columns(2)]  # four in a row are cut at 1024 px
m[0].metric("Chosen threshold C", f"{sel.threshold:.4g}")
m[1].metric(
    f"On {md_escape(cal)}",
    pct(sel.calibration.accuracy),
    delta=f"{sel.calibration.mean_latency:.2f} steps mean latency",
    delta_color="off",
)
m[2].metric(
    f"On {md_escape(ctx.split)}",
    pct(sel.test.accuracy),
    delta=f"{100 * (sel.test.accuracy - sel.test.baseline_accuracy):+.2f} pp vs T_max",
)
m[3].metric(
    f"Mean latency on {md_escape(ctx.split)}",
    f"{sel.test.mean_latency:.2f} steps",
    # Say what the delta is against: the fixed full length.
    delta=f"{sel.test.mean_latency - ctx.run.T_max:+.2f} steps vs T = {ctx.run.T_max}",
    delta_color="inverse",
)
costs = [
    (what, split, saved)
    for split, res in ((cal, sel.calibration), (ctx.split, sel.test))
    for what, saved in (("Spikes", res.spike_saving), ("Synaptic ops", res.synops_saving))
    if saved is not None
]
if costs:  # what the run holds, on both splits, beside accuracy and latency
    for col, (what, split, saved) in zip(st.columns(len(costs)), costs, strict=True):
        col.metric(f"{what} saved on {md_escape(split)}", pct(saved, 1),
                   help="Against running every sample to T_max.")  # fmt: skip
st.markdown(
    f"**Robust band:** every C in **{md_escape(band_text(sel.sweep, sel.band, ctx.run.T_max))}**"
    " stays on or near the calibration front: the choice does not hinge on one exact value."
)
st.button(
    f"Use C = {sel.threshold:.4g} everywhere",
    on_click=state.set_threshold,
    args=(sel.threshold,),
    icon=":material/check:",
    key="sel_use",
)
sel_view = caches.get_analysis(ctx.listing.path, ctx.split, ctx.decoder, ctx.kappa)
at = {"calibration": cal, "tolerance": tol / 100.0, "selection": sel}
charts.show_chart(figures.build_figure("pareto_selection", sel_view, **at), key="selection-front")
charts.show_chart(figures.build_figure("selection_band", sel_view, **at), key="selection-band")
sw = sel.sweep
front = pd.DataFrame(
    {
        "threshold": sw.thresholds,
        "accuracy (%)": 100 * sw.accuracy,
        "mean latency": sw.mean_latency,
        "on front": sw.on_front,
    }
)
with st.expander("Calibration sweep (all thresholds)"):
    st.dataframe(front, hide_index=True, width="stretch")

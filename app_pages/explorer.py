"""Threshold explorer: the policy's metrics and charts at the sidebar's threshold."""

import streamlit as st

from dynconf.core.formatting import pct
from dynconf.report import figures
from ui import charts, state
from ui.text import md_escape

ctx = state.context()
an = ctx.analysis
res = an.evaluate(ctx.threshold)  # the only threshold-dependent computation, with capped
T = ctx.run.T_max

st.title("Threshold explorer")
st.caption(
    f"{md_escape(ctx.run.name)} · split {md_escape(ctx.split)} · decoder "
    f"{md_escape(ctx.decoder)} {md_escape(ctx.kappa_label)} · "
    f"{an.decoded.N:,} samples · move C in the sidebar (slider or exact number)."
)

m = st.columns(5)
m[0].metric(
    "Accuracy",
    pct(res.accuracy),
    delta=f"{100 * (res.accuracy - res.baseline_accuracy):+.2f} pp vs T = {T}",
)
m[1].metric(
    "Mean latency",
    f"{res.mean_latency:.2f} steps",
    delta=f"{res.mean_latency - T:+.2f}",
    delta_color="inverse",
)
m[2].metric("Reduction vs T_max", pct(res.latency_reduction, 1))
m[3].metric(
    "Reduction vs iso-accuracy T",
    "n/a" if res.latency_reduction_vs_iso is None else pct(res.latency_reduction_vs_iso, 1),
    help="Against the smallest fixed T whose accuracy is at least the policy's"
    + (f" (T = {res.iso_accuracy_steps})." if res.iso_accuracy_steps else ": none reaches it."),
)
m[4].metric(
    "Spikes saved",
    "not recorded" if res.spike_saving is None else pct(res.spike_saving, 1),
    help=None
    if res.spikes_per_neuron_at_exit is None
    else f"{res.spikes_per_neuron_at_exit:.3f} vs {res.spikes_per_neuron_full:.3f} spikes per "
    "neuron per image",
)

charts.show_chart(
    figures.accuracy_latency(
        an.baseline,
        res,
        capped=an.capped(ctx.threshold),
        oracle=an.oracle_curve(),
        sweep=an.sweep,
    ),
    key="explorer-plane",
)
left, right = st.columns(2)
with left:
    charts.show_chart(figures.exit_histogram(res, T), key="explorer-hist")
with right:
    charts.show_chart(figures.threshold_response(an.sweep, res), key="explorer-response")

event = charts.show_chart(
    figures.exit_scatter(res, an.data.labels, an.data.ids, ctx.run.classes),
    key="explorer-scatter",
    on_select="rerun",
    selection_mode="points",
)
clicked = charts.clicked_position(event, "explorer")
if clicked is not None:
    st.session_state["picked_sample"] = clicked  # read by the Samples page
    st.page_link(
        "app_pages/samples.py",
        label=f"Open sample at position {clicked} on the Samples page",
        icon=":material/arrow_forward:",
    )
else:
    st.caption("Click a point to pick that sample for the Samples page.")

st.subheader("Export")
charts.pack_buttons(ctx, key="explorer", res=res)

"""Threshold explorer: the policy's metrics and charts, following C as it moves.

The metrics and the four charts are drawn by the instant component (ui/instant.py), which
evaluates every slider position in the browser and reports C on release; the server computes
the same numbers at the app's threshold for the fallback metrics (shown until the component
has drawn, or if it fails), the downloads and the figure pack.
"""

import streamlit as st

from dynconf.core.formatting import pct
from dynconf.report import figures
from ui import charts, instant, state
from ui.text import md_escape

instant.load_plotly()  # first: the browser parses Plotly.js while the server works
ctx = state.context()
an = ctx.analysis
res = an.evaluate(ctx.threshold)  # the only threshold-dependent computation, with capped
T = ctx.run.T_max
classes = list(ctx.run.classes)

st.title("Threshold explorer")
st.caption(
    f"{md_escape(ctx.run.name)} · split {md_escape(ctx.split)} · decoder "
    f"{md_escape(ctx.decoder)} {md_escape(ctx.kappa_label)} · "
    f"{an.decoded.N:,} samples · move C with the slider below or in the sidebar."
)

# Synaptic operations, where the split recorded them, come from the server at release.
synops = getattr(res, "synops_saving", None)
synops_msg = (
    None
    if synops is None
    else {
        "c": ctx.threshold,
        "value": pct(synops, 1),
        "help": f"{res.synops_per_sample_at_exit:.4g} vs {res.synops_per_sample_full:.4g} "
        "synaptic operations per sample",
    }
)
event = instant.explorer(an, res, ctx.threshold, classes, extra={"synops": synops_msg})


def fallback_metrics(res) -> None:
    """The server's numbers at the app's threshold (the component hides them once drawn)."""
    with st.container(key="dci-fallback"):
        m = st.columns(6 if synops is not None else 5)
        m[0].metric(
            "Accuracy",
            pct(res.accuracy),
            delta=f"{100 * (res.accuracy - res.baseline_accuracy):+.2f} pp vs T = {T}",
        )
        m[1].metric(
            "Mean latency",
            f"{res.mean_latency:.2f} steps",
            delta=f"{res.mean_latency - T:+.2f} steps vs T = {T}",
            delta_color="inverse",
        )
        m[2].metric("Reduction vs T_max", pct(res.latency_reduction, 1))
        m[3].metric(
            "Reduction vs iso-accuracy T",
            "n/a" if res.latency_reduction_vs_iso is None else pct(res.latency_reduction_vs_iso, 1),
            help="Against the smallest fixed T whose accuracy is at least the policy's"
            + (
                f" (T = {res.iso_accuracy_steps})."
                if res.iso_accuracy_steps
                else ": none reaches it."
            ),
        )
        m[4].metric(
            "Spikes saved",
            "not recorded" if res.spike_saving is None else pct(res.spike_saving, 1),
            help=None
            if res.spikes_per_neuron_at_exit is None
            else f"{res.spikes_per_neuron_at_exit:.3f} vs {res.spikes_per_neuron_full:.3f} "
            "spikes per neuron per image",
        )
        if synops is not None:
            m[5].metric("Synaptic ops saved", synops_msg["value"], help=synops_msg["help"])


fallback_metrics(res)

clicked = getattr(event, "pick", None)
if clicked is not None:
    st.session_state["picked_sample"] = int(clicked)  # read by the Samples page
    st.page_link(
        "app_pages/samples.py",
        label=f"Open sample at position {int(clicked)} on the Samples page",
        icon=":material/arrow_forward:",
    )

with st.expander(f"Download these charts (at C = {ctx.threshold:.4g})"):
    # The exported figures at the app's threshold: the same files as `dynconf export`.
    plane = figures.accuracy_latency(
        an.baseline, res, capped=an.capped(ctx.threshold), oracle=an.oracle_curve(), sweep=an.sweep
    )
    for chart, key in (
        (plane, "explorer-plane"),
        (figures.exit_histogram(res, T), "explorer-hist"),
        (figures.threshold_response(an.sweep, res), "explorer-response"),
        (
            figures.exit_scatter(res, an.data.labels, an.data.ids, ctx.run.classes),
            "explorer-scatter",
        ),
    ):
        st.caption(md_escape(chart.title))
        charts.download_row(chart, key)

st.subheader("Export")
charts.pack_buttons(ctx, key="explorer", res=res)

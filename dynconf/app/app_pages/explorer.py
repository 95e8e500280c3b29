"""Threshold explorer: the policy's metrics and charts, following C as it moves.

The metrics and the four charts are drawn by the instant component (dynconf/app/instant.py),
which evaluates every slider position in the browser and reports C on release; the server
computes the same numbers at the app's threshold for the fallback metrics (shown until the
component has drawn, or if it fails), the downloads and the figure pack, each only when it is
needed: not for a C the browser has already drawn, and not for a closed expander.
"""

import streamlit as st

from dynconf.app import charts, instant, state
from dynconf.app.routes import page_path
from dynconf.app.text import md_escape
from dynconf.core.formatting import pct

ctx = state.context()
an = ctx.analysis
T = ctx.run.T_max
# The component reported this very C: the browser has drawn its metrics and charts, so the
# server computes the policy's result only where it still needs one (synaptic operations, a
# C off the slider's grid, open downloads); AppTest and a browser without the component get
# the server's metrics as before.
shown_in_browser = state.thr.shown_in_browser(ctx.threshold)


class LazyResult:
    """The policy's result at the app's C, evaluated on first use (the only
    threshold-dependent computation of this page)."""

    def __init__(self) -> None:
        self._value = None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._value is None:
            self._value = an.evaluate(ctx.threshold)
        return getattr(self._value, name)


res = LazyResult()
classes = list(ctx.run.classes)

st.title("Threshold explorer")
st.caption(
    f"{md_escape(ctx.run.name)} · split {md_escape(ctx.split)} · decoder "
    f"{md_escape(ctx.decoder)} {md_escape(ctx.kappa_label)} · "
    f"{an.decoded.N:,} samples · move C with the slider below or in the sidebar."
)

# Synaptic operations, where the split recorded them, come from the server at release.
synops = res.synops_saving if an.data.synops is not None else None
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


if not shown_in_browser:
    fallback_metrics(res)

clicked = getattr(event, "pick", None)
if clicked is not None:
    st.session_state["picked_sample"] = int(clicked)  # read by the Samples page
    ids = an.data.ids
    sample_id = int(clicked) if ids is None else int(ids[int(clicked)])
    st.page_link(
        page_path("samples"),
        label=f"Sample {sample_id} picked; open Samples",
        icon=":material/arrow_forward:",
    )



def download_charts() -> list:
    """The four figures at the app's threshold: the files of `dynconf export`."""
    from dynconf.report import figures

    names = ("accuracy_latency", "exit_histogram", "threshold_response", "exit_scatter")
    keys = ("explorer-plane", "explorer-hist", "explorer-response", "explorer-scatter")
    return [
        (figures.build_figure(name, an, threshold=ctx.threshold), key)
        for name, key in zip(names, keys, strict=True)
    ]


downloads = st.expander(
    f"Download these charts (at C = {ctx.threshold:.4g})",
    key="explorer-downloads",
    on_change="rerun",  # so its figures are built only while it is open
)
with downloads:
    for chart, key in download_charts() if downloads.open else []:
        st.caption(md_escape(chart.title))
        charts.download_row(chart, key)

st.subheader("Export")
instant.report_download(ctx)
charts.pack_buttons(ctx, key="explorer", res=res)

"""Home: what the current run is, and what Dynamic Confidence does, in plain words."""

import streamlit as st

from dynconf.core.formatting import pct
from dynconf.report import figures
from ui import charts, state
from ui.text import md_escape

st.title("Dynamic Confidence lab")
st.caption(
    "Li, Jones & Furber, *Unleashing the Potential of Spiking Neural Networks with Dynamic "
    "Confidence*, ICCV 2023. Choose the run and split in the sidebar."
)
ctx = state.context()
run, meta = ctx.run, ctx.run.meta

# Everything from meta.json is the run author's text: shown escaped and shortened.
st.subheader(f"Run: {md_escape(run.name)}")
st.markdown(
    f"**Dataset** {md_escape(meta.get('dataset', '?'))} · "
    f"**Model** {md_escape(meta.get('model', '?'))} · "
    f"**Classes** {len(run.classes)} · **Spikes recorded** "
    f"{'yes' if ctx.analysis.data.spikes is not None else 'no'}"
)
c = st.columns(4)
c[0].metric("T_max (time steps)", run.T_max)
c[1].metric(f"Samples in '{md_escape(ctx.split)}'", f"{meta['splits'][ctx.split]:,}")
ann = meta.get("ann_accuracy")
ann = ann.get(ctx.split) if isinstance(ann, dict) else ann  # per split or global
c[2].metric("ANN accuracy", pct(ann) if ann is not None else "n/a")
c[3].metric(
    f"SNN accuracy at T = {run.T_max}",
    pct(float(ctx.analysis.baseline[-1])),
    help=f"Measured on the '{md_escape(ctx.split)}' split of this run.",
)
command = (meta.get("created") or {}).get("command")
st.caption(
    "Splits: "
    + ", ".join(f"{md_escape(k)} ({v:,})" for k, v in meta["splits"].items())
    + (f" · created by {md_escape(command)}" if command else "")
)
if meta.get("notes"):
    st.info(md_escape(meta["notes"], limit=2000))

try:
    chart = figures.accuracy_by_T(meta, ctx.split)
except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as exc:
    # meta.json's accuracy-by-T summary is the run author's; the page must not depend on it.
    chart = None
    st.caption(f"The accuracy-by-T summary in meta.json cannot be drawn: {md_escape(exc)}")
if chart is not None:
    charts.show_chart(chart, key="home-by-T")

st.subheader("Dynamic Confidence in one minute")
st.markdown(
    f"""
A **spiking neural network** (SNN) does not answer in one go. It looks at the same image
again and again, one *time step* after another, and its output layer keeps a running tally
of votes for every class. After a few steps the tally usually already points at the right
answer; later steps mostly make it surer.

Running every image for all **{run.T_max} steps** therefore wastes time and energy on easy
images. **Dynamic Confidence** stops each image as soon as the network is *confident*:

1. after every step, turn the running tally into probabilities (a softmax, damped early on
   so that a lucky first step cannot end the run);
2. the **confidence** is the largest probability;
3. once it rises above a **threshold C**, stop and give the current answer.

A high threshold waits longer and is almost never wrong; a low one answers fast but makes
more mistakes. The **Threshold explorer** shows that trade-off live. The **Oracle** page
shows the best any stopping rule could do ("stop at the first step that is right"), the
**Threshold selection** page how C is chosen on calibration data without peeking at the test
set, and **Samples** how single images become confident over time.
"""
)

"""Samples: one input's confidence and class probabilities over time, and its image."""

import numpy as np
import streamlit as st

from dynconf.core.decoders import class_probabilities
from dynconf.report import figures
from ui import caches, charts, state
from ui.text import md_escape

ctx = state.context()
an = ctx.analysis
dec, data = an.decoded, an.data
res = an.evaluate(ctx.threshold)
N, T = dec.N, ctx.run.T_max
ids = None if data.ids is None else np.asarray(data.ids)

st.title("Samples")
ss = st.session_state
# A click on a chart (here or in the explorer) picks a sample; so does the URL.
if "picked_sample" in ss:
    ss["sample_pos"] = ss.pop("picked_sample")
elif "sample_pos" not in ss:
    try:
        ss["sample_pos"] = int(st.query_params.get("sample", 0))
    except ValueError:
        ss["sample_pos"] = 0
if not 0 <= ss["sample_pos"] < N:
    ss["sample_pos"] = 0

c1, c2 = st.columns([1, 2])
pos = c1.number_input(
    f"Sample (position 0..{N - 1} in '{md_escape(ctx.split)}')",
    min_value=0,
    max_value=N - 1,
    step=1,
    key="sample_pos",
)
wrong = np.flatnonzero(~res.correct)
late = np.flatnonzero(res.exit_steps == T)
c2.caption(
    f"{len(wrong):,} samples are wrong at their exit step and {len(late):,} never pass the "
    f"threshold (they run all {T} steps). Click a point in the chart below to pick one."
)
st.query_params["sample"] = str(pos)

sid = int(ids[pos]) if ids is not None else None
label = int(data.labels[pos])
step = int(res.exit_steps[pos])
answer = int(res.predictions[pos])
names = ctx.run.classes
m = st.columns(5)
m[0].metric("Sample id", "n/a" if sid is None else sid)
m[1].metric("Label", md_escape(names[label], limit=60))  # class names come from meta.json
m[2].metric(
    "Answer at exit",
    md_escape(names[answer], limit=60),
    delta="correct" if res.correct[pos] else "wrong",
    delta_color="normal" if res.correct[pos] else "inverse",
)
m[3].metric("Exit step", f"{step} of {T}")
m[4].metric("Confidence at exit", f"{dec.confidence[step - 1, pos]:.4f}")

left, right = st.columns([2, 1])
with left:
    charts.show_chart(
        figures.sample_confidence(
            dec.confidence[:, pos],
            ctx.threshold,
            step,
            correct=dec.correct[:, pos],
            title=f"Confidence over time ({ctx.decoder})",
        ),
        key="sample-confidence",
    )
with right:
    image, source = caches.sample_image(ctx.run, ctx.split, sid)
    if image is None:
        st.info(f"Image unavailable: {md_escape(source, limit=2000)}.")
    else:
        charts.show_chart(
            figures.sample_image(image, f"id {sid} ({names[label]})"), key="sample-image"
        )
        st.caption(md_escape(source, limit=2000))

if data.outputs is not None:
    probs = class_probabilities(np.asarray(data.outputs[:, pos, :]), ctx.decoder, dec.kappa)
    charts.show_chart(figures.sample_probabilities(probs, names, label), key="sample-probs")
else:
    st.info("Class probabilities need the full per-step outputs; this run stores top-k only.")

event = charts.show_chart(
    figures.exit_scatter(res, data.labels, data.ids, names, title="Pick a sample"),
    key="samples-scatter",
    on_select="rerun",
    selection_mode="points",
)
clicked = charts.clicked_position(event, "samples")
if clicked is not None and clicked != pos:
    ss["picked_sample"] = clicked
    st.rerun()

"""Samples: one input's confidence and class probabilities over time, and its image.

The sample is in the URL as its id (``?sample=`` is the split's ``ids`` entry, not a
position) and comes back with the page, as do the filter (``?show=``) and class
(``?label=``). Previous/next step through the samples the filter keeps; the chart below
marks the current one, and its downloads are named after its id. The explorer hands over a
clicked point as a split position in ``st.session_state["picked_sample"]``.
"""

import numpy as np
import streamlit as st

from dynconf.app import caches, charts, state
from dynconf.app.text import md_escape
from dynconf.report import figures

FILTERS = {
    "all": "all samples",
    "wrong": "wrong at their exit",
    "never": "never exit (run all T_max steps)",
    "latest": "latest exits first (those that exit before T_max)",
}

ctx = state.context()
an = ctx.analysis
dec, data = an.decoded, an.data
res = an.evaluate(ctx.threshold)
N, T = dec.N, ctx.run.T_max
ids = np.arange(N) if data.ids is None else np.asarray(data.ids)
names = ctx.run.classes
labels = np.asarray(data.labels)

st.title("Samples")
ss = st.session_state


def position_of_id(text: str) -> int:
    """``?sample=ID`` -> the sample's position in this split."""
    try:
        sid = int(text)
    except ValueError:
        raise ValueError("not a sample id") from None
    where = np.flatnonzero(ids == sid)
    if not len(where):
        raise ValueError(f"no sample has this id in '{ctx.split}'")
    return int(where[0])


# A click on a chart (here or in the explorer) picks a sample, as a split position.
if "picked_sample" in ss:
    picked = int(ss.pop("picked_sample"))
    if 0 <= picked < N:
        ss["sample_pos"] = ss["_keep_sample_pos"] = picked
for k in ("sample_pos", "_keep_sample_pos"):  # a position of another, longer split
    if k in ss and not 0 <= int(ss[k]) < N:
        ss[k] = 0

f1, f2 = st.columns(2)
show = state.url_widget(
    f1.selectbox, "Show", key="sample_filter", param="show", default="all",
    options=list(FILTERS), format_func=FILTERS.get,
)  # fmt: skip
klass = state.url_widget(
    f2.selectbox, "Class (label)", key="sample_class", param="label", default="all",
    options=["all", *range(len(names))],
    format_func=lambda k: "all classes" if k == "all" else f"{k}: {names[k]}",
    from_url=lambda t: "all" if t == "all" else int(state.parse_number(0, len(names) - 1)(t)),
)  # fmt: skip
keep = np.ones(N, dtype=bool) if klass == "all" else labels == int(klass)
if show == "wrong":
    keep &= ~res.correct
elif show == "never":
    keep &= res.exit_steps == T
elif show == "latest":
    keep &= res.exit_steps < T
order = np.flatnonzero(keep)
if show == "latest":  # latest first; ties in split order
    order = order[np.argsort(-res.exit_steps[order], kind="stable")]


def step(direction: int) -> None:
    """Previous/next sample in the filter's order (callbacks run before the widgets)."""
    if not len(order):
        return
    here = np.flatnonzero(order == ss.get("sample_pos", 0))
    if len(here):
        i = int(np.clip(here[0] + direction, 0, len(order) - 1))
    else:  # the current sample is not in the filter: start at its nearest end
        i = 0 if direction > 0 else len(order) - 1
    ss["sample_pos"] = int(order[i])


c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
pos = state.url_widget(
    c1.number_input,
    f"Sample (position 0..{N - 1} in '{md_escape(ctx.split)}')",
    key="sample_pos",
    param="sample",
    default=0,
    from_url=position_of_id,
    to_url=lambda p: str(int(ids[p])),
    min_value=0,
    max_value=N - 1,
    step=1,
)
here = np.flatnonzero(order == pos)
with c2.container(horizontal=True, vertical_alignment="center"):
    st.button("Previous", key="sample_prev", on_click=step, args=(-1,),
              icon=":material/arrow_back:", width="content",
              disabled=not len(order) or (len(here) > 0 and here[0] == 0))  # fmt: skip
    st.button("Next", key="sample_next", on_click=step, args=(1,),
              icon=":material/arrow_forward:", width="content",
              disabled=not len(order) or (len(here) > 0 and here[0] == len(order) - 1))  # fmt: skip
if not len(order):
    where = f"No sample is {FILTERS[show]} in this class."
elif len(here):
    where = f"Sample {here[0] + 1:,} of the {len(order):,} the filter keeps."
else:
    where = f"This sample is not among the {len(order):,} the filter keeps."
wrong = int((~res.correct).sum())
late = int((res.exit_steps == T).sum())
st.caption(
    f"{where} {wrong:,} samples are wrong at their exit step and {late:,} never pass the "
    f"threshold (they run all {T} steps). Click a point in the chart below to pick one."
)

sid = int(ids[pos])
label = int(labels[pos])
exit_step = int(res.exit_steps[pos])
answer = int(res.predictions[pos])
right = bool(res.correct[pos])
m = st.columns(3)
m[0].metric("Sample id", sid)
m[1].metric("Label", md_escape(names[label], limit=60))  # class names come from meta.json
m[2].metric("Answer at exit", md_escape(names[answer], limit=60))
m = st.columns(3, vertical_alignment="center")
m[0].metric("Exit step", f"{exit_step} of {T}")
m[1].metric("Confidence at exit", f"{dec.confidence[exit_step - 1, pos]:.4f}")
with m[2]:
    if right:
        st.badge("correct at exit", icon=":material/check_circle:", color="green")
    else:
        st.badge("wrong at exit", icon=":material/cancel:", color="red")


left, right_col = st.columns([2, 1])
with left:
    # Downloads are named after the sample (``sample_<id>_confidence.png``).
    charts.show_chart(
        figures.build_figure("sample_confidence", an, sample_id=sid, threshold=ctx.threshold),
        key="sample-confidence",
    )
with right_col:
    image, source = caches.sample_image(ctx.run, ctx.split, sid if data.ids is not None else None)
    if image is None:
        st.info(f"Image unavailable: {md_escape(source, limit=2000)}.")
    else:
        charts.show_chart(
            figures.build_figure("sample_image", an, sample_id=sid, image=image),
            key="sample-image",
        )
        st.caption(md_escape(source, limit=2000))

if data.outputs is not None:
    charts.show_chart(
        figures.build_figure("sample_probabilities", an, sample_id=sid), key="sample-probs"
    )
else:
    st.info("Class probabilities need the full per-step outputs; this run stores top-k only.")

# The current sample is ringed, so the picker shows where you are.
scatter = figures.build_figure("sample_picker", an, sample_id=sid, threshold=ctx.threshold)
event = charts.show_chart(
    scatter, key="samples-scatter", on_select="rerun", selection_mode="points"
)
clicked = charts.clicked_position(event, "samples")
if clicked is not None and clicked != pos:
    ss["picked_sample"] = clicked
    st.rerun()

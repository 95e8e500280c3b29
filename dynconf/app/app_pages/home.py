"""Home: what the current run is, and what Dynamic Confidence does, in plain words.

Every number and every claim about the run on this page is computed from the run shown (its
outputs on the sidebar's split, decoder and threshold), never written in: the same sentence
must not say "almost never wrong" of a run that is wrong on one image in eight at C = 1.
"""

import numpy as np
import streamlit as st

from dynconf.app import caches, charts, state
from dynconf.app.text import md_escape
from dynconf.core.decoders import DECODERS
from dynconf.core.formatting import pct
from dynconf.core.timeline import example_sample
from dynconf.inputs import default_data_root
from dynconf.report import figures


def data_root_hint(meta: dict, split: str) -> str | None:
    """Where to point the dataset root so this run's input images show, or None when its
    images do not come from a folder of files (sklearn's digits are bundled)."""
    if meta.get("id_scheme") != "imagefolder-index":
        return None
    sources = meta.get("id_source")
    source = sources.get(split, split) if isinstance(sources, dict) else split
    dataset = md_escape(meta.get("dataset") or "DATASET", limit=60)
    source = md_escape(source, limit=60)
    current = default_data_root()
    now = f" It is now {md_escape(current, limit=300)}." if current is not None else ""
    return (
        f"To see the input images, start the app with `dynconf app --data DIR` or set "
        f"`DYNCONF_DATA=DIR`, where DIR holds `{dataset}/{source}/` as an image folder "
        f"(one subfolder per class, the layout the run was simulated from).{now}"
    )


ctx = state.context()
run, meta, an = ctx.run, ctx.run.meta, ctx.analysis
dec, data = an.decoded, an.data
T, N, C = run.T_max, dec.N, ctx.threshold
baseline = np.asarray(an.baseline)  # accuracy at fixed t = 1..T, from the outputs

st.title("Dynamic Confidence lab")
st.caption(
    "Li, Jones & Furber, *Unleashing the Potential of Spiking Neural Networks with Dynamic "
    "Confidence*, ICCV 2023. Choose the run and split in the sidebar."
)

# Everything from meta.json is the run author's text: shown escaped and shortened.
st.subheader(f"Run: {md_escape(run.name)}")
st.markdown(
    f"**Dataset** {md_escape(meta.get('dataset', '?'))} · "
    f"**Model** {md_escape(meta.get('model', '?'))} · "
    f"**Classes** {len(run.classes)} · **Spikes recorded** "
    f"{'yes' if data.spikes is not None else 'no'}"
)
ann = meta.get("ann_accuracy")
ann = ann.get(ctx.split) if isinstance(ann, dict) else ann  # per split or global
if not isinstance(ann, int | float) or isinstance(ann, bool) or not np.isfinite(ann):
    ann = None  # the run author's field: shown only when it is a number
# Short labels: four metrics share a 1024 px screen's width without being cut.
c = st.columns(4)
c[0].metric("Time steps", T, help="T_max: every sample was simulated for this many steps.")
c[1].metric("Samples", f"{N:,}", help=f"In the '{md_escape(ctx.split)}' split.")
c[2].metric("ANN accuracy", pct(ann) if ann is not None else "n/a")
c[3].metric(
    f"SNN at T = {T}",
    pct(float(baseline[-1])),
    help=f"Accuracy after all {T} steps, measured on the '{md_escape(ctx.split)}' split.",
)
command = (meta.get("created") or {}).get("command")
st.caption(
    "Splits: "
    + ", ".join(f"{md_escape(k)} ({v:,})" for k, v in meta["splits"].items())
    + (f" · created by {md_escape(command)}" if command else "")
)
if meta.get("notes"):
    st.info(md_escape(meta["notes"], limit=2000))

# Accuracy at every t, from the outputs (an imported run has no meta summary, and a summary
# may list only a few T); the ANN line is the run author's number when there is one.
charts.show_chart(figures.build_figure("accuracy_by_T", an), key="home-by-T")

# ----------------------------------------------------------------------- the numbers told

res = an.evaluate(C)
full = an.evaluate(1.0)  # C = 1: no confidence passes, every sample runs all T steps
lo_c, hi_c = C / 2, C + (1.0 - C) / 2
lo, hi = an.evaluate(lo_c), an.evaluate(hi_c)
near = float(baseline[-1]) - 0.005
k_near = int(np.flatnonzero(baseline >= near)[0]) + 1  # first t within half a point of T
pred = np.asarray(dec.prediction)
settled = (pred == pred[-1]).all(axis=0).mean() if N else 0.0  # never changes
decoder = DECODERS[ctx.decoder]
kappa = ctx.kappa_label


def wrong(r) -> str:
    return pct(1.0 - r.accuracy)


if k_near == 1:
    waiting = (
        f"On this run the first step is already within half a point of the final accuracy "
        f"({pct(float(baseline[0]))} at t = 1, {pct(float(baseline[-1]))} at t = {T}): "
        "waiting gains little here. The **Classroom** page's teaching run is one where it does."
    )
else:
    waiting = (
        f"On this run {pct(float(baseline[0]))} of the images are answered right after one "
        f"step, and {pct(float(baseline[k_near - 1]))} after {k_near} steps, within half a "
        f"point of the {pct(float(baseline[-1]))} after all {T}."
    )
if (full.exit_steps == T).all():
    at_one = f"C = 1 lets no image stop early; after all {T} steps {wrong(full)} are wrong"
else:
    at_one = f"C = 1 waits {full.mean_latency:.2f} steps and is wrong on {wrong(full)}"
if settled > 0:
    settled_text = f" For {pct(settled)} of them the answer never changes after the first step."
    spent = ", also on those whose answer was settled from the start"
else:
    settled_text = spent = ""
if hi.accuracy > lo.accuracy:
    tradeoff = "Here the higher threshold is right more often: waiting buys accuracy."
elif hi.accuracy == lo.accuracy:
    tradeoff = "Here both are right equally often: waiting buys no accuracy."
else:
    tradeoff = "Here the higher threshold is even right less often: waiting does not pay."

st.subheader("Dynamic Confidence in one minute")
st.markdown(
    f"""
A **spiking neural network** (SNN) does not answer in one go. It looks at the same image
again and again, one *time step* after another, and its output layer keeps a running tally
of votes for every class; its answer at step t is the class with the most votes so far.
{waiting}{settled_text}

Running every image for all **{T} steps** spends that time on every image{spent}.
**Dynamic Confidence** stops each image as soon as the network is *confident*:

1. after every step, compute a confidence c_t from the outputs so far; this view uses
   **{md_escape(decoder.label)}**{f" ({md_escape(kappa)})" if kappa else ""};
2. once c_t is above a **threshold C**, stop and give the current answer (an image whose
   confidence never passes C runs all {T} steps).

A higher threshold never stops an image sooner. On this run, C = {hi_c:.3g} waits
{hi.mean_latency:.2f} steps on average and is wrong on {wrong(hi)} of the images;
C = {lo_c:.3g} answers after {lo.mean_latency:.2f} steps and is wrong on {wrong(lo)}.
{tradeoff} The sidebar's C = {C:.4g} waits {res.mean_latency:.2f} steps with {wrong(res)}
wrong. {at_one}: a threshold only chooses *when* to answer, not what the network knows.

The **Classroom** plays this out step by step. The **Threshold explorer** shows the
trade-off live, the **Oracle** page the best any stopping rule could do ("stop at the first
step that is right"), **Threshold selection** how C is chosen on calibration data without
peeking at the test set, **Samples** how single images become confident over time and
**Classes** which labels are answered early, late or wrong.
"""
)

# ----------------------------------------------------------------------- one image

st.subheader("One image over time")
pos = example_sample(dec, C)
sid = None if data.ids is None else int(data.ids[pos])
label, tau = int(data.labels[pos]), int(res.exit_steps[pos])
names = run.classes
answer = int(res.predictions[pos])
st.markdown(
    f"Sample {pos}" + ("" if sid is None else f" (id {sid})")
    + f", a **{md_escape(names[label], limit=60)}**: its confidence passes C = {C:.4g} at "
    + f"step **{tau}**" + ("" if dec.confidence[:, pos].max() > C else " (never: it runs to T)")
    + f" and it answers **{md_escape(names[answer], limit=60)}**"
    + (" (right)." if res.correct[pos] else " (wrong).")
)  # fmt: skip
left, right = st.columns([2, 1])
with left:
    charts.show_chart(
        figures.build_figure("home_confidence", an, threshold=C), key="home-sample-confidence"
    )
with right:
    image, source = caches.sample_image(run, ctx.split, sid)
    if image is None:
        st.caption(f"Image unavailable: {md_escape(source, limit=300)}.")
        hint = data_root_hint(meta, ctx.split)
        if hint:
            st.info(hint)
    else:
        charts.show_chart(
            figures.sample_image(image, f"id {sid} ({names[label]})"), key="home-sample-image"
        )
        st.caption(md_escape(source, limit=300))

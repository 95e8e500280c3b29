"""Classroom: Dynamic Confidence step by step, large enough for a room to follow.

A play button (or the t slider) walks t = 1 .. T_max; at each step the page shows which
samples have answered (the grid), the exit histogram so far, the answers' accuracy and mean
latency so far, and one sample's confidence climbing towards C. The numbers come from
dynconf.core.timeline, so at t = T_max they are the run's published result at this C.

Playing is a fragment that reruns itself every tick (``st.fragment(run_every=...)``, set
from session state on each full run): only the story redraws, the sidebar stays put. t and
the watched sample live in plain session keys, so they survive leaving the page.
"""

import streamlit as st

from dynconf.core.formatting import pct
from dynconf.core.timeline import example_sample, timeline_state
from dynconf.report import figures
from ui import caches, charts, state
from ui.text import md_escape

TEACHING_RUN = "noisy_digits"  # cached_runs/noisy_digits: accuracy grows with t, so waiting pays
SPEEDS = {"slow": 1.0, "normal": 0.5, "fast": 0.2}  # seconds per step while playing

T_KEY, SAMPLE_KEY = "classroom_t", "classroom_sample"  # the widgets
KEEP_T, KEEP_SAMPLE = "_classroom_t", "_classroom_sample"  # outlive the page's widgets
PLAYING, FRESH = "_classroom_playing", "_classroom_fresh"
VIEW, SPEED, KEEP_SPEED = "_classroom_view", "classroom_speed", "_classroom_speed"

ss = st.session_state
ctx = state.context()
an = ctx.analysis
dec, data = an.decoded, an.data
T, N, C = ctx.run.T_max, dec.N, ctx.threshold

st.title("Classroom")
st.caption(
    "Watch a spiking network answer, step by step: each image stops as soon as its "
    f"confidence is above the threshold C = {C:.4g} (set in the sidebar)."
)


def _switch_to_teaching_run() -> None:
    ss["run"] = TEACHING_RUN
    ss.pop("threshold", None)  # the sidebar then takes the teaching run's calibrated C


listed = {item.name for item in caches.run_listing() if item.ok}
if ctx.listing.name != TEACHING_RUN and TEACHING_RUN in listed:
    st.info(
        f"The teaching run **{TEACHING_RUN}** (noisy digits) is where waiting pays: its "
        "accuracy grows clearly with time, so stopping early is a real trade-off."
    )
    st.button(
        "Use the teaching run",
        on_click=_switch_to_teaching_run,
        icon=":material/school:",
        key="classroom_switch",
    )

# A new run or split starts the story again, with a sample worth watching.
view = (ctx.listing.name, ctx.split)
if ss.get(VIEW) != view:
    ss[VIEW] = view
    ss[KEEP_T] = 1
    ss[KEEP_SAMPLE] = example_sample(dec, C)
    ss[PLAYING] = False
# The kept values are the truth (the widgets' callbacks update them before a rerun); the
# widgets are set from them before they are drawn, also after the page was left.
ss[KEEP_T] = min(max(int(ss[KEEP_T]), 1), T)
ss[KEEP_SAMPLE] = ss[SAMPLE_KEY] = min(max(int(ss[KEEP_SAMPLE]), 0), N - 1)


def _play_pause() -> None:
    if ss.get(PLAYING):
        ss[PLAYING] = False
        return
    if int(ss.get(KEEP_T, 1)) >= T:  # at the end: play from the start again
        ss[KEEP_T] = 1
    ss[PLAYING] = True
    ss[FRESH] = True


def _restart() -> None:
    ss[KEEP_T] = 1
    ss[PLAYING] = False


def _watch_example() -> None:
    ss[SAMPLE_KEY] = ss[KEEP_SAMPLE] = example_sample(dec, C)


def _picked_sample() -> None:
    ss[KEEP_SAMPLE] = int(ss[SAMPLE_KEY])  # before the story is drawn, which reads it


def _moved_t() -> None:
    ss[KEEP_T] = int(ss[T_KEY])


playing = bool(ss.get(PLAYING))
# One wrapping row sized by content: at 1024 px nothing is cut to "Re...".
controls = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
controls.button(
    "Pause" if playing else "Play",
    on_click=_play_pause,
    icon=":material/pause:" if playing else ":material/play_arrow:",
    type="primary",
    key="classroom_play",
)
controls.button("Restart", on_click=_restart, icon=":material/replay:", key="classroom_restart")
if SPEED not in ss:
    ss[SPEED] = ss.get(KEEP_SPEED, "normal")
choice = controls.segmented_control(
    "Speed",
    list(SPEEDS),
    key=SPEED,
    required=True,
    help="Seconds per step: " + ", ".join(f"{name} {sec:g} s" for name, sec in SPEEDS.items()),
)
ss[KEEP_SPEED] = choice if choice in SPEEDS else "normal"
speed = SPEEDS[ss[KEEP_SPEED]]


@st.fragment(run_every=speed if playing else None)
def story() -> None:
    """One step of the story; while playing, each rerun of this fragment is the next step."""
    if playing and not ss.get(PLAYING):
        # The last step was shown one tick ago: a full run draws the Play button again and
        # sets up this fragment without ticks.
        st.rerun()
    if ss.get(PLAYING):
        if ss.pop(FRESH, False):
            pass  # the run that Play started shows the step it starts from
        else:
            ss[KEEP_T] = min(int(ss[KEEP_T]) + 1, T)
        if ss[KEEP_T] >= T:
            ss[PLAYING] = False  # the story is told: the next tick turns the ticking off
    t = int(ss[KEEP_T])
    if ss.get(PLAYING):
        # No slider while playing: a slider moved by the server between the browser's
        # messages reads as the user's move (and would pause the show).
        st.progress(t / T, text=f"Time step t = {t} of {T}")
    else:
        ss[T_KEY] = t
        t = st.slider("Time step t", 1, T, key=T_KEY, on_change=_moved_t)
    now = timeline_state(dec, C, t)
    m = st.columns(4)
    m[0].metric("Step", f"{t} / {T}")
    m[1].metric("Answered", f"{now.n_exited / N:.0%}", help=f"{now.n_exited:,} of {N:,}")
    m[2].metric(
        "Right so far",
        "–" if now.accuracy_exited is None else pct(now.accuracy_exited, 1),
        help="Accuracy of the answers given up to this step.",
    )
    m[3].metric(
        "Mean exit step",
        "–" if now.mean_latency_exited is None else f"{now.mean_latency_exited:.1f}",
        help="Mean exit step of the answers given up to this step.",
    )
    if now.n_exited < N:
        st.caption(
            f"If every image answered now (a fixed T = {t}), {pct(now.fixed_accuracy, 1)} "
            f"would be right; the {N - now.n_exited:,} still running keep listening."
        )
    else:
        st.caption(
            f"Every image has answered: {pct(now.accuracy_exited, 1)} right after "
            f"{now.mean_latency_exited:.1f} steps on average; waiting all {T} steps would get "
            f"{pct(now.fixed_accuracy, 1)}."
        )
    charts.show_chart(
        figures.timeline_grid(now, data.ids, watched=int(ss[KEEP_SAMPLE])), key="classroom-grid"
    )
    left, right = st.columns(2)
    pos = int(ss[KEEP_SAMPLE])
    with left:
        charts.show_chart(
            figures.timeline_confidence(
                dec.confidence[:, pos],
                C,
                t,
                int(now.exit_steps[pos]),
                title=f"Sample {pos}: confidence",
            ),
            key="classroom-confidence",
        )
    with right:
        charts.show_chart(figures.timeline_histogram(now), key="classroom-histogram")
    st.caption(
        "Colours as in the grid: green answered right, orange answered wrong. The dotted "
        "line marks where the watched sample stops; the dashed one, the threshold C and now."
    )


story()

pos = int(ss[KEEP_SAMPLE])
res = an.evaluate(C)
names = ctx.run.classes
label, answer, tau = int(data.labels[pos]), int(res.predictions[pos]), int(res.exit_steps[pos])
sid = None if data.ids is None else int(data.ids[pos])
info, picture = st.columns([2, 1])
info.markdown(
    f"**The watched sample** (position {pos}"
    + ("" if sid is None else f", id {sid}")
    + f") is a **{md_escape(names[label], limit=60)}**. It stops at step **{tau}** of {T} and "
    + f"answers **{md_escape(names[answer], limit=60)}** "
    + ("(right)." if res.correct[pos] else "(wrong).")
    + (" Its confidence never passes C: it runs to the end." if dec.confidence[:, pos].max() <= C
       else "")
)  # fmt: skip
info.number_input(
    f"Watched sample (position 0..{N - 1})",
    min_value=0,
    max_value=N - 1,
    step=1,
    key=SAMPLE_KEY,
    help="Its confidence is the line above; the grid frames it in black.",
    on_change=_picked_sample,
    width=260,
)
info.button("Watch a typical sample", on_click=_watch_example, key="classroom_example",
            help="Answered right, neither at the first step nor at the end, with the median "
            "exit step of such samples.")  # fmt: skip
image, source = caches.sample_image(ctx.run, ctx.split, sid)
with picture:
    if image is not None:
        charts.show_chart(figures.sample_image(image, str(sid), title="id"), key="classroom-image")
    else:
        st.caption(f"Image unavailable: {md_escape(source, limit=300)}.")

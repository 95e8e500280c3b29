"""Classroom: Dynamic Confidence step by step, large enough for a room to follow.

A play button (or the t slider) walks t = 1 .. T_max; at each step the page shows which
samples have answered (the grid), the exit histogram so far, the answers' accuracy and mean
latency so far, and one sample's confidence climbing towards C. The numbers come from
dynconf.core.timeline, so at t = T_max they are the run's published result at this C.

Playing is painted in the browser (dynconf/app/classroom_player.py): the timeline arrays go
once to a component that draws every step at the chosen pace and stops, by default, once
every image has answered; the step it reached comes back and the page draws it with the
exported figures. t and the watched sample live in plain session keys, so they survive
leaving the page.
"""

import streamlit as st

from dynconf.app import caches, charts, classroom_player, state
from dynconf.app.text import md_escape
from dynconf.core.formatting import pct
from dynconf.core.timeline import example_sample, timeline_state
from dynconf.report import figures

TEACHING_RUN = "noisy_digits"  # cached_runs/noisy_digits: accuracy grows with t, so waiting pays
SPEEDS = {"slow": 1.0, "normal": 0.4, "fast": 0.1}  # seconds per step while playing

T_KEY, SAMPLE_KEY = "classroom_t", "classroom_sample"  # the widgets
KEEP_T, KEEP_SAMPLE = "_classroom_t", "_classroom_sample"  # outlive the page's widgets
PLAYING, PLAY_ID, STOP_NOTE = "_classroom_playing", "_classroom_play", "_classroom_stop_note"
STOP_ALL, KEEP_STOP_ALL = "classroom_stop_all", "_classroom_stop_all"
PLAYER = "classroom-player"
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
    ss[PLAY_ID] = ss.get(PLAY_ID, 0) + 1
    ss.pop(STOP_NOTE, None)


def _played() -> None:
    """The browser's play ended or was paused: the step it reached is the page's t."""
    result = ss.get(PLAYER) or {}
    done = result.get("done") if hasattr(result, "get") else getattr(result, "done", None)
    if not done or int(done.get("play", -1)) != ss.get(PLAY_ID):
        return
    ss[KEEP_T] = min(max(int(done["t"]), 1), T)
    ss[PLAYING] = False
    if done.get("why") == "all answered":
        ss[STOP_NOTE] = (
            f"Every image had answered by step {ss[KEEP_T]}, so the play stopped there "
            f"(the rest of the {T} steps shows nothing new). Untick \"Stop when all have "
            "answered\" to play to the end."
        )


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
if not playing:  # while playing, the player's own Pause button stops it
    controls.button(
        "Play",
        on_click=_play_pause,
        icon=":material/play_arrow:",
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
if STOP_ALL not in ss:
    ss[STOP_ALL] = ss.get(KEEP_STOP_ALL, True)
ss[KEEP_STOP_ALL] = controls.toggle(
    "Stop when all have answered",
    key=STOP_ALL,
    help="End the play at the step by which every image has answered: after it nothing "
    "changes.",
)


def story() -> None:
    """The story at the page's step t, drawn by the server with the exported figures."""
    if ss.get(STOP_NOTE):
        st.info(ss[STOP_NOTE])
    ss[T_KEY] = int(ss[KEEP_T])
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
    pos = int(ss[KEEP_SAMPLE])
    at = {"threshold": C, "step": t}
    grid = figures.build_figure("timeline_grid", an, **at, watched=pos)
    charts.show_chart(grid, key="classroom-grid")
    left, right = st.columns(2)
    with left:
        charts.show_chart(
            figures.build_figure("timeline_confidence", an, **at, watched=pos),
            key="classroom-confidence",
        )
    with right:
        charts.show_chart(
            figures.build_figure("timeline_histogram", an, **at), key="classroom-histogram"
        )
    st.caption(
        "Colours as in the grid: green answered right, orange answered wrong. The dotted "
        "line marks where the watched sample stops; the dashed one, the threshold C and now."
    )


res = an.evaluate(C)
if playing:
    classroom_player.play(
        classroom_player.message(
            an, res, C, int(ss[KEEP_T]), speed, bool(ss[KEEP_STOP_ALL]), int(ss[KEEP_SAMPLE]),
            ss.get(PLAY_ID, 0),
        ),
        on_done=_played,
        key=PLAYER,
    )  # fmt: skip
else:
    story()

pos = int(ss[KEEP_SAMPLE])
names = ctx.run.classes
label, answer, tau = int(data.labels[pos]), int(res.predictions[pos]), int(res.exit_steps[pos])
sid = None if data.ids is None else int(data.ids[pos])
info, picture = st.columns([2, 1])
info.markdown(
    "**The watched sample** "
    + (f"(position {pos})" if sid is None else f"**id {sid}** (position {pos} in the split)")
    + f" is a **{md_escape(names[label], limit=60)}**. It stops at step **{tau}** of {T} and "
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

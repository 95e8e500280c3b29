"""The threshold C: one value in the session (``st.session_state["threshold"]``), mirrored into
the URL by the sidebar, and written by whichever control moved it.

Three controls move C: the sidebar's slider, its exact box, and the instant explorer (which
reports C on release). The sidebar's callbacks note which control changed; the value then
becomes C and is shown in the other control, never pushed into the control being moved. A
browser that sent several steps before the first reply came back also sends the *other*
control's value from before the server's last push; a value the server has just replaced
in a control is therefore that stale echo when both controls change in one request.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynconf.app.page_params import parse_float
from dynconf.app.text import md_escape

THRESHOLD = "threshold"  # the one source of truth
DEFAULT_THRESHOLD = 0.9
THRESHOLD_STEP = 0.005  # slider resolution; the exact box takes any value
_GENERATION = "_thr_generation"  # control name -> generation of its widget key
_NOTICE = "_thr_notice"
_CHANGED = "_thr_changed"  # control -> value, noted by the callbacks of one request
_PUSHED = "_thr_pushed"  # values the server replaced in a control (a stale echo holds one)
_SHOWN = "_thr_shown_in_browser"  # the C the instant explorer reported, having drawn it
SLIDER, BOX = "thr_slider", "thr_number"


def current() -> float | None:
    value = st.session_state.get(THRESHOLD)
    return None if value is None else float(value)


def set_threshold(value: float, notice: str | None = None, shown_in_browser: bool = False) -> None:
    """Make ``value`` the threshold (a control's callback, "use this C", a link, a run's
    calibrated choice); ``notice`` says why it is not the one asked for (shown until C next
    changes). Every control shows it on the next draw. ``shown_in_browser``: the instant
    explorer reported it, having drawn its numbers and charts (the server need not)."""
    ss = st.session_state
    ss[THRESHOLD] = float(value)
    if shown_in_browser:
        ss[_SHOWN] = float(value)
    else:
        ss.pop(_SHOWN, None)
    if notice:
        ss[_NOTICE] = notice
    else:
        ss.pop(_NOTICE, None)


def shown_in_browser(value: float) -> bool:
    """Whether the browser reported ``value`` itself, with its numbers and charts drawn."""
    return st.session_state.get(_SHOWN) == float(value)


def forget() -> None:
    """Drop C (a new run brings its own calibrated choice)."""
    st.session_state.pop(THRESHOLD, None)
    st.session_state.pop(_NOTICE, None)


def _shown_value(name: str, value: float) -> float:
    return min(1.0, max(0.0, value)) if name == SLIDER else value


def _push(name: str, shown: float) -> None:
    """Show ``shown`` in control ``name``, remembering what it held (the browser still shows
    that until the reply arrives)."""
    ss = st.session_state
    if ss.get(name) != shown:
        if name in ss:
            ss[_PUSHED] = [*ss.get(_PUSHED, [])[-15:], float(ss[name])]
        ss[name] = shown


def _note_change(source: str) -> None:
    # Only note it: which control really moved is decided once both callbacks have run.
    ss = st.session_state
    ss[_CHANGED] = {**ss.get(_CHANGED, {}), source: ss[source]}


def _resolve() -> None:
    """Apply this request's control change. A browser that sent several steps before the
    first reply came back also sends the other control's value from before the server's
    last push; when both controls changed in one request, the one holding a value C had
    just before (still in flight to the browser) is that stale echo and is ignored."""
    ss = st.session_state
    changed = ss.pop(_CHANGED, None) or {}
    if not changed or THRESHOLD not in ss:
        return
    if len(changed) > 1:
        pushed = ss.get(_PUSHED, [])
        fresh = {k: v for k, v in changed.items() if not any(abs(v - r) <= 1e-9 for r in pushed)}
        changed = fresh or {SLIDER: changed[SLIDER]}
    source = SLIDER if SLIDER in changed else BOX
    value = parse_float(changed[source])
    current = float(ss[THRESHOLD])
    if value is None or not 0.0 <= value <= 1.0:
        ss[BOX] = current
        ss[_NOTICE] = (
            f"Exact threshold {md_escape(changed[source], limit=40)} is outside [0, 1]; "
            f"C stays {current:.4g}."
        )
        return
    set_threshold(value)
    # Show it in the other control; never push the control being moved (a late reply would
    # move its thumb back under the user's hand).
    if source == SLIDER:
        _push(BOX, value)
    else:
        _push(SLIDER, _shown_value(SLIDER, value))


def _sync_controls(value: float) -> None:
    """Push C into both controls when it was set elsewhere (a page, a link, a run change)."""
    for name in (SLIDER, BOX):
        _push(name, _shown_value(name, value))


def draw_controls() -> None:
    """The slider and the exact box, each showing C (call once C is set)."""
    ss = st.session_state
    _resolve()
    value = float(ss[THRESHOLD])
    _sync_controls(value)
    if ss.get(_NOTICE):
        st.warning(ss[_NOTICE])
    st.slider(
        "Threshold C",
        min_value=0.0,
        max_value=1.0,
        step=THRESHOLD_STEP,
        format="%.3f",
        key=SLIDER,
        on_change=_note_change,
        args=(SLIDER,),
        help="A sample exits at the first step whose confidence is above C. The box "
        "below takes any C in [0, 1] to four decimals.",
    )
    st.number_input(
        "Exact threshold",
        step=0.0001,
        format="%.4f",
        key=BOX,
        on_change=_note_change,
        args=(BOX,),
    )


def initial(text: Any, calibrated: float) -> tuple[float, str | None]:
    """C from a link's ``text`` (None when the link has none), else ``calibrated``; with a
    message when the link's value could not be used."""
    from_url = parse_float(text)
    if from_url is not None and 0.0 <= from_url <= 1.0:
        return from_url, None
    if text is None:
        return calibrated, None
    why = "outside [0, 1]" if from_url is not None else "not a number"
    return calibrated, (
        f"The link's threshold {md_escape(text, limit=40)} is {why}; "
        f"using C = {calibrated:.4g} (chosen on calibration) instead."
    )

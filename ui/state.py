"""The shared sidebar: run, split, decoder, kappa and threshold, and the URL that mirrors them.

The choices live in ``st.session_state`` and are mirrored into the URL (``st.query_params``)
so a view is shareable and survives a reload: the first run of a session takes its state
from the URL; afterwards the session state is the truth and the URL follows it. ``app.py``
draws the sidebar before each page; pages read it with :func:`context`.

Pages keep their own controls the same way through :func:`url_widget`: the value outlives the
widget (Streamlit drops a widget's state when its page is left) in a plain session key, and
is mirrored into a URL parameter the page owns; a link's value that is not valid is replaced
with a message saying so, never silently.

The threshold has two controls, a slider and an exact box, kept in step by the server. A
browser that sends several slider steps before the first rerun returns also sends the box's
*old* value with each, which reads as a change of the box; taking it would push the old value
back onto the slider (the thumb jumps back and a step is lost). So the callbacks only note
what changed, and :func:`_resolve_threshold` takes, when both changed in one request, the one
that is not a value C had before; the slider is never pushed by the server while it is the
control being moved.

The decoder menu, its labels and whether kappa applies come from the decoder registry
(``dynconf.core.decoders.DECODERS``), so a new decoder appears here without an edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import streamlit as st

from dynconf.core.decoders import DECODERS, kappa_label
from dynconf.core.selection import calibration_split, default_split
from dynconf.core.store import default_runs_root, default_work_root
from dynconf.errors import DynconfError
from ui.caches import Analysis, Listing, get_analysis, get_run, get_selection, run_listing
from ui.text import md_error, md_escape

DEFAULT_THRESHOLD = 0.9
THRESHOLD_STEP = 0.005  # slider resolution; the number box beside it takes any value
PREFERRED_RUNS = ("cifar10_resnet20", "digits")

_CTX_KEY = "_dynconf_context"
_ERR_KEY = "_dynconf_context_error"


@dataclass
class Context:
    """The view every page works on, as chosen in the sidebar."""

    listing: Listing
    run: Any
    split: str
    decoder: str
    kappa: float | None
    threshold: float

    @cached_property
    def analysis(self) -> Analysis:
        """Fetched once per script run (by the sidebar), so every page part sees one run."""
        return get_analysis(self.listing.path, self.split, self.decoder, self.kappa)

    @property
    def kappa_label(self) -> str:
        return kappa_label(self.decoder, self.kappa, self.run.T_max)


def context() -> Context:
    """The current view; stops the page with a hint when there is no run to show."""
    ctx = st.session_state.get(_CTX_KEY)
    if ctx is None:
        error = st.session_state.get(_ERR_KEY)
        if error:
            st.error(
                f"This view cannot be shown: {md_escape(error, limit=2000)}. "
                "Choose another decoder or split."
            )
        else:
            st.info("No run is selected. Use the **Runs** page to import or simulate one.")
        st.stop()
    return ctx


# --------------------------------------------------------------------------- threshold

_THR_WIDGETS = ("thr_slider", "thr_number")
_CHANGED = "_thr_changed"  # widget key -> value, noted by the callbacks of one request
_RECENT = "_thr_recent"  # the last values C had: what a stale control still shows
_THR_NOTICE = "_thr_notice"
_KAPPA_OK = "_kappa_ok"
_KAPPA_NOTICE = "_kappa_notice"
_URL_READ = "_dynconf_url_read"  # the sidebar has taken its state from the URL once


def _slider_value(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def set_threshold(value: float, notice: str | None = None) -> None:
    """Make ``value`` the threshold and show it in both controls (callbacks, "use this C");
    ``notice`` says why it is not the one asked for (shown until C next changes)."""
    ss = st.session_state
    value = float(value)
    old = ss.get("threshold")
    if old is not None and old != value:
        ss[_RECENT] = [*ss.get(_RECENT, [])[-15:], float(old)]
    ss["threshold"] = value
    ss["thr_slider"] = _slider_value(value)
    ss["thr_number"] = value
    if notice:
        ss[_THR_NOTICE] = notice
    else:
        ss.pop(_THR_NOTICE, None)


def _note_threshold_change(source: str) -> None:
    # Only note it: which control really moved is decided once both callbacks have run.
    ss = st.session_state
    ss[_CHANGED] = {**ss.get(_CHANGED, {}), source: ss[source]}


def _resolve_threshold() -> None:
    """Apply the threshold change of this request (see the module docstring)."""
    ss = st.session_state
    changed = ss.pop(_CHANGED, None) or {}
    if not changed or "threshold" not in ss:
        return
    if len(changed) > 1:
        recent = ss.get(_RECENT, [])
        fresh = {k: v for k, v in changed.items() if not any(abs(v - r) <= 1e-9 for r in recent)}
        changed = fresh or {"thr_slider": changed["thr_slider"]}
    source = "thr_slider" if "thr_slider" in changed else "thr_number"
    value = _parse_float(changed[source])
    current = float(ss["threshold"])
    if value is None or not 0.0 <= value <= 1.0:
        ss["thr_number"] = current
        ss[_THR_NOTICE] = (
            f"Exact threshold {changed[source]} is outside [0, 1]; C stays {current:.4g}."
        )
        return
    if value != current:
        ss[_RECENT] = [*ss.get(_RECENT, [])[-15:], current]
    ss["threshold"] = value
    ss.pop(_THR_NOTICE, None)
    # Show it in the other control; never push the control being moved (a late reply would
    # move its thumb back under the user's hand).
    if source == "thr_slider":
        ss["thr_number"] = value
    else:
        ss["thr_slider"] = _slider_value(value)


def _parse_float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _calibrated_threshold(listing: Listing, run: Any, split: str, decoder: str, kappa) -> float:
    """The threshold chosen on the run's calibration split, else 0.9."""
    cal = calibration_split(run, split)
    if cal is not None:
        try:
            return float(get_selection(listing.path, cal, split, decoder, kappa, 0.0).threshold)
        except DynconfError:
            pass
    return DEFAULT_THRESHOLD


def _initial_threshold(
    listing: Listing, run: Any, split: str, decoder: str, kappa, use_url: bool
) -> tuple[float, str | None]:
    """The URL's threshold (on the session's first run), else the calibrated one; with a
    message when the link's value could not be used."""
    text = st.query_params.get("threshold") if use_url else None
    from_url = _parse_float(text)
    if from_url is not None and 0.0 <= from_url <= 1.0:
        return from_url, None
    value = _calibrated_threshold(listing, run, split, decoder, kappa)
    if text is None:
        return value, None
    why = "outside [0, 1]" if from_url is not None else "not a number"
    return value, (
        f"The link's threshold {md_escape(text, limit=40)} is {why}; "
        f"using C = {value:.4g} (chosen on calibration) instead."
    )


def _check_kappa_entry() -> None:
    """kappa box callback: refuse 0, negatives and non-numbers with a message."""
    ss = st.session_state
    value = ss.get("kappa")
    if value is None or (np.isfinite(value) and value > 0):
        ss[_KAPPA_OK] = value
        ss.pop(_KAPPA_NOTICE, None)
        return
    previous = ss.get(_KAPPA_OK)
    ss["kappa"] = previous
    ss[_KAPPA_NOTICE] = f"kappa must be > 0 (got {value:g}); " + (
        "using T_max instead." if previous is None else f"kept kappa = {previous:g}."
    )


def _run_changed() -> None:
    # A new run brings its own calibration choice of C (not the last run's).
    ss = st.session_state
    ss.pop("threshold", None)
    ss.pop(_THR_NOTICE, None)


# --------------------------------------------------------------------------- page controls


def _notice_key(key: str) -> str:
    return f"_url_notice_{key}"


def url_widget(
    widget: Callable[..., Any],
    label: str,
    *,
    key: str,
    param: str,
    default: Any,
    from_url: Callable[[str], Any] | None = None,
    to_url: Callable[[Any], str] | None = None,
    **kwargs: Any,
) -> Any:
    """Draw ``widget(label, key=key, **kwargs)`` whose value outlives the page and lives in
    the URL as ``param`` (a parameter this page owns; the sidebar keeps it).

    On the session's first use the value comes from the URL (``from_url(text)``; it raises
    ValueError with the reason for a value it refuses, and the page then says so and uses
    ``default``); after that from the session, also after the page was left and the widget's
    own state dropped. ``to_url`` writes it (default: ``str``; lists comma-joined). Options
    widgets (``options=`` in kwargs) get the option whose ``str`` is the text by default, and
    keep only options still offered. Pass no ``value``/``index``/``default`` in kwargs.
    """
    ss = st.session_state
    keep = f"_keep_{key}"
    multi = isinstance(default, (list, tuple))
    options = list(kwargs["options"]) if "options" in kwargs else None

    def parse(text: str) -> Any:
        if from_url is not None:
            return from_url(text)
        if options is None:
            return text
        by_text = {str(o): o for o in options}
        parts = [t for t in text.split(",") if t] if multi else [text]
        bad = [t for t in parts if t not in by_text]
        if bad:
            raise ValueError(f"{', '.join(bad)} is not one of the choices")
        values = [by_text[t] for t in parts]
        return values if multi else values[0]

    def fit(value: Any) -> Any:  # a value the widget can show now
        if options is None:
            return value
        if multi:
            return [v for v in value if v in options]
        return value if value in options else default

    if keep not in ss:
        ss[keep] = default
        text = st.query_params.get(param)
        if text is not None:
            try:
                ss[keep] = parse(text)
            except ValueError as exc:
                shown = ", ".join(map(str, default)) if multi else default
                ss[_notice_key(key)] = (
                    f"The link's {md_escape(param)} = {md_escape(text, limit=60)} cannot be "
                    f"used ({md_escape(exc, limit=200)}); showing {md_escape(shown)} instead."
                )
    if key not in ss:  # first draw, or back on the page after Streamlit dropped its state
        ss[key] = fit(ss[keep])
    notice = ss.get(_notice_key(key))
    if notice:
        st.warning(notice)
    value = widget(label, key=key, **kwargs)
    if notice and ss[keep] != value:
        ss.pop(_notice_key(key), None)  # the user chose; the link's problem is history
    ss[keep] = value
    if to_url is not None:
        text = to_url(value)
    else:
        text = ",".join(map(str, value)) if multi else str(value)
    set_page_param(param, text)
    return value


def parse_flag(text: str) -> bool:
    """A URL flag: 1/true/yes or 0/false/no (``from_url`` of a toggle or checkbox)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("not 1 or 0")


def flag_text(value: bool) -> str:
    return "1" if value else "0"


def parse_number(lo: float, hi: float) -> Callable[[str], float]:
    """``from_url`` for a number box bounded to [lo, hi]: says what was wrong with a value."""

    def parse(text: str) -> float:
        value = _parse_float(text)
        if value is None:
            raise ValueError("not a number")
        if not lo <= value <= hi:
            raise ValueError(f"outside [{lo:g}, {hi:g}]")
        return value

    return parse


def set_page_param(param: str, text: str | None) -> None:
    """Write (or with None remove) a page-owned URL parameter, only when it changes."""
    if text is None:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != text:
        st.query_params[param] = text


# --------------------------------------------------------------------------- sidebar


def _default_run(ok: list[Listing]) -> Listing:
    by_name = {item.name: item for item in ok}
    for name in PREFERRED_RUNS:
        if name in by_name:
            return by_name[name]
    for item in ok:
        if item.meta.get("dataset") == "cifar10":
            return item
    return ok[0]


def _show_damaged(damaged: list[Listing]) -> None:
    if damaged:
        with st.expander(f"Damaged runs ({len(damaged)})"):
            for item in damaged:
                st.markdown(f"**{md_escape(item.name)}**: {md_escape(item.error, limit=2000)}")


def _show_lost_run(damaged: list[Listing]) -> None:
    """The session's run broke or changed into a damaged one since the last rerun: say so."""
    current = st.session_state.get("run")
    lost = next((item for item in damaged if item.name == current), None)
    if lost is not None:
        st.error(
            f"Run **{md_escape(lost.name)}** can no longer be opened: "
            f"{md_escape(lost.error, limit=2000)}"
        )


def _where_runs_live() -> str:
    return (
        f"Shipped runs live in {md_escape(default_runs_root())} (DYNCONF\\_RUNS), yours in "
        f"{md_escape(default_work_root())} (DYNCONF\\_WORK); yours are marked (mine)."
    )


def sidebar() -> Context | None:
    """Draw the shared sidebar; remember and return the current :class:`Context`.

    The threshold controls are drawn first (at the top, above the fold of a 1024x768
    projector) although they are filled in last: their starting value depends on the run.
    """
    ss = st.session_state
    qp = st.query_params
    ss.pop(_CTX_KEY, None)
    ss.pop(_ERR_KEY, None)
    use_url = not ss.get(_URL_READ)
    ss[_URL_READ] = True
    listing = run_listing()
    ok = [item for item in listing if item.ok]
    damaged = [item for item in listing if not item.ok]
    with st.sidebar:
        if not ok:
            st.warning(
                f"No usable run under {md_escape(default_runs_root())} or "
                f"{md_escape(default_work_root())}. "
                "Import an outputs file or simulate a checkpoint on the **Runs** page."
            )
            _show_lost_run(damaged)
            _show_damaged(damaged)
            return None
        top = st.container()
        names = [item.name for item in ok]
        if ss.get("run") not in names:
            _show_lost_run(damaged)
            wanted = qp.get("run")
            if wanted in names:
                ss["run"] = wanted
            else:
                if wanted and "run" not in ss:
                    why = next((d.error for d in damaged if d.name == wanted), None)
                    st.error(
                        f"Run **{md_escape(wanted)}** from the link "
                        + ("is not available" if why is None else "cannot be opened: ")
                        + ("" if why is None else md_escape(why, limit=2000))
                        + "; showing another."
                    )
                ss["run"] = _default_run(ok).name
            if not use_url:
                ss.pop("threshold", None)  # the lost run's C is no guide to this one
        by_name = {item.name: item for item in ok}
        st.selectbox(
            "Run",
            names,
            key="run",
            format_func=lambda n: n if by_name[n].source == "shipped" else f"{n} (mine)",
            on_change=_run_changed,
            help=_where_runs_live(),
        )
        item = by_name[ss["run"]]
        try:
            run = get_run(item.path)
        except DynconfError as exc:  # damaged after it was listed
            st.error(f"Run **{md_escape(item.name)}** cannot be loaded: {md_error(exc)}")
            return None
        splits = list(run.split_names)
        if ss.get("split") not in splits:
            wanted = qp.get("split") if use_url else None
            ss["split"] = wanted if wanted in splits else default_split(run)
        st.selectbox(
            "Split",
            splits,
            key="split",
            help="Evaluate on this split. Thresholds are chosen on calibration data.",
        )
        decoders = list(DECODERS)
        if ss.get("decoder") not in decoders:
            wanted = qp.get("decoder")
            ss["decoder"] = wanted if wanted in decoders else decoders[0]
        st.selectbox(
            "Confidence decoder",
            decoders,
            key="decoder",
            format_func=lambda d: DECODERS[d].label or d,
            help="How a confidence is read from the accumulated output S_t at each step. "
            "'paper' is the paper's decoder.",
        )
        uses_kappa = DECODERS[ss["decoder"]].uses_kappa
        if "kappa" not in ss:
            text = qp.get("kappa") if use_url else None
            k = _parse_float(text)
            ss["kappa"] = k if k is not None and k > 0 else None
            ss[_KAPPA_OK] = ss["kappa"]
            if text is not None and ss["kappa"] is None:
                ss[_KAPPA_NOTICE] = (
                    f"The link's kappa {md_escape(text, limit=40)} is not a number > 0; "
                    "using T_max instead."
                )
        if ss.get(_KAPPA_NOTICE):
            st.warning(ss[_KAPPA_NOTICE])
        st.number_input(
            "kappa (softmax scale)",
            value=None,
            step=1.0,
            key="kappa",
            placeholder=f"T_max = {run.T_max}",
            disabled=not uses_kappa,
            on_change=_check_kappa_entry,
            help="p_t = softmax(S_t / kappa), kappa > 0. Empty means T_max, the paper's "
            "default; larger values damp early exits more.",
        )
        kappa = ss["kappa"] if uses_kappa else None
        _show_damaged(damaged)
    with top:
        _resolve_threshold()
        if "threshold" not in ss:
            set_threshold(
                *_initial_threshold(item, run, ss["split"], ss["decoder"], kappa, use_url)
            )
        if ss.get(_THR_NOTICE):
            st.warning(ss[_THR_NOTICE])
        st.slider(
            "Threshold C",
            min_value=0.0,
            max_value=1.0,
            step=THRESHOLD_STEP,
            format="%.3f",
            key="thr_slider",
            on_change=_note_threshold_change,
            args=("thr_slider",),
            help="A sample exits at the first step whose confidence is above C. The box "
            "below takes any C in [0, 1] to four decimals.",
        )
        st.number_input(
            "Exact threshold",
            step=0.0001,
            format="%.4f",
            key="thr_number",
            on_change=_note_threshold_change,
            args=("thr_number",),
        )
    ctx = Context(item, run, ss["split"], ss["decoder"], kappa, float(ss["threshold"]))
    _write_url(ctx)
    try:
        ctx.analysis  # noqa: B018 - decode now (cached) so a bad combination is caught here
    except DynconfError as exc:  # e.g. a top-k run cannot feed the per-step decoder
        ss[_ERR_KEY] = f"{item.name} / {ctx.split} / {ctx.decoder}: {exc}"
        return None
    ss.pop(_ERR_KEY, None)
    ss[_CTX_KEY] = ctx
    return ctx


def _write_url(ctx: Context) -> None:
    want = {
        "run": ctx.listing.name,
        "split": ctx.split,
        "decoder": ctx.decoder,
        "threshold": f"{ctx.threshold:.6g}",
    }
    if ctx.kappa is not None:
        want["kappa"] = f"{ctx.kappa:g}"
    current = {k: st.query_params.get(k) for k in (*want, "kappa")}
    if current != {**{"kappa": None}, **want}:
        # Keep parameters the pages own (e.g. "sample") and rewrite ours.
        keep = {k: v for k, v in st.query_params.to_dict().items() if k not in current}
        st.query_params.from_dict({**keep, **want})

"""The shared sidebar: run, split, decoder, kappa and threshold, and the URL that mirrors them.

The choices live in ``st.session_state`` and are mirrored into the URL (``st.query_params``)
so a view is shareable and survives a reload: the first run of a session takes its state
from the URL; afterwards the session state is the truth and the URL follows it. ``main.py``
draws the sidebar before each page; pages read it with :func:`context`. A link's value that
cannot be used (a split the run lacks, an unknown decoder or run) is replaced with a message
that says so and names what is shown, never silently.

The threshold is one session value written by whichever control moved it
(:mod:`dynconf.app.threshold`). Pages keep their own controls in the URL through
:func:`url_widget` (:mod:`dynconf.app.page_params`).

The decoder menu, its labels and whether kappa applies come from the decoder registry
(``dynconf.core.decoders.DECODERS``), so a new decoder appears here without an edit.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import streamlit as st

from dynconf.app import threshold as thr
from dynconf.app.caches import Analysis, Listing, get_analysis, get_run, get_selection, run_listing
from dynconf.app.page_params import (  # noqa: F401 - the pages' helpers, re-exported
    PartialValue,
    closest,
    flag_text,
    parse_flag,
    parse_number,
    set_page_param,
    url_toggle,
    url_tolerance,
    url_widget,
)
from dynconf.app.page_params import parse_float as _parse_float
from dynconf.app.text import md_error, md_escape, relative_paths
from dynconf.core.decoders import DECODERS, kappa_label
from dynconf.core.selection import calibration_split, default_split
from dynconf.core.store import default_runs_root, default_work_root, runs_roots
from dynconf.errors import DynconfError

DEFAULT_THRESHOLD = thr.DEFAULT_THRESHOLD
THRESHOLD_STEP = thr.THRESHOLD_STEP
PREFERRED_RUNS = ("cifar10_resnet20", "digits")
set_threshold = thr.set_threshold

_CTX_KEY = "_dynconf_context"
_ERR_KEY = "_dynconf_context_error"
_KAPPA_OK = "_kappa_ok"
_KAPPA_NOTICE = "_kappa_notice"
_URL_READ = "_dynconf_url_read"  # the sidebar has taken its state from the URL once
_LINK_NOTICES = "_link_notices"  # what the first run could not use from the link


class Context:
    """The view every page works on, as chosen in the sidebar.

    It holds the run and its view weakly: a session's state outlives its browser tab
    (Streamlit keeps a disconnected session, and the download callbacks made in its last
    rerun, for minutes), and a context kept there must not keep a run or view alive after
    the app's cache evicted it, or the server's memory would grow with every view visited
    and not be bounded by DYNCONF_CACHE_MB. While a page runs, the view it works on is held
    by the page itself; a context read after an eviction fetches both from the cache again.
    """

    def __init__(
        self,
        listing: Listing,
        run: Any,
        split: str,
        decoder: str,
        kappa: float | None,
        threshold: float,
    ) -> None:
        self.listing, self.split, self.decoder = listing, split, decoder
        self.kappa, self.threshold = kappa, threshold
        self._run = weakref.ref(run)
        self._analysis: weakref.ref | None = None

    def __repr__(self) -> str:
        return (
            f"Context(run={self.listing.name!r}, split={self.split!r}, "
            f"decoder={self.decoder!r}, kappa={self.kappa!r}, threshold={self.threshold!r})"
        )

    @property
    def run(self) -> Any:
        """The run (its view's run once the view was fetched, so both are one)."""
        view = self._analysis() if self._analysis is not None else None
        run = view.run if view is not None else self._run()
        if run is None:
            run = get_run(self.listing.path)
            self._run = weakref.ref(run)
        return run

    @property
    def analysis(self) -> Analysis:
        """The shared view of this run, split, decoder and kappa (from the app's cache)."""
        view = self._analysis() if self._analysis is not None else None
        if view is None:
            view = get_analysis(self.listing.path, self.split, self.decoder, self.kappa)
            self._analysis = weakref.ref(view)
        return view

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


# --------------------------------------------------------------------------- callbacks


def _calibrated_threshold(listing: Listing, run: Any, split: str, decoder: str, kappa) -> float:
    """The threshold chosen on the run's calibration split, else 0.9."""
    cal = calibration_split(run, split)
    if cal is not None:
        try:
            return float(get_selection(listing.path, cal, split, decoder, kappa, 0.0).threshold)
        except DynconfError:
            pass
    return DEFAULT_THRESHOLD


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
    thr.forget()  # a new run brings its own calibration choice of C (not the last run's)


# --------------------------------------------------------------------------- sidebar parts


def _default_run(ok: list[Listing]) -> Listing:
    by_name = {item.name: item for item in ok}
    for name in PREFERRED_RUNS:
        if name in by_name:
            return by_name[name]
    for item in ok:
        if item.meta.get("dataset") == "cifar10":
            return item
    return ok[0]


def _error_text(text: Any) -> str:
    return md_escape(relative_paths(str(text)), limit=2000)


def _show_damaged(damaged: list[Listing]) -> None:
    if damaged:
        with st.expander(f"Damaged runs ({len(damaged)})"):
            for item in damaged:
                st.markdown(f"**{md_escape(item.name)}**: {_error_text(item.error)}")


def _show_lost_run(damaged: list[Listing]) -> None:
    """The session's run broke or changed into a damaged one since the last rerun: say so."""
    current = st.session_state.get("run")
    lost = next((item for item in damaged if item.name == current), None)
    if lost is not None:
        name = md_escape(lost.name)
        st.error(f"Run **{name}** can no longer be opened: {_error_text(lost.error)}")


def _where_runs_live() -> str:
    """The folders runs are listed from, as the person who started the app set them."""
    return (
        "Runs are listed from "
        + ", ".join(md_escape(root) for root in runs_roots())
        + f" (DYNCONF\\_RUNS), yours from {md_escape(default_work_root())} (DYNCONF\\_WORK); "
        "yours are marked (mine), runs opened by path on the Runs page (opened)."
    )


def _link_notice(key: str, text: str, error: bool = False) -> None:
    """Say what the link asked for as ``key`` that cannot be shown (an error when it is
    damaged), for as long as the choice shown instead stays."""
    ss = st.session_state
    ss[_LINK_NOTICES] = {**ss.get(_LINK_NOTICES, {}), key: (text, ss[key], error)}


def _show_link_notices() -> None:
    ss = st.session_state
    kept = {k: n for k, n in ss.get(_LINK_NOTICES, {}).items() if ss.get(k) == n[1]}
    ss[_LINK_NOTICES] = kept
    for text, _, error in kept.values():
        (st.error if error else st.warning)(text)


def _choose_run(ok: list[Listing], damaged: list[Listing], use_url: bool) -> None:
    """Put a listed run into ``session_state["run"]``: the session's, the link's, a default."""
    ss = st.session_state
    names = [item.name for item in ok]
    if ss.get("run") in names:
        return
    _show_lost_run(damaged)
    wanted = st.query_params.get("run")
    if wanted in names:
        ss["run"] = wanted
    else:
        ss["run"] = _default_run(ok).name
        if wanted and use_url:
            why = next((d.error for d in damaged if d.name == wanted), None)
            _link_notice(
                "run",
                f"Run **{md_escape(wanted)}** from the link "
                + (
                    f"is not available{md_escape(closest(wanted, names))}"
                    if why is None
                    else f"cannot be opened: {_error_text(why)}"
                )
                + f"; showing {md_escape(ss['run'])}.",
                error=why is not None,
            )
    if not use_url:
        thr.forget()  # the lost run's C is no guide to this one


def _pick(key: str, choices: list[str], default: str, use_url: bool, what: str) -> None:
    """Keep ``session_state[key]`` one of ``choices``: the link's value on the first run (a
    message names a value that is not offered), else ``default``."""
    ss = st.session_state
    if ss.get(key) in choices:
        return
    wanted = st.query_params.get(key) if use_url else None
    ss[key] = wanted if wanted in choices else default
    if wanted is not None and wanted not in choices:
        _link_notice(
            key,
            f"The link's {key} **{md_escape(wanted, limit=60)}** is not {what} (there are "
            f"{md_escape(', '.join(choices))}); showing {md_escape(default)}.",
        )


def _kappa_box(run: Any, uses_kappa: bool, use_url: bool) -> None:
    ss = st.session_state
    if "kappa" not in ss:
        text = st.query_params.get("kappa") if use_url else None
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


def _view_controls(ok: list[Listing], use_url: bool) -> tuple[Listing, Any, float | None] | None:
    """Run, split, decoder and kappa menus; (listing, run, kappa) or None (with a message)."""
    ss = st.session_state
    by_name = {item.name: item for item in ok}
    st.selectbox(
        "Run",
        list(by_name),
        key="run",
        format_func=lambda n: (
            n if by_name[n].source in ("shipped", "demo") else f"{n} ({by_name[n].source})"
        ),
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
    _pick("split", splits, default_split(run), use_url, f"a split of {item.name}")
    st.selectbox(
        "Split",
        splits,
        key="split",
        help="Evaluate on this split. Thresholds are chosen on calibration data.",
    )
    _pick("decoder", list(DECODERS), next(iter(DECODERS)), use_url, "a decoder")
    st.selectbox(
        "Confidence decoder",
        list(DECODERS),
        key="decoder",
        format_func=lambda d: DECODERS[d].label or d,
        help="How a confidence is read from the accumulated output S_t at each step. "
        "'paper' is the paper's decoder.",
    )
    uses_kappa = DECODERS[ss["decoder"]].uses_kappa
    _kappa_box(run, uses_kappa, use_url)
    return item, run, ss["kappa"] if uses_kappa else None


def _no_runs(damaged: list[Listing]) -> None:
    st.warning(
        f"No usable run under {md_escape(relative_paths(str(default_runs_root())))} or "
        f"{md_escape(relative_paths(str(default_work_root())))}. "
        "Import an outputs file or simulate a checkpoint on the **Runs** page."
    )
    _show_lost_run(damaged)
    _show_damaged(damaged)


def sidebar() -> Context | None:
    """Draw the shared sidebar; remember and return the current :class:`Context`.

    The threshold controls are drawn first (at the top, above the fold of a 1024x768
    projector) although they are filled in last: their starting value depends on the run.
    """
    ss = st.session_state
    ss.pop(_CTX_KEY, None)
    ss.pop(_ERR_KEY, None)
    use_url = not ss.get(_URL_READ)
    ss[_URL_READ] = True
    listing = run_listing()
    ok = [item for item in listing if item.ok]
    damaged = [item for item in listing if not item.ok]
    with st.sidebar:
        if not ok:
            _no_runs(damaged)
            return None
        top = st.container()
        _choose_run(ok, damaged, use_url)
        chosen = _view_controls(ok, use_url)
        _show_damaged(damaged)
    if chosen is None:
        return None
    item, run, kappa = chosen
    with top:
        _show_link_notices()
        if thr.current() is None:
            calibrated = _calibrated_threshold(item, run, ss["split"], ss["decoder"], kappa)
            thr.set_threshold(
                *thr.initial(st.query_params.get("threshold") if use_url else None, calibrated)
            )
        thr.draw_controls()
    ctx = Context(item, run, ss["split"], ss["decoder"], kappa, thr.current())
    _write_url(ctx)
    try:
        ctx.analysis  # noqa: B018 - decode now (cached) so a bad combination is caught here
    except DynconfError as exc:  # e.g. a top-k run cannot feed the per-step decoder
        ss[_ERR_KEY] = relative_paths(f"{item.name} / {ctx.split} / {ctx.decoder}: {exc}")
        return None
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


def unknown_page_notice(stems: list[str]) -> None:
    """Say so when the link named a page that does not exist (Streamlit then runs the home
    page without a word)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    name = getattr(getattr(ctx, "pages_manager", None), "intended_page_name", None)
    if name and name.strip("/") and name.strip("/") not in stems:
        asked = name.strip("/")
        st.warning(
            f"There is no page **{md_escape(asked, limit=60)}**"
            f"{md_escape(closest(asked, stems))}; showing the home page. "
            "Pick a page in the menu on the left."
        )

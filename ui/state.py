"""The shared sidebar: run, split, decoder, kappa and threshold, and the URL that mirrors them.

The choices live in ``st.session_state`` and are mirrored into the URL (``st.query_params``)
so a view is shareable and survives a reload: the first run of a session takes its state
from the URL; afterwards the session state is the truth and the URL follows it. ``app.py``
draws the sidebar before each page; pages read it with :func:`context`.

The decoder menu, its labels and whether kappa applies come from the decoder registry
(``dynconf.core.decoders.DECODERS``), so a new decoder appears here without an edit.
"""

from __future__ import annotations

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


def set_threshold(value: float) -> None:
    """Callback helper for pages ("use this threshold")."""
    value = float(value)
    st.session_state["threshold"] = value
    st.session_state["thr_slider"] = min(1.0, max(0.0, value))
    st.session_state["thr_number"] = value


def _sync_threshold_from(source: str) -> None:
    value = float(st.session_state[source])
    st.session_state["threshold"] = value
    # Keep the other control in step: the slider shows the nearest position it has.
    if source == "thr_slider":
        st.session_state["thr_number"] = value
    else:
        st.session_state["thr_slider"] = min(1.0, max(0.0, value))


def _parse_float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _initial_threshold(listing: Listing, run: Any, split: str, decoder: str, kappa) -> float:
    """The URL's threshold, else the one chosen on the calibration split, else 0.9."""
    from_url = _parse_float(st.query_params.get("threshold"))
    if from_url is not None and 0.0 <= from_url <= 1.0:
        return from_url
    cal = calibration_split(run, split)
    if cal is not None:
        try:
            return float(get_selection(listing.path, cal, split, decoder, kappa, 0.0).threshold)
        except DynconfError:
            pass
    return DEFAULT_THRESHOLD


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


def sidebar() -> Context | None:
    """Draw the shared sidebar; remember and return the current :class:`Context`."""
    ss = st.session_state
    qp = st.query_params
    ss.pop(_CTX_KEY, None)
    ss.pop(_ERR_KEY, None)
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
        by_name = {item.name: item for item in ok}
        st.selectbox(
            "Run",
            names,
            key="run",
            format_func=lambda n: n if by_name[n].source == "shipped" else f"{n} (mine)",
            help="Shipped runs live in cached_runs/, yours in work_runs/.",
        )
        item = by_name[ss["run"]]
        try:
            run = get_run(item.path)
        except DynconfError as exc:  # damaged after it was listed
            st.error(f"Run **{md_escape(item.name)}** cannot be loaded: {md_error(exc)}")
            return None
        splits = list(run.split_names)
        if ss.get("split") not in splits:
            wanted = qp.get("split")
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
            k = _parse_float(qp.get("kappa"))
            ss["kappa"] = k if k is not None and k > 0 else None
        st.number_input(
            "kappa (softmax scale)",
            min_value=0.01,
            value=None,
            step=1.0,
            key="kappa",
            placeholder=f"T_max = {run.T_max}",
            disabled=not uses_kappa,
            help="p_t = softmax(S_t / kappa). Empty means T_max, the paper's default; "
            "larger values damp early exits more.",
        )
        kappa = ss["kappa"] if uses_kappa else None
        if "threshold" not in ss:
            set_threshold(_initial_threshold(item, run, ss["split"], ss["decoder"], kappa))
        st.slider(
            "Threshold C",
            min_value=0.0,
            max_value=1.0,
            step=THRESHOLD_STEP,
            format="%.3f",
            key="thr_slider",
            on_change=_sync_threshold_from,
            args=("thr_slider",),
            help="A sample exits at the first step whose confidence is above C.",
        )
        st.number_input(
            "Exact threshold",
            min_value=0.0,
            max_value=1.0,
            step=0.0001,
            format="%.4f",
            key="thr_number",
            on_change=_sync_threshold_from,
            args=("thr_number",),
        )
        _show_damaged(damaged)
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

"""Page controls whose value outlives the page and lives in the URL (:func:`url_widget`).

Streamlit drops a widget's state when its page is left; the value is therefore kept in a plain
session key and mirrored into a URL parameter the page owns. A link's value that cannot be
used is never dropped silently: the page says which part was refused, why, what it shows
instead and, for a misspelt choice, the closest names (difflib).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import streamlit as st

from dynconf.app.text import md_escape


class PartialValue(ValueError):  # noqa: N818 - a refusal that still carries a usable value
    """A URL value of which only a part could be used: ``value`` is that part."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value


def parse_float(text: Any) -> float | None:
    """``text`` as a finite float, else None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def closest(word: str, choices: Sequence[str], n: int = 3) -> str:
    """" (closest: a, b)" naming the choices nearest to a misspelt ``word``, or ""."""
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.5)
    return f" (closest: {', '.join(near)})" if near else ""


def _notice_key(key: str) -> str:
    return f"_url_notice_{key}"


def _parse_options(text: str, options: list, multi: bool) -> Any:
    """A URL value naming options by their ``str``; the known ones are kept, the others named."""
    by_text = {str(o): o for o in options}
    parts = [t for t in text.split(",") if t] if multi else [text]
    bad = [t for t in parts if t not in by_text]
    good = [by_text[t] for t in parts if t in by_text]
    if not bad:
        return good if multi else good[0]
    names = list(by_text)
    reason = "; ".join(f"{t} is not one of the choices{closest(t, names)}" for t in bad)
    if multi and good:
        raise PartialValue(good, reason)
    raise ValueError(reason)


def _shown(value: Any, multi: bool, empty: str) -> str:
    text = ", ".join(map(str, value)) if multi else str(value)
    return text if text.strip() else empty


def url_widget(
    widget: Callable[..., Any],
    label: str,
    *,
    key: str,
    param: str,
    default: Any,
    from_url: Callable[[str], Any] | None = None,
    to_url: Callable[[Any], str] | None = None,
    empty_means: str = "nothing",
    **kwargs: Any,
) -> Any:
    """Draw ``widget(label, key=key, **kwargs)`` whose value outlives the page and lives in
    the URL as ``param`` (a parameter this page owns; the sidebar keeps it).

    On the session's first use the value comes from the URL (``from_url(text)``; it raises
    ValueError with the reason for a value it refuses, or :class:`PartialValue` carrying the
    part it can use; the page then says so and shows that part or ``default``, described by
    ``empty_means`` when empty); after that from the session, also after the page was left
    and the widget's own state dropped. ``to_url`` writes it (default: ``str``; lists
    comma-joined). Options widgets (``options=`` in kwargs) get the options whose ``str`` is
    in the text by default, and keep only options still offered. Pass no
    ``value``/``index``/``default`` in kwargs.
    """
    ss = st.session_state
    keep = f"_keep_{key}"
    multi = isinstance(default, (list, tuple))
    options = list(kwargs["options"]) if "options" in kwargs else None

    def parse(text: str) -> Any:
        if from_url is not None:
            return from_url(text)
        return text if options is None else _parse_options(text, options, multi)

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
                if isinstance(exc, PartialValue):
                    ss[keep] = exc.value
                ss[_notice_key(key)] = (
                    f"The link's {md_escape(param)} = {md_escape(text, limit=60)} cannot be "
                    f"used as is ({md_escape(exc, limit=300)}); showing "
                    f"{md_escape(_shown(ss[keep], multi, empty_means))} instead."
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
        value = parse_float(text)
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


def url_toggle(widget: Callable[..., Any], label: str, *, key: str, param: str,
               default: bool = False, **kwargs: Any) -> bool:  # fmt: skip
    """A yes/no control kept in the URL as ``param`` ("1"/"0"); see :func:`url_widget`."""
    return url_widget(widget, label, key=key, param=param, default=default,
                      from_url=parse_flag, to_url=flag_text, **kwargs)  # fmt: skip


def url_tolerance(widget: Callable[..., Any], *, key: str, param: str, **kwargs: Any) -> float:
    """The accuracy tolerance box (points below the baseline, 0 to 10), kept in the URL as
    ``param``: one shape for every page that fits something on calibration."""
    return url_widget(
        widget,
        "Tolerance (accuracy points below the baseline)",
        key=key,
        param=param,
        default=0.0,
        from_url=parse_number(0.0, 10.0),
        to_url=lambda v: f"{v:g}",
        min_value=0.0,
        max_value=10.0,
        step=0.1,
        format="%.2f",
        **kwargs,
    )

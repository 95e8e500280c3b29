"""Showing untrusted text inside Streamlit markdown: the app's one escaping helper.

Almost every Streamlit text element renders its string as GitHub-flavoured markdown (st.error,
st.warning, st.info, st.success, st.caption, st.markdown, titles, metric labels and values,
widget labels, progress text), with Streamlit's extensions: LaTeX between ``$``, colour and
icon directives (``:red[...]``), emoji shortcodes. A run name from the URL, a split name, a
``dataset`` or ``notes`` field of someone's meta.json, an upload's file name, or an error
message quoting any of them, would otherwise draw links, images (fetched by the viewer's
browser, with the app as Referer), formulas or headings of the author's choosing.

:func:`md_escape` turns any value into markdown that shows exactly its characters:

- every ASCII punctuation character is backslash-escaped (CommonMark allows that for all of
  them, and each then renders as itself): no emphasis, code, link, image, HTML, LaTeX,
  directive, table, heading or list syntax survives;
- line breaks and other control characters become spaces, and the invisible bidi controls
  that reorder text (U+202A-U+202E, U+2066-U+2069) are dropped, so text cannot start a block
  or display in an order other than stored;
- a zero-width space is put inside ``://``, after ``www`` and after ``@``: GitHub's
  "literal autolinks" find bare URLs and e-mail addresses in the text *after* escapes are
  resolved, so an escaped ``http://host/x`` would still become a link without it;
- anything longer than ``limit`` characters is cut with an ellipsis (a 1 MB model name in a
  meta.json must not become a 1 MB page).

Pass the result into an f-string whose own markdown is written by the app; never escape the
app's markup itself. Dataframe cells, ``st.code`` and ``st.text`` show text as is and need no
escaping.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

ZWSP = "\u200b"  # zero-width space: invisible, but no URL or address pattern spans it
DEFAULT_LIMIT = 300

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Literal autolink triggers (after escaping: "\:\/\/", "www\.", "\@").
_SCHEME = re.compile(r"\\:\\/\\/")
_WWW = re.compile(r"(?i)(www)(\\\.)")
_AT = re.compile(r"\\@")


def shorten(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def md_escape(value: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """Markdown that renders as the characters of ``str(value)`` (see the module docstring).

    ``limit=None`` keeps the whole text (error messages the app composed itself around
    already-limited parts).
    """
    text = str(value)
    if limit is not None:
        text = shorten(text, limit)
    text = _BIDI.sub("", _CONTROLS.sub(" ", text))
    text = _PUNCTUATION.sub(r"\\\1", text)
    text = _SCHEME.sub(lambda _: "\\:" + ZWSP + "\\/\\/", text)
    text = _WWW.sub(lambda m: m.group(1) + ZWSP + m.group(2), text)
    return _AT.sub(lambda _: "\\@" + ZWSP, text)


# An absolute path in a message: a "/" at the start or after a space, quote or bracket.
_ABS_PATH = re.compile(r"""(?<![\w./])/[^\s'"`()\[\],;]+""")


def _path_roots() -> list[tuple[Path, str]]:
    """(folder, how it is named) for every folder runs live in, the user's work folder and
    the current directory, longest first (so the most specific names the path)."""
    from dynconf.core.roots import default_work_root, runs_roots

    named = [(root, root.name) for root in runs_roots()]
    named += [(default_work_root(), default_work_root().name), (Path.cwd(), ".")]
    out = []
    for root, name in named:
        try:
            out.append((Path(os.path.abspath(root)), name))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda item: -len(str(item[0])))


def relative_paths(text: str) -> str:
    """``text`` with each absolute path named relative to the runs folder (or work folder,
    or current directory) holding it, else by its file name: a message shown in the
    browser never tells the server's directory layout."""
    roots = _path_roots()

    def name(match: re.Match) -> str:
        path = Path(match.group(0))
        for root, label in roots:
            if path == root:
                return label
            if path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                return rel if label == "." else f"{label}/{rel}"
        return f"…/{path.name}" if path.name else "…"

    return _ABS_PATH.sub(name, text)


def md_error(exc: BaseException) -> str:
    """An exception's message for markdown: absolute paths named relative to a runs folder
    (:func:`relative_paths`), then escaped whole, quoted names and all."""
    return md_escape(relative_paths(str(exc)), limit=2000)

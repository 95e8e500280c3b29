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

import re
import string

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


def md_error(exc: BaseException) -> str:
    """An exception's message for markdown: escaped whole, quoted names and all."""
    return md_escape(exc, limit=2000)

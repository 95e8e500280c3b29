"""The instant threshold explorer: metrics and charts computed in the browser as C moves.

Three ``st.components.v2`` components (no build step). The explorer's core and view are the
ones the HTML report and the notebook widget run too (dynconf/report/explorer/); only the
Streamlit glue is here, in ``instant_assets/``:

- ``dynconf.plotly``: the vendored Plotly.js basic bundle (never a CDN), mounted first on the
  page so the browser parses it while the server works (dynconf/app/plotlyjs.py);
- ``dynconf.instant_data``: one payload per run + split + decoder + kappa, as raw bytes: the
  kept threshold records of ``dynconf.core.records`` plus the fixed parts of the four figures
  (built by ``dynconf.report.figures``, so they look like the exports). Neither message
  changes while C moves, so Streamlit's message cache sends each once;
- ``dynconf.instant_explorer`` draws the metrics and the charts and gets only small JSON:
  the payload's id, the current C and a counter that says whether C was changed elsewhere
  (sidebar, another page, the URL) and must be adopted, or is the echo of its own report.

At every slider position C_g = g / 200 the browser evaluates the rule itself
(``core.js``: the library's arithmetic, tested equal to ``dynconf.metrics``); for a C off
that grid the server sends the exit steps it computed. The component reports C back on
release (the sidebar, the URL and the other pages follow) and a clicked scatter point as
the sample to open. The Python metrics stay in the page as the fallback the browser hides
once the component works (and what AppTest, which runs no JavaScript, reads).
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dynconf.app import plotlyjs
from dynconf.core import records as rec_mod
from dynconf.report import explorer as shared

ASSETS = Path(__file__).with_name("instant_assets")
KEY = "explorer-instant"
_REPORTED = "_instant_c"  # the C the component last reported or was last told
_EXTERNAL = "_instant_ext"  # bumped when C changed anywhere but in the component

# The payload's format lives with the shared explorer; these names stay for callers.
pack = shared.pack
record_arrays = shared.record_arrays
record_meta = shared.record_meta


def _read(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def _components() -> tuple[Any, Any]:
    data = st.components.v2.component(
        "dynconf.instant_data", js=_read("data.js"), isolate_styles=False
    )
    view = st.components.v2.component(
        "dynconf.instant_explorer",
        html=shared.read("view.html"),
        css=shared.read("view.css"),
        js=shared.view_js() + "\n" + _read("host.js"),
        isolate_styles=False,
    )
    return data, view


# --------------------------------------------------------------------------- payload


def build_payload(an: Any, res: Any, classes: list[str], oracle: Any) -> tuple[str, bytes]:
    """(payload id, bytes) for one analysis; ``res`` any PolicyResult of it (the figures'
    fixed parts do not depend on which)."""
    views = {
        "baseline": an.baseline,
        "sweep": an.sweep,
        "capped": an.capped(res.threshold),
        "oracle": oracle,
    }
    neurons = an.run.meta.get("neurons")
    return shared.build_payload(an.decoded, an.data, neurons, views, res, classes)


def payload(an: Any, res: Any, classes: list[str]) -> tuple[str, bytes]:
    """The analysis' payload, built once and kept on it (counted in its cache entry), and
    kept in the analysis cache on disk, so a restarted server reads it back instead of
    building its figures again."""
    oracle = an.oracle_curve()  # outside: the build below runs under the analysis' lock

    def build() -> tuple[str, bytes]:
        disk, key = _payload_store(an, res, classes)
        entry = disk.get(key) if key is not None else None
        if entry is not None and "payload" in entry.arrays and "pid" in entry.meta:
            return str(entry.meta["pid"]), entry.arrays["payload"].tobytes()
        pid, blob = build_payload(an, res, classes, oracle)
        if key is not None:
            disk.put(key, {"payload": np.frombuffer(blob, np.uint8)}, {"pid": pid})
        return pid, blob

    return an._get(("instant_payload",), build)


def _payload_store(an: Any, res: Any, classes: list[str]) -> tuple[Any, str | None]:
    """(analysis cache, key) of this payload; key None where nothing is kept (cache off, a
    run held only in memory). The key names everything the bytes depend on: the view (run
    stamp, split, decoder, kappa), the threshold its figures were built at, the class names
    and the code that builds them."""
    disk = an.disk_cache(small=True)
    if disk is None:
        return None, None
    from dynconf.core.analysis_cache import code_digest

    # The code the payload comes from: a payload other code built is never read back.
    code = code_digest("core", "report", "app/instant.py")
    key = an.disk_key("instant_payload", code, float(res.threshold), list(classes))
    return disk, key


# --------------------------------------------------------------------------- mounting


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _on_report() -> None:
    """The component reported a C (on release): it becomes the app's threshold."""
    from dynconf.app import state

    value = (st.session_state.get(KEY) or {}).get("c")
    if value is None:
        return
    value = float(value)
    st.session_state[_REPORTED] = value
    state.set_threshold(value, shown_in_browser=True)


def control(threshold: float, res: Any, extra: dict | None = None) -> dict:
    """The small per-rerun message: C, whether to adopt it, and the server's exits when C is
    off the slider's grid."""
    ss = st.session_state
    if ss.get(_REPORTED) != threshold:  # changed in the sidebar, on another page, by URL
        ss[_EXTERNAL] = ss.get(_EXTERNAL, 0) + 1
        ss[_REPORTED] = threshold
    g = rec_mod.grid_index(threshold)
    msg = {"c": threshold, "g": g, "ext": ss.get(_EXTERNAL, 0), "override": None, **(extra or {})}
    if g is None:
        msg["override"] = {
            "steps": _b64(res.exit_steps.astype(np.uint16)),
            "answers": _b64(res.predictions.astype(np.uint16)),
            "spent": res.spikes_per_image_at_exit,
        }
    return msg


def explorer(an: Any, res: Any, threshold: float, classes: list[str], extra: dict | None = None):
    """Mount the instant explorer; returns the component's result (``.pick``: a clicked
    sample's position in the split, once)."""
    plotlyjs.load_plotly()  # a no-op where the entry script mounted it first
    data_component, view_component = _components()
    pid, blob = payload(an, res, classes)
    data_component(data=blob, key=f"instant-data-{pid}", height=0)
    msg = {"pid": pid, **control(threshold, res, extra)}
    return view_component(
        data=msg,
        key=KEY,
        default={"c": threshold},
        on_c_change=_on_report,
        on_pick_change=lambda: None,
    )


def report_download(ctx: Any, key: str = "explorer-report") -> None:
    """The "Download interactive report" button: this view as the self-contained HTML file
    of ``dynconf export --html`` (built on click, on Streamlit's download thread)."""
    from dynconf.core.selection import calibration_split
    from dynconf.report import html

    run, split, decoder, kappa = ctx.run, ctx.split, ctx.decoder, ctx.kappa
    threshold = ctx.threshold

    def build() -> bytes:  # holds the context, not the run: Streamlit keeps it with the session
        run = ctx.run
        calibration = calibration_split(run, split)
        text = html.build_report(
            run, split, [decoder], [kappa], threshold=threshold, calibration=calibration
        )
        return text.encode("utf-8")

    st.download_button(
        "Download interactive report",
        data=build,
        file_name=f"{run.name}_{split}_explorer.html",
        mime="text/html",
        key=key,
        on_click="ignore",
        icon=":material/download:",
        help="One HTML file: this explorer, the policy and class tables and the run's "
        "provenance. It opens in any browser, with no server.",
    )

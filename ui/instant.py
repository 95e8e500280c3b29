"""The instant threshold explorer: metrics and charts computed in the browser as C moves.

Three ``st.components.v2`` components (no build step; their JavaScript is in
``ui/instant_assets/``):

- ``dynconf.plotly``: the installed ``plotly`` package's own ``plotly.min.js`` (never a
  CDN), mounted first on the page so the browser parses it while the server works;
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
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io as pio
import streamlit as st

from dynconf.core import records as rec_mod
from dynconf.report import figures
from dynconf.report.style import plotly_text

ASSETS = Path(__file__).with_name("instant_assets")
KEY = "explorer-instant"
_REPORTED = "_instant_c"  # the C the component last reported or was last told
_EXTERNAL = "_instant_ext"  # bumped when C changed anywhere but in the component
_CODES = {
    np.dtype(np.uint8): "u1",
    np.dtype(np.uint16): "u2",
    np.dtype(np.uint32): "u4",
    np.dtype(np.float32): "f4",
    np.dtype(np.float64): "f8",
}


def _read(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def _components() -> tuple[Any, Any, Any]:
    import plotly

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(
        encoding="utf-8"
    )
    # Plotly puts its styles into the document's head: no shadow roots.
    library = st.components.v2.component(
        "dynconf.plotly",
        js=plotly_js + "\n" + _read("plotly_ready.js"),
        isolate_styles=False,
    )
    data = st.components.v2.component(
        "dynconf.instant_data", js=_read("data.js"), isolate_styles=False
    )
    view = st.components.v2.component(
        "dynconf.instant_explorer",
        html=_read("view.html"),
        css=_read("view.css"),
        js=_read("core.js") + "\n" + _read("view.js"),
        isolate_styles=False,
    )
    return library, data, view


def load_plotly() -> None:
    """Start loading Plotly.js in the browser (4.8 MB to parse): call it first on the page,
    so that it overlaps with the server's work. Its message never changes, so Streamlit's
    message cache sends it once per browser session."""
    _components()[0](key="dynconf-plotly", height=0)


# --------------------------------------------------------------------------- payload


def pack(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """b"DCI1", header length (u32 LE), JSON header, then 8-byte-aligned little-endian arrays
    (offsets in the header count from the first aligned byte after it)."""
    entries, chunks, offset = {}, [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in _CODES:
            raise TypeError(f"{name}: {arr.dtype} cannot travel to the browser")
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        entries[name] = [_CODES[arr.dtype], offset, int(arr.size)]
        pad = -len(raw) % 8
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    header = json.dumps({"arrays": entries, "meta": meta}, separators=(",", ":")).encode()
    head = b"DCI1" + len(header).to_bytes(4, "little") + header
    head += b"\0" * (-len(head) % 8)
    return head + b"".join(chunks)


def _template(chart: figures.Chart, clear: list[int]) -> dict:
    """A figure as Plotly JSON with the threshold-dependent traces emptied (the browser
    fills them); the rest (baseline, front, oracle, sweep, styling) stays as exported."""
    fig = chart.figure
    for i in clear:
        fig.data[i].update(x=[], y=[], customdata=None, text=None)
    return json.loads(pio.to_json(fig, validate=False))


def _index(chart: figures.Chart, prefix: str) -> int:
    return next(i for i, t in enumerate(chart.figure.data) if str(t.name).startswith(prefix))


def record_arrays(r: rec_mod.Records, ids: np.ndarray | None) -> dict[str, np.ndarray]:
    """The arrays core.js reads (see dynconf.core.records.Records)."""
    arrays = {
        "offsets": r.offsets,
        "cell": r.cell,
        "step": r.step,
        "pred": r.pred,
        "final_pred": r.final_pred,
        "labels": r.labels,
        "baseline_counts": r.baseline_counts.astype(np.float64),  # exact: counts < 2**53
        "run_offsets": r.run_offsets,
        "run_start": r.run_start,
        "run_stop": r.run_stop,
        "ids": (np.arange(r.N) if ids is None else np.asarray(ids)).astype(np.float64),
    }
    if r.spikes_at_exit is not None:
        arrays["spikes_at_exit"] = r.spikes_at_exit
    return arrays


def record_meta(r: rec_mod.Records, neurons: int | None) -> dict:
    return {
        "N": r.N,
        "T": r.T,
        "K": r.K,
        "steps": r.steps,
        "neurons": neurons,
        "spikes_full": r.spikes_full,
    }


def build_payload(an: Any, res: Any, classes: list[str], oracle: Any) -> tuple[str, bytes]:
    """(payload id, bytes) for one analysis; ``res`` any PolicyResult of it (the figures'
    fixed parts do not depend on which)."""
    dec, data = an.decoded, an.data
    neurons = an.run.meta.get("neurons")
    r = rec_mod.build_records(dec, data.spikes)
    T = r.T
    plane = figures.accuracy_latency(
        an.baseline, res, capped=an.capped(res.threshold), oracle=oracle, sweep=an.sweep
    )
    hist = figures.exit_histogram(res, T)
    response = figures.threshold_response(an.sweep, res)
    scatter = figures.exit_scatter(res, data.labels, data.ids, classes)
    capped_i, current_i = _index(plane, "policy, capped"), _index(plane, "current threshold")
    star_i = _index(response, "current")
    templates = {
        "plane": _template(plane, [capped_i, current_i]),
        "hist": _template(hist, [0, 1]),
        "response": _template(response, [star_i]),
        "scatter": _template(scatter, [0, 1]),
    }
    arrays = record_arrays(r, data.ids)
    meta = {
        **record_meta(r, neurons),
        "classes": [plotly_text(c) for c in classes],
        "traces": {"capped": capped_i, "current": current_i, "star": star_i},
        "figures": templates,
    }
    # The id names the content, so a browser never mistakes another analysis' payload for it.
    ident = hashlib.sha1(pack(arrays, meta)).hexdigest()[:16]
    return ident, pack(arrays, {**meta, "pid": ident})


def payload(an: Any, res: Any, classes: list[str]) -> tuple[str, bytes]:
    """The analysis' payload, built once and kept on it (counted in its cache entry)."""
    oracle = an.oracle_curve()  # outside: the build below runs under the analysis' lock
    return an._get(("instant_payload",), lambda: build_payload(an, res, classes, oracle))


# --------------------------------------------------------------------------- mounting


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _on_report() -> None:
    """The component reported a C (on release): it becomes the app's threshold."""
    from ui import state

    value = (st.session_state.get(KEY) or {}).get("c")
    if value is None:
        return
    value = float(value)
    st.session_state[_REPORTED] = value
    state.set_threshold(value)


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
    _, data_component, view_component = _components()
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

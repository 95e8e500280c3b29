"""The threshold explorer's browser side, shared by its three hosts.

One JavaScript core (``core.js``: the library's arithmetic, tested equal to
``dynconf.metrics``) and one view (``view.js``, ``view.html``, ``view.css``: the metrics and
the four charts) run in the app's explorer page, the self-contained HTML report
(dynconf.report.html) and the notebook widget (dynconf.widget). Each host adds only how the
view gets its payload and Plotly.js, and where C goes on release.

This module reads those assets and packs the payload: the kept threshold records of
``dynconf.core.records`` plus the fixed parts of the four figures (built by
``dynconf.report.figures``, so they look like the exports). Plotly.js is npm's official
basic bundle, vendored in ``vendor/`` (tools/vendor_plotly.py refreshes and checks it).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dynconf.core import records as rec_mod

if TYPE_CHECKING:
    from dynconf.report import figures

ASSETS = Path(__file__).parent
PLOTLY_BUNDLE = ASSETS / "vendor" / "plotly-basic.min.js"
CODES = {
    np.dtype(np.uint8): "u1",
    np.dtype(np.uint16): "u2",
    np.dtype(np.uint32): "u4",
    np.dtype(np.float32): "f4",
    np.dtype(np.float64): "f8",
}


def read(name: str) -> str:
    """The text of one asset (core.js, view.js, view.html, view.css)."""
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def plotly_js() -> str:
    """The vendored Plotly.js bundle (sets window.Plotly; safe to inline in a script tag)."""
    return PLOTLY_BUNDLE.read_text(encoding="utf-8")


def view_js() -> str:
    """core.js then view.js: defines DynconfInstant and DynconfView (classic scripts, so a
    module host may concatenate them in front of its own code)."""
    return read("core.js") + "\n" + read("view.js")


# --------------------------------------------------------------------------- payload


def pack(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """b"DCI1", header length (u32 LE), JSON header, then 8-byte-aligned little-endian arrays
    (offsets in the header count from the first aligned byte after it)."""
    entries, chunks, offset = {}, [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in CODES:
            raise TypeError(f"{name}: {arr.dtype} cannot travel to the browser")
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        entries[name] = [CODES[arr.dtype], offset, int(arr.size)]
        pad = -len(raw) % 8
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    header = json.dumps({"arrays": entries, "meta": meta}, separators=(",", ":")).encode()
    head = b"DCI1" + len(header).to_bytes(4, "little") + header
    head += b"\0" * (-len(head) % 8)
    return head + b"".join(chunks)


def compress(blob: bytes) -> bytes:
    """zlib (the browser's DecompressionStream("deflate") format) at the best level."""
    return zlib.compress(blob, 9)


def template(chart: figures.Chart, clear: list[int]) -> dict:
    """A figure as Plotly JSON with the threshold-dependent traces emptied (the browser
    fills them); the rest (baseline, front, oracle, sweep, styling) stays as exported."""
    fig = chart.figure
    for i in clear:
        fig.data[i].update(x=[], y=[], customdata=None, text=None)
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def trace_index(chart: figures.Chart, prefix: str) -> int:
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


def build_payload(
    dec: Any,
    data: Any,
    neurons: int | None,
    views: dict[str, Any],
    res: Any,
    classes: list[str],
    extra_meta: dict | None = None,
    decorate: Callable[[dict], None] | None = None,
) -> tuple[str, bytes]:
    """(payload id, bytes) for one decoded split.

    ``views`` holds what the fixed parts of the figures show: ``baseline``, ``sweep``,
    ``capped`` (the capped curve at ``res``' threshold) and ``oracle``; ``res`` is any
    PolicyResult on ``dec`` (the fixed parts do not depend on which). ``extra_meta`` goes
    into the header as is; ``decorate`` may add fixed marks to the figure templates (a dict
    name -> Plotly JSON) after the moving traces' indices are taken.
    """
    # Plotly and pandas load here, not on import: a page whose payload is cached on disk
    # draws its first chart without them.
    from dynconf.report import figures
    from dynconf.report.style import plotly_text

    r = rec_mod.build_records(dec, data.spikes)
    plane = figures.accuracy_latency(
        views["baseline"], res, capped=views["capped"], oracle=views["oracle"],
        sweep=views["sweep"],
    )  # fmt: skip
    hist = figures.exit_histogram(res, r.T)
    response = figures.threshold_response(views["sweep"], res)
    scatter = figures.exit_scatter(res, data.labels, data.ids, classes)
    capped_i, current_i = trace_index(plane, "policy, capped"), trace_index(plane, "current")
    star_i = trace_index(response, "current")
    templates = {
        "plane": template(plane, [capped_i, current_i]),
        "hist": template(hist, [0, 1]),
        "response": template(response, [star_i]),
        "scatter": template(scatter, [0, 1]),
    }
    if decorate is not None:
        decorate(templates)
    arrays = record_arrays(r, data.ids)
    meta = {
        **record_meta(r, neurons),
        "classes": [plotly_text(c) for c in classes],
        "traces": {"capped": capped_i, "current": current_i, "star": star_i},
        "figures": templates,
        **(extra_meta or {}),
    }
    # The id names the content, so a browser never mistakes another split's payload for it.
    ident = hashlib.sha1(pack(arrays, meta)).hexdigest()[:16]
    return ident, pack(arrays, {**meta, "pid": ident})

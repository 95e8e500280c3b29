"""The interactive report: one self-contained HTML file with the threshold explorer.

``dynconf export RUN --html FILE`` and the app's "Download interactive report" write it. It
opens from disk in any browser with no server and asks no host for anything (a
Content-Security-Policy of ``default-src 'none'`` forbids every request). It holds:

- the explorer of one split with the same core and view as the app (dynconf.report.explorer),
  for each exported decoder and kappa (a selector when there are several);
- the threshold chosen on the calibration split, marked on the charts and one click away,
  and the library's own exits at the exported thresholds that lie off the slider's grid;
- the exit-policy comparison (what ``dynconf policies`` prints), the per-class table and the
  run's provenance;
- a sample picker: a sample's confidence curve against C, and its image with ``images``.

Plotly.js (the vendored basic bundle) is inlined once; every payload is zlib-compressed
and base64-encoded. All text from the run's files is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dynconf.core import metrics
from dynconf.core.classes import class_metrics
from dynconf.core.decoders import decode, kappa_label
from dynconf.core.records import GRID_STEPS, grid_index
from dynconf.report import explorer
from dynconf.report.html_tables import class_table, policy_table, provenance

CURVE_BUDGET = 1 << 21  # confidence values (u16) embedded for the sample picker
IMAGE_LIMIT = 1000  # thumbnails embedded with images=True
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)


@dataclass
class Variant:
    """One exported decoder + kappa: its payload and the extras the page's script reads."""

    label: str
    pid: str
    blob: bytes
    initial: float
    marks: list[dict] = field(default_factory=list)
    exact: list[dict] = field(default_factory=list)
    curves: bytes = b""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _exits(c: float, res: Any) -> dict:
    """The library's exits at an off-grid threshold, as the view's override reads them."""
    return {
        "c": c,
        "steps": _b64(res.exit_steps.astype("<u2").tobytes()),
        "answers": _b64(res.predictions.astype("<u2").tobytes()),
        "spent": res.spikes_per_image_at_exit,
    }


def _mark_chosen(chosen: float | None, res_chosen: Any):
    """Draws the calibration-chosen threshold on the response chart and the plane."""

    def decorate(templates: dict) -> None:
        if chosen is None:
            return
        line = {"color": "#009E73", "width": 2, "dash": "dash"}
        layout = templates["response"]["layout"]
        layout.setdefault("shapes", []).append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": chosen, "x1": chosen,
             "y0": 0, "y1": 1, "line": line}
        )  # fmt: skip
        layout.setdefault("annotations", []).append(
            {"xref": "x", "yref": "paper", "x": chosen, "y": 0.02, "yanchor": "bottom",
             "xanchor": "left", "text": " chosen on calibration", "showarrow": False,
             "font": {"color": "#009E73"}}
        )  # fmt: skip
        templates["plane"]["data"].append(
            {"type": "scatter", "mode": "markers", "name": "chosen on calibration",
             "x": [res_chosen.mean_latency], "y": [100 * res_chosen.accuracy],
             "marker": {"symbol": "diamond", "size": 12, "color": "#009E73",
                        "line": {"color": "black", "width": 1}}}
        )  # fmt: skip

    return decorate


def build_variant(
    run: Any,
    data: Any,
    cal_data: Any | None,
    decoder: str,
    kappa: float | None,
    threshold: float | None,
    tolerance: float,
    exact: list[float],
    positions: np.ndarray,
) -> tuple[Variant, Any, Any]:
    """The payload and extras of one decoder + kappa; also (its Decoded, its result at the
    initial threshold) for the tables."""
    neurons = run.meta.get("neurons")
    dec = decode(data, decoder=decoder, kappa=kappa)
    chosen = None
    if cal_data is not None:
        cal_dec = decode(cal_data, decoder=decoder, kappa=kappa)
        chosen = float(metrics.select_threshold(cal_dec, dec, tolerance=tolerance).threshold)
    initial = float(threshold if threshold is not None else chosen if chosen is not None else 0.9)

    def evaluate(c: float) -> Any:
        return metrics.evaluate(dec, c, spikes=data.spikes, neurons=neurons)

    res = evaluate(initial)
    views = {
        "baseline": metrics.baseline_curve(dec),
        "sweep": metrics.sweep(dec),
        "capped": metrics.capped_curve(dec, initial),
        "oracle": metrics.oracle_curve(dec, variant="first_correct", never_correct="cap"),
    }
    res_chosen = evaluate(chosen) if chosen is not None else None
    label = ", ".join(x for x in (decoder, kappa_label(decoder, kappa, run.T_max)) if x)
    pid, blob = explorer.build_payload(
        dec, data, neurons, views, res, list(run.classes), decorate=_mark_chosen(chosen, res_chosen)
    )
    marks = [] if chosen is None else [{"label": "chosen on calibration", "c": chosen}]
    if initial != chosen:
        marks.append({"label": "exported", "c": initial})
    wanted = {initial, *exact} | ({chosen} if chosen is not None else set())
    off_grid = sorted(c for c in wanted if grid_index(c) is None)
    variant = Variant(
        label=label,
        pid=pid,
        blob=explorer.compress(blob),
        initial=initial,
        marks=marks,
        exact=[_exits(c, res if c == initial else evaluate(c)) for c in off_grid],
        curves=explorer.compress(_curves(dec.confidence, positions)),
    )
    return variant, dec, res


def _curves(confidence: np.ndarray, positions: np.ndarray) -> bytes:
    """Sample-major confidence curves of ``positions``, quantised to u16 (display only)."""
    q = np.rint(np.clip(confidence[:, positions], 0.0, 1.0) * 65535).astype("<u2")
    return np.ascontiguousarray(q.T).tobytes()


def picker_positions(N: int, T: int, images: bool) -> np.ndarray:
    """The samples whose curves (and images) travel: all when they fit, else every k-th."""
    limit = max(1, CURVE_BUDGET // max(T, 1))
    if images:
        limit = min(limit, IMAGE_LIMIT)
    every = max(1, -(-N // limit))
    return np.arange(0, N, every)


def thumbnails(run: Any, split: str, ids: np.ndarray, data_root: Any) -> list[str | None]:
    """PNG data URIs of the samples' input images (None where one cannot be read)."""
    from PIL import Image

    from dynconf.inputs import sample_image

    out: list[str | None] = []
    for sample_id in ids:
        image, _ = sample_image(run.meta, split, int(sample_id), data_root)
        if image is None:
            out.append(None)
            continue
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 / max(float(arr.max()), 1e-9)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", optimize=True)
        out.append("data:image/png;base64," + _b64(buf.getvalue()))
    return out


def _json_script(element_id: str, obj: Any) -> str:
    """JSON in a non-executed script element, safe against '</script>' in any string."""
    text = json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _selector(variants: list[Variant]) -> str:
    if len(variants) < 2:
        return f'<p class="dcr-variant-one">Decoder: {html.escape(variants[0].label)}</p>'
    options = "".join(
        f'<option value="{k}">{html.escape(v.label)}</option>' for k, v in enumerate(variants)
    )
    return (
        '<label class="dcr-field">Decoder and kappa '
        f'<select id="dcr-variant">{options}</select></label>'
    )


def _page(title: str, body: str, variants: list[Variant], extras: dict) -> str:
    """The document: markup, the payloads, then Plotly.js, the core, the view and the host."""
    blobs = "".join(
        f'<script type="application/octet-stream" id="dcr-blob-{k}">{_b64(v.blob)}</script>'
        f'<script type="application/octet-stream" id="dcr-curves-{k}">{_b64(v.curves)}</script>'
        for k, v in enumerate(variants)
    )
    images = extras.pop("images", None)  # shared by every variant: stored once
    meta = [
        {"label": v.label, "pid": v.pid, "blob": f"dcr-blob-{k}", "initial": v.initial,
         "marks": v.marks, "exact": v.exact, "steps": GRID_STEPS,
         "samples": {**extras, "blob": f"dcr-curves-{k}"}}
        for k, v in enumerate(variants)
    ]  # fmt: skip
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{explorer.read('view.css')}\n{explorer.read('report.css')}</style>"
        f"</head><body>{body}{blobs}{_json_script('dcr-variants', meta)}"
        f"{_json_script('dcr-images', images)}"
        f"<script>{explorer.plotly_js()}</script>"
        f"<script>{explorer.view_js()}\n{explorer.read('report.js')}</script>"
        "</body></html>\n"
    )


def build_report(
    run: Any,
    split: str,
    decoders: list[str],
    kappas: list[float | None],
    threshold: float | None = None,
    calibration: str | None = None,
    tolerance: float = 0.0,
    images: bool = False,
    data_root: Any = None,
    exact: list[float] | tuple = (),
    command: str | None = None,
    policies: bool = True,
) -> str:
    """The report's HTML text (see the module doc); the first decoder and kappa open first."""
    data = run.split(split)
    cal_data = run.split(calibration) if calibration else None
    positions = picker_positions(data.N, run.T_max, images)
    built = [
        build_variant(run, data, cal_data, d, k, threshold, tolerance, list(exact), positions)
        for d in decoders
        for k in kappas
    ]
    variants = [v for v, _, _ in built]
    dec, res = built[0][1], built[0][2]
    ids = np.asarray(data.ids) if data.ids is not None else np.arange(data.N)
    extras = {"positions": positions.tolist(), "every": int(positions[1] - positions[0])
              if positions.size > 1 else 1}  # fmt: skip
    if images:
        extras = {**extras, "images": thumbnails(run, split, ids[positions], data_root)}
    title = f"{run.name}: Dynamic Confidence, split {split}"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        '<section class="dcr-controls">',
        _selector(variants),
        '<label class="dcr-field">Exact C <input id="dcr-exact" type="number" min="0" max="1" '
        f'step="any" value="{variants[0].initial!r}"></label>',
        '<span id="dcr-marks"></span><div id="dcr-note" class="dcr-note" role="status"></div>',
        "</section>",
        explorer.read("view.html"),
        '<h2>A sample</h2><label class="dcr-field">Sample position '
        f'<input id="dcr-pick" type="number" min="0" max="{data.N - 1}" step="1" value="0">'
        '</label> <span id="dcr-sample-info"></span><div id="dcr-sample-note"></div>'
        '<div class="dcr-sample-row"><img id="dcr-image" alt="the sample\'s input" hidden>'
        '<div id="dcr-sample" class="dcr-sample"></div></div>',
    ]
    if policies and cal_data is not None:
        sections.append(policy_table(run, data, cal_data, decoders[0], kappas[0], tolerance))
    sections.append(class_table(run, class_metrics(dec, res, len(run.classes)), res))
    sections.append(provenance(run, split, command))
    return _page(title, "\n".join(sections), variants, extras)


def write_report(path: Any, text: str) -> Any:
    """Write the report atomically (dynconf.core.atomic)."""
    from dynconf.core.atomic import write_bytes_atomic

    return write_bytes_atomic(path, text.encode("utf-8"))

"""The interactive report's static tables: exit policies, classes, provenance (escaped HTML).

The policy table is what ``dynconf policies`` prints (the same comparison and the same
columns); the class table is dynconf.core.classes at the exported threshold; provenance is
the run's meta.json. Every text that comes from a file goes through html.escape.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from dynconf.core.formatting import pct


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    head_row = f"<thead><tr>{th}</tr></thead>"
    return f'<table class="dcr-table">{cap}{head_row}<tbody>{body}</tbody></table>'


def policy_rows(comparison: dict) -> list[list[str]]:
    """The rows of ``dynconf policies`` (dynconf.cli.policies.format_text), one per policy."""
    rows = []
    for p in comparison["policies"]:
        t = p["test"]
        rows.append([
            p["name"], p["description"], f"{100 * p['calibration']['accuracy']:.2f}",
            f"{100 * t['accuracy']:.2f}", f"{t['mean_latency']:.2f}",
            "" if t["latency_vs_threshold"] is None else f"{t['latency_vs_threshold']:.3f}",
            "" if t["gap_closed"] is None else f"{100 * t['gap_closed']:.1f}%",
        ])  # fmt: skip
    o = comparison["oracle"]
    rows.append(["oracle", "stays correct", "", f"{100 * o['accuracy']:.2f}",
                 f"{o['mean_latency']:.2f}", "", ""])  # fmt: skip
    return rows


def policy_table(run: Any, data: Any, cal_data: Any, decoder: str, kappa, tolerance: float) -> str:
    """Every exit policy fitted on calibration and reported on the split."""
    from dynconf.core.policies.comparison import compare_policies, split_decoder

    comparison = compare_policies(
        split_decoder(cal_data), split_decoder(data), tolerance, test_spikes=data.spikes,
        neurons=run.meta.get("neurons"), decoder=decoder, kappa=kappa,
    ).to_dict()  # fmt: skip
    head = ["policy", "parameters", "cal acc %", "test acc %", "latency", "vs thr", "gap"]
    notes = "".join(
        f"<li>skipped {html.escape(name)}: {html.escape(why)}</li>"
        for name, why in comparison["skipped"].items()
    )
    caption = (
        f"fitted on {cal_data.name}, reported on {data.name}, tolerance {tolerance:g}; "
        "vs thr: mean latency over the threshold rule's; gap: share of the threshold rule's "
        "latency above the oracle that the policy saves"
    )
    return (
        '<section class="dcr-policies"><h2>Exit policies</h2>'
        + _table(head, policy_rows(comparison), caption)
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</section>"
    )


def class_table(run: Any, cm: Any, res: Any) -> str:
    """Per-class accuracy, latency and never-exiting samples at the exported threshold."""
    names = list(run.classes) or [str(k) for k in range(cm.K)]

    def rate(x: float) -> str:
        return "n/a" if np.isnan(x) else pct(float(x))

    rows = [
        [names[k] if k < len(names) else str(k), int(cm.n[k]), rate(cm.accuracy[k]),
         rate(cm.accuracy_full[k]),
         "n/a" if np.isnan(cm.mean_latency[k]) else f"{cm.mean_latency[k]:.2f}",
         int(cm.never_exits[k])]
        for k in range(cm.K)
    ]  # fmt: skip
    head = ["class", "samples", "accuracy at exit", f"accuracy at T = {res.T_max}",
            "mean latency", "never exit"]  # fmt: skip
    caption = f"at C = {res.threshold:.4f} (the exported threshold)"
    table = _table(head, rows, caption)
    return f'<section class="dcr-classes"><h2>Classes</h2>{table}</section>'


def provenance(run: Any, split: str, command: str | None) -> str:
    """Model, dataset, T_max, the commands that made the run and the code version."""
    meta = run.meta
    created = meta.get("created") or {}
    items = [
        ("run", run.name), ("model", meta.get("model")), ("dataset", meta.get("dataset")),
        ("split", split), ("T_max", run.T_max), ("code version", created.get("code_version")),
        ("created", created.get("date")), ("recorded with", created.get("command")),
    ]  # fmt: skip
    for k, cmd in enumerate(created.get("training_commands") or []):
        items.append((f"training command {k + 1}", cmd))
    if command:
        items.append(("this report", command))
    body = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd><code>{html.escape(str(v))}</code></dd>"
        for k, v in items
        if v is not None and v != ""
    )
    return f'<section class="dcr-provenance"><h2>Provenance</h2><dl>{body}</dl></section>'

"""The LaTeX side of an export: the headline table (booktabs) and the words around a figure.

The caption and the figure titles name the decoder through the decoder registry
(``dynconf.core.decoders``): its label, and its kappa via ``kappa_label`` for exactly the
decoders that use one, so a new decoder is described correctly without touching this file.
"""

from __future__ import annotations

from typing import Any

from dynconf.core.decoders import get_decoder, kappa_label

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    """User text (run names, captions) made safe inside LaTeX."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def _fmt(value: Any, spec: str, dash: str = "--") -> str:
    return dash if value is None else format(value, spec)


def decoder_text(decoder: str, kappa: float | None, T_max: int, describe: bool = False) -> str:
    """How a caption names a decoder: "decoder paper, kappa = T_max = 64", or with ``describe``
    its registry label too: "decoder paper (paper: max softmax(S_t / kappa)), kappa = 30"."""
    text = f"decoder {decoder}"
    if describe:
        text += f" ({get_decoder(decoder).label})"
    kap = kappa_label(decoder, kappa, T_max)
    return f"{text}, {kap}" if kap else text


def caption(run: Any, context: dict[str, Any]) -> str:
    """The caption of an export's table: run, data, split, decoder (and its kappa), C."""
    dec = decoder_text(context["decoder"], context["kappa"], run.T_max, describe=True)
    return (
        f"Dynamic Confidence on {run.name} ({run.meta.get('dataset', '?')}, "
        f"{run.meta.get('model', '?')}), {context['split']} split, {dec}, "
        f"threshold C = {context['threshold']:.4g}."
    )


def table_label(run_name: str) -> str:
    """The table's \\label: one per run, so tables of several runs can share a paper."""
    return "tab:dynconf-" + "".join(ch if ch.isalnum() else "-" for ch in run_name)


def headline(result: Any, T_max: int) -> list[tuple[str, str, str]]:
    """(metric, baseline at T_max, Dynamic Confidence) rows of the headline table."""
    d = result.to_dict() if hasattr(result, "to_dict") else dict(vars(result))
    reduction_vs_iso = d.get("latency_reduction_vs_iso")
    rows = [
        (
            "Accuracy (%)",
            _fmt(100 * d["baseline_accuracy"], ".2f"),
            _fmt(100 * d["accuracy"], ".2f"),
        ),
        (
            "Accuracy change (pp)",
            "--",
            _fmt(100 * (d["accuracy"] - d["baseline_accuracy"]), "+.2f"),
        ),
        ("Mean latency (steps)", f"{T_max}", _fmt(d["mean_latency"], ".2f")),
        ("Latency reduction vs $T_{max}$ (%)", "--", _fmt(100 * d["latency_reduction"], ".1f")),
        # A fixed-T quantity: the baseline's length that reaches the policy's accuracy. It
        # belongs to the baseline column alone (the policy's mean latency is its own row).
        (
            "Fixed $T$ reaching the same accuracy",
            _fmt(d.get("iso_accuracy_steps"), "d"),
            "--",
        ),
        (
            "Latency reduction vs iso-accuracy $T$ (%)",
            "--",
            _fmt(None if reduction_vs_iso is None else 100 * reduction_vs_iso, ".1f"),
        ),
    ]
    if d.get("spikes_per_neuron_at_exit") is not None:
        rows.append(
            (
                "Spikes per neuron per image",
                _fmt(d.get("spikes_per_neuron_full"), ".3f"),
                _fmt(d["spikes_per_neuron_at_exit"], ".3f"),
            )
        )
        rows.append(_saving_row("Spikes saved (%)", d.get("spike_saving")))
    if d.get("synops_per_sample_at_exit") is not None:
        rows.append(
            (
                "Synaptic operations per image",
                _fmt(d.get("synops_per_sample_full"), ".4g"),
                _fmt(d["synops_per_sample_at_exit"], ".4g"),
            )
        )
        rows.append(_saving_row("Synaptic operations saved (%)", d.get("synops_saving")))
    return rows


def _saving_row(name: str, saving: float | None) -> tuple[str, str, str]:
    return (name, "--", _fmt(None if saving is None else 100 * saving, ".1f"))


def latex_table(result: Any, T_max: int, caption: str, label: str = "tab:dynconf") -> str:
    """A booktabs LaTeX table of the headline metrics (needs \\usepackage{booktabs})."""
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex_escape(caption)}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{lrr}",
        r"\toprule",
        rf" & Baseline ($T={T_max}$) & Dynamic Confidence ($C={result.threshold:.4g}$) \\",
        r"\midrule",
    ]
    for name, base, dc in headline(result, T_max):
        # Row names carry intentional math ($T_{max}$); only the percent sign needs escaping.
        lines.append(rf"{name.replace('%', chr(92) + '%')} & {base} & {dc} \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def run_table(run: Any, result: Any, context: dict[str, Any]) -> str:
    """The table of one run at one threshold, exactly as the export and the app write it."""
    return latex_table(result, run.T_max, caption(run, context), table_label(run.name))

"""The LaTeX table and caption: headline numbers, escaping, the decoder named via the registry."""

from __future__ import annotations

import pytest

from dynconf.core import metrics
from dynconf.core.decoders import DECODERS, decode, kappa_label
from dynconf.core.store import load_run
from dynconf.report import export, latex


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


def test_latex_table_holds_headline_metrics(synth):
    res = metrics.evaluate(
        decode(synth.split("test")), 0.6, spikes=synth.split("test").spikes,
        neurons=synth.meta["neurons"],
    )  # fmt: skip
    tex = latex.latex_table(res, synth.T_max, "C on my_run & co", label="tab:x")
    assert tex.startswith(r"\begin{table}") and r"\end{table}" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert r"my\_run \& co" in tex  # user text is escaped
    assert f"{100 * res.accuracy:.2f}" in tex
    assert f"{res.mean_latency:.2f}" in tex
    assert f"{100 * res.latency_reduction:.1f}" in tex
    assert f"{res.spikes_per_neuron_at_exit:.3f}" in tex
    # Every body row has three cells.
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert all(line.count("&") == 2 for line in body)


def test_tex_escape_covers_every_special_character():
    assert latex.tex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )


@pytest.mark.parametrize("decoder", tuple(DECODERS))
@pytest.mark.parametrize("kappa", [None, 7.0])
def test_caption_reads_the_decoder_registry(synth, decoder, kappa):
    context = {"decoder": decoder, "kappa": kappa, "split": "test", "threshold": 0.6}
    text = latex.caption(synth, context)
    assert f"decoder {decoder} ({DECODERS[decoder].label})" in text
    label = kappa_label(decoder, kappa, synth.T_max)
    if DECODERS[decoder].uses_kappa:  # every decoder with a kappa shows it, not only paper
        assert label and label in text
    else:
        assert label == "" and "kappa =" not in text
    assert text.endswith("threshold C = 0.6.")


def test_app_and_pack_write_the_same_table(synth):
    charts, res, context = export.collect_charts(synth, "test", threshold=0.6, kappa=5.0)
    files = export.pack_files(synth, charts[:1], res, context, formats=())
    tex = latex.run_table(synth, res, context)
    assert files["metrics.tex"].decode() == tex
    assert rf"\label{{{latex.table_label(synth.name)}}}" in tex
    assert "kappa = 5" in tex


def test_fixed_T_row_holds_no_mean_latency(synth):
    """ "Fixed T reaching the same accuracy" is a baseline length: the policy's column has no
    value there (its mean latency is the latency row's), and the value is the smallest T
    whose fixed-T accuracy reaches the policy's."""
    dec = decode(synth.split("test"))
    res = metrics.evaluate(dec, 0.6)
    rows = {name: (base, dc) for name, base, dc in latex.headline(res, synth.T_max)}
    base, dc = rows["Fixed $T$ reaching the same accuracy"]
    assert dc == "--"
    curve = metrics.baseline_curve(dec)
    reach = [t + 1 for t, a in enumerate(curve) if a >= res.accuracy - 1e-12]
    assert base == (str(reach[0]) if reach else "--")
    assert rows["Mean latency (steps)"] == (str(synth.T_max), f"{res.mean_latency:.2f}")
    tex = latex.latex_table(res, synth.T_max, "c")
    fixed_row = next(line for line in tex.splitlines() if line.startswith("Fixed"))
    assert f"{res.mean_latency:.2f}" not in fixed_row


def test_app_latex_button_writes_the_pack_table(synth):
    """The app's LaTeX button (export.table_tex) and the pack's metrics.tex are one text."""
    charts, res, context = export.collect_charts(synth, "test", threshold=0.6, kappa=5.0)
    files = export.pack_files(synth, charts[:1], res, context, formats=())
    assert export.table_tex(synth, "test", 0.6, "paper", 5.0) == files["metrics.tex"].decode()


def test_table_holds_synaptic_operations_and_spikes_where_the_run_has_them():
    """A run that recorded synaptic operations (noisy_digits) gets them in metrics.tex,
    both columns, with the saving; the numbers are the view's own result's."""
    from pathlib import Path

    from dynconf.report.viewdata import make_view

    run = load_run(Path(__file__).resolve().parents[2] / "cached_runs" / "noisy_digits")
    view = make_view(run, "test")
    res = view.evaluate(0.5)
    assert res.synops_per_sample_at_exit is not None and res.spikes_per_neuron_at_exit is not None
    tex = export.table_tex(run, "test", 0.5, view=view)
    rows = {name: (base, dc) for name, base, dc in latex.headline(res, run.T_max)}
    assert rows["Synaptic operations per image"] == (
        f"{res.synops_per_sample_full:.4g}", f"{res.synops_per_sample_at_exit:.4g}"
    )
    assert rows["Synaptic operations saved (%)"][1] == f"{100 * res.synops_saving:.1f}"
    assert rows["Spikes saved (%)"][1] == f"{100 * res.spike_saving:.1f}"
    assert "Synaptic operations per image" in tex and "Spikes per neuron" in tex
    assert 0 < res.synops_saving < 1

"""Policies: every exit rule of the registry chosen on calibration, compared on the split.

The results table fills in row by row while the policies are fitted (a fit already kept in
the analysis cache is read back at once), then one computed sentence says which rule is
fastest at full accuracy. Column headers are short, each with its meaning as a tooltip, and
a cell with nothing to say shows a dash.
"""

import pandas as pd
import streamlit as st

from dynconf.app import caches, charts, state
from dynconf.app.text import md_escape
from dynconf.core.decoders import DECODERS, kappa_label
from dynconf.core.formatting import pct
from dynconf.core.policies import POLICIES
from dynconf.core.selection import calibration_split
from dynconf.report import figures

DASH = "—"
RESULT_HELP = {
    "policy": "The exit rule (docs/POLICIES.md defines each).",
    "cal acc": "Accuracy on the calibration split, where the rule chose its operating point.",
    "acc": "Accuracy on the evaluation split, with the point chosen on calibration.",
    "latency": "Mean exit step on the evaluation split (steps; lower is faster).",
    "vs thr": "Mean latency divided by the threshold rule's (below 1: faster than it).",
    "gap closed": "Share of the threshold rule's distance to the oracle this rule removes: "
    "(threshold latency - its latency) / (threshold latency - oracle latency). 0 % is the "
    "threshold rule, 100 % the oracle; negative: slower than the threshold rule.",
    "synops saved": "Synaptic operations saved against running every sample to T_max.",
}


def fmt_param(value) -> str:
    """A policy parameter for the table: numbers to 4 digits, sequences shortened."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
        return str(value)
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt_param(v) for v in value[:4])
        return f"[{shown}{', ...' if len(value) > 4 else ''}] ({len(value)} values)"
    return f"{value:.4g}"


def number(value, spec: str) -> str:
    return DASH if value is None else format(value, spec)


def result_row(fit) -> dict:
    """One policy's cells, all text, a dash where there is no number."""
    saved = fit.test.synops_saving
    return {
        "policy": fit.name,
        "cal acc": pct(fit.calibration.accuracy),
        "acc": pct(fit.test.accuracy),
        "latency": number(fit.test.mean_latency, ".3f"),
        "vs thr": number(fit.latency_vs_threshold, ".3f"),
        "gap closed": DASH if fit.gap_closed is None else pct(fit.gap_closed, 1),
        "synops saved": DASH if saved is None else pct(saved, 1),
    }


def oracle_row(orc) -> dict:
    return {"policy": "oracle (stays correct)", "cal acc": DASH, "acc": pct(orc.accuracy),
            "latency": f"{orc.mean_latency:.3f}", "vs thr": DASH, "gap closed": "100 %",
            "synops saved": DASH}  # fmt: skip


def show_results(slot, rows: list[dict], cal: str, split: str) -> None:
    """The results table (short headers, tooltips naming the splits) in ``slot``."""
    order = {name: i for i, name in enumerate(POLICIES)}
    rows = sorted(rows, key=lambda row: order.get(row["policy"], len(order)))
    where = {"cal acc": f" ({cal})", "acc": f" ({split})", "latency": f" ({split})"}
    config = {
        c: st.column_config.TextColumn(c, help=h + where.get(c, ""), width="small")
        for c, h in RESULT_HELP.items()
    }
    config["policy"] = st.column_config.TextColumn("policy", help=RESULT_HELP["policy"])
    # A column with no number in any row (synops of a run that holds none) is left out, so
    # the table fits a projector's 1024 px beside the sidebar.
    columns = [c for c in RESULT_HELP if c == "policy" or any(r[c] != DASH for r in rows)]
    slot.dataframe(pd.DataFrame(rows, columns=columns), hide_index=True,
                   width="stretch", column_config=config)  # fmt: skip


def verdict(comparison, tolerance: float, T_max: int, split: str) -> str:
    """One sentence (markdown, names escaped): the fastest rule that keeps full accuracy on
    the evaluation split (the T_max baseline minus the tolerance), and how the next fastest
    compares with it."""
    split = md_escape(split)
    fits = comparison.fits
    if not fits:
        return "No policy could be fitted on this run."
    target = fits[0].test.baseline_accuracy - tolerance - 1e-12
    full = sorted((f for f in fits if f.test.accuracy >= target), key=lambda f: f.test.mean_latency)
    where = f"At tolerance {100 * tolerance:g} points"
    kappa = comparison.kappa
    at = f" ({kappa_label(comparison.decoder, kappa, T_max)})" if kappa is not None else ""
    if not full:
        best = min(fits, key=lambda f: f.test.mean_latency)
        return (
            f"{where}, no rule keeps the full-length accuracy on {split}; "
            f"{md_escape(best.name)} is the "
            f"fastest ({best.test.mean_latency:.2f} steps at {pct(best.test.accuracy)}){at}."
        )
    best = full[0]
    text = (
        f"{where}, {md_escape(best.name)} is fastest at full accuracy on {split} "
        f"({best.test.mean_latency:.2f} steps, {pct(best.test.accuracy)}){at}"
    )
    if len(full) > 1:
        runner = full[1]
        ratio = runner.test.mean_latency / best.test.mean_latency
        text += f"; {md_escape(runner.name)} is next at {ratio:.2f}x its latency"
    return text + "."


ctx = state.context()
st.title("Exit policies")
st.caption(
    "Each exit rule picks its operating point on the calibration split (the fastest whose "
    "accuracy is at least the full-length baseline minus the tolerance) and is then run "
    "unchanged on the evaluation split. The stays-correct oracle is the latency no causal "
    "rule can beat at full-length accuracy."
)
cal = calibration_split(ctx.run, ctx.split)
if cal is None:
    st.warning(
        f"Run {md_escape(ctx.run.name)} has no calibration split besides "
        f"'{md_escape(ctx.split)}', so no policy can "
        "be fitted. Simulate or import one on the Runs page."
    )
    st.stop()
c1, c2 = st.columns(2)
# The page's controls are in the URL (?policy_tol=, ?auto_kappa=, ?policy=) and come back with it.
tol = state.url_tolerance(
    c1.number_input,
    key="pol_tol",
    param="policy_tol",  # not "tol": that is Threshold selection's, and URLs outlive pages
)
auto = state.url_toggle(
    c2.toggle,
    "Choose kappa on calibration too",
    key="pol_auto_kappa",
    param="auto_kappa",
    disabled=not DECODERS[ctx.decoder].uses_kappa,
    help="Decode the calibration split at kappa = T_max x 1/16 ... 4, fit the threshold rule "
    "on each and keep the fastest that meets the target; every policy then runs at it.",
)
tolerance = tol / 100.0
auto_kappa = auto and DECODERS[ctx.decoder].uses_kappa
analysis = caches.get_analysis(ctx.listing.path, ctx.split, ctx.decoder, ctx.kappa)
caches.get_analysis(ctx.listing.path, cal, ctx.decoder, ctx.kappa)  # decoded under its spinner
verdict_slot, table_slot = st.empty(), st.empty()
streamed: list[dict] = []


def show_fit(fit) -> None:
    """A row as soon as its policy is fitted (the fit runs below, once per view)."""
    streamed.append(result_row(fit))
    show_results(table_slot, streamed, cal, ctx.split)
    verdict_slot.caption(f"Fitting... {len(streamed)} of {len(POLICIES)} rules done.")


comparison = analysis.policy_comparison(cal, tolerance, auto_kappa, on_fit=show_fit)
rows = [result_row(fit) for fit in comparison.fits]
# Policies the library could not fit on this view (e.g. one needing per-step outputs on a
# top-k run) are listed with the reason below the table.
rows.append(oracle_row(comparison.oracle))
show_results(table_slot, rows, cal, ctx.split)
verdict_slot.markdown(f"**{verdict(comparison, tolerance, ctx.run.T_max, ctx.split)}**")
st.caption(
    "**Gap closed**: how much of the threshold rule's distance to the oracle a rule removes, "
    "(threshold latency - its latency) / (threshold latency - oracle latency); 0 % is the "
    "threshold rule itself, 100 % the oracle, and a negative share means slower than the "
    "threshold rule. A dash: no number (the oracle is not fitted on calibration). Hover a "
    "header for its meaning."
)
for name, why in comparison.skipped.items():
    st.caption(f"{md_escape(name)} not run: {md_escape(why)}")

fronts = caches.get_policy_fronts(
    ctx.listing.path, cal, ctx.split, ctx.decoder, ctx.kappa, tolerance, auto_kappa
)
charts.show_figure(
    figures.policy_fronts(
        analysis.baseline,
        fronts,
        oracle=analysis.oracle_curve("stays_correct", "cap"),
        title=f"Exit policy fronts on {ctx.split}, chosen on {cal}",
    ),
    key="policies-fronts",
)
st.caption(
    "Each line is one policy's Pareto front: its operating points (the candidates it sweeps "
    f"on {md_escape(cal)}, at most 200 spread over them) measured on {md_escape(ctx.split)}, "
    "keeping those no other point beats on both axes. The marker in its colour is the point "
    f"chosen on {md_escape(cal)} (the threshold rule's star is drawn on top); where it sits "
    "below its own line, choosing on calibration cost accuracy or steps on this split."
)
how = pd.DataFrame(
    [
        {
            "policy": fit.name,
            "rule": POLICIES[fit.name].summary,
            "parameters": fit.description
            or ", ".join(f"{k} = {fmt_param(v)}" for k, v in fit.params.items()),
            "decoder": f"{fit.decoder} {kappa_label(fit.decoder, fit.kappa, ctx.run.T_max)}",
            "coverage": pct(fit.test.extras["coverage"], 1)
            if "coverage" in fit.test.extras
            else DASH,
        }
        for fit in comparison.fits
    ]
)
st.caption("How each rule was fitted on the calibration split:")
# A static table: the rules and parameters are sentences; it wraps them to the page.
st.table(how, border="horizontal", hide_index=True)
baseline = comparison.fits[0].test.baseline_accuracy if comparison.fits else None
chosen = f" Kappa chosen on calibration: {comparison.kappa:g}." if comparison.kappa_search else ""
st.caption(
    f"Baseline at T = {ctx.run.T_max} on {md_escape(ctx.split)}: "
    f"{DASH if baseline is None else pct(baseline)}. Decoder "
    f"{md_escape(ctx.decoder)} {md_escape(ctx.kappa_label)}; change it in the sidebar."
    f"{chosen} Every policy here is causal and also runs inside a real simulation "
    "(`dynconf.engine.snn.simulate_early_exit`). Definitions: docs/POLICIES.md."
)

st.subheader("One policy's exits, sample by sample")
by_name = {fit.name: fit for fit in comparison.fits}
name = state.url_widget(
    st.selectbox,
    "Policy",
    key="pol_exits_policy",
    param="policy",
    default=next(iter(by_name)),
    options=list(by_name),
)
fit = by_name[name]
res = fit.test
m1, m2, m3 = st.columns(3)  # three short labels fit at 1024 px
m1.metric(f"Accuracy on {ctx.split}", pct(res.accuracy))
m2.metric(f"Mean latency on {ctx.split}", f"{res.mean_latency:.2f}")
m3.metric("Exit before T_max", pct(float((res.exit_steps < ctx.run.T_max).mean()), 1))
where = f"{name} ({fit.description})" if fit.description else name
charts.show_figure(
    figures.exit_histogram(res, ctx.run.T_max, title=f"Exit steps of {where} on {ctx.split}"),
    key="policies-exit-histogram",
)
charts.show_figure(
    figures.exit_scatter(
        res,
        analysis.data.labels,
        analysis.data.ids,
        ctx.run.classes,
        title=f"Exit step of every {ctx.split} sample under {name}",
    ),
    key="policies-exit-scatter",
)

"""Policies: every exit rule of the registry chosen on calibration, compared on the split."""

import pandas as pd
import streamlit as st

from dynconf.core.decoders import DECODERS, kappa_label
from dynconf.core.formatting import pct
from dynconf.core.policies import POLICIES
from dynconf.core.selection import calibration_split
from dynconf.report import figures
from ui import caches, charts, state
from ui.text import md_escape


def fmt_param(value) -> str:
    """A policy parameter for the table: numbers to 4 digits, sequences shortened."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
        return str(value)
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt_param(v) for v in value[:4])
        return f"[{shown}{', ...' if len(value) > 4 else ''}] ({len(value)} values)"
    return f"{value:.4g}"


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
tol = state.url_widget(
    c1.number_input,
    "Tolerance (accuracy points below the baseline)",
    key="pol_tol",
    param="policy_tol",  # not "tol": that is Threshold selection's, and URLs outlive pages
    default=0.0,
    from_url=state.parse_number(0.0, 10.0),
    to_url=lambda v: f"{v:g}",
    min_value=0.0,
    max_value=10.0,
    step=0.1,
    format="%.2f",
)
auto = state.url_widget(
    c2.toggle,
    "Choose kappa on calibration too",
    key="pol_auto_kappa",
    param="auto_kappa",
    default=False,
    from_url=state.parse_flag,
    to_url=state.flag_text,
    disabled=not DECODERS[ctx.decoder].uses_kappa,
    help="Decode the calibration split at kappa = T_max x 1/16 ... 4, fit the threshold rule "
    "on each and keep the fastest that meets the target; every policy then runs at it.",
)
view = (ctx.listing.path, cal, ctx.split, ctx.decoder, ctx.kappa, tol / 100.0)
auto_kappa = auto and DECODERS[ctx.decoder].uses_kappa
comparison = caches.get_policy_comparison(*view, auto_kappa=auto_kappa)
fronts = caches.get_policy_fronts(*view, auto_kappa=auto_kappa)
analysis = caches.get_analysis(ctx.listing.path, ctx.split, ctx.decoder, ctx.kappa)
charts.show_chart(
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
    f"chosen on {md_escape(cal)}; where it sits below its own line, choosing on calibration "
    "cost accuracy or steps on this split."
)
rows = []
for fit in comparison.fits:
    extras = fit.test.extras
    rows.append(
        {
            "policy": fit.name,
            "rule": POLICIES[fit.name].summary,
            "parameters": fit.description
            or ", ".join(f"{k} = {fmt_param(v)}" for k, v in fit.params.items()),
            "decoder": f"{fit.decoder} {kappa_label(fit.decoder, fit.kappa, ctx.run.T_max)}",
            f"accuracy on {cal} (%)": round(100 * fit.calibration.accuracy, 2),
            f"accuracy on {ctx.split} (%)": round(100 * fit.test.accuracy, 2),
            f"mean latency on {ctx.split}": round(fit.test.mean_latency, 3),
            "latency vs threshold": None
            if fit.latency_vs_threshold is None
            else round(fit.latency_vs_threshold, 3),
            "gap to the oracle closed": "n/a" if fit.gap_closed is None else pct(fit.gap_closed, 1),
            "coverage": "" if "coverage" not in extras else pct(extras["coverage"], 1),
            "mean set size": ""
            if "mean_set_size" not in extras
            else f"{extras['mean_set_size']:.2f}",
        }
    )
# Policies the library could not fit on this view (e.g. one needing per-step outputs on a
# top-k run) are listed with the reason, in registry order with the others.
for name, why in comparison.skipped.items():
    rows.append({"policy": name, "rule": POLICIES[name].summary, "parameters": f"not run: {why}"})
order = {name: i for i, name in enumerate(POLICIES)}
rows.sort(key=lambda row: order.get(row["policy"], len(order)))
orc = comparison.oracle
rows.append(
    {
        "policy": "oracle (stays correct)",
        "rule": "knows the label: stops once the answer stays right to T_max",
        "parameters": "",
        f"accuracy on {cal} (%)": None,
        f"accuracy on {ctx.split} (%)": round(100 * orc.accuracy, 2),
        f"mean latency on {ctx.split}": round(orc.mean_latency, 3),
        "latency vs threshold": None,
        "gap to the oracle closed": "",
    }
)
# Two tables that fit the page at 1024 px (one of 11 columns was cut off on the right):
# the results (a data grid, widths in pixels), then how each rule was fitted.
table = pd.DataFrame(rows)
how = ["policy", "rule", "parameters", "decoder", "coverage", "mean set size"]
results = [c for c in table.columns if c not in how[1:]]
widths = {"policy": 150}
st.dataframe(
    table[results],
    hide_index=True,
    width="stretch",
    column_config={c: st.column_config.Column(c, width=widths.get(c, 78)) for c in results},
)
st.caption("How each rule was fitted on the calibration split:")
# A static table: the rules and parameters are sentences; it wraps them to the page.
st.table(table[[c for c in how if c in table]].fillna(""), border="horizontal", hide_index=True)
baseline = comparison.fits[0].test.baseline_accuracy
chosen = f" Kappa chosen on calibration: {comparison.kappa:g}." if comparison.kappa_search else ""
st.caption(
    f"Baseline at T = {ctx.run.T_max} on {md_escape(ctx.split)}: {pct(baseline)}. Decoder "
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
charts.show_chart(
    figures.exit_histogram(res, ctx.run.T_max, title=f"Exit steps of {where} on {ctx.split}"),
    key="policies-exit-histogram",
)
charts.show_chart(
    figures.exit_scatter(
        res,
        analysis.data.labels,
        analysis.data.ids,
        ctx.run.classes,
        title=f"Exit step of every {ctx.split} sample under {name}",
    ),
    key="policies-exit-scatter",
)

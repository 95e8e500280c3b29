"""Oracle: the upper bound of any exit rule (paper Fig. 1) against the current policy."""

import pandas as pd
import streamlit as st

from dynconf.app import charts, state
from dynconf.core.formatting import pct
from dynconf.report import figures

VARIANTS = {
    "first_correct": "first correct (stop at the first right answer)",
    "stays_correct": "stays correct (stop once the answer stays right to T_max)",
}
CONVENTIONS = {
    "cap": "run to the cap (conservative)",
    "step1": "stop at step 1 (omniscient)",
}

ctx = state.context()
an = ctx.analysis
T = ctx.run.T_max
res = an.evaluate(ctx.threshold)

st.title("Oracle upper bound")
st.caption(
    "If an SNN could stop each input at its most appropriate step, how fast could it be? "
    "The oracle knows the label; no real exit rule can beat it."
)
c1, c2 = st.columns(2)
# Every control is in the URL (?oracle=, ?never=, ?all=) and comes back with the page.
variant = state.url_widget(
    c1.radio,
    "Oracle",
    key="oracle_variant",
    param="oracle",
    default="first_correct",
    options=list(VARIANTS),
    format_func=VARIANTS.get,
)
never = state.url_widget(
    c2.radio,
    "Samples never correct at any step",
    key="oracle_never",
    param="never",
    default="cap",
    options=list(CONVENTIONS),
    format_func=CONVENTIONS.get,
    help="They count as wrong either way; this only sets their latency.",
)
show_all = state.url_toggle(
    st.toggle, "Also draw the other oracle variants", key="oracle_all", param="all", default=True
)

chosen = f"oracle: {VARIANTS[variant].split(' (')[0]}, never-correct {never}"
curves = {chosen: an.oracle_curve(variant, never)}
if show_all:
    for v in VARIANTS:
        for n in CONVENTIONS:
            if (v, n) != (variant, never):
                curves[f"oracle: {VARIANTS[v].split(' (')[0]}, never-correct {n}"] = (
                    an.oracle_curve(v, n)
                )

orc = an.oracle(variant, never)
# Two metrics a row: four in a row are cut ("Policy at C = 0....") at 1024 px with the sidebar.
m = [*st.columns(2), *st.columns(2)]
m[0].metric(f"Oracle accuracy (cap {T})", pct(orc.accuracy))
m[1].metric("Oracle mean latency", f"{orc.mean_latency:.2f} steps")
m[2].metric(
    f"Policy at C = {ctx.threshold:.4g}",
    pct(res.accuracy),
    delta=f"{100 * (res.accuracy - orc.accuracy):+.2f} pp vs oracle",
)
m[3].metric(
    "Policy mean latency",
    f"{res.mean_latency:.2f} steps",
    delta=f"{res.mean_latency - orc.mean_latency:+.2f} vs oracle",
    delta_color="inverse",
)

# Drawn with the vendored Plotly.js the explorer has loaded already (dynconf/app/plotlyjs.py):
# Streamlit's own chart would first fetch and parse its full Plotly.js in every new tab.
chart = figures.build_figure(
    "oracle_bound", an, threshold=ctx.threshold, variant=variant, never=never,
    show_all=show_all,
)  # fmt: skip
charts.show_figure(chart, key="oracle-fig1")

st.subheader("All oracle readings at the full length")
rows = []
for v in VARIANTS:
    for n in CONVENTIONS:
        o = an.oracle(v, n)
        rows.append(
            {
                "oracle": v,
                "never-correct samples": n,
                "accuracy (%)": round(100 * o.accuracy, 2),
                "mean latency (steps)": round(o.mean_latency, 3),
                "policy accuracy gap (pp)": round(100 * (o.accuracy - res.accuracy), 2),
                "policy latency gap (steps)": round(res.mean_latency - o.mean_latency, 3),
            }
        )
# A static table: it wraps its headers to the page at 1024 px (a data grid scrolled sideways).
st.table(pd.DataFrame(rows), border="horizontal", hide_index=True)
st.caption(
    "The paper's headline: ResNet-50 on ImageNet, oracle 82.47 % at 4.71 mean steps. "
    "'first correct' stops at the first step whose answer is right; 'stays correct' (as in "
    "SNNCutoff) waits until the answer stays right to T_max. Samples never right count as "
    "wrong; whether they cost the cap or one step is a convention, shown both ways."
)

"""Classes: accuracy and latency per true label at the current threshold, and the confusion of
the answers given at exit (dynconf.core.classes)."""

import numpy as np
import pandas as pd
import streamlit as st

from dynconf.app import charts, state
from dynconf.app.text import md_escape
from dynconf.core.classes import class_metrics, confusion_at_exit
from dynconf.core.formatting import pct
from dynconf.report import figures

MAX_DRAWN = figures.MAX_CLASSES_DRAWN  # classes in the charts; the table has every class

ctx = state.context()
an = ctx.analysis
dec, C, T = an.decoded, ctx.threshold, ctx.run.T_max
names = [str(c) for c in ctx.run.classes]
K = len(names)
res = an.evaluate(C)
table = class_metrics(dec, res, K)

st.title("Classes")
st.caption(
    f"Dynamic Confidence at C = {C:.4g} on '{md_escape(ctx.split)}', class by class: which "
    "labels it answers early and right, which wait, and what the wrong answers are."
)

# Short column names: the whole table fits the main column of a 1024 px screen.
AT_T = f"at T = {T} (%)"
frame = pd.DataFrame(
    {
        "class": names,
        "n": table.n,
        "at exit (%)": 100 * table.accuracy,
        AT_T: 100 * table.accuracy_full,
        "mean exit step": table.mean_latency,
        "never exits": table.never_exits,
    }
)
present = table.n > 0
if present.any():
    acc = np.where(present, table.accuracy, np.inf)
    lat = np.where(present, table.mean_latency, -np.inf)
    worst, slowest = int(np.argmin(acc)), int(np.argmax(lat))
    st.markdown(
        f"Hardest class here: **{md_escape(names[worst], limit=60)}** "
        f"({pct(table.accuracy[worst])} right at exit, {pct(table.accuracy_full[worst])} at "
        f"T = {T}). Slowest: **{md_escape(names[slowest], limit=60)}** (mean exit step "
        f"{table.mean_latency[slowest]:.2f}; {int(table.never_exits[slowest]):,} of its "
        f"{int(table.n[slowest]):,} samples never pass C)."
    )
st.dataframe(
    frame,
    hide_index=True,
    column_config={
        "n": st.column_config.NumberColumn(help="Samples with this true label"),
        "at exit (%)": st.column_config.NumberColumn(
            format="%.2f", help="Accuracy of the answers given at the exit step"
        ),
        AT_T: st.column_config.NumberColumn(
            format="%.2f", help=f"Accuracy when every sample runs all {T} steps"
        ),
        "mean exit step": st.column_config.NumberColumn(format="%.2f"),
        "never exits": st.column_config.NumberColumn(
            help="Samples whose confidence never passes C: they run all steps"
        ),
    },
)

if K > MAX_DRAWN:
    # Many classes: the charts draw the ones answered worst (figures.drawn_classes).
    st.caption(f"The charts show the {MAX_DRAWN} classes with the lowest accuracy at exit.")
charts.show_chart(figures.build_figure("class_accuracy", an, threshold=C), key="classes-accuracy")
charts.show_chart(figures.build_figure("class_latency", an, threshold=C), key="classes-latency")

st.subheader("Answers at exit")
counts = confusion_at_exit(dec.labels, res.predictions, K)
if K <= MAX_DRAWN:
    charts.show_chart(
        figures.build_figure("confusion_at_exit", an, threshold=C), key="classes-confusion"
    )
    st.caption(
        "Row: the true label; column: the answer given at the exit step. A cell's number is "
        "its count of samples, its colour the share of its row."
    )
else:
    off = counts.copy()
    np.fill_diagonal(off, 0)
    top = np.argsort(off, axis=None, kind="stable")[::-1][:20]
    rows = [(names[i // K], names[i % K], int(off.flat[i])) for i in top if off.flat[i] > 0]
    st.caption(f"{K} classes: the 20 most frequent confusions at exit.")
    st.dataframe(
        pd.DataFrame(rows, columns=["true label", "answer at exit", "samples"]),
        hide_index=True,
    )

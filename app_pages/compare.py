"""Compare: runs and decoders on one accuracy-latency plane, latency at matched accuracy."""

import pandas as pd
import streamlit as st

from dynconf.core.compare import CompareEntry, compare_table
from dynconf.core.decoders import DECODERS
from dynconf.core.selection import default_split
from dynconf.errors import DynconfError
from dynconf.report import figures
from ui import caches, charts, state
from ui.text import md_error, md_escape

ctx = state.context()
st.title("Compare runs and decoders")
ok = [item for item in caches.run_listing() if item.ok]
names = [item.name for item in ok]
by_name = {item.name: item for item in ok}
c1, c2 = st.columns(2)
chosen = c1.multiselect("Runs", names, default=[ctx.listing.name], key="cmp_runs")
decoders = c2.multiselect("Decoders", list(DECODERS), default=[ctx.decoder], key="cmp_decoders")
drops = st.multiselect(
    "Matched accuracy: baseline at T_max minus (points)",
    [0.0, 0.1, 0.25, 0.5, 1.0, 2.0],
    default=[0.0, 0.5, 1.0],
    key="cmp_drops",
)
if not chosen or not decoders:
    st.info("Pick at least one run and one decoder.")
    st.stop()

entries = []
for name in chosen:
    try:
        run = caches.get_run(by_name[name].path)
    except DynconfError as exc:  # changed or damaged since it was listed
        st.warning(f"{md_escape(name)} left out: {md_error(exc)}")
        continue
    split = ctx.split if ctx.split in run.split_names else default_split(run)
    for dec in decoders:
        # The sidebar's kappa applies to the current run; other runs use their own T_max.
        kappa = ctx.kappa if (name == ctx.listing.name and DECODERS[dec].uses_kappa) else None
        try:
            an = caches.get_analysis(by_name[name].path, split, dec, kappa)
        except DynconfError as exc:  # e.g. a top-k run cannot feed every decoder
            st.warning(f"{md_escape(name)} · {md_escape(dec)} left out: {md_error(exc)}")
            continue
        entries.append(CompareEntry(f"{name}/{split} · {dec}", an.baseline, an.sweep))
if not entries:
    st.stop()

charts.show_chart(figures.compare(entries), key="compare-plane")
st.subheader("Latency at matched accuracy")
st.caption(
    "For each entry, the lowest mean latency of Dynamic Confidence (over the threshold sweep) "
    "that reaches its own full-length baseline accuracy minus the given points, next to the "
    "fixed T the baseline needs for the same accuracy."
)
table = compare_table(entries, [d / 100 for d in sorted(drops)])
st.dataframe(pd.DataFrame(table), hide_index=True)

"""Compare: runs, decoders and kappas on one accuracy-latency plane, latency at matched
accuracy.

Every control is in the URL (?runs=, ?decoders=, ?kappas=, ?drops=) and comes back with the
page. Entries are run x decoder x kappa (kappa only for decoders that take one); each label
names its kappa, as the figure's legend and the table must tell two kappas apart.
"""

import pandas as pd
import streamlit as st

from dynconf.app import caches, charts, state
from dynconf.app.text import md_error, md_escape
from dynconf.core.compare import CompareEntry, compare_table
from dynconf.core.decoders import DECODERS
from dynconf.core.selection import default_split
from dynconf.errors import DynconfError
from dynconf.report import figures

DROPS = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0]


def parse_kappas(text: str) -> str:
    """The kappas box: comma-separated numbers > 0 (empty: each run's T_max). A text with
    bad parts raises state.PartialValue naming each, carrying the good ones."""
    good, bad = [], []
    for part in filter(None, (p.strip() for p in text.split(","))):
        value = state._parse_float(part)
        if value is None:
            bad.append(f"{part} is not a number")
        elif value <= 0:
            bad.append(f"kappa {part} is not > 0")
        else:
            good.append(part)
    if bad:
        raise state.PartialValue(", ".join(good), "; ".join(bad))
    return text


ctx = state.context()
st.title("Compare runs and decoders")
ok = [item for item in caches.run_listing() if item.ok]
names = [item.name for item in ok]
by_name = {item.name: item for item in ok}
c1, c2, c3 = st.columns([2, 2, 1])
chosen = state.url_widget(
    c1.multiselect, "Runs", key="cmp_runs", param="runs", default=[ctx.listing.name],
    options=names,
)  # fmt: skip
decoders = state.url_widget(
    c2.multiselect, "Decoders", key="cmp_decoders", param="decoders", default=[ctx.decoder],
    options=list(DECODERS),
)  # fmt: skip
kappa_text = state.url_widget(
    c3.text_input,
    "kappa values",
    key="cmp_kappas",
    param="kappas",
    default="" if ctx.kappa is None else f"{ctx.kappa:g}",
    from_url=parse_kappas,
    empty_means="each run's T_max",
    placeholder="T_max",
    help="Comma-separated, e.g. 8, 64; empty means each run's T_max. Used by the decoders "
    "that take a kappa (softmax scale), ignored by the others.",
)
drops = state.url_widget(
    st.multiselect,
    "Matched accuracy: baseline at T_max minus (points)",
    key="cmp_drops",
    param="drops",
    default=[0.0, 0.5, 1.0],
    options=DROPS,
    from_url=lambda text: [d for d in DROPS if any(f"{d:g}" == t.strip() for t in text.split(","))],
    to_url=lambda values: ",".join(f"{d:g}" for d in values),
)
try:
    kappas = [float(k) for k in parse_kappas(kappa_text).split(",") if k.strip()]
except state.PartialValue as exc:
    kappas = [float(k) for k in exc.value.split(",") if k.strip()]
    shown = exc.value or "each run's T_max"
    st.error(f"kappa values {md_escape(kappa_text, limit=80)}: {md_escape(exc)}; "
             f"showing {md_escape(shown)}.")  # fmt: skip
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
        for kappa in (kappas or [None]) if DECODERS[dec].uses_kappa else [None]:
            label = figures.compare_label(name, split, dec, kappa, run.T_max)
            try:
                an = caches.get_analysis(by_name[name].path, split, dec, kappa)
            except DynconfError as exc:  # e.g. a top-k run cannot feed every decoder
                st.warning(f"{md_escape(label)} left out: {md_error(exc)}")
                continue
            entries.append(CompareEntry(label, an.baseline, an.sweep))
if not entries:
    st.stop()

# The legend names each kappa as this page asked for it, as the table below does: the views
# are shared between sessions, so a label is never read off one.
charts.show_chart(figures.compare(entries), key="compare-plane")
st.subheader("Latency at matched accuracy")
st.caption(
    "For each entry, the lowest mean latency of Dynamic Confidence (over the threshold sweep) "
    "that reaches its own full-length baseline accuracy minus the given points, next to the "
    "fixed T the baseline needs for the same accuracy."
)
rows = compare_table(entries, [d / 100 for d in sorted(drops)])
# A static table: it wraps long labels and headers to the page's width, so no column is cut
# off on the right (a data grid of 2 + 2 x drops columns scrolls sideways below ~900 px).
table = pd.DataFrame(
    [
        {
            k: ("not reached" if v is None else v if isinstance(v, str) else f"{v:.2f}")
            if not k.startswith("fixed T") or v is None
            else str(int(v))
            for k, v in row.items()
        }
        for row in rows
    ]
)
st.table(table, border="horizontal", hide_index=True)

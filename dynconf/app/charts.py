"""Drawing charts: every figure with PNG/SVG/PDF/CSV downloads, the figure pack, chart clicks.

The screen shows exactly the exported figure (``theme=None``), and images are rendered only
when a download button is clicked (deferred data), so drawing a page never waits for kaleido.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from dynconf.app.state import Context
from dynconf.core.selection import calibration_split

if TYPE_CHECKING:
    from dynconf.report import figures

# dynconf.report (Plotly, pandas) loads in the functions that draw, not on import: the
# explorer sends its first chart before any of them runs.


def show_chart(chart: figures.Chart, key: str, **kwargs: Any) -> Any:
    """Draw a chart (exactly the exported figure) with its download buttons underneath."""
    event = st.plotly_chart(
        chart.figure,
        theme=None,  # the exported image and the screen must look the same
        key=key,
        config={"displaylogo": False},
        **kwargs,
    )
    download_row(chart, key)
    return event


def show_figure(chart: figures.Chart, key: str) -> None:
    """Draw a chart with the vendored Plotly.js (dynconf/app/plotlyjs.py), its download
    buttons underneath: a new tab then skips Streamlit's own, four times larger, Plotly.js.
    For charts whose clicks the page does not read."""
    from dynconf.app import plotlyjs

    plotlyjs.figure(chart.figure, key=key, config={"displaylogo": False})
    download_row(chart, key)


def clicked_position(event: Any, where: str) -> int | None:
    """The split position of a newly clicked exit-scatter point, else None.

    A chart selection persists across reruns; only a selection that differs from the last
    one handled here counts, so typing another sample number is not undone by an old click.
    """
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points or "customdata" not in points[0]:
        st.session_state.pop(f"_click_{where}", None)
        return None
    data = points[0]["customdata"]
    # Numeric customdata travels as a typed array; a selected row then arrives as
    # {"0": .., "1": ..} rather than a list.
    pos = int(data[0] if isinstance(data, list | tuple) else data.get("0", data.get(0)))
    if st.session_state.get(f"_click_{where}") == pos:
        return None
    st.session_state[f"_click_{where}"] = pos
    return pos


PRESET_KEY = "export_preset"  # the page's chosen figure preset, shared by every button


def preset_menu(key: str, where: Any = st) -> str:
    """The figure preset for downloads (screen, slides, paper-1col, paper-2col).

    One choice for the whole session in ``st.session_state["export_preset"]``; each row has
    its own small menu showing it (a widget key must be unique on a page), and choosing in
    any one of them changes it for all.
    """
    from dynconf.report import presets

    names = list(presets.preset_names())
    current = st.session_state.get(PRESET_KEY, presets.DEFAULT_PRESET)
    if current not in names:
        current = presets.DEFAULT_PRESET
    wkey = f"{key}-preset"
    st.session_state[wkey] = current  # follow a choice made in another row

    def chosen() -> None:
        st.session_state[PRESET_KEY] = st.session_state[wkey]

    where.selectbox(
        "Figure preset",
        names,
        key=wkey,
        on_change=chosen,
        label_visibility="collapsed",
        help="Size and fonts of the downloaded figures (the same as `dynconf export "
        "--preset`): "
        + "; ".join(f"{n}: {presets.get_preset(n).description}" for n in names)
        + ".",
        width=150,  # the preset's name only: its description is in the help
    )
    st.session_state[PRESET_KEY] = current
    return current


def download_row(chart: figures.Chart, key: str) -> None:
    """PNG/SVG/PDF/CSV buttons in one wrapping row under a chart, and the preset menu.

    The images are ``export.figure_bytes(chart.figure, fmt, preset)``: the very function the
    figure pack and ``dynconf export`` draw with, so a download is the exported figure.
    """
    from dynconf.report import export

    row = st.container(horizontal=True, gap="small")
    fig = chart.figure
    preset = preset_menu(key, row)
    for fmt in export.FORMATS:
        row.download_button(
            fmt.upper(),
            # Rendering costs ~0.3 s per image, so it happens only on click, off the script
            # thread (deferred data).
            data=lambda fmt=fmt: export.figure_bytes(fig, fmt, preset),
            file_name=f"{chart.key}.{fmt}",
            mime=export.MIME[fmt],
            key=f"{key}-dl-{fmt}",
            on_click="ignore",
            icon=":material/download:",
            type="tertiary",
        )
    row.download_button(
        "CSV",
        data=chart.csv,  # deferred too: a 10k-sample table is not built on every rerun
        file_name=f"{chart.key}.csv",
        mime=export.MIME["csv"],
        key=f"{key}-dl-csv",
        on_click="ignore",
        icon=":material/table:",
        type="tertiary",
    )


def pack_buttons(ctx: Context, key: str, res: Any) -> None:
    """One-click figure pack (ZIP, the same set as ``dynconf export``) and LaTeX table.

    Both draw from the page's cached view (``ctx.analysis``): its decoded split, the
    threshold chosen on calibration and the fitted policies are the ones the pages show, so
    building the pack computes only what no page has yet, and renders the images.
    """
    from dynconf.report import export

    cal = calibration_split(ctx.run, ctx.split)
    stem = f"{ctx.listing.name}_{ctx.split}_{ctx.decoder}_C{ctx.threshold:.4g}"
    # One wrapping row sized by its content: columns cut "Figure pack (ZIP)" at 1024 px.
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    c0 = c1 = c2 = row
    preset = preset_menu(f"{key}-pack", c0)

    # The deferred builders hold the context, not the view: Streamlit keeps them as long as
    # the session, and the context lets the app's cache evict the view meanwhile.
    def build_pack() -> bytes:
        return export.zip_bytes(figure_pack(ctx.analysis, ctx.threshold, cal, preset))

    c1.download_button(
        "Figure pack (ZIP)",
        data=build_pack,
        file_name=f"{stem}_{preset}.zip",
        mime=export.MIME["zip"],
        key=f"{key}-pack",
        on_click="ignore",
        icon=":material/folder_zip:",
        help="Every figure as PNG, SVG and PDF in the chosen preset with its CSV, metrics.tex "
        "and metrics.json: the same files as `python -m dynconf export --preset`.",
    )
    c2.download_button(
        "LaTeX table",
        data=lambda: export.table_tex(  # exactly the pack's metrics.tex
            ctx.run, ctx.split, ctx.threshold, ctx.decoder, ctx.kappa, view=ctx.analysis
        ),
        file_name=f"{stem}.tex",
        mime=export.MIME["tex"],
        key=f"{key}-tex",
        on_click="ignore",
        icon=":material/functions:",
    )


def figure_pack(view: Any, threshold: float, calibration: str | None, preset: str) -> dict:
    """File name -> bytes of the figure pack of ``view`` at ``threshold``: every page's
    figures (dynconf.report.export.collect_figures), their CSV, metrics.tex and .json."""
    from dynconf.report import export

    charts, result, info = export.collect_figures(view, threshold, calibration)
    return export.pack_files(view.run, charts, result, info, preset=preset)

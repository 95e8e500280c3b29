"""Plotly figures and static export for the app and the command line (no torch, no Streamlit).

style.py (palette, template, Chart, builder) -> traces.py (traces several charts share) ->
one module per chart family (plane, exits, thresholds, samples, overview), gathered in
figures.py; export.py (kaleido images, the chart set, the figure pack) and latex.py (table,
caption) turn them into files.
"""

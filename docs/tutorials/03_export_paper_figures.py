# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Export paper figures
#
# Every figure of the dashboard can be written as PDF, SVG or PNG in a paper preset
# (`paper-1col` is 3.3 in wide, `paper-2col` 7 in), with the numbers it draws as CSV.
# Static images are drawn by kaleido, which uses the Chromium installed on the machine.

# %%
from pathlib import Path

import dynconf
from dynconf.report.export import figure_bytes
from dynconf.report.presets import preset_names

run = dynconf.load("noisy_digits")
chosen = run.select(calibration="calibration", test="test")
threshold = float(chosen.threshold)
preset_names()

# %% [markdown]
# ## One figure, its data and its file

# %%
out = Path("figures")
out.mkdir(exist_ok=True)
chart = run.chart("accuracy_latency", threshold=threshold)
(out / "accuracy_latency.csv").write_bytes(chart.csv())
pdf = figure_bytes(chart.figure, "pdf", "paper-1col")
(out / "accuracy_latency.pdf").write_bytes(pdf)
assert pdf.startswith(b"%PDF")
chart.figure

# %% [markdown]
# ## The paper's figures: oracle bound, threshold choice, exits

# %%
figures = {
    "oracle_bound": run.figure("oracle_bound"),
    "pareto_selection": run.figure("pareto_selection", calibration="calibration"),
    "exit_histogram": run.figure("exit_histogram", threshold=threshold),
}
for name, figure in figures.items():
    svg = figure_bytes(figure, "svg", "paper-2col")
    (out / f"{name}.svg").write_bytes(svg)
    assert b"<svg" in svg[:400]
sorted(p.name for p in out.iterdir())

# %% [markdown]
# ## Everything at once
#
# `dynconf export` writes every figure of every page, its CSV and a LaTeX table of the
# numbers, in one preset:
#
# ```bash
# dynconf export noisy_digits --out figures/ --preset paper-1col --formats pdf
# ```
#
# The names `run.figure` knows:

# %%
dynconf.figure_names()

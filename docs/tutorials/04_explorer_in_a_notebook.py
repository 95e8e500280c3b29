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
# # The threshold explorer in a notebook, and as one HTML file
#
# `dynconf.explore` shows the dashboard's threshold explorer inside the notebook: the slider,
# the metrics and the four charts, computed in the browser from each sample's records with
# the library's arithmetic. Its `threshold` follows the slider (when you let go of it) and
# moves it when you set it; `result` is the library's result at that threshold.

# %%
from pathlib import Path

import dynconf
from dynconf.report import html

w = dynconf.explore("noisy_digits", split="test")  # C starts where calibration chose it
w

# %%
print(f"C = {w.threshold:.4f}: accuracy {w.result.accuracy:.4f}, "
      f"{w.result.mean_latency:.2f} mean steps")

# %% [markdown]
# Setting the threshold from Python moves the slider; a value off the slider's 0.005 grid is
# shown exactly too (the widget sends the library's exit steps with it).

# %%
w.threshold = 0.6
print(w.result.threshold, f"{w.result.accuracy:.4f}", f"{w.result.mean_latency:.2f}")

# %% [markdown]
# ## One file to share
#
# The same explorer, the exit-policy and per-class tables and the run's provenance, in one
# HTML file that opens in any browser with no server (`dynconf export RUN --html FILE` on
# the command line).

# %%
run = dynconf.load("noisy_digits").stored
text = html.build_report(run, "test", ["paper"], [None], calibration="calibration")
path = html.write_report(Path("noisy_digits_explorer.html"), text)
print(path, f"{path.stat().st_size / 1e6:.2f} MB")

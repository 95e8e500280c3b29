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
# # Explore a shipped run
#
# A *run* holds a spiking network's output at every time step for every sample of its
# splits. Every number below is computed from those cached outputs, so nothing here
# simulates a network: it runs in seconds on any machine.
#
# `noisy_digits` is installed with dynconf: a small QCFS CNN, converted to an SNN and
# simulated for 64 steps on sklearn's digits with fixed pixel noise.

# %%
import dynconf

run = dynconf.load("noisy_digits")  # a run folder, or the name of a run dynconf knows
run

# %% [markdown]
# ## One threshold
#
# Dynamic Confidence stops a sample at the first step whose confidence
# `c_t = max softmax(S_t / kappa)` passes the threshold C (docs/METHOD.md, sections 2 and 3).

# %%
result = run.evaluate(split="test", threshold=0.5)
result

# %%
print(f"accuracy {result.accuracy:.4f} at {result.mean_latency:.2f} mean steps")
print("first exit steps:", result.exit_steps[:10])

# %% [markdown]
# The same run without early exit: C = 1 never passes, so every sample runs all 64 steps.

# %%
full = run.evaluate(split="test", threshold=1.0)
assert full.mean_latency == run.T_max
assert result.mean_latency < full.mean_latency
full.accuracy, result.accuracy

# %% [markdown]
# ## Every threshold, and the Pareto front

# %%
sweep = run.sweep(split="test")
front = sweep[sweep.on_front].sort_values("mean_latency")
front.head(10)

# %% [markdown]
# ## Choosing C without looking at the test split
#
# The threshold is chosen on the calibration split (the fastest C whose calibration accuracy
# reaches the full-length baseline) and only then reported on test.

# %%
chosen = run.select(calibration="calibration", test="test")
chosen

# %% [markdown]
# ## How far from the best possible stopping rule?
#
# The oracle stops every sample at the first step that is right: no causal rule can beat it.

# %%
oracle = run.oracle(split="test")
oracle

# %%
assert oracle.loc["first_correct/cap", "accuracy"] >= chosen.test.accuracy

# %% [markdown]
# ## Other decoders
#
# The confidence can be read in other ways; each trades accuracy for latency differently.

# %%
for decoder in ("paper", "mean", "entropy", "margin"):
    res = run.evaluate(split="test", threshold=0.5, decoder=decoder)
    print(f"{decoder:8s} accuracy {res.accuracy:.4f}  mean steps {res.mean_latency:6.2f}")

# %% [markdown]
# ## The dashboard's figures
#
# `run.figure(name)` returns the Plotly figure the dashboard draws; `dynconf.figure_names()`
# lists them all.

# %%
fig = run.figure("accuracy_latency", threshold=float(chosen.threshold))
fig

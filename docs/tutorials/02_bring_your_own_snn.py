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
# # Bring your own SNN
#
# Train a small SpikingJelly LIF network on sklearn's digits for a few seconds, record its
# output at every step into a run with `dynconf.record_run`, choose the threshold C on the
# calibration split and compare exit policies on the test split.
#
# Needs `pip install dynconf[frameworks]` (SpikingJelly, snnTorch). The same works with an
# snnTorch network, or with any object that has `step(x)` and `reset()`.

# %%
import numpy as np
import torch
from sklearn.datasets import load_digits
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

import dynconf

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # pixels in [0, 1]
y = torch.tensor(digits.target)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, calibration, test = order[:1200], order[1200:1500], order[1500:]
len(train), len(calibration), len(test)

# %% [markdown]
# ## A LIF network, trained with surrogate gradients
#
# Multi-step mode: the network takes `[T, B, 64]` and returns `[T, B, 10]`. Training feeds
# the same image for 8 steps and reads the mean output.

# %%
TRAIN_STEPS = 8
net = nn.Sequential(
    layer.Linear(64, 128),
    neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True),
    layer.Linear(128, 10),
)
functional.set_step_mode(net, "m")
optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
for _epoch in range(8):
    for batch in train[torch.randperm(len(train))].split(64):
        functional.reset_net(net)
        frames = x[batch].unsqueeze(0).repeat(TRAIN_STEPS, 1, 1)
        loss = nn.functional.cross_entropy(net(frames).mean(0), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
functional.reset_net(net)

with torch.no_grad():
    frames = x[test].unsqueeze(0).repeat(TRAIN_STEPS, 1, 1)
    own_accuracy = (net(frames).mean(0).argmax(1) == y[test]).float().mean().item()
    functional.reset_net(net)
print(f"test accuracy in its own loop: {own_accuracy:.4f}")

# %% [markdown]
# ## Record it
#
# `record_run` resets the network, feeds every batch for `T` steps and keeps each step's
# output, and counts the hidden spikes. Batches are `(x, y)` pairs; one iterable per split.

# %%
def batches(index, size=100):
    return [(x[part], y[part]) for part in index.split(size)]


recorded = dynconf.record_run(
    net,
    {"calibration": batches(calibration), "test": batches(test)},
    T=16,
    out="runs/my_lif_digits",
    classes=[str(d) for d in range(10)],
    dataset="digits",
    model_name="SpikingJelly LIF 64-128-10",
    progress=False,
    overwrite=True,
)
run = dynconf.load("runs/my_lif_digits")
run

# %% [markdown]
# Run to the end (C = 1), the recorded network answers as it does in its own loop after
# 16 steps; with early exit it stops much sooner.

# %%
full = run.evaluate(split="test", threshold=1.0)
assert full.mean_latency == 16
print(f"recorded, all 16 steps: {full.accuracy:.4f}")

# %% [markdown]
# ## Choose C on calibration, report it on test

# %%
chosen = run.select(calibration="calibration", test="test")
chosen

# %%
assert chosen.test.mean_latency < 16
on_test = chosen.test
print(f"C = {chosen.threshold:.4f}: {on_test.accuracy:.4f} at {on_test.mean_latency:.2f} steps")

# %% [markdown]
# ## Compare exit policies
#
# Every registered policy is fitted on the calibration split the same way and reported on
# test, beside the stays-correct oracle (docs/POLICIES.md).

# %%
table = run.policies(calibration="calibration", test="test")
table[["accuracy", "mean_latency"]]

# %%
assert {"threshold", "patience", "oracle"} <= set(table.index)
assert np.isfinite(table["mean_latency"].to_numpy(dtype=float)).all()

# %% [markdown]
# The run is an ordinary folder: `dynconf app --runs runs` shows it in the dashboard, and
# `dynconf info runs/my_lif_digits` describes it.

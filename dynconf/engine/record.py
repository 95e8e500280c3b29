"""Record a spiking network (SpikingJelly, snnTorch, dynconf's own QCFS SNN, or any
step/reset object) into a run: the time loop, the resets, the spike counting and the run
format done once.

``record_run(model, batches, T=32, out=...)`` drives the network for T steps on every batch,
stores the per-step outputs (not accumulated) and the hidden spikes of every sample, and
returns the run (``dynconf.core.format.Run``), ready for the decoders, the metrics and the
app. ``batches`` yields ``(x, y)`` or ``(x, y, ids)``; a mapping ``{split: batches}``
records several splits (a calibration split beside the test split) in one call. How the
inputs become frames is the encoder (frameworks/encoders.py), how the network is stepped and
reset is its framework's adapter (frameworks/), detected unless ``framework=`` says. The
`simulate` command is this function with the ``qcfs`` adapter (engine/simulate.py).

Each finished batch is written at once to a hidden work folder beside the run and a killed
recording resumes where it stopped when the same call is made again (engine/writer.py: the
one writer of every run, with the torchrun merge, the run lock and the provenance). What was
recorded and how (framework and version, step mode, readout, encoder, seed, T, which neuron
modules were counted as hidden) goes into the run's meta under ``recording``.

Synaptic operations per step and sample (``synops``, engine/synops.py) are counted with
forward pre-hooks on the network's Linear/Conv layers, where the framework has neuron modules
(SpikingJelly, snnTorch, QCFS; not a step/reset callable).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dynconf.engine.batches import batch_digest, model_fingerprint  # noqa: F401 (public)
from dynconf.engine.distributed import current_world, ensure_group
from dynconf.engine.frameworks import Adapter, Frames, make_adapter, poisson_seed
from dynconf.engine.frameworks.encoders import make_encoder
from dynconf.engine.writer import RunWriter, accuracy_by_T, check_destination, check_splits
from dynconf.errors import DataError

if TYPE_CHECKING:
    from dynconf.core.format import Run

SETTINGS_WHAT = (
    "recording with other settings "
    "(model weights, framework, encoder, T, seed, splits or what is counted)"
)


def record_run(
    model, batches: Iterable | Mapping[str, Iterable], T: int = 32,
    out: str | Path = "work_runs/my_snn", split: str = "test", framework: str = "auto",
    encoder="direct", classes: list[str] | None = None, dataset: str | None = None,
    model_name: str | None = None, count_spikes: bool = True, *, count_synops: bool = True,
    readout=None, step_mode: str | None = None, steps_itself: bool = False, seed: int = 0,
    neurons: int | None = None, progress: bool = True, progress_file=None,
    overwrite: bool = False, name: str | None = None, extra_meta: Mapping | None = None,
    command: str | None = None, adapter: Adapter | None = None,
    settings_extra: Mapping | None = None, created_extra: Mapping | None = None,
    extra_files: Mapping | None = None, recording_extra: Mapping | None = None,
) -> Run:  # fmt: skip
    """Record ``model`` on ``batches`` for ``T`` steps into the run ``out`` and return it.

    model: a ``torch.nn.Module`` built with SpikingJelly or snnTorch neurons, a dynconf
        ``SpikingNetwork``, or (framework ``"callable"``) any object with
        ``step(x_t) -> logits_t`` and ``reset()``.
    batches: an iterable of ``(x, y)`` or ``(x, y, ids)`` recorded as split ``split``, or
        ``{split name: iterable}`` for several splits in one run (in that order). ``x`` is
        ``[B, ...]`` (``[B, T, ...]`` for ``encoder="sequence"``), ``y`` the labels ``[B]``,
        ``ids`` sample ids (default: the position in the split).
    framework: ``"auto"`` (detected, and said on stderr and in the meta), ``"spikingjelly"``,
        ``"snntorch"``, ``"qcfs"`` or ``"callable"``.
    encoder: ``"direct"``, ``"poisson"`` (rate coding, seeded by ``seed``), ``"sequence"``,
        an ``Encoder`` or a callable ``f(x, t) -> frame_t`` (frameworks/encoders.py).
    count_spikes / count_synops: count hidden spikes (neuron modules; the output layer is not
        hidden) and synaptic operations (engine/synops.py) per step and sample.
    readout: snnTorch: ``"membrane"``, ``"spikes"`` or ``"output"``; any framework: a
        callable turning the model's return value into class scores ``[B, K]``.
    step_mode: SpikingJelly ``"s"`` or ``"m"`` when the neuron modules do not say it.
    steps_itself: the model's forward loops over time itself (takes ``[B, ...]``, returns
        the mean over its T steps): the per-step outputs are taken from a hook
        (frameworks/selfstepping.py).
    neurons: the hidden neuron count to record (default: from the counted modules).
    adapter: a ready adapter (overrides framework, readout, step_mode and the counting).
    settings_extra / created_extra / recording_extra / extra_files: what a caller such as
    `simulate` adds to the claimed settings, the ``created`` and ``recording`` blocks of the
    meta and the run's files (the `record` command: the input transform).
    The network is run in eval mode without gradients; its mode is restored afterwards.
    """
    import torch

    T = _check_T(T)
    encoding = make_encoder(encoder)
    plan = dict(batches) if isinstance(batches, Mapping) else {split: batches}
    check_splits(plan)
    out = Path(out)
    check_destination(out, overwrite)
    if adapter is None:
        adapter = make_adapter(model, framework, step_mode=step_mode, readout=readout,
                               count_spikes=count_spikes, count_synops=count_synops,
                               steps_itself=steps_itself)  # fmt: skip
    device = adapter.device
    world = ensure_group(current_world(), device)
    settings = _settings(adapter, model, encoding, T, seed, plan, settings_extra)
    writer = RunWriter(out, T=T, world=world, settings=settings, what=SETTINGS_WHAT,
                       overwrite=overwrite, device=str(device), progress=progress,
                       progress_file=progress_file)  # fmt: skip

    def compute(x, y, split_name: str, index: int) -> dict:
        frames = Frames(x.to(device), T, encoding, seed=poisson_seed(seed, split_name, index))
        return _part_arrays(adapter, frames, y, classes)

    def on_first(bar) -> None:
        if progress and world.main:  # the first batch showed what was detected
            bar.write(describe(adapter, encoding.name, T), file=sys.stderr)

    try:
        with torch.no_grad(), _eval_mode(model):
            writer.record(plan, compute, on_first)
    finally:
        adapter.close()
    merged = writer.merge()
    if merged is None:  # another rank than 0: rank 0 writes the run
        return writer.finish(None, None)
    meta = _meta(writer, merged, adapter, model, encoding.name, T, seed, classes, dataset,
                 model_name, neurons, name, extra_meta, command, created_extra)  # fmt: skip
    meta["recording"].update(recording_extra or {}, torch_version=torch.__version__)
    return writer.finish(meta, merged["arrays"], extra_files)


@contextlib.contextmanager
def _eval_mode(model):
    """The model in eval mode while it records; its own mode afterwards."""
    was_training = getattr(model, "training", None)
    if callable(getattr(model, "eval", None)):
        model.eval()
    try:
        yield
    finally:
        if was_training is not None and callable(getattr(model, "train", None)):
            model.train(was_training)


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise DataError(f"T must be a whole number of steps, at least 1 (got {T!r})")
    return int(T)


def _settings(adapter, model, encoding, T, seed, plan, extra) -> dict:
    """What makes two recordings the same job (claimed in the work folder)."""
    return {
        "framework": adapter.name,
        "step_mode": adapter.step_mode,
        "readout": adapter.readout_name(),
        "encoder": encoding.name,
        "T": T,
        "seed": int(seed),
        "count_spikes": bool(adapter.count_spikes),
        "count_synops": bool(adapter.count_synops),
        "splits": list(plan),
        "model": model_fingerprint(model),
        **dict(extra or {}),
    }


def _part_arrays(adapter, frames, labels, classes) -> dict:
    """One batch's arrays for its part: outputs, spikes, synops, counted layers, extras."""
    outputs, spikes, synops = adapter.record_batch(frames)
    if classes is not None and outputs.shape[2] != len(classes):
        raise _classes_error(classes, outputs.shape[2])
    arrays: dict[str, Any] = {"outputs": outputs.numpy()}
    if spikes is not None:
        arrays["spikes"] = spikes.numpy()
    if synops is not None:
        arrays["synops"] = synops.numpy()
    if adapter.counter is not None:  # which layers counted (for a resume)
        import json

        layers = {
            "hidden": adapter.counter.hidden_layers(),
            "output": list(adapter.counter.output_layers or []),
        }
        arrays["layers"] = np.array(json.dumps(layers))
    for key, value in adapter.extras(frames.x, labels).items():
        arrays[f"extra_{key}"] = np.float64(value)
    return arrays


def _meta(writer, merged, adapter, model, encoder, T, seed, classes, dataset, model_name,
          neurons, name, extra_meta, command, created_extra) -> dict:  # fmt: skip
    """The run's meta: what was recorded, how, and by which command."""
    arrays = merged["arrays"]
    K = _check_classes(arrays)
    if classes is not None and len(classes) != K:
        raise _classes_error(classes, K)
    info = adapter.describe()
    info.update(encoder=encoder, seed=int(seed), T=T, device=writer.device)
    hidden = _hidden_layers(adapter, merged["layers"], info)
    for role in ("spikes", "synops"):
        recorded = all(role in a for a in arrays.values())
        info[role] = "recorded" if recorded else "not recorded"
        if not recorded:
            for a in arrays.values():
                a.pop(role, None)
    if adapter.synops is not None:
        info["synops_layers"] = sorted(adapter.synops.counted)
    hidden_neurons = neurons if neurons is not None else (sum(hidden.values()) or None)
    hidden_neurons = hidden_neurons or adapter.hidden_neurons()
    meta: dict[str, Any] = {
        "name": name or writer.out.name,
        "dataset": dataset or "unknown",
        "model": model_name or f"{type(model).__name__} ({adapter.label})",
        "T_max": T,
        "classes": [str(c) for c in classes] if classes is not None else [str(k) for k in range(K)],
        "recording": info,
        "snn_accuracy_by_T": {
            s: accuracy_by_T(a["outputs"], a["labels"]) for s, a in arrays.items()
        },
        "created": writer.created(
            merged,
            command or _call_text(info, encoder, T, list(arrays)),
            int(seed),
            adapter.seconds_key,
            **dict(created_extra or {}),
        ),
        **dict(extra_meta or {}),
    }
    if hidden_neurons:
        meta["neurons"] = int(hidden_neurons)
    sizes = {s: len(a["labels"]) for s, a in arrays.items()}
    meta.update(adapter.run_meta(merged["extras"], sizes))
    return meta


def _hidden_layers(adapter, layers: dict, info: dict) -> dict:
    """The hidden layers counted: this process's counter's, else (every batch of rank 0
    resumed) those the parts recorded; both lists go into ``info``."""
    if adapter.counter is None:
        return {}
    seen = adapter.counter.output_layers is not None
    hidden = adapter.counter.hidden_layers() if seen else dict(layers.get("hidden", {}))
    info["spike_layers"] = hidden
    output = adapter.counter.output_layers if seen else layers.get("output")
    info["output_layers"] = list(output or [])
    return hidden


def describe(adapter, encoder: str, T: int) -> str:
    """The one line that says what was detected (printed when recording starts)."""
    info = adapter.describe()
    version = f" {info['framework_version']}" if info.get("framework_version") else ""
    text = f"record: {adapter.label}{version}, {adapter.step_mode} network"
    if adapter.steps_itself:
        text += " stepping itself"
    counter = adapter.counter
    if counter is not None:
        hidden = counter.hidden_layers()
        text += f", hidden spikes counted on {len(hidden)} neuron module(s)"
        text += f" ({sum(hidden.values())} neurons)"
        if counter.output_layers:
            text += f", output layer {', '.join(counter.output_layers)} not counted"
    if adapter.synops is not None:
        text += f", synaptic operations counted on {len(adapter.synops.counted)} layer(s)"
    text += f"; readout {adapter.readout_name()}; encoder {encoder}; T = {T}"
    return text


def _check_classes(arrays: Mapping[str, Mapping[str, np.ndarray]]) -> int:
    K = {s: a["outputs"].shape[2] for s, a in arrays.items()}
    if len(set(K.values())) > 1:
        raise DataError(f"the splits' outputs have different numbers of classes: {K}")
    K_value = next(iter(K.values()))
    for s, a in arrays.items():
        bad = a["labels"][(a["labels"] < 0) | (a["labels"] >= K_value)]
        if bad.size:
            raise DataError(
                f"split '{s}': label {int(bad[0])} is outside the model's {K_value} classes"
            )
    return K_value


def _classes_error(classes, K: int) -> DataError:
    return DataError(f"{len(classes)} class names given, but the model has K = {K} outputs")


def _call_text(info: Mapping, encoder: str, T: int, splits: list[str]) -> str:
    return (
        f"dynconf.record.record_run(framework={info['framework']!r}, T={T}, "
        f"encoder={encoder!r}, splits={splits!r})"
    )

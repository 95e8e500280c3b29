"""Record a user's own spiking network (SpikingJelly, snnTorch, or any step/reset object)
into a run: the time loop, the resets, the spike counting and the run format done once.

``record_run(model, batches, T=32, out=...)`` drives the network for T steps on every batch,
stores the per-step outputs (not accumulated) and the hidden spikes of every sample, and
returns the run (``dynconf.core.format.Run``), ready for the decoders, the metrics and the
app. ``batches`` yields ``(x, y)`` or ``(x, y, ids)``; a mapping ``{split: batches}``
records several splits (a calibration split beside the test split) in one call. How the
inputs become frames is the encoder (frameworks/encoders.py), how the network is stepped and
reset is its framework's adapter (frameworks/), detected unless ``framework=`` says.

Like ``simulate``, each finished batch is written at once, atomically, to a hidden work
folder beside the run (``.NAME.partial``); a recording that was killed resumes where it
stopped when the same call is made again (a batch that differs from the one recorded before
the interruption is refused, never spliced in), and the run itself appears only when every
split is complete, written atomically by ``dynconf.core.store.save_run``. What was recorded
and how (framework and version, step mode, readout, encoder, seed, T, which neuron modules
were counted as hidden) goes into the run's meta under ``recording``.

Synaptic operations per step and sample (``synops``, engine/synops.py) are counted with
forward pre-hooks on the network's Linear/Conv layers, where the framework has neuron modules
(SpikingJelly, snnTorch; not a step/reset callable).

Under torchrun (``torchrun --nproc_per_node P -m dynconf record ...``, or a user's own script
calling record_run in P processes), the batches are shared among the processes
(engine/distributed.py): rank r records its block of each split's batches (every r-th batch
when the batches have no length), rank 0 merges them into the run a single process would
write, and every rank returns that run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dynconf.core.atomic import atomic_write
from dynconf.core.format import SPLIT_NAME, Run
from dynconf.core.provenance import code_version, now_utc
from dynconf.engine.distributed import (
    current_world,
    ensure_group,
    shard,
    shards_of,
    wait_for_parts,
)
from dynconf.engine.frameworks import Frames, make_adapter, poisson_seed
from dynconf.engine.frameworks.encoders import check_encoder
from dynconf.engine.partial import claim
from dynconf.errors import DataError

EXACT_FLOAT32 = 2**24  # spike counts up to this are exact in float32


def record_run(
    model,
    batches: Iterable | Mapping[str, Iterable],
    T: int = 32,
    out: str | Path = "work_runs/my_snn",
    split: str = "test",
    framework: str = "auto",
    encoder: str = "direct",
    classes: list[str] | None = None,
    dataset: str | None = None,
    model_name: str | None = None,
    count_spikes: bool = True,
    *,
    count_synops: bool = True,
    readout=None,
    step_mode: str | None = None,
    seed: int = 0,
    neurons: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    name: str | None = None,
    extra_meta: Mapping | None = None,
    command: str | None = None,
) -> Run:
    """Record ``model`` on ``batches`` for ``T`` steps into the run ``out`` and return it.

    model: a ``torch.nn.Module`` built with SpikingJelly or snnTorch neurons, or (framework
        ``"callable"``) any object with ``step(x_t) -> logits_t`` and ``reset()``.
    batches: an iterable of ``(x, y)`` or ``(x, y, ids)`` recorded as split ``split``, or
        ``{split name: iterable}`` for several splits in one run (in that order). ``x`` is
        ``[B, ...]`` (``[B, T, ...]`` for ``encoder="sequence"``), ``y`` the labels ``[B]``,
        ``ids`` sample ids (default: the position in the split).
    framework: ``"auto"`` (detected, and said on stderr and in the meta), ``"spikingjelly"``,
        ``"snntorch"`` or ``"callable"``.
    encoder: ``"direct"``, ``"poisson"`` (rate coding, seeded by ``seed``) or ``"sequence"``.
    count_spikes: count hidden spikes with forward hooks on the neuron modules (the output
        layer, if it is a neuron module, is not hidden); the run then has ``spikes`` and the
        meta ``neurons``.
    count_synops: count synaptic operations per step and sample (engine/synops.py) on the
        Linear/Conv layers; the run then has ``synops`` (SpikingJelly and snnTorch only).
    readout: snnTorch: ``"membrane"``, ``"spikes"`` or ``"output"``; any framework: a
        callable turning the model's return value into class scores ``[B, K]``.
    step_mode: SpikingJelly ``"s"`` or ``"m"`` when the neuron modules do not say it.
    neurons: the hidden neuron count to record (default: from the counted modules).
    The network is run in eval mode without gradients; its mode is restored afterwards.
    """
    import torch
    from tqdm import tqdm

    from dynconf.core.store import save_run

    started = time.time()
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise DataError(f"T must be a whole number of steps, at least 1 (got {T!r})")
    T = int(T)
    check_encoder(encoder)
    plan = dict(batches) if isinstance(batches, Mapping) else {split: batches}
    if not plan:
        raise DataError("no splits to record")
    for split_name in plan:
        if not isinstance(split_name, str) or not SPLIT_NAME.match(split_name):
            raise DataError(
                f"split name {split_name!r} is not allowed (letters, digits, '-' and '_')"
            )
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")

    adapter = make_adapter(
        model,
        framework,
        step_mode=step_mode,
        readout=readout,
        count_spikes=count_spikes,
        count_synops=count_synops,
    )
    device = adapter.device
    world = ensure_group(current_world(), device)
    was_training = getattr(model, "training", None)
    if callable(getattr(model, "eval", None)):
        model.eval()
    work = out.parent / f".{out.name}.partial"
    total = _total_batches(plan)
    bar = tqdm(
        total=total,
        unit="batch",
        disable=not (progress and world.main),
        file=sys.stderr,
        mininterval=2.0,
    )
    counts: dict[str, int] = {}
    record_seconds = 0.0
    said = False
    try:
        settings = {
            "framework": adapter.name,
            "step_mode": adapter.step_mode,
            "readout": adapter.readout_name(),
            "encoder": encoder,
            "T": T,
            "seed": int(seed),
            "count_spikes": bool(count_spikes),
            "count_synops": bool(count_synops),
            "splits": list(plan),
            "model": model_fingerprint(model),
        }
        what = (
            "recording with other settings "
            "(model weights, framework, encoder, T, seed, splits or what is counted)"
        )
        if world.main:  # the first claim records the settings; the other ranks then check them
            work.mkdir(parents=True, exist_ok=True)
            claim(work, settings, what)
        world.barrier()
        if not world.main:
            claim(work, settings, what)
        with torch.no_grad():
            for split_name, split_batches in plan.items():
                bar.set_postfix_str(split_name)
                counts[split_name] = 0
                position = 0
                owned = _owned_batches(split_batches, world)
                for index, batch in enumerate(split_batches):
                    x, y, ids = _unpack(batch, split_name, index, position)
                    position += len(y)
                    counts[split_name] += 1
                    if not owned(index):  # another rank records this one
                        continue
                    part = work / f"{split_name}-{index:07d}.npz"
                    digest = batch_digest(x, y, ids)
                    if part.exists():  # resumed: recorded before an interruption
                        _check_resumed(part, digest, split_name, index, work)
                    else:
                        t0 = time.time()
                        frames = Frames(
                            x.to(device),
                            T,
                            encoder,
                            seed=poisson_seed(seed, split_name, index),
                        )
                        outputs, spikes, synops = adapter.record_batch(frames)
                        if classes is not None and outputs.shape[2] != len(classes):
                            raise _classes_error(classes, outputs.shape[2])
                        arrays = {
                            "outputs": outputs.numpy(),
                            "labels": y,
                            "ids": ids,
                            "digest": np.array(digest),
                            "rank": np.int64(world.rank),
                        }
                        if spikes is not None:
                            arrays["spikes"] = spikes.numpy()
                        if synops is not None:
                            arrays["synops"] = synops.numpy()
                        if adapter.counter is not None:  # which layers counted (for a resume)
                            layers = {
                                "hidden": adapter.counter.hidden_layers(),
                                "output": list(adapter.counter.output_layers or []),
                            }
                            arrays["layers"] = np.array(json.dumps(layers))
                        arrays["seconds"] = np.float64(time.time() - t0)
                        atomic_write(part, lambda fh, a=arrays: np.savez(fh, **a))
                        if progress and world.main and not said:  # the first batch showed them
                            bar.write(describe(adapter, encoder, T), file=sys.stderr)
                            said = True
                    bar.update(1)
                if counts[split_name] == 0:
                    raise DataError(f"split '{split_name}': the batches yielded nothing")
    except BaseException:
        # (with several ranks the others may be writing there: the folder stays)
        if world.size == 1 and work.is_dir() and not any(work.glob("*.npz")):
            shutil.rmtree(work, ignore_errors=True)  # nothing finished to resume
        raise
    finally:
        bar.close()
        adapter.close()
        if was_training is not None and callable(getattr(model, "train", None)):
            model.train(was_training)

    world.barrier()  # every rank's batches are written
    if not world.main:
        world.barrier()  # rank 0 has merged them into the run
        world.close()
        from dynconf.core.store import load_run

        return load_run(out)
    wait_for_parts([work / f"{s}-{i:07d}.npz" for s in plan for i in range(counts[s])], work)
    arrays, layers, shards = {}, {}, {}
    for s in plan:
        arrays[s], found, shards[s], seconds = _assemble(work, s, counts[s])
        layers = layers or found
        record_seconds += seconds
    K = _check_classes(arrays)
    if classes is not None and len(classes) != K:
        raise _classes_error(classes, K)
    info = adapter.describe()
    info.update(encoder=encoder, seed=int(seed), T=T, device=str(device))
    info["torch_version"] = torch.__version__
    hidden = {}
    if adapter.counter is not None:
        # What this process's counter saw, else (every batch of rank 0 resumed) the batches'
        seen = adapter.counter.output_layers is not None
        hidden = adapter.counter.hidden_layers() if seen else dict(layers.get("hidden", {}))
        info["spike_layers"] = hidden
        output = adapter.counter.output_layers if seen else layers.get("output")
        info["output_layers"] = list(output or [])
    for role in ("spikes", "synops"):
        recorded = all(role in a for a in arrays.values())
        info[role] = "recorded" if recorded else "not recorded"
        if not recorded:
            for a in arrays.values():
                a.pop(role, None)
    if adapter.synops is not None:
        info["synops_layers"] = sorted(adapter.synops.counted)
    hidden_neurons = neurons if neurons is not None else (sum(hidden.values()) or None)
    label = adapter.label
    meta: dict[str, Any] = {
        "name": name or out.name,
        "dataset": dataset or "unknown",
        "model": model_name or f"{type(model).__name__} ({label})",
        "T_max": T,
        "classes": [str(c) for c in classes] if classes is not None else [str(k) for k in range(K)],
        "recording": info,
        "snn_accuracy_by_T": {s: _accuracy_by_T(a) for s, a in arrays.items()},
        "created": {
            "command": command or _call_text(info, encoder, T, list(plan)),
            "seed": int(seed),
            "code_version": code_version(),
            "date": now_utc(),
            "wall_time_s": round(time.time() - started, 1),
            # compute time of every batch, all ranks together (resumed batches included)
            "recording_seconds": round(record_seconds, 1),
            "device": str(device),
            "world_size": world.size,
            "shards": shards,  # {split: [{"rank": r, "samples": [start, stop]}, ...]}
        },
        **dict(extra_meta or {}),
    }
    if hidden_neurons:
        meta["neurons"] = int(hidden_neurons)
    run = save_run(out, meta, arrays, overwrite=overwrite)
    shutil.rmtree(work, ignore_errors=True)
    world.barrier()
    world.close()
    return run


def describe(adapter, encoder: str, T: int) -> str:
    """The one line that says what was detected (printed when recording starts)."""
    info = adapter.describe()
    version = f" {info['framework_version']}" if info.get("framework_version") else ""
    text = f"record: {adapter.label}{version}, {adapter.step_mode} network"
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


def model_fingerprint(model) -> str:
    """A digest of the model's weights and buffers (which model made partial results)."""
    h = hashlib.blake2b(type(model).__qualname__.encode(), digest_size=16)
    state = getattr(model, "state_dict", None)
    if callable(state):
        for key, value in state().items():
            h.update(key.encode())
            if hasattr(value, "detach"):
                arr = value.detach().cpu().contiguous()
                h.update(f"{arr.dtype}{tuple(arr.shape)}".encode())
                h.update(arr.view(-1).view(_byte_dtype()).numpy().tobytes())
            else:
                h.update(repr(value).encode())
    return h.hexdigest()


def _byte_dtype():
    import torch

    return torch.uint8


def batch_digest(x, y: np.ndarray, ids: np.ndarray) -> str:
    """A digest of one batch (inputs, labels, ids): a resumed batch must be the same one."""
    h = hashlib.blake2b(digest_size=16)
    arr = x.detach().cpu().contiguous()
    h.update(f"{arr.dtype}{tuple(arr.shape)}".encode())
    h.update(arr.reshape(-1).view(_byte_dtype()).numpy().tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    h.update(np.ascontiguousarray(ids).tobytes())
    return h.hexdigest()


def _unpack(batch, split: str, index: int, position: int):
    """``(x, y[, ids])`` -> (x tensor, labels int64 [B], ids int64 [B])."""
    import torch

    where = f"split '{split}', batch {index + 1}"
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise DataError(f"{where}: expected (x, y) or (x, y, ids), got {type(batch).__name__}")
    x = batch[0]
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{where}: inputs are a {type(x).__name__}, expected a tensor")
    y = _as_int_array(batch[1], f"{where}: labels")
    if x.ndim < 1 or y.shape != (x.shape[0],):
        raise DataError(
            f"{where}: {len(y)} labels for inputs of shape {tuple(x.shape)} (need one per sample)"
        )
    if len(batch) == 3:
        ids = _as_int_array(batch[2], f"{where}: ids")
        if ids.shape != y.shape:
            raise DataError(f"{where}: {len(ids)} ids for {len(y)} labels")
    else:
        ids = np.arange(position, position + len(y), dtype=np.int64)
    return x, y, ids


def _as_int_array(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"{what} must be integers [B], got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.int64)


def _total_batches(plan: Mapping) -> int | None:
    try:
        return sum(len(b) for b in plan.values())
    except TypeError:
        return None


def _check_resumed(part: Path, digest: str, split: str, index: int, work: Path) -> None:
    with np.load(part, allow_pickle=False) as f:
        stored = str(f["digest"])
    if stored != digest:
        raise DataError(
            f"split '{split}', batch {index + 1} is not the batch recorded before the "
            f"interruption (other inputs, labels or order); delete {work} to start again"
        )


def _owned_batches(split_batches, world):
    """``owned(index)``: whether this rank records batch ``index`` (all of them in one
    process): a contiguous block when the batches have a length, else every size-th one."""
    if world.size == 1:
        return lambda index: True
    try:
        block = shard(len(split_batches), world)
    except TypeError:  # a generator: no length known in advance
        return lambda index: index % world.size == world.rank
    return lambda index: index in block


def _assemble(work: Path, split: str, n_batches: int):
    """One split's arrays from its first ``n_batches`` parts (in order; never a leftover),
    with the counted layers, which rank made which samples, and the batches' seconds."""
    loaded = []
    for index in range(n_batches):
        with np.load(work / f"{split}-{index:07d}.npz", allow_pickle=False) as f:
            loaded.append({key: f[key] for key in f.files})
    K = {part["outputs"].shape[2] for part in loaded}
    if len(K) > 1:
        raise DataError(f"split '{split}': the model's outputs have K = {sorted(K)} across batches")
    arrays = {
        "outputs": np.concatenate([p["outputs"] for p in loaded], axis=1),
        "labels": np.concatenate([p["labels"] for p in loaded]),
        "ids": np.concatenate([p["ids"] for p in loaded]),
    }
    if all("spikes" in p for p in loaded):
        spikes = np.concatenate([p["spikes"] for p in loaded], axis=1)
        exact = spikes.size == 0 or spikes.max() < EXACT_FLOAT32
        arrays["spikes"] = spikes.astype(np.float32 if exact else np.float64)
    if all("synops" in p for p in loaded):
        arrays["synops"] = np.concatenate([p["synops"] for p in loaded], axis=1).astype(np.int64)
    layers = next((json.loads(str(p["layers"])) for p in loaded if "layers" in p), {})
    ranks = [int(p["rank"]) if "rank" in p else 0 for p in loaded]
    shards = shards_of(ranks, [len(p["labels"]) for p in loaded])
    seconds = sum(float(p["seconds"]) if "seconds" in p else 0.0 for p in loaded)
    return arrays, layers, shards, seconds


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


def _accuracy_by_T(split_arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Accuracy of argmax S_t at t = 1, 2, 4, ..., T (S_t the accumulated outputs)."""
    outputs, labels = split_arrays["outputs"], split_arrays["labels"]
    T = outputs.shape[0]
    steps, t = [], 1
    while t < T:
        steps.append(t)
        t *= 2
    S = np.cumsum(outputs, axis=0, dtype=np.float64)
    return {str(t): float((S[t - 1].argmax(1) == labels).mean()) for t in [*steps, T]}


def _call_text(info: Mapping, encoder: str, T: int, splits: list[str]) -> str:
    return (
        f"dynconf.record.record_run(framework={info['framework']!r}, T={T}, "
        f"encoder={encoder!r}, splits={splits!r})"
    )

"""Import a user's outputs file (.npz, .npy, .pt) as a split of a new or existing run.

Everything a file holds is checked (dynconf/core/npyio.py, format.py) before it becomes a run;
an existing run gains the split atomically (store.add_split). Whether the run exists is
decided with the run's lock held (dynconf/core/locking.py), so two imports into one run
serialise: the second adds its split to the run the first created, or is refused.

Two mistakes give wrong numbers without any error, so they are refused unless the caller says
what the file holds (messages name the CLI flags; the app translates them to its choices):

- batch-first outputs [N, T, K] (SEENN's layout) read as [T, N, K]. ``layout`` says which; when
  it is not given, a shape whose first two axes are equal is ambiguous and refused, and a shape
  whose first axis matches the labels is called batch-first (check_layout).
- accumulated outputs S_t read as per-step outputs z_t. ``cumulative=None`` detects them: see
  accumulation_evidence for the rule; True differences them, False imports them as they are.

Imports stream, so ImageNet-sized files (T x N x K values, gigabytes) import on one machine:
the outputs stay on disk (npyio.read_outputs_file(stream=True)), are read a block of samples
at a time for all T, converted, checked and reduced block by block, and the stored arrays are
written piece by piece into temporary files that the store renames into place
(import_stream.py). Peak memory is a block's, not the file's. The layout, accumulation and
labels rules are in import_rules.py (re-exported here, like TimeFirst).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dynconf.core.format import OUTPUT_DTYPES, Run, check_run_name
from dynconf.core.import_rules import (  # noqa: F401  (re-exported: where callers find them)
    ACCUMULATION_DIFF_MARGIN,
    ACCUMULATION_LATE_GROWTH,
    ACCUMULATION_MIN_STEPS,
    ACCUMULATION_RISING_FRACTION,
    ACCUMULATION_SAMPLES,
    ACCUMULATION_TOTAL_GROWTH,
    LAYOUTS,
    _shape,
    accumulation_evidence,
    check_labels,
    check_layout,
)
from dynconf.core.import_stream import TimeFirst, _StreamingPrepare
from dynconf.core.locking import run_lock
from dynconf.core.npyio import ArrayFile, read_outputs_file
from dynconf.core.provenance import make_created
from dynconf.core.store import add_split, is_run_dir, load_run, save_run
from dynconf.errors import RunFormatError


def import_outputs(
    source: Path | str,
    run_dir: Path | str,
    *,
    split: str = "test",
    cumulative: bool | None = None,
    layout: str | None = None,
    labels_path: Path | str | None = None,
    outputs_key: str = "outputs",
    labels_key: str = "labels",
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
    storage: str = "full",
    topk: int = 5,
    topk_kappas: list[float] | None = None,
    dtype: str | None = None,
    neurons: int | None = None,
    created: dict | None = None,
    overwrite: bool = False,
    read_pt: Callable[[Path], dict[str, np.ndarray] | np.ndarray] | None = None,
    max_bytes: int | None = None,
) -> Run:
    """Import an outputs file (see read_outputs_file) as a split of a new or existing run.

    layout: "TNK" (time first, the run format) or "NTK" (batch first, transposed here); None
    is TNK, with an ambiguous or batch-first-looking shape refused (check_layout).
    cumulative: None detects accumulated outputs and refuses them (accumulation_evidence);
    True: the file holds accumulated outputs S_t; they are differenced (in float64, stored as
    float64 unless dtype says otherwise, so S_t is reconstructed exactly); False: per-step
    outputs, imported as they are without the check.
    outputs_key, labels_key: the names of those arrays in an .npz or a dict .pt file.
    dtype: store outputs as float16/float32/float64 (default: keep the file's float type).
    An existing run gets the split added (its storage settings apply; overwrite=True replaces
    a split of the same name); otherwise a new run is created. read_pt reads .pt files
    (dynconf.engine.tensor_files.read_tensors; the core never imports torch). max_bytes
    bounds the inflated size of the file's arrays (read_outputs_file; default 16 GiB or
    $DYNCONF_MAX_IMPORT_BYTES); every side array is checked against the outputs' shape from
    its header before it is read. A new run's name must pass format.check_run_name.
    The outputs are streamed (module docstring): memory stays at a block of samples (a
    compressed .npz's outputs are first inflated into an anonymous file beside the
    destination, so that much disk is needed there).
    """
    start = time.perf_counter()
    source, run_dir = Path(source), Path(run_dir)
    if layout is not None and layout not in LAYOUTS:
        raise RunFormatError(f"layout must be TNK or NTK, got {layout!r}")
    if not os.path.lexists(run_dir):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(run_dir.name)  # before reading a possibly large file
    # A compressed archive's outputs are inflated beside the destination (its filesystem
    # has room for the run), else in the system's temporary folder.
    parent = run_dir.parent if run_dir.parent.is_dir() else None
    arrays = read_outputs_file(
        source,
        labels_path,
        read_pt,
        max_bytes=max_bytes,
        outputs_key=outputs_key,
        labels_key=labels_key,
        stream=True,
        spill_dir=parent,
    )
    new_run = {"dataset": dataset, "model": model, "classes": classes, "storage": storage}
    new_run.update(topk=topk, topk_kappas=topk_kappas, neurons=neurons, created=created)
    prepare = _StreamingPrepare(source, run_dir, cumulative, dtype)
    try:
        _check_outputs(arrays, source, labels_path, layout, cumulative, dtype)
        return _into_run(source, run_dir, split, arrays, overwrite, prepare, new_run, start)
    finally:
        _release(arrays, prepare)


def _into_run(source, run_dir, split, arrays, overwrite, prepare, new_run, start) -> Run:
    """With the run's lock held: add the split to the run there, or create the run."""
    with run_lock(run_dir):
        if run_dir.exists() and is_run_dir(run_dir):
            given = (new_run["dataset"], new_run["model"], new_run["classes"])
            _check_joins(run_dir, split, *given, overwrite)
            return add_split(run_dir, split, **arrays, overwrite=overwrite, prepare=prepare)
        prepare.folder, prepare.target = run_dir.parent, run_dir  # written beside the new run
        created = dict(new_run.pop("created") or make_created(wall_time_s=None))
        created["wall_time_s"] = round(time.perf_counter() - start, 3)
        new_run["dataset"] = new_run["dataset"] or "unknown"
        new_run["model"] = new_run["model"] or "unknown"
        return save_run(
            run_dir,
            {split: arrays},
            **new_run,
            created=created,
            extra_meta={"notes": f"imported from {source.name}"},
            prepare=prepare,
        )


def _check_outputs(arrays: dict, source: Path, labels_path, layout, cumulative, dtype) -> None:
    """The outputs' rank, type, layout and (unless said) accumulation; arrays["outputs"]
    becomes a TimeFirst view."""
    outputs, labels = arrays["outputs"], arrays["labels"]
    check_labels(labels, str(labels_path or source))
    if outputs.ndim != 3:
        raise RunFormatError(
            f"{source}: outputs must be [T, N, K] (time first; --layout NTK for batch "
            f"first), got shape {_shape(outputs.shape)}"
        )
    if outputs.dtype.kind not in "fiu":
        raise RunFormatError(f"{source}: outputs must be numbers, got {outputs.dtype}")
    outputs = TimeFirst(outputs, check_layout(outputs, len(labels), layout, str(source)))
    arrays["outputs"] = outputs
    if cumulative is None:
        seen = accumulation_evidence(outputs)
        if seen:
            raise RunFormatError(
                f"{source}: outputs look accumulated (running sums S_t, not per-step "
                f"outputs): {seen}; pass --cumulative if they are sums, or --per-step if "
                "they are per-step outputs"
            )
    if dtype is not None and np.dtype(dtype) not in OUTPUT_DTYPES:
        raise RunFormatError(f"dtype must be float16, float32 or float64, got {dtype}")


def _check_joins(run_dir: Path, split: str, dataset, model, classes, overwrite: bool) -> None:
    """An existing run may take the split: same dataset, model and classes when given, and
    the split new unless overwrite."""
    run = load_run(run_dir, check_values=False)
    for key, given, have in (
        ("dataset", dataset, run.meta["dataset"]),
        ("model", model, run.meta["model"]),
    ):
        if given is not None and given != have:
            raise RunFormatError(f"{run_dir}: run has {key} '{have}', not '{given}'")
    if classes is not None and list(classes) != run.classes:
        raise RunFormatError(f"{run_dir}: class names differ from the run's")
    if split in run.meta["splits"] and not overwrite:
        raise RunFormatError(
            f"{run_dir}: split '{split}' already exists; pass --overwrite to "
            "replace it, or choose another --split"
        )


def _release(arrays: dict, prepare) -> None:
    """Close the files an import read from and remove its temporary files (renamed into the
    run unless the write failed)."""
    for role, arr in list(arrays.items()):
        data = arr.data if isinstance(arr, TimeFirst) else arr
        if isinstance(data, ArrayFile):
            data.close()
        arrays[role] = data
    for path in prepare.temps:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)

"""Import a user's outputs file (.npz, .npy, .pt) as a split of a new or existing run.

Everything a file holds is checked (dynconf/core/npyio.py, format.py) before it becomes a run;
an existing run gains the split atomically (store.add_split). Whether the run exists is
decided with the run's lock held (dynconf/core/locking.py), so two imports into one run
serialise: the second adds its split to the run the first created, or is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dynconf.core.format import OUTPUT_DTYPES, Run, check_run_name
from dynconf.core.locking import run_lock
from dynconf.core.npyio import read_outputs_file
from dynconf.core.provenance import make_created
from dynconf.core.store import add_split, is_run_dir, load_run, save_run
from dynconf.errors import RunFormatError


def import_outputs(
    source: Path | str,
    run_dir: Path | str,
    *,
    split: str = "test",
    cumulative: bool = False,
    labels_path: Path | str | None = None,
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
    read_pt: Callable[[Path], dict[str, np.ndarray]] | None = None,
    max_bytes: int | None = None,
) -> Run:
    """Import an outputs file (see read_outputs_file) as a split of a new or existing run.

    cumulative=True: the file holds accumulated outputs S_t; they are differenced (in float64,
    stored as float64 unless dtype says otherwise, so S_t is reconstructed exactly).
    dtype: store outputs as float16/float32/float64 (default: keep the file's float type).
    An existing run gets the split added (its storage settings apply; overwrite=True replaces
    a split of the same name); otherwise a new run is created. read_pt reads .pt files
    (dynconf.engine.tensor_files.read_tensors; the core never imports torch). max_bytes
    bounds the inflated size of the file's arrays (read_outputs_file; default 16 GiB or
    $DYNCONF_MAX_IMPORT_BYTES). A new run's name must
    pass format.check_run_name.
    """
    start = time.perf_counter()
    source, run_dir = Path(source), Path(run_dir)
    if not os.path.lexists(run_dir):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(run_dir.name)  # before reading a possibly large file
    arrays = read_outputs_file(source, labels_path, read_pt, max_bytes=max_bytes)
    outputs = arrays["outputs"]
    if outputs.ndim != 3:
        raise RunFormatError(
            f"{source}: outputs must be [T, N, K] (time first), got shape {outputs.shape}"
        )
    if outputs.dtype.kind not in "fiu":
        raise RunFormatError(f"{source}: outputs must be numbers, got {outputs.dtype}")
    if cumulative:
        acc = outputs.astype(np.float64)
        if not np.isfinite(acc).all():
            raise RunFormatError(f"{source}: outputs contain NaN or infinite values")
        outputs = np.diff(acc, axis=0, prepend=np.zeros_like(acc[:1]))
    if dtype is not None:
        if np.dtype(dtype) not in OUTPUT_DTYPES:
            raise RunFormatError(f"dtype must be float16, float32 or float64, got {dtype}")
        with np.errstate(over="ignore"):
            outputs = outputs.astype(dtype)
        if not np.isfinite(outputs).all():
            raise RunFormatError(f"{source}: outputs overflow {dtype} (NaN/inf after conversion)")
    arrays["outputs"] = outputs
    with run_lock(run_dir):
        if run_dir.exists() and is_run_dir(run_dir):
            run = load_run(run_dir, check_values=False)
            for key, given, have in (
                ("dataset", dataset, run.meta["dataset"]),
                ("model", model, run.meta["model"]),
            ):
                if given is not None and given != have:
                    raise RunFormatError(f"{run_dir}: run has {key} '{have}', not '{given}'")
            if classes is not None and list(classes) != run.classes:
                raise RunFormatError(f"{run_dir}: class names differ from the run's")
            return add_split(run_dir, split, **arrays, overwrite=overwrite)
        if created is None:
            created = make_created(wall_time_s=None)
        return save_run(
            run_dir,
            {split: arrays},
            dataset=dataset or "unknown",
            model=model or "unknown",
            classes=classes,
            storage=storage,
            topk=topk,
            topk_kappas=topk_kappas,
            neurons=neurons,
            created={**created, "wall_time_s": round(time.perf_counter() - start, 3)},
            extra_meta={"notes": f"imported from {source.name}"},
        )

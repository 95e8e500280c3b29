"""What the Runs page takes in: uploaded outputs files, run names, checkpoints to simulate.

An upload is checked exactly as ``python -m dynconf import`` checks a file (it goes through
the same ``dynconf.core.importing.import_outputs``), after a size limit and a file-type
check that only a browser upload needs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dynconf.core.importing import import_outputs
from dynconf.core.store import default_runs_root, default_work_root
from dynconf.engine.data import dataset_names  # the dataset registry; imports no torch
from dynconf.errors import DynconfError
from dynconf.jobs import check_run_name
from ui.caches import run_listing

MAX_UPLOAD_MB = float(os.environ.get("DYNCONF_MAX_UPLOAD_MB", "200"))
UPLOAD_TYPES = ("npz", "npy")
APP_ROOT = Path(__file__).resolve().parents[1]  # checkpoints/ is beside app.py
UPLOADS_FOLDER = ".uploads"  # hidden under the work root: run listings skip it


def check_new_name(name: str) -> None:
    """A plain folder name that no shipped run uses (the user's own runs may gain splits)."""
    check_run_name(name, default_runs_root())


def _check_upload(filename: str, blob: bytes) -> None:
    if len(blob) > MAX_UPLOAD_MB * 1e6:
        raise DynconfError(
            f"{filename} is {len(blob) / 1e6:.1f} MB; uploads are limited to {MAX_UPLOAD_MB:g} "
            "MB (use `python -m dynconf import` for large files)"
        )
    if Path(filename).suffix.lower().lstrip(".") not in UPLOAD_TYPES:
        raise DynconfError(
            f"{filename}: upload an .npz (outputs, labels, optional spikes, ids) or an .npy "
            "outputs array with a labels .npy; .pt files need torch, import them with "
            "`python -m dynconf import`"
        )


def import_upload(
    name: str,
    filename: str,
    data: bytes,
    *,
    split: str = "test",
    labels: tuple[str, bytes] | None = None,
    cumulative: bool = False,
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
) -> Any:
    """Validate and import an uploaded outputs file exactly as ``dynconf import`` does.

    The bytes go to a temporary file under the work folder, then through ``import_outputs``
    (shape, dtype, pickle and finiteness checks); the run appears atomically as
    ``work_runs/NAME`` or gains the split if it exists already.
    """
    check_new_name(name)
    for fname, blob in ((filename, data), *([labels] if labels else [])):
        _check_upload(fname, blob)
    work = default_work_root()
    tmp_dir = work / UPLOADS_FOLDER
    tmp_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{os.getpid()}-{time.monotonic_ns()}"  # unique per upload, across sessions
    src = tmp_dir / f"{stem}{Path(filename).suffix.lower()}"
    lab = tmp_dir / f"{stem}-labels.npy" if labels else None
    try:
        src.write_bytes(data)
        if lab is not None:
            lab.write_bytes(labels[1])
        return import_outputs(
            src,
            work / name,
            split=split,
            cumulative=cumulative,
            labels_path=lab,
            dataset=dataset or None,
            model=model or None,
            classes=classes or None,
        )
    finally:
        src.unlink(missing_ok=True)
        if lab is not None:
            lab.unlink(missing_ok=True)


def checkpoint_candidates() -> dict[str, str | None]:
    """Checkpoint path -> dataset it was trained on (None: unknown), for the simulate form.

    Shipped runs keep a copy of their checkpoint (meta "checkpoint") and say their dataset;
    ``checkpoints/*/model.pt`` are what ``dynconf train`` writes, named after the dataset.
    """
    found: dict[str, str | None] = {}
    for item in run_listing():
        ckpt = item.meta.get("checkpoint") if item.ok else None
        if isinstance(ckpt, str) and (Path(item.path) / ckpt).is_file():
            found[str(Path(item.path) / ckpt)] = item.meta.get("dataset")
    for path in sorted((APP_ROOT / "checkpoints").glob("*/model.pt")):
        folder = path.parent.name.lower()
        found.setdefault(str(path), next((d for d in dataset_names() if d in folder), None))
    return found

"""What the Runs page takes in: uploaded outputs files, run names, checkpoints to simulate.

An upload is checked exactly as ``python -m dynconf import`` checks a file (it goes through
the same ``dynconf.core.importing.import_outputs``), after what only a browser upload needs:

- a size limit on the upload (``DYNCONF_MAX_UPLOAD_MB``, default 200) and a file-type check;
- a limit on the size the arrays *inflate* to (``DYNCONF_MAX_INFLATED_MB``, default four
  times the upload limit), checked by the library from each member's declared size before
  anything is inflated: a 3 MB .npz can hold gigabytes of zeros;
- run names checked where they are typed (``dynconf.core.format.check_run_name``: 1-64
  letters, digits, '_' or '-'), and never a shipped run's name;
- messages that name the user's own file, never the server's temporary copy: the upload is
  stored under its own name in a fresh hidden folder (so the run's notes say "imported from
  <the user's file name>"), and any server path left in a message is replaced;
- the library's import traps (batch-first outputs, outputs that look accumulated) refused as
  on the command line, with the form's choices (LAYOUT_CHOICES, STEP_CHOICES) named where
  the library names a CLI flag (FORM_WORDS).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from dynconf.app.caches import run_listing
from dynconf.core.format import check_run_name
from dynconf.core.importing import import_outputs
from dynconf.core.store import default_work_root, runs_roots
from dynconf.engine.data import dataset_names  # the dataset registry; imports no torch
from dynconf.errors import DynconfError

UPLOAD_TYPES = ("npz", "npy")
# The form's choices -> import_outputs(layout=..., cumulative=...); the first is the default.
LAYOUT_CHOICES = {
    "time first [T, N, K], refuse if unclear": None,
    "time first [T, N, K]": "TNK",
    "batch first [N, T, K]": "NTK",
}
STEP_CHOICES = {
    "detect (refuse if accumulated)": None,
    "per step (z_t)": False,
    "accumulated (running sums S_t)": True,
}
# What the library's messages ask of a CLI user, said in the form's words (longest first).
FORM_WORDS = {
    "pass --layout TNK or --layout NTK": "choose the layout 'time first [T, N, K]' or "
    "'batch first [N, T, K]'",
    "pass --layout NTK": "choose the layout 'batch first [N, T, K]'",
    "pass --layout TNK": "choose the layout 'time first [T, N, K]'",
    "--layout NTK for batch first": "or choose the layout 'batch first [N, T, K]'",
    "pass --cumulative if they are sums, or --per-step if they are per-step outputs": (
        "choose 'accumulated (running sums S_t)' if they are sums, or 'per step (z_t)' if "
        "they are per-step outputs"
    ),
    "pass --overwrite to replace it, or choose another --split": "choose another split name",
    "name the right one with --outputs-key": "save the outputs under the name 'outputs'",
    "name the right one with --labels-key (or pass --labels)": "save the labels under the "
    "name 'labels' (or upload a labels .npy)",
    "name yours with --outputs-key and --labels-key": "save yours as 'outputs' and 'labels'",
    "pass the labels file with --labels": "upload a labels .npy too",
}
UPLOADS_FOLDER = ".uploads"  # hidden under the work root: run listings skip it
MAX_FILE_NAME_BYTES = 200  # a file name the server can store (255 on most filesystems)


def _mb_setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def max_upload_mb() -> float:
    """Largest upload accepted, in MB (``DYNCONF_MAX_UPLOAD_MB``, default 200)."""
    return _mb_setting("DYNCONF_MAX_UPLOAD_MB", 200.0)


def max_inflated_mb() -> float:
    """Largest size an upload's arrays may inflate to, in MB (``DYNCONF_MAX_INFLATED_MB``,
    default four times the upload limit)."""
    return _mb_setting("DYNCONF_MAX_INFLATED_MB", 4 * max_upload_mb())


def check_new_name(name: str) -> str:
    """A valid new run name (check_run_name) that no shipped run uses; returns it.

    The user's own runs may gain splits, so their names are not refused here.
    """
    check_run_name(name)
    if any((root / name).exists() for root in runs_roots()):
        raise DynconfError(f"'{name}' is a shipped run; choose another name")
    return name


def _check_upload(filename: str, blob: bytes) -> None:
    if not blob:
        raise DynconfError(f"{filename}: the file is empty")
    limit = max_upload_mb()
    if len(blob) > limit * 1e6:
        raise DynconfError(
            f"{filename} is {len(blob) / 1e6:.1f} MB; uploads are limited to {limit:g} "
            "MB (use `python -m dynconf import` for large files)"
        )
    if Path(filename).suffix.lower().lstrip(".") not in UPLOAD_TYPES:
        raise DynconfError(
            f"{filename}: upload an .npz (outputs, labels, optional spikes, ids) or an .npy "
            "outputs array with a labels .npy; .pt files need torch, import them with "
            "`python -m dynconf import`"
        )


def _stored_name(filename: str, fallback: str) -> str:
    """The upload's own file name if the server can store it as one path component."""
    name = Path(filename.replace("\\", "/")).name
    ok = (
        name not in ("", ".", "..")
        and "\x00" not in name
        and not name.startswith(".")
        and len(name.encode("utf-8", "surrogatepass")) <= MAX_FILE_NAME_BYTES
    )
    return name if ok else fallback + Path(filename).suffix.lower()[:10]


def _user_message(exc: BaseException, paths: dict[str, str]) -> str:
    """``exc``'s message with every server path replaced by what the user knows it as, and
    every CLI flag it names replaced by the form's choice (FORM_WORDS)."""
    text = str(exc)
    for server, user in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(server, user)
    for flag, words in sorted(FORM_WORDS.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(flag, words)
    return text


def import_upload(
    name: str,
    filename: str,
    data: bytes,
    *,
    split: str = "test",
    labels: tuple[str, bytes] | None = None,
    layout: str | None = None,
    cumulative: bool | None = None,
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
) -> Any:
    """Validate and import an uploaded outputs file exactly as ``dynconf import`` does.

    The bytes go to a fresh hidden folder under the work root, under the upload's own name,
    then through ``import_outputs`` (shape, dtype, pickle, finiteness and inflated-size
    checks); the run appears atomically as ``work_runs/NAME`` or gains the split if it
    exists already. layout and cumulative are import_outputs's (None: time first unless
    ambiguous or batch-first-looking; detect accumulated outputs). Every refusal is a
    DynconfError whose message names the user's files and run, not server paths, and the
    form's choices, not CLI flags; nothing is left behind.
    """
    check_new_name(name)
    for fname, blob in ((filename, data), *([labels] if labels else [])):
        _check_upload(fname, blob)
    work = default_work_root()
    folder = work / UPLOADS_FOLDER / f"{os.getpid()}-{time.monotonic_ns()}"  # one per upload
    src = folder / _stored_name(filename, "upload")
    lab = None
    if labels:
        lab = folder / "labels" / _stored_name(labels[0], "labels")
    paths = {str(src): filename, str(folder): "upload", str(work / name): name, str(work): "."}
    if lab is not None:
        paths[str(lab)] = labels[0]
    try:
        folder.mkdir(parents=True)
        src.write_bytes(data)
        if lab is not None:
            lab.parent.mkdir()
            lab.write_bytes(labels[1])
        return import_outputs(
            src,
            work / name,
            split=split,
            layout=layout,
            cumulative=cumulative,
            labels_path=lab,
            dataset=dataset or None,
            model=model or None,
            classes=classes or None,
            max_bytes=int(max_inflated_mb() * 1e6),
        )
    except DynconfError as exc:
        raise DynconfError(_user_message(exc, paths)) from None
    except OSError as exc:  # e.g. the server's disk is full: the user's input is not at fault
        raise DynconfError(
            f"{filename}: the server could not store the upload ({exc.strerror or 'I/O error'})"
        ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkpoint_candidates() -> dict[str, str | None]:
    """Checkpoint path -> dataset it was trained on (None: unknown), for the simulate form.

    Shipped runs keep a copy of their checkpoint (meta "checkpoint") and say their dataset;
    ``./checkpoints/*/model.pt`` are what ``dynconf train`` writes, named after the dataset.
    """
    found: dict[str, str | None] = {}
    for item in run_listing():
        ckpt = item.meta.get("checkpoint") if item.ok else None
        if isinstance(ckpt, str) and (Path(item.path) / ckpt).is_file():
            found[str(Path(item.path) / ckpt)] = item.meta.get("dataset")
    for path in sorted((Path.cwd() / "checkpoints").glob("*/model.pt")):  # train --out
        folder = path.parent.name.lower()
        found.setdefault(str(path), next((d for d in dataset_names() if d in folder), None))
    return found


_CKPT_DATASETS: dict[tuple, tuple[str | None, str | None]] = {}  # (path, size, mtime) -> ...


def checkpoint_dataset(path: str) -> tuple[str | None, str | None]:
    """(dataset the checkpoint was trained on, None) or (None, why it cannot be told).

    Known checkpoints (``checkpoint_candidates``) answer without opening the file; any other
    is opened with ``dynconf.engine.checkpoint.load_checkpoint`` (torch, imported only then,
    ``weights_only``) and its stored training config read. Cached per file size and mtime.
    """
    known = checkpoint_candidates().get(path)
    if known:
        return known, None
    p = Path(path)
    try:
        st_ = p.stat()
    except OSError:
        return None, f"checkpoint {path} does not exist"
    if not p.is_file():
        return None, f"checkpoint {path} is not a file"
    key = (str(p), st_.st_size, st_.st_mtime_ns)
    if key not in _CKPT_DATASETS:
        from dynconf.engine.checkpoint import load_checkpoint  # torch: only for this

        try:
            dataset = load_checkpoint(p)["config"].get("dataset")
        except DynconfError as exc:
            _CKPT_DATASETS[key] = (None, str(exc))
        except (KeyError, TypeError, AttributeError):
            _CKPT_DATASETS[key] = (None, f"checkpoint {path} stores no training config")
        else:
            ok = isinstance(dataset, str) and dataset in dataset_names()
            why = None if ok else f"checkpoint {path} names an unknown dataset {dataset!r}"
            _CKPT_DATASETS[key] = (dataset if ok else None, why)
    return _CKPT_DATASETS[key]

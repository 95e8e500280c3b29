"""The outputs files users import (.npz, .npy, .pt), read into the roles of a split.

Nothing a file declares chooses our memory: an .npz is checked from all its members'
headers before any is inflated (npz.read_npz with member_bound: the side arrays must fit
the shape the outputs imply), a labels file is checked from its header against the
outputs' sample count before it is read, and a streamed import leaves the outputs on disk
(an npyio.ArrayFile). .pt files (a dict of tensors) need torch, which the core never
imports: the caller passes a reader (dynconf/engine/tensor_files.py), as `import` does; its
zip directory is checked against the byte limit first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dynconf.core.npyfile import ArrayFile, _prod, open_npy, read_npy
from dynconf.core.npz import (
    SIDE_ROLES,
    check_zip_size,
    member_bound,
    missing_array_message,
    read_npz,
    unexpected_arrays_message,
)
from dynconf.core.safeopen import open_regular
from dynconf.errors import RunFormatError

# Largest inflated size of the arrays of one imported file (all members together): large
# enough for ImageNet outputs, finite so that a zip bomb cannot exhaust memory or disk.
# DYNCONF_MAX_IMPORT_BYTES overrides it for every import (import_limit).
MAX_IMPORT_BYTES = 16 << 30

PtReader = Callable[[Path], "dict[str, np.ndarray] | np.ndarray"]


def import_limit(max_bytes: int | None = None) -> int:
    """The inflated-size limit of an import: max_bytes, else $DYNCONF_MAX_IMPORT_BYTES, else
    MAX_IMPORT_BYTES."""
    if max_bytes is not None:
        return int(max_bytes)
    try:
        return int(os.environ.get("DYNCONF_MAX_IMPORT_BYTES") or MAX_IMPORT_BYTES)
    except ValueError:
        raise RunFormatError("DYNCONF_MAX_IMPORT_BYTES must be a number of bytes") from None


def _kind(path: Path) -> str:
    """ "pt", "npz" or "npy": by name for torch files (a zip too), else by content."""
    if not path.exists():
        raise RunFormatError(f"{path}: file does not exist")
    with open_regular(path, "outputs file") as f:
        head = f.read(8)
    if path.suffix.lower() in (".pt", ".pth"):
        return "pt"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if path.suffix.lower() == ".npz":
        raise RunFormatError(f"{path}: not an .npz archive (no zip signature)")
    raise RunFormatError(f"{path}: not an .npz archive or .npy array (unknown content)")


def _read_pt(path: Path, read_pt: PtReader | None, max_bytes: int):
    if read_pt is None:
        raise RunFormatError(
            f"{path}: .pt files need torch; import them with `python -m dynconf import`"
        )
    check_zip_size(path, max_bytes)
    return read_pt(path)


def _take(found: dict, key: str, path: Path, flag: str):
    if key not in found:
        raise RunFormatError(missing_array_message(path, key, found, flag))
    return found.pop(key)


def read_outputs_file(
    path: Path | str,
    labels_path: Path | str | None = None,
    read_pt: PtReader | None = None,
    max_bytes: int | None = None,
    outputs_key: str = "outputs",
    labels_key: str = "labels",
    stream: bool = False,
    spill_dir: Path | str | None = None,
) -> dict:
    """Read an outputs file to import: .npz (outputs, labels, optional spikes, synops, ids),
    .npy (outputs only; labels from labels_path) or, with a ``read_pt`` reader, .pt (a dict
    of tensors, or one bare tensor of outputs with labels_path). Returns a dict of numpy
    arrays under the names outputs, labels, spikes, synops, ids; shapes beyond what bounds
    memory are checked by the caller.

    outputs_key, labels_key: what the file calls its outputs and labels (e.g. "logits",
    "targets"). The labels file may be an .npy, a bare tensor .pt, or an .npz / dict .pt
    holding labels_key. max_bytes bounds the inflated size of a compressed file's arrays (the
    app passes its upload limit; default import_limit()); a larger archive, or a member whose
    header does not fit the outputs' shape, is refused before anything is inflated.

    stream=True leaves large outputs on disk: "outputs" is then an ArrayFile (read it in
    pieces; close it) for an .npy file or a large .npz member, a compressed member being
    inflated into an anonymous temporary file in spill_dir (default: the system's).
    A Fortran-order outputs file is then refused (npyio.fortran_refusal).
    """
    path = Path(path)
    max_bytes = import_limit(max_bytes)
    kind = _kind(path)
    if kind == "pt":
        content = _read_pt(path, read_pt, max_bytes)
    elif kind == "npy":
        content = open_npy(path) if stream else read_npy(path)
    else:

        def bound(headers):
            return member_bound(path, headers, outputs_key, labels_key)

        content = read_npz(path, max_bytes, outputs_key if stream else None, spill_dir, bound)
    try:
        return _outputs_and_labels(
            path, content, labels_path, read_pt, max_bytes, outputs_key, labels_key
        )
    except BaseException:
        for arr in [content] if not isinstance(content, dict) else content.values():
            if isinstance(arr, ArrayFile):
                arr.close()
        raise


def _outputs_and_labels(
    path: Path, content, labels_path, read_pt, max_bytes: int, outputs_key: str, labels_key: str
) -> dict:
    """read_outputs_file's roles from a file's content (and the labels file)."""
    if isinstance(content, (np.ndarray, ArrayFile)):  # a bare array is the outputs
        arrays = {"outputs": content}
    else:
        found = dict(content)
        arrays = {"outputs": _take(found, outputs_key, path, "--outputs-key")}
        if labels_key in found or labels_path is None:
            if labels_path is not None:
                raise RunFormatError(
                    f"{path}: has a '{labels_key}' array and a labels file was given too"
                )
            arrays["labels"] = _take(found, labels_key, path, "--labels-key (or pass --labels)")
        for role in SIDE_ROLES:
            if role in found:
                arrays[role] = found.pop(role)
        if found:
            raise RunFormatError(unexpected_arrays_message(path, found))
    if labels_path is not None:
        arrays["labels"] = read_labels_file(
            Path(labels_path), read_pt, max_bytes, labels_key, _labels_at_most(arrays["outputs"])
        )
    if "labels" not in arrays:
        raise RunFormatError(
            f"{path}: no 'labels' array (the file holds only the outputs); pass the labels "
            "file with --labels"
        )
    return arrays


def _labels_at_most(outputs) -> int:
    """How many values a labels array may hold for these outputs: one per sample of either
    layout, times K (a one-hot [N, K] is let through, to be named as such)."""
    shape = tuple(int(n) for n in outputs.shape)
    if len(shape) != 3:
        return _prod(shape)
    return max(shape[0], shape[1]) * max(shape[2], 1)


def read_labels_file(
    path: Path, read_pt: PtReader | None, max_bytes: int, labels_key: str, at_most: int
) -> np.ndarray:
    """The labels of a separate labels file, in memory (the file may be replaced
    meanwhile), checked from its header to hold at most ``at_most`` values before reading."""
    kind = _kind(path)

    def too_many(shape) -> None:
        if _prod(shape) > at_most:
            raise RunFormatError(
                f"{path}: labels of shape {tuple(int(n) for n in shape)} are more than the "
                f"outputs' samples allow ({at_most:,} values); refused before reading them"
            )

    if kind == "npy":
        labels = open_npy(path)
        too_many(labels.shape)
        if not isinstance(labels, ArrayFile):
            return np.array(labels)
        with labels:
            return labels.read(0, labels.size).reshape(labels.shape)
    if kind == "npz":

        def bound(headers):
            return lambda key, shape: too_many(shape) if key == labels_key else None

        found = read_npz(path, max_bytes, bound=bound, wanted={labels_key})
        return np.array(_take(found, labels_key, path, "--labels-key"))
    labels = _read_pt(path, read_pt, max_bytes)
    if not isinstance(labels, np.ndarray):
        labels = _take(dict(labels), labels_key, path, "--labels-key")
    return np.array(labels)

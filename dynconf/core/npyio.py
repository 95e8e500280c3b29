"""Reading arrays safely: .npy files of a run, and the outputs files users import.

Arrays are plain .npy read with allow_pickle=False (a file may come from anyone, and a
pickle executes code); the header is parsed and checked before any data is touched (no
object dtypes, no truncation), and run arrays are memory-mapped read-only (ImageNet outputs
are gigabytes) unless the caller asks for plain reads (a memory map of a file that another
process truncates kills the reader with SIGBUS; an in-memory copy cannot).

Only regular files are ever opened (open_regular): a FIFO or device where an array or
meta.json should be would block the reader forever. Archives are checked before inflating:
each member's declared size against a byte limit (max_bytes) and against the size the zip
directory states, so a zip bomb is refused before any memory is allocated.

.pt files (a dict of tensors) need torch, which the core never imports: the caller passes a
reader (dynconf/engine/tensor_files.py), as the `import` command does.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from dynconf.core.format import OPTIONAL_ROLES
from dynconf.errors import RunFormatError

# Largest inflated size of the arrays of one imported file (all members together): large
# enough for ImageNet outputs, finite so that a zip bomb cannot exhaust memory or disk.
# DYNCONF_MAX_IMPORT_BYTES overrides it for every import (import_limit).
MAX_IMPORT_BYTES = 16 << 30


def import_limit(max_bytes: int | None = None) -> int:
    """The inflated-size limit of an import: max_bytes, else $DYNCONF_MAX_IMPORT_BYTES, else
    MAX_IMPORT_BYTES."""
    if max_bytes is not None:
        return int(max_bytes)
    try:
        return int(os.environ.get("DYNCONF_MAX_IMPORT_BYTES") or MAX_IMPORT_BYTES)
    except ValueError:
        raise RunFormatError("DYNCONF_MAX_IMPORT_BYTES must be a number of bytes") from None


def open_regular(path: Path | str, what: str = "file") -> IO[bytes]:
    """Open ``path`` for binary reading only if it is a regular file (symlinks followed).

    Opened with O_NONBLOCK first, so a FIFO cannot block the open, then checked with fstat on
    the opened descriptor (no window between the check and the open).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RunFormatError(f"{path}: file is missing") from None
    except IsADirectoryError:
        raise RunFormatError(f"{path}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise RunFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (FIFO, device?)"
            raise RunFormatError(f"{path}: is {kind}, expected a {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_regular_file(path: Path | str) -> bool:
    """os.stat + S_ISREG (follows symlinks) without opening anything."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _prod(shape) -> int:
    return int(math.prod(int(s) for s in shape))


def _read_header(f, where: str):
    """Parse a .npy header from an open binary file; refuse object dtypes before any data."""
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise RunFormatError(f"{where}: not a .npy array file") from None
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise RunFormatError(f"{where}: unsupported .npy format version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise RunFormatError(f"{where}: damaged .npy header ({exc})") from None
    if dtype.hasobject:
        raise RunFormatError(f"{where}: holds Python objects (pickled data); refusing to load it")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise RunFormatError(f"{where}: structured dtype {dtype} is not a plain numeric array")
    return shape, fortran, dtype


def read_npy(path: Path | str, mmap: bool = True) -> np.ndarray:
    """Load one .npy file safely: no pickles, no truncation, only a regular file; a
    read-only memory map by default, else a read-only array read into memory."""
    path = Path(path)
    with open_regular(path, ".npy file") as f:
        try:
            shape, fortran, dtype = _read_header(f, str(path))
            offset = f.tell()
        except OSError as exc:
            raise RunFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
        n_bytes = _prod(shape) * dtype.itemsize
        expected = offset + n_bytes
        size = os.fstat(f.fileno()).st_size
        if size < expected:
            raise RunFormatError(
                f"{path}: truncated ({size} bytes, header announces {expected}); "
                "the file was not fully written"
            )
        if size > expected:
            raise RunFormatError(f"{path}: {size - expected} unexpected bytes after the array data")
        order = "F" if fortran else "C"
        try:
            if mmap and n_bytes > 0:  # an empty array cannot be memory-mapped
                return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
            arr = np.empty(shape, dtype=dtype, order=order)
            _read_into(f, arr, path)
        except (ValueError, OSError, EOFError) as exc:
            raise RunFormatError(f"{path}: cannot load array ({exc})") from None
    arr.flags.writeable = False
    return arr


def _read_into(f, arr: np.ndarray, path: Path) -> None:
    """Fill ``arr`` from the file's current position with plain reads (no memory map)."""
    view = memoryview(arr.reshape(-1, order="A")).cast("B") if arr.size else memoryview(b"")
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise RunFormatError(f"{path}: truncated while reading (the file shrank)")
        done += n


def _read_npz(path: Path, max_bytes: int = MAX_IMPORT_BYTES) -> dict[str, np.ndarray]:
    """Load every array of an .npz archive into memory, refusing pickles, damaged members and
    members whose inflated size exceeds ``max_bytes`` (all members together)."""
    arrays: dict[str, np.ndarray] = {}
    total = 0
    try:
        with open_regular(path, ".npz archive") as fh, zipfile.ZipFile(fh) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            declared = sum(i.file_size for i in members)
            if declared > max_bytes + 1024 * len(members):  # headers add a few bytes each
                raise RunFormatError(
                    f"{path}: its arrays inflate to {declared:,} bytes, more than the limit of "
                    f"{max_bytes:,} bytes (a zip bomb, or outputs too large to import here)"
                )
            for info in members:
                key = info.filename[: -len(".npy")]
                where = f"{path}[{key}]"
                with zf.open(info) as f:
                    shape, fortran, dtype = _read_header(f, where)
                    n_bytes = _prod(shape) * dtype.itemsize
                    total += n_bytes
                    if total > max_bytes:
                        raise RunFormatError(
                            f"{where}: the arrays need {total:,} bytes, more than the limit "
                            f"of {max_bytes:,} bytes; refusing to inflate them"
                        )
                    # The archive's directory states the member size; a header that claims
                    # more data than that is damaged (and would make us allocate for nothing).
                    if n_bytes > info.file_size:
                        raise RunFormatError(f"{where}: truncated array data")
                    arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
                    _read_into(f, arr, Path(where))
                arrays[key] = arr
    except RunFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as exc:
        raise RunFormatError(f"{path}: damaged .npz archive ({exc})") from None
    return arrays


def _check_zip_size(path: Path, max_bytes: int) -> None:
    """A .pt file is a zip archive too: refuse one whose members inflate past the limit."""
    try:
        with open_regular(path, ".pt file") as fh, zipfile.ZipFile(fh) as zf:
            declared = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile:
        return  # legacy (non-zip) torch files: torch.load reads them, within their own size
    if declared > max_bytes:
        raise RunFormatError(
            f"{path}: its tensors inflate to {declared:,} bytes, more than the limit of "
            f"{max_bytes:,} bytes"
        )


def _read_any(
    path: Path,
    read_pt: Callable[[Path], dict[str, np.ndarray] | np.ndarray] | None,
    max_bytes: int,
) -> dict[str, np.ndarray] | np.ndarray:
    """A file's arrays: a dict for an .npz or a dict .pt, one array for an .npy or a bare
    tensor .pt."""
    if not path.exists():
        raise RunFormatError(f"{path}: file does not exist")
    with open_regular(path, "outputs file") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):  # torch's format is a zip too: decide by name first
        if read_pt is None:
            raise RunFormatError(
                f"{path}: .pt files need torch; import them with `python -m dynconf import`"
            )
        _check_zip_size(path, max_bytes)
        return read_pt(path)
    if head.startswith(b"PK"):
        return _read_npz(path, max_bytes)
    if head.startswith(b"\x93NUMPY"):
        return read_npy(path)
    if suffix == ".npz":
        raise RunFormatError(f"{path}: not an .npz archive (no zip signature)")
    raise RunFormatError(f"{path}: not an .npz archive or .npy array (unknown content)")


def _take(found: dict[str, np.ndarray], key: str, path: Path, flag: str) -> np.ndarray:
    if key not in found:
        have = ", ".join(f"'{k}'" for k in found) or "none"
        raise RunFormatError(
            f"{path}: no '{key}' array (found: {have}); name the right one with {flag}"
        )
    return found.pop(key)


def read_outputs_file(
    path: Path | str,
    labels_path: Path | str | None = None,
    read_pt: Callable[[Path], dict[str, np.ndarray] | np.ndarray] | None = None,
    max_bytes: int | None = None,
    outputs_key: str = "outputs",
    labels_key: str = "labels",
) -> dict:
    """Read an outputs file to import: .npz (outputs, labels, optional spikes, ids), .npy
    (outputs only; labels from labels_path) or, with a ``read_pt`` reader, .pt (a dict of
    tensors, or one bare tensor of outputs with labels_path). Returns a dict of numpy arrays
    under the names outputs, labels, spikes, ids; shapes are checked by the caller.

    outputs_key, labels_key: what the file calls its outputs and labels (e.g. "logits",
    "targets"). The labels file may be an .npy, a bare tensor .pt, or an .npz / dict .pt
    holding labels_key. max_bytes bounds the inflated size of a compressed file's arrays (the
    app passes its upload limit; default import_limit()); a larger archive is refused before
    anything is inflated.
    """
    path = Path(path)
    max_bytes = import_limit(max_bytes)
    content = _read_any(path, read_pt, max_bytes)
    if isinstance(content, np.ndarray):  # a bare array is the outputs, whatever its name
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
        for role in OPTIONAL_ROLES:
            if role in found:
                arrays[role] = found.pop(role)
        if found:
            raise RunFormatError(
                f"{path}: unexpected arrays {sorted(found)} (an outputs file holds outputs, "
                "labels, optional spikes and ids; name yours with --outputs-key and "
                "--labels-key)"
            )
    if labels_path is not None:
        labels_path = Path(labels_path)
        labels = _read_any(labels_path, read_pt, max_bytes)
        if not isinstance(labels, np.ndarray):
            labels = _take(dict(labels), labels_key, labels_path, "--labels-key")
        arrays["labels"] = np.array(labels)  # in memory: the file may be replaced meanwhile
    if "labels" not in arrays:
        raise RunFormatError(
            f"{path}: no 'labels' array (the file holds only the outputs); pass the labels "
            "file with --labels"
        )
    return arrays

"""Reading arrays safely: .npy files of a run, and the outputs files users import.

Arrays are plain .npy read with allow_pickle=False (a file may come from anyone, and a
pickle executes code); the header is parsed and checked before any data is touched (no
object dtypes, no truncation), and run arrays are memory-mapped read-only (ImageNet outputs
are gigabytes). .pt files (a dict of tensors) need torch, which the core never imports: the
caller passes a reader (dynconf/engine/tensor_files.py), as the `import` command does.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dynconf.errors import RunFormatError


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
    """Load one .npy file safely: no pickles, no truncation, read-only memory map by default."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, _, dtype = _read_header(f, str(path))
            offset = f.tell()
    except FileNotFoundError:
        raise RunFormatError(f"{path}: file is missing") from None
    except IsADirectoryError:
        raise RunFormatError(f"{path}: is a directory, expected a .npy file") from None
    except OSError as exc:
        raise RunFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    expected = offset + _prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise RunFormatError(
            f"{path}: truncated ({size} bytes, header announces {expected}); "
            "the file was not fully written"
        )
    if size > expected:
        raise RunFormatError(f"{path}: {size - expected} unexpected bytes after the array data")
    use_mmap = mmap and _prod(shape) > 0  # an empty array cannot be memory-mapped
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if use_mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        raise RunFormatError(f"{path}: cannot load array ({exc})") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz archive into memory, refusing pickles and damaged members."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                where = f"{path}[{key}]"
                with zf.open(info) as f:
                    shape, fortran, dtype = _read_header(f, where)
                    # The archive's directory states the member size; a header that claims more
                    # data than that is damaged (and would make us allocate for nothing).
                    if _prod(shape) * dtype.itemsize > info.file_size:
                        raise RunFormatError(f"{where}: truncated array data")
                    data = f.read(_prod(shape) * dtype.itemsize)
                if len(data) != _prod(shape) * dtype.itemsize:
                    raise RunFormatError(f"{where}: truncated array data")
                arr = np.frombuffer(data, dtype=dtype)
                arrays[key] = arr.reshape(shape, order="F" if fortran else "C")
    except RunFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as exc:
        raise RunFormatError(f"{path}: damaged .npz archive ({exc})") from None
    return arrays


def read_outputs_file(
    path: Path | str,
    labels_path: Path | str | None = None,
    read_pt: Callable[[Path], dict[str, np.ndarray]] | None = None,
) -> dict:
    """Read an outputs file to import: .npz (outputs, labels, optional spikes, ids), .npy
    (outputs only; labels from labels_path) or, with a ``read_pt`` reader, .pt (a dict of
    tensors). Returns a dict of numpy arrays; shapes are checked by the caller."""
    path = Path(path)
    if not path.exists():
        raise RunFormatError(f"{path}: file does not exist")
    if not path.is_file():
        raise RunFormatError(f"{path}: not a file")
    with open(path, "rb") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):  # torch's format is a zip too: decide by name first
        if read_pt is None:
            raise RunFormatError(
                f"{path}: .pt files need torch; import them with `python -m dynconf import`"
            )
        arrays = read_pt(path)
    elif head.startswith(b"PK"):
        arrays = _read_npz(path)
    elif head.startswith(b"\x93NUMPY"):
        arrays = {"outputs": read_npy(path)}
    elif suffix == ".npz":
        raise RunFormatError(f"{path}: not an .npz archive (no zip signature)")
    else:
        raise RunFormatError(f"{path}: not an .npz archive or .npy array (unknown content)")
    if labels_path is not None:
        if "labels" in arrays:
            raise RunFormatError(f"{path}: has a 'labels' array and a labels file was given too")
        arrays["labels"] = read_npy(labels_path, mmap=False)
    if "outputs" not in arrays:
        raise RunFormatError(f"{path}: no 'outputs' array (found: {', '.join(arrays) or 'none'})")
    if "labels" not in arrays:
        raise RunFormatError(f"{path}: no 'labels' array (add one, or pass a labels file)")
    unknown = set(arrays) - {"outputs", "labels", "spikes", "ids"}
    if unknown:
        raise RunFormatError(f"{path}: unexpected arrays {sorted(unknown)}")
    return arrays

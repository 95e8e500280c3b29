"""Reading one .npy array safely: a run's files, and the outputs files users import.

Arrays are plain .npy read with allow_pickle=False (a file may come from anyone, and a
pickle executes code); the header is parsed and checked before any data is touched (no
object dtypes, no truncation), and run arrays are memory-mapped read-only (ImageNet outputs
are gigabytes) unless the caller asks for plain reads (a memory map of a file that another
process truncates kills the reader with SIGBUS; an in-memory copy cannot). Only regular
files are ever opened (safeopen.open_regular).

Imports stream: the outputs of an ImageNet-sized file (T x N x K values, gigabytes) are never
loaded whole, nor memory-mapped, since a mapped page counts in the importer's resident
memory and a truncated file kills it with SIGBUS. ArrayFile reads the pieces asked for with
plain positioned reads. A Fortran-order file is refused with the one-line conversion to run
(fortran_refusal). npyio.py gathers these names with the archive and import readers.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import IO

import numpy as np

from dynconf.core.safeopen import (  # noqa: F401  (re-exported: the one regular-file check)
    is_regular_file,
    open_regular,
)
from dynconf.errors import RunFormatError

READ_CHUNK_BYTES = 8 << 20  # plain reads for CRC checks and inflating, this much at a time


def fortran_refusal(where: str) -> str:
    """The one-line refusal of a Fortran-order (column-major) array to import."""
    return (
        f"{where}: stored in Fortran (column-major) order, which dynconf does not import; "
        "save it in C order first: np.save(path, np.ascontiguousarray(array))"
    )


def _prod(shape) -> int:
    return int(math.prod(int(s) for s in shape))


# numpy parses a header with ast.literal_eval, and CPython 3.11's parser is not safe to run
# in several threads at once ("AST constructor recursion depth mismatch"): the app's
# sessions and threaded readers parse headers one at a time.
_HEADER_PARSE = threading.Lock()


def _read_header(f, where: str):
    """Parse a .npy header from an open binary file; refuse object dtypes before any data."""
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise RunFormatError(f"{where}: not a .npy array file") from None
    try:
        if version not in ((1, 0), (2, 0)):
            raise RunFormatError(f"{where}: unsupported .npy format version {version}")
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        with _HEADER_PARSE:
            shape, fortran, dtype = read(f)
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


class ArrayFile:
    """A C-order array stored in a file at a byte offset, read in pieces with plain reads.

    Keeps the file open: a file renamed over or removed meanwhile is still read as it was
    when opened; one truncated meanwhile fails with a message (never SIGBUS). ``where`` names
    the array in messages. Use as a context manager, or close() it.
    """

    def __init__(self, f: IO[bytes], offset: int, shape, dtype: np.dtype, where: str):
        self.file, self.offset, self.where = f, int(offset), where
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.ndim, self.size = len(self.shape), _prod(self.shape)
        self.nbytes = self.size * self.dtype.itemsize

    def read(self, start: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """Elements start .. start+count of the flattened array, as a fresh 1-D array or
        into ``out`` (C-contiguous, of this dtype and count elements), which is returned."""
        out = np.empty(count, self.dtype) if out is None else out
        if out.dtype != self.dtype or out.size != count or not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous, of the file's dtype and count elements")
        view = memoryview(out.reshape(-1).view(np.uint8))
        position, done = self.offset + start * self.dtype.itemsize, 0
        while done < len(view):
            try:
                n = os.preadv(self.file.fileno(), [view[done:]], position + done)
            except OSError as exc:
                raise RunFormatError(f"{self.where}: cannot read ({exc.strerror or exc})") from None
            if not n:
                raise RunFormatError(f"{self.where}: truncated while reading (the file shrank)")
            done += n
        return out

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_npy(path: Path | str) -> ArrayFile | np.ndarray:
    """An .npy file checked like read_npy (no pickles, no truncation, a regular file), its
    data left on disk as an ArrayFile, read with positioned reads only (never mapped: a
    mapped file truncated meanwhile kills the reader with SIGBUS). A Fortran-order array of
    more than one dimension is refused (fortran_refusal): its samples are not contiguous
    pieces of the file. An empty array is returned in memory."""
    path = Path(path)
    f = open_regular(path, ".npy file")
    try:
        shape, fortran, dtype = _read_header(f, str(path))
        offset = f.tell()
        expected = offset + _prod(shape) * dtype.itemsize
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        f.close()
        raise RunFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except BaseException:
        f.close()
        raise
    if fortran and len(shape) > 1:
        f.close()
        raise RunFormatError(fortran_refusal(str(path)))
    if size != expected or _prod(shape) == 0:
        f.close()
        return read_npy(path, mmap=False)  # its messages for a wrong size; its reading otherwise
    return ArrayFile(f, offset, shape, dtype, str(path))

"""NpyWriter: one .npy file of a known shape and dtype, written piece by piece.

The streaming import writes each stored array this way, into a temporary name beside the
destination, so no array is ever whole in memory; the store renames the finished file into
place (store.py). Failed writes raise DestinationError naming the file the user asked for
(atomic.destination_error), never the temporary name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from dynconf.core.atomic import destination_error


class NpyWriter:
    """A C-order .npy file of a known shape and dtype written in pieces at given positions,
    with plain positioned writes (a memory map's written pages would count in the writer's
    resident memory until the kernel writes them back): the file is created with its header
    (exactly np.save's), written with write(start, values) and finished with close(), which
    fsyncs it. abort() removes it. Failed writes raise DestinationError naming ``shown`` (the
    file the user asked for; default ``path``)."""

    def __init__(self, path: Path | str, shape, dtype, shown: Path | str | None = None):
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self.shown = Path(shown) if shown is not None else self.path  # named in messages
        self.shape = tuple(int(s) for s in shape)
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        try:
            self.file = open(self.path, "xb")  # noqa: SIM115 (closed by close/abort)
        except OSError as exc:
            raise destination_error(self.shown, exc) from exc
        try:
            np.lib.format.write_array_header_1_0(self.file, header)
            self.file.flush()
            self.offset = self.file.tell()
            size = self.offset + int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
            os.ftruncate(self.file.fileno(), size)  # a sparse file of the final size
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise destination_error(self.shown, exc) from exc
            raise

    def write(self, start: int, values: np.ndarray) -> None:
        """Write ``values`` (any shape, converted to the file's dtype) as the flattened
        elements start, start + 1, ... of the array."""
        data = np.ascontiguousarray(values, dtype=self.dtype)
        view, done = memoryview(data.reshape(-1).view(np.uint8)), 0
        position = self.offset + int(start) * self.dtype.itemsize
        try:
            while done < len(view):
                done += os.pwritev(self.file.fileno(), [view[done:]], position + done)
        except OSError as exc:
            self.abort()
            raise destination_error(self.shown, exc) from exc

    def close(self) -> Path:
        """Finish the file (fsynced); returns its path."""
        try:
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as exc:
            self.abort()
            raise destination_error(self.shown, exc) from exc
        return self.path

    def abort(self) -> None:
        """Close and remove the file (never raises)."""
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

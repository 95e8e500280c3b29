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

Imports stream (read_outputs_file(stream=True)): the outputs of an ImageNet-sized file (T x N
x K values, gigabytes) are never loaded whole, nor memory-mapped, since a mapped page counts
in the importer's resident memory and a truncated file kills it with SIGBUS. ArrayFile reads
the pieces asked for with plain positioned reads; a compressed .npz member, which can only
be read front to back, is inflated first into an anonymous temporary file (deleted by the
kernel when closed, even after a kill) and read from there.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import tempfile
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


READ_CHUNK_BYTES = 8 << 20  # plain reads for CRC checks and inflating, this much at a time
# An .npz member this large is streamed (_member_array) when asked; smaller ones are read.
STREAM_MIN_BYTES = 64 << 20


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
    data left on disk as an ArrayFile. A Fortran-order or empty array is returned as
    read_npy returns it (rare; its pieces are not contiguous in the file)."""
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
    if size != expected or (fortran and len(shape) > 1) or _prod(shape) == 0:
        f.close()
        return read_npy(path)  # its messages for a wrong size; its reading otherwise
    return ArrayFile(f, offset, shape, dtype, str(path))


def _member_array(
    fh: IO[bytes], zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, spill_dir
) -> ArrayFile | None:
    """A large .npz member as an ArrayFile, or None when it is read like the others.

    A stored (uncompressed) member is read where it lies in the archive, after a pass that
    checks its CRC (zipfile checks it when reading, and a damaged archive must not import);
    a compressed one is inflated into an anonymous temporary file in spill_dir, piece by
    piece (zipfile checks the CRC at the end).
    """
    with zf.open(info) as f:
        shape, fortran, dtype = _read_header(f, where)
        header = f.tell()
    if (fortran and len(shape) > 1) or _prod(shape) == 0:
        return None
    n_bytes = _prod(shape) * dtype.itemsize
    if n_bytes + header != info.file_size:
        return None  # let the plain read report the damage
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
        local = os.pread(fh.fileno(), 30, info.header_offset)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise RunFormatError(f"{where}: damaged .npz archive (bad local header)")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        array = ArrayFile(os.fdopen(os.dup(fh.fileno()), "rb"), start + header, shape, dtype, where)
        crc, done = 0, 0
        try:
            while done < info.file_size:  # the whole member, header included
                n = min(READ_CHUNK_BYTES, info.file_size - done)
                piece = os.pread(array.file.fileno(), n, start + done)
                if len(piece) != n:
                    raise RunFormatError(f"{where}: truncated array data")
                crc, done = zlib.crc32(piece, crc), done + n
            if crc != info.CRC:
                raise RunFormatError(f"{where}: damaged .npz archive (bad CRC-32)")
        except BaseException:
            array.close()
            raise
        return array
    # Anonymous (unlinked at once): the kernel deletes it when closed, even after a kill.
    spill = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115 (returned open, in ArrayFile)
    try:
        with zf.open(info) as f:
            f.read(header)
            while piece := f.read(READ_CHUNK_BYTES):
                spill.write(piece)
        spill.flush()
        if os.fstat(spill.fileno()).st_size != n_bytes:
            raise RunFormatError(f"{where}: truncated array data")
    except OSError as exc:
        spill.close()
        raise RunFormatError(
            f"{where}: cannot inflate into a temporary file in "
            f"{spill_dir or tempfile.gettempdir()} ({exc.strerror or exc})"
        ) from None
    except BaseException:
        spill.close()
        raise
    return ArrayFile(spill, 0, shape, dtype, where)


def _read_npz(
    path: Path,
    max_bytes: int = MAX_IMPORT_BYTES,
    stream_key: str | None = None,
    spill_dir: Path | str | None = None,
) -> dict[str, np.ndarray | ArrayFile]:
    """Load every array of an .npz archive into memory, refusing pickles, damaged members and
    members whose inflated size exceeds ``max_bytes`` (all members together). The member
    ``stream_key`` (if any) is left on disk as an ArrayFile when it is large (_member_array)."""
    arrays: dict[str, np.ndarray | ArrayFile] = {}
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
                    if key == stream_key and n_bytes >= STREAM_MIN_BYTES:
                        big = _member_array(fh, zf, info, where, spill_dir)
                        if big is not None:
                            arrays[key] = big
                            continue
                    arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
                    _read_into(f, arr, Path(where))
                arrays[key] = arr
    except BaseException as exc:
        for arr in arrays.values():
            if isinstance(arr, ArrayFile):
                arr.close()
        if isinstance(exc, RunFormatError):
            raise
        if isinstance(
            exc, (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)
        ):
            raise RunFormatError(f"{path}: damaged .npz archive ({exc})") from None
        raise
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
    stream_key: str | None = None,
    spill_dir: Path | str | None = None,
) -> dict[str, np.ndarray] | np.ndarray:
    """A file's arrays: a dict for an .npz or a dict .pt, one array for an .npy or a bare
    tensor .pt. With stream_key, an .npy file and that .npz member stay on disk (ArrayFile)."""
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
        return _read_npz(path, max_bytes, stream_key, spill_dir)
    if head.startswith(b"\x93NUMPY"):
        return open_npy(path) if stream_key is not None else read_npy(path)
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
    stream: bool = False,
    spill_dir: Path | str | None = None,
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

    stream=True leaves large outputs on disk: "outputs" is then an ArrayFile (read it in
    pieces; close it) for an .npy file or a large .npz member, a compressed member being
    inflated into an anonymous temporary file in spill_dir (default: the system's).
    """
    path = Path(path)
    max_bytes = import_limit(max_bytes)
    content = _read_any(path, read_pt, max_bytes, outputs_key if stream else None, spill_dir)
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

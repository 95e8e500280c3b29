"""Reading an .npz archive that may come from anyone, without letting it choose our memory.

Every member's .npy header is read first (a few bytes, even for a compressed member), and
checked before any member's data is inflated:
- the members' declared sizes together, against a byte limit (max_bytes), so a zip bomb is
  refused before any memory is allocated;
- each member's role and shape, against what the outputs' header implies (member_bound): an
  outputs file holds outputs [T, N, K] (either layout), labels with N entries (a one-hot
  [N, K] is let through to be named as such), spikes and synops [T, N], ids [N]; a member of
  another name or a larger shape is refused from its header. So a small file whose side
  array inflates to gigabytes is refused at once, whatever the order of its members.
A member whose data the caller wants streamed (the outputs of an import) stays on disk as an
ArrayFile: read in place when stored, or inflated piece by piece into an anonymous temporary
file (deleted by the kernel when closed, even after a kill) when compressed.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from dynconf.core.npyfile import (
    READ_CHUNK_BYTES,
    ArrayFile,
    _prod,
    _read_header,
    _read_into,
    fortran_refusal,
)
from dynconf.core.safeopen import open_regular
from dynconf.errors import RunFormatError

# An .npz member this large is streamed (_member_array) when asked; smaller ones are read.
STREAM_MIN_BYTES = 64 << 20
SIDE_ROLES = ("spikes", "synops", "ids")  # format.OPTIONAL_ROLES (format imports no npz)

# A bound on one member, from every member's header: (key, shape) -> a problem, or None.
MemberBound = Callable[[str, tuple], str | None]


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def unexpected_arrays_message(path, names) -> str:
    """The one message for members an outputs file may not hold."""
    return (
        f"{path}: unexpected arrays {sorted(names)} (an outputs file holds outputs, "
        "labels, optional spikes and ids; name yours with --outputs-key and --labels-key)"
    )


def missing_array_message(path, key: str, found, flag: str) -> str:
    have = ", ".join(f"'{k}'" for k in found) or "none"
    return f"{path}: no '{key}' array (found: {have}); name the right one with {flag}"


def member_bound(path: Path, headers: dict, outputs_key: str, labels_key: str) -> MemberBound:
    """The shapes an outputs archive's members may have, given every member's header shape
    ({key: shape}); raises at once when the outputs are missing, or a member is unexpected
    beside the labels. Without labels, a member of another name may be as large as labels
    (it is reported once the missing labels are)."""
    if outputs_key not in headers:
        raise RunFormatError(missing_array_message(path, outputs_key, headers, "--outputs-key"))
    unknown = set(headers) - {outputs_key, labels_key, *SIDE_ROLES}
    if unknown and labels_key in headers:
        raise RunFormatError(unexpected_arrays_message(path, unknown))
    out = tuple(int(n) for n in headers[outputs_key])
    if len(out) == 3:
        a, b, K = out
        samples, steps_by_samples = (a, b), {(a, b), (b, a)}
        labels_at_most = max(a, b) * max(K, 1)  # room for a one-hot [N, K], to be named
    else:  # refused as outputs later; nothing else may be larger than they are
        samples, steps_by_samples, labels_at_most = None, None, _prod(out)
    shown = _shape(out)

    def bound(key: str, shape: tuple) -> str | None:
        shape = tuple(int(n) for n in shape)
        if key == outputs_key:
            return None
        if key == labels_key or key not in SIDE_ROLES:
            if _prod(shape) <= labels_at_most:
                return None
            what = "labels" if key == labels_key else "an array"
            return f"{what} of shape {_shape(shape)} for outputs of shape {shown}"
        if samples is None:
            fits = _prod(shape) <= _prod(out)
        elif key == "ids":
            fits = len(shape) == 1 and shape[0] in samples
        else:
            fits = shape in steps_by_samples
        if fits:
            return None
        wanted = "[N]" if key == "ids" else "[T, N]"
        return f"{key} of shape {_shape(shape)} do not fit outputs of shape {shown} ({wanted})"

    return bound


def _stored_member_array(fh, info, header: int, shape, dtype, where: str) -> ArrayFile:
    """A stored (uncompressed) member read where it lies in the archive, after a pass that
    checks its CRC (zipfile checks it when reading, and a damaged archive must not import)."""
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


def _member_array(
    fh: IO[bytes], zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, spill_dir
) -> ArrayFile | None:
    """A large .npz member as an ArrayFile, or None when it is read like the others.

    A stored member is read in place (_stored_member_array); a compressed one is inflated
    into an anonymous temporary file in spill_dir, piece by piece (zipfile checks the CRC
    at the end).
    """
    with zf.open(info) as f:
        shape, fortran, dtype = _read_header(f, where)
        header = f.tell()
    if _prod(shape) == 0:
        return None
    n_bytes = _prod(shape) * dtype.itemsize
    if n_bytes + header != info.file_size:
        return None  # let the plain read report the damage
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
        return _stored_member_array(fh, info, header, shape, dtype, where)
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


def _headers(path: Path, zf: zipfile.ZipFile, members, max_bytes: int) -> dict:
    """{key: (shape, fortran, dtype, info)} of every .npy member, with the size limits
    checked on the declared sizes and the headers, before any data is inflated."""
    declared = sum(i.file_size for i in members)
    if declared > max_bytes + 1024 * len(members):  # headers add a few bytes each
        raise RunFormatError(
            f"{path}: its arrays inflate to {declared:,} bytes, more than the limit of "
            f"{max_bytes:,} bytes (a zip bomb, or outputs too large to import here)"
        )
    headers, total = {}, 0
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
        # The archive's directory states the member size; a header that claims more data
        # than that is damaged (and would make us allocate for nothing).
        if n_bytes > info.file_size:
            raise RunFormatError(f"{where}: truncated array data")
        headers[key] = (shape, fortran, dtype, info)
    return headers


def _read_members(path, fh, zf, headers, wanted, stream_key, spill_dir) -> dict:
    """The members named in ``wanted`` (all when None), read, or streamed when they are the
    large outputs (stream_key) or, in a streamed read, a large side array."""
    arrays: dict[str, np.ndarray | ArrayFile] = {}
    try:
        for key, (shape, fortran, dtype, info) in headers.items():
            if wanted is not None and key not in wanted:
                continue
            where = f"{path}[{key}]"
            n_bytes = _prod(shape) * dtype.itemsize
            streamed = key == stream_key or (
                stream_key is not None and key in SIDE_ROLES and n_bytes >= STREAM_MIN_BYTES
            )
            if streamed:
                if fortran and len(shape) > 1:
                    raise RunFormatError(fortran_refusal(where))
                if n_bytes >= STREAM_MIN_BYTES:
                    big = _member_array(fh, zf, info, where, spill_dir)
                    if big is not None:
                        arrays[key] = big
                        continue
            with zf.open(info) as f:
                _read_header(f, where)
                arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
                _read_into(f, arr, Path(where))
            arrays[key] = arr
    except BaseException:
        for arr in arrays.values():
            if isinstance(arr, ArrayFile):
                arr.close()
        raise
    return arrays


def read_npz(
    path: Path,
    max_bytes: int,
    stream_key: str | None = None,
    spill_dir: Path | str | None = None,
    bound: Callable[[dict], MemberBound] | None = None,
    wanted: set[str] | None = None,
) -> dict[str, np.ndarray | ArrayFile]:
    """The arrays of an .npz archive, refusing pickles, damaged members, members whose
    inflated size exceeds ``max_bytes`` (all members together) and, with ``bound`` (given
    {key: header shape}, it returns the check of each member), members of the wrong role or
    shape, all from the headers before any data is inflated. Only the members in ``wanted``
    are read (default all). The member ``stream_key`` (if any) and, when it is given, every
    side array (spikes, synops, ids) are left on disk as ArrayFiles when large
    (_member_array)."""
    try:
        with open_regular(path, ".npz archive") as fh, zipfile.ZipFile(fh) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            headers = _headers(path, zf, members, max_bytes)
            if bound is not None:
                check = bound({key: h[0] for key, h in headers.items()})
                for key, (shape, *_) in headers.items():
                    problem = check(key, shape)
                    if problem:
                        raise RunFormatError(f"{path}[{key}]: {problem}; refused before reading it")
            return _read_members(path, fh, zf, headers, wanted, stream_key, spill_dir)
    except RunFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as exc:
        raise RunFormatError(f"{path}: damaged .npz archive ({exc})") from None


def check_zip_size(path: Path, max_bytes: int) -> None:
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

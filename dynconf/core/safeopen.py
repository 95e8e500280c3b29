"""Opening files that may come from anyone: only regular files, bounded reads, safe JSON.

Every file the library reads goes through open_regular: a FIFO or a device where a run file,
a settings file or an import source should be would block the reader forever (a FIFO's
open and read wait for a writer), and a device can be endless. The file is opened with
O_NONBLOCK, so even a FIFO's open returns at once, and then checked with fstat on the opened
descriptor, so no other file can be swapped in between the check and the open.

read_json_file adds what JSON from anyone needs: a size bound before reading, no NaN or
infinity (they are not JSON), and a nesting bound, since Python's parser recurses once per
level and a file nested 100,000 deep would otherwise end in a RecursionError.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

from dynconf.errors import RunFormatError

MAX_JSON_BYTES = 64 << 20  # room for ImageNet-21k class lists, not for a hostile giant
MAX_JSON_DEPTH = 64  # meta.json and settings files nest a few levels


def open_regular(path: Path | str, what: str = "file", error=RunFormatError) -> IO[bytes]:
    """Open ``path`` for binary reading only if it is a regular file (symlinks followed).

    Opened with O_NONBLOCK first, so a FIFO cannot block the open, then checked with fstat on
    the opened descriptor (no window between the check and the open). Failures raise
    ``error`` (a DynconfError subclass) with a one-line message naming the path.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: file is missing") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {what}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise error(f"{path}: cannot read ({reason})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (FIFO, device?)"
            raise error(f"{path}: is {kind}, expected a {what}")
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


def read_regular_bytes(
    path: Path | str, what: str = "file", max_bytes: int = MAX_JSON_BYTES, error=RunFormatError
) -> bytes:
    """The content of a regular file of at most ``max_bytes`` bytes (else ``error``)."""
    with open_regular(path, what, error) as f:
        try:
            if os.fstat(f.fileno()).st_size > max_bytes:
                raise error(f"{path}: larger than {max_bytes:,} bytes, expected a {what}")
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew while read
        raise error(f"{path}: larger than {max_bytes:,} bytes, expected a {what}")
    return data


def read_regular_text(
    path: Path | str, what: str = "file", max_bytes: int = MAX_JSON_BYTES, error=RunFormatError
) -> str:
    """read_regular_bytes decoded as UTF-8 (undecodable bytes are an ``error``)."""
    try:
        return read_regular_bytes(path, what, max_bytes, error).decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text, expected a {what}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def json_depth_problem(text: str, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` nests too deep to parse, or None: the deepest run of brackets outside
    strings, counted without recursion (so any nesting is measured in linear time)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    return f"nested more than {max_depth} levels deep"
        elif ch in "]}":
            depth -= 1
    return None


def parse_json(text: str, where: str, error=RunFormatError, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON text from anyone: a one-line ``error`` for invalid JSON, NaN or infinity, or
    nesting deeper than ``max_depth``; never a RecursionError."""
    problem = json_depth_problem(text, max_depth)
    if problem:
        raise error(f"{where}: not valid JSON here ({problem})")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise error(f"{where}: not valid JSON ({reason})") from None


def read_json_file(
    path: Path | str,
    what: str = "JSON file",
    max_bytes: int = MAX_JSON_BYTES,
    error=RunFormatError,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """The parsed content of a JSON file from anyone: a regular file (never a FIFO), at most
    ``max_bytes``, UTF-8, parsed by parse_json. Every failure is a one-line ``error``."""
    data = read_regular_bytes(path, what, max_bytes, error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not valid JSON (not UTF-8 text)") from None
    return parse_json(text, str(path), error, max_depth)

"""Files into parts that fit the way back from a lent GPU machine, and back into files:
`python -m lease.bundle pack --out DIR --stem NAME PATH...` and
`python -m lease.bundle unpack MANIFEST DEST`.

What comes back from a lease is at most a few files of at most 16 MiB each, named only with
letters, digits, '.', '_' and '-'; a run's outputs and a checkpoint can be larger and live in
folders. So the files to return, in order, form one byte stream cut into parts
`<stem>.part00`, `<stem>.part01`, ... of at most `part_bytes` each, described by
`<stem>.manifest.json` (format "dynconf-bundle-1"; per file its name, size and sha256; per
part the same; the total). The part count is known from the sizes before anything is written,
so a bundle that would not fit is refused up front; everything streams in blocks of at most
1 MiB, so a checkpoint never has to fit in memory.

Unpacking checks every part (present, exact size, sha256) before rebuilding anything, rebuilds
the files in a temporary folder beside the destination, checks each file's sha256 and renames
the folder into place: the destination is either every file, verified, or absent.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from dynconf.core.atomic import (
    atomic_write,
    destination_error,
    new_folder_atomic,
    write_json_atomic,
)
from dynconf.errors import DataError
from lease import print_result
from lease.jpegpack import check_name, check_names, list_tree

FORMAT = "dynconf-bundle-1"
BLOCK = 2**20  # the most bytes read or written at once
PART_BYTES = 15 * 2**20  # under the 16 MiB a returned file may have
SAFE = re.compile(r"[A-Za-z0-9._-]+\Z")  # the alphabet of a returned file's name
SHA256 = re.compile(r"[0-9a-f]{64}\Z")


def _check_stem(stem: object) -> str:
    if not isinstance(stem, str) or not SAFE.match(stem) or stem in (".", ".."):
        raise DataError(f"stem {stem!r} must be letters, digits, '.', '_' or '-' only")
    return stem


def part_name(stem: str, index: int) -> str:
    return f"{stem}.part{index:02d}"


def manifest_name(stem: str) -> str:
    return f"{stem}.manifest.json"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class _Stream:
    """The contents of the entries, in order, as one stream read in blocks; each file's
    sha256 is computed on the way and its size checked against the one planned with."""

    def __init__(self, entries: list[tuple[str, Path, int]]):
        self.pending = list(entries)
        self.fh: IO[bytes] | None = None
        self.done: list[dict] = []

    def _open_next(self) -> None:
        self.name, self.path, self.size = self.pending.pop(0)
        try:
            self.fh = open(self.path, "rb")  # noqa: SIM115 (closed in _close_current)
        except OSError as exc:
            raise DataError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self.left = self.size
        self.digest = hashlib.sha256()

    def _close_current(self) -> None:
        assert self.fh is not None
        grew = self.fh.read(1)
        self.fh.close()
        self.fh = None
        if grew:
            raise DataError(f"{self.path} grew while being packed; pack it again")
        self.done.append({"name": self.name, "bytes": self.size, "sha256": self.digest.hexdigest()})

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (> 0) of the stream; b"" only at its end."""
        while True:
            if self.fh is None:
                if not self.pending:
                    return b""
                self._open_next()
            if self.left:
                break
            self._close_current()  # a file fully read (or empty): on to the next
        data = self.fh.read(min(n, self.left))
        if not data:
            raise DataError(f"{self.path} shrank while being packed; pack it again")
        self.digest.update(data)
        self.left -= len(data)
        return data

    def finish(self) -> list[dict]:
        """Read past the last byte (empty files at the end) and return every file's record."""
        if self.read(1):
            raise AssertionError("the stream is longer than planned")
        return self.done

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def _write_part(stream: _Stream, size: int, record: dict):
    """A writer for atomic_write: the next ``size`` bytes of the stream, hashed into record."""

    def write(fh: IO[bytes]) -> None:
        digest = hashlib.sha256()
        left = size
        while left:
            data = stream.read(min(left, BLOCK))
            if not data:
                raise DataError("the files shrank while being packed; pack them again")
            fh.write(data)
            digest.update(data)
            left -= len(data)
        record["sha256"] = digest.hexdigest()

    return write


def pack_files(
    entries: Iterable[tuple[str, Path | str]],
    out_dir: Path | str,
    stem: str,
    part_bytes: int = PART_BYTES,
    max_parts: int | None = None,
) -> list[Path]:
    """Write the files of ``entries`` ((name, path) pairs) as parts plus a manifest in
    ``out_dir``; returns the written paths, parts then manifest (module docstring)."""
    _check_stem(stem)
    if isinstance(part_bytes, bool) or not isinstance(part_bytes, int) or part_bytes < 1:
        raise DataError(f"part size {part_bytes!r} must be a whole number of bytes >= 1")
    entries = [(name, Path(path)) for name, path in entries]
    if not entries:
        raise DataError("no files to pack")
    check_names([name for name, _ in entries], "file name")
    planned = []
    for name, path in entries:
        try:
            size = os.stat(path).st_size
            if not path.is_file():
                raise DataError(f"{path} (for {name!r}) is not a regular file")
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        planned.append((name, path, size))
    total = sum(size for _, _, size in planned)
    n_parts = math.ceil(total / part_bytes)
    if max_parts is not None and n_parts > max_parts:
        raise DataError(
            f"{total} bytes make {n_parts} parts of at most {part_bytes} bytes, "
            f"more than the limit of {max_parts}"
        )
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise destination_error(out_dir, exc) from exc
    stream = _Stream(planned)
    parts: list[dict] = []
    written: list[Path] = []
    try:
        for i in range(n_parts):
            size = min(part_bytes, total - i * part_bytes)
            record = {"name": part_name(stem, i), "bytes": size}
            written.append(
                atomic_write(out_dir / record["name"], _write_part(stream, size, record))
            )
            parts.append(record)
        files = stream.finish()
        manifest = {
            "format": FORMAT,
            "total_bytes": total,
            "part_bytes": part_bytes,
            "files": files,
            "parts": parts,
        }
        written.append(write_json_atomic(out_dir / manifest_name(stem), manifest))
    except BaseException:
        # Parts without their manifest are of no use and would take slots on the way back.
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    finally:
        stream.close()
    return written


# --------------------------------------------------------------------------- unpack


def _records(manifest: Path, value: object, key: str) -> list[dict]:
    """The list ``key`` of the manifest: dicts with a str name, an int bytes >= 0, a sha256."""
    if not isinstance(value, list):
        raise DataError(f"{manifest}: '{key}' is not a list")
    for item in value:
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("bytes"), int)
            and not isinstance(item.get("bytes"), bool)
            and item["bytes"] >= 0
            and isinstance(item.get("sha256"), str)
            and SHA256.match(item["sha256"])
        )
        if not ok:
            raise DataError(f"{manifest}: an entry of '{key}' lacks a name, bytes or sha256")
    return value


def read_manifest(manifest: Path | str) -> dict:
    """The manifest at ``manifest``, its structure, names and sizes validated."""
    manifest = Path(manifest)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"manifest {manifest} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"manifest {manifest} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{manifest} is not a {FORMAT} manifest")
    files = _records(manifest, data.get("files"), "files")
    parts = _records(manifest, data.get("parts"), "parts")
    try:
        check_names([f["name"] for f in files], "file name")
    except DataError as exc:
        raise DataError(f"{manifest}: {exc}") from None
    part_names = [p["name"] for p in parts]
    for name in part_names:
        # one name in the allowed alphabet: inside the manifest's folder, never a path
        if not SAFE.match(name) or name in (".", ".."):
            raise DataError(f"{manifest}: part name {name!r} is not a plain file name")
    if len(set(part_names)) != len(part_names) or manifest.name in part_names:
        raise DataError(f"{manifest}: a part name appears twice")
    total = data.get("total_bytes")
    in_files, in_parts = sum(f["bytes"] for f in files), sum(p["bytes"] for p in parts)
    if total != in_files or total != in_parts:
        raise DataError(
            f"{manifest}: sizes do not add up (total {total!r}, files {in_files}, parts {in_parts})"
        )
    return data


def unpack_files(manifest: Path | str, dest: Path | str) -> dict[str, Path]:
    """Rebuild the files of ``manifest`` under ``dest`` (which must not exist), checked.

    Returns {name: final path}.
    """
    manifest, dest = Path(manifest), Path(dest)
    data = read_manifest(manifest)
    if os.path.lexists(dest):
        raise DataError(f"{dest} already exists; unpack into a new folder")
    parts = [(manifest.parent / p["name"], p) for p in data["parts"]]
    for path, record in parts:
        if not path.is_file():
            raise DataError(f"part {record['name']} is missing (expected at {path})")
        size = path.stat().st_size
        if size != record["bytes"]:
            raise DataError(
                f"part {record['name']} is damaged: {size} bytes, expected {record['bytes']}"
            )
        if _sha256_file(path) != record["sha256"]:
            raise DataError(f"part {record['name']} is damaged: its sha256 does not match")
    new_folder_atomic(dest, lambda tmp: _rebuild(parts, data["files"], tmp))
    return {f["name"]: dest / f["name"] for f in data["files"]}


def _rebuild(parts: list[tuple[Path, dict]], files: list[dict], folder: Path) -> None:
    """Cut the parts' stream back into ``files`` under ``folder``, checking each sha256."""
    pending = list(parts)
    current: IO[bytes] | None = None
    try:
        for record in files:
            target = folder / record["name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            left = record["bytes"]
            with open(target, "xb") as fh:
                while left:
                    if current is None:
                        current = open(pending.pop(0)[0], "rb")  # noqa: SIM115
                    data = current.read(min(left, BLOCK))
                    if not data:  # this part is used up: the next one continues the stream
                        current.close()
                        current = None
                        continue
                    fh.write(data)
                    digest.update(data)
                    left -= len(data)
                fh.flush()
                os.fsync(fh.fileno())
            if digest.hexdigest() != record["sha256"]:
                raise DataError(f"file {record['name']} is damaged: its sha256 does not match")
    finally:
        if current is not None:
            current.close()


# --------------------------------------------------------------------------- CLI


def entries_for(paths: list[str]) -> list[tuple[str, Path]]:
    """A file under its base name; a folder's regular files as "<folder>/<relative path>"."""
    entries: list[tuple[str, Path]] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            folder = Path(os.path.abspath(path)).name
            entries += [(f"{folder}/{rel}", file) for rel, file in list_tree(path)]
        elif path.is_file():
            entries.append((check_name(path.name, "file name"), path))
        else:
            raise DataError(f"{arg} is not a file or folder")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lease.bundle", description=__doc__.strip().splitlines()[0]
    )
    subs = parser.add_subparsers(dest="command", required=True)
    p = subs.add_parser("pack", help="write PATHs as parts plus a manifest in --out")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--stem", required=True, metavar="NAME")
    p.add_argument("--part-mib", type=float, default=PART_BYTES / 2**20)
    p.add_argument(
        "--max-parts",
        type=int,
        default=7,
        help="at most this many parts (7: with the manifest, 8 files)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    u = subs.add_parser("unpack", help="rebuild the files of MANIFEST as the new folder DEST")
    u.add_argument("manifest", metavar="MANIFEST")
    u.add_argument("dest", metavar="DEST")
    args = parser.parse_args(argv)

    def pack() -> dict:
        written = pack_files(
            entries_for(args.paths),
            args.out,
            args.stem,
            part_bytes=int(args.part_mib * 2**20),
            max_parts=args.max_parts,
        )
        return {"parts": [str(p) for p in written[:-1]], "manifest": str(written[-1])}

    def unpack() -> dict:
        rebuilt = unpack_files(args.manifest, args.dest)
        return {name: str(path) for name, path in rebuilt.items()}

    return print_result(pack if args.command == "pack" else unpack)


if __name__ == "__main__":
    sys.exit(main())

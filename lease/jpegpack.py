"""An image tree as one file, byte for byte: `python -m lease.jpegpack pack SRC OUT` and
`python -m lease.jpegpack unpack PACK DEST`.

What travels to a lent GPU machine is limited (64 MiB), and CIFAR-10 as an ImageFolder tree is
60,000 small JPEGs (55 MB of files). One encoder wrote them all, so the bytes before each
file's first SOS marker (SOI, APP0, DQT, SOF, DHT: ~609 bytes) are the same in every file and
only ~312 bytes per image follow. Storing each distinct prefix once and the rest of every file
as it is packs the tree losslessly into ~19 MB. Nothing is decoded or re-encoded: a file is
its prefix followed by its body, so the unpacked tree is identical to the packed one, which a
sha256 digest over the whole tree (names, sizes, contents) checks on the way out.

The pack is one uncompressed .npz (the bodies are entropy-coded already) of plain numeric
arrays only, so it loads with allow_pickle=False; unpacking validates every array and every
path before writing anything, writes into a temporary folder beside the destination and
renames it into place, so the destination is either the whole tree or absent.

The path rules (check_name) and the tree walk (list_tree) are shared with lease.bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from dynconf.core.atomic import atomic_write, new_folder_atomic
from dynconf.errors import DataError
from lease import print_result

FORMAT = "dynconf-jpegpack-1"
SOI = b"\xff\xd8"  # start of image: the file is a JPEG
SOS = b"\xff\xda"  # start of scan: the entropy-coded data (different in every image) follows

# name -> dtype of every array a pack must hold
ARRAYS = {
    "format": np.uint8,
    "paths": np.uint8,
    "prefixes": np.uint8,
    "prefix_offsets": np.int64,
    "prefix_of": np.int32,
    "bodies": np.uint8,
    "body_offsets": np.int64,
    "digest": np.uint8,
}


# --------------------------------------------------------------------------- paths


def check_name(name: object, what: str = "path") -> str:
    """``name`` if it is a safe relative POSIX path, else DataError.

    Safe: a non-empty str, UTF-8 encodable, not absolute, no empty, "." or ".." component,
    no backslash (a separator elsewhere), no NUL and no newline (paths are stored joined by
    newlines), so that joining it to a folder can only ever name something inside it.
    """
    if not isinstance(name, str) or not name:
        raise DataError(f"{what} {name!r} is not a non-empty string")
    if "\\" in name or "\0" in name or "\n" in name:
        raise DataError(f"{what} {name!r} contains a backslash, NUL or newline")
    if name.startswith("/"):
        raise DataError(f"{what} {name!r} is absolute; expected a relative path")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{what} {name!r} is not valid UTF-8") from None
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise DataError(f"{what} {name!r} has an empty, '.' or '..' component")
    return name


def check_names(names: list[str], what: str = "path") -> None:
    """Every name safe, none twice, and none both a file and a folder of another ("a", "a/b")."""
    seen: set[str] = set()
    folders: set[str] = set()
    for name in names:
        check_name(name, what)
        if name in seen:
            raise DataError(f"{what} {name!r} appears twice")
        seen.add(name)
        parts = name.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(seen & folders)
    if clash:
        raise DataError(f"{what} {clash[0]!r} is both a file and a folder")


def list_tree(root: Path | str) -> list[tuple[str, Path]]:
    """Every regular file under ``root`` as (relative POSIX path, path), sorted by that path.

    A symlink or any other non-regular entry is refused (DataError): following it could pack
    files from outside the tree, and dropping it silently would lose part of the tree.
    """
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        raise DataError(f"{root} is not a folder")
    found: list[tuple[str, Path]] = []
    pending = [(root, "")]
    while pending:
        folder, rel = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise DataError(f"cannot read {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            name = os.path.join(rel, entry.name) if rel else entry.name
            if entry.is_symlink():
                raise DataError(f"{entry.path} is a symlink; only regular files can be packed")
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), name))
            elif entry.is_file(follow_symlinks=False):
                found.append((name, Path(entry.path)))
            else:
                raise DataError(f"{entry.path} is not a regular file")
    found.sort(key=lambda item: item[0])
    check_names([name for name, _ in found])
    return found


def _digest_update(digest, name: str, content: bytes) -> None:
    """The tree digest's record of one file: path, NUL, 8-byte little-endian length, content."""
    digest.update(name.encode("utf-8") + b"\0" + len(content).to_bytes(8, "little"))
    digest.update(content)


def _offsets(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)


def _ascii(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# --------------------------------------------------------------------------- pack


def pack_tree(root: Path | str, out: Path | str) -> dict:
    """Pack every regular file under ``root`` into the .npz ``out`` (written atomically).

    Returns {"files", "bytes_in", "bytes_out", "prefixes", "digest"}.
    """
    files = list_tree(root)
    if not files:
        raise DataError(f"{root} holds no files to pack")
    prefix_index: dict[bytes, int] = {}
    prefix_of = np.empty(len(files), dtype=np.int32)
    body_sizes: list[int] = []
    bodies = bytearray()  # the only thing held: every body once (~19 MB for CIFAR-10)
    digest = hashlib.sha256()
    bytes_in = 0
    for i, (name, path) in enumerate(files):
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        _digest_update(digest, name, content)
        bytes_in += len(content)
        cut = content.find(SOS) if content.startswith(SOI) else -1
        prefix = content[:cut] if cut >= 0 else b""
        prefix_of[i] = prefix_index.setdefault(prefix, len(prefix_index))
        body_sizes.append(len(content) - len(prefix))
        bodies += memoryview(content)[len(prefix) :]
    prefixes = list(prefix_index)  # dicts keep insertion order: index i is prefixes[i]
    hexdigest = digest.hexdigest()
    arrays = {
        "format": _ascii(FORMAT),
        "paths": _ascii("\n".join(name for name, _ in files)),
        "prefixes": np.frombuffer(b"".join(prefixes), dtype=np.uint8),
        "prefix_offsets": _offsets([len(p) for p in prefixes]),
        "prefix_of": prefix_of,
        "bodies": np.frombuffer(bodies, dtype=np.uint8),
        "body_offsets": _offsets(body_sizes),
        "digest": _ascii(hexdigest),
    }
    out = Path(out)
    atomic_write(out, lambda fh: np.savez(fh, **arrays))
    return {
        "files": len(files),
        "bytes_in": bytes_in,
        "bytes_out": out.stat().st_size,
        "prefixes": len(prefixes),
        "digest": hexdigest,
    }


# --------------------------------------------------------------------------- unpack


def _load_arrays(pack: Path) -> dict[str, np.ndarray]:
    """Every required array of ``pack``, checked for presence, shape and dtype."""
    bad = f"{pack} is not a readable jpegpack"
    try:
        loaded = np.load(pack, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{pack} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{bad}: {' '.join(str(exc).split())}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{bad}: a single array, not an .npz archive")
    arrays = {}
    with loaded:
        missing = sorted(set(ARRAYS) - set(loaded.files))
        if missing:
            raise DataError(f"{bad}: missing arrays {', '.join(missing)}")
        for key, dtype in ARRAYS.items():
            try:
                value = loaded[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                reason = " ".join(str(exc).split())
                raise DataError(f"{bad}: array {key!r} cannot be read ({reason})") from None
            if value.dtype != dtype or value.ndim != 1:
                raise DataError(
                    f"{bad}: array {key!r} is {value.dtype} {value.shape}, "
                    f"expected 1-d {np.dtype(dtype)}"
                )
            arrays[key] = value
    return arrays


def _check_offsets(pack: Path, offsets: np.ndarray, blob: np.ndarray, name: str) -> None:
    if offsets.size == 0 or offsets[0] != 0:
        raise DataError(f"{pack}: {name} must start at 0")
    if np.any(np.diff(offsets) < 0):
        raise DataError(f"{pack}: {name} decrease")
    if offsets[-1] != blob.size:
        raise DataError(f"{pack}: {name} end at {offsets[-1]}, the blob has {blob.size} bytes")


def read_pack(pack: Path | str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The paths and arrays of ``pack``, all validated (DataError naming the file otherwise)."""
    pack = Path(pack)
    arrays = _load_arrays(pack)
    try:
        form = arrays["format"].tobytes().decode("ascii")
        paths_text = arrays["paths"].tobytes().decode("utf-8")
        digest = arrays["digest"].tobytes().decode("ascii")
    except UnicodeDecodeError:
        raise DataError(f"{pack}: format, paths or digest is not valid text") from None
    if form != FORMAT:
        raise DataError(f"{pack}: format is {form[:40]!r}, expected {FORMAT!r}")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise DataError(f"{pack}: digest is not a sha256 hex string")
    paths = paths_text.split("\n") if paths_text else []
    if not paths:
        raise DataError(f"{pack}: the pack holds no files")
    try:
        check_names(paths)
    except DataError as exc:
        raise DataError(f"{pack}: {exc}") from None
    n_prefixes = arrays["prefix_offsets"].size - 1
    if arrays["prefix_of"].size != len(paths) or arrays["body_offsets"].size != len(paths) + 1:
        raise DataError(
            f"{pack}: {len(paths)} paths but {arrays['prefix_of'].size} prefix_of and "
            f"{arrays['body_offsets'].size} body_offsets (expected {len(paths) + 1})"
        )
    _check_offsets(pack, arrays["prefix_offsets"], arrays["prefixes"], "prefix_offsets")
    _check_offsets(pack, arrays["body_offsets"], arrays["bodies"], "body_offsets")
    prefix_of = arrays["prefix_of"]
    if prefix_of.min() < 0 or prefix_of.max() >= n_prefixes:
        raise DataError(f"{pack}: prefix_of out of range 0..{n_prefixes - 1}")
    return paths, arrays


def unpack_tree(pack: Path | str, dest: Path | str) -> dict:
    """Rebuild the tree of ``pack`` as ``dest`` (which must not exist), all at once.

    Returns {"files", "bytes", "digest"}.
    """
    pack, dest = Path(pack), Path(dest)
    if os.path.lexists(dest):
        raise DataError(f"{dest} already exists; unpack into a new folder")
    paths, arrays = read_pack(pack)
    prefixes, prefix_offsets = arrays["prefixes"], arrays["prefix_offsets"]
    bodies, body_offsets = arrays["bodies"], arrays["body_offsets"]
    expected = arrays["digest"].tobytes().decode("ascii")

    def fill(tmp: Path) -> int:
        digest = hashlib.sha256()
        total = 0
        made = {tmp}
        for i, name in enumerate(paths):
            p = int(arrays["prefix_of"][i])
            content = (
                prefixes[prefix_offsets[p] : prefix_offsets[p + 1]].tobytes()
                + bodies[body_offsets[i] : body_offsets[i + 1]].tobytes()
            )
            _digest_update(digest, name, content)
            total += len(content)
            target = tmp / name
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            # No fsync per file (60,000 of them would take minutes): the tree becomes visible
            # only through the final rename, and a crash before it leaves a temp folder.
            with open(target, "xb") as fh:
                fh.write(content)
        if digest.hexdigest() != expected:
            raise DataError(f"{pack}: digest mismatch: the pack is damaged")
        return total

    total = new_folder_atomic(dest, fill)
    return {"files": len(paths), "bytes": total, "digest": expected}


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lease.jpegpack", description=__doc__.strip().splitlines()[0]
    )
    subs = parser.add_subparsers(dest="command", required=True)
    p = subs.add_parser("pack", help="pack the folder SRC into the file OUT")
    p.add_argument("src", metavar="SRC")
    p.add_argument("out", metavar="OUT")
    u = subs.add_parser("unpack", help="rebuild the tree of PACK as the new folder DEST")
    u.add_argument("pack", metavar="PACK")
    u.add_argument("dest", metavar="DEST")
    args = parser.parse_args(argv)
    if args.command == "pack":
        return print_result(lambda: pack_tree(args.src, args.out))
    return print_result(lambda: unpack_tree(args.pack, args.dest))


if __name__ == "__main__":
    sys.exit(main())

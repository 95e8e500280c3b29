"""A small on-disk cache for analysis results: named numpy arrays plus JSON under a key.

Reopening a run should cost a read, not a recomputation: fitted exit policies (and any
other derived arrays, e.g. decoded confidences) are written here once and read back on the
next start. The cache is outside the run (runs may be read-only), bounded in size, and safe
to delete at any time: every entry is a pure function of its key.

API::

    from dynconf.core.analysis_cache import AnalysisCache, cache_key

    cache = AnalysisCache()                       # folder: default_cache_dir()
    key = cache_key("policy", run_stamp(run_dir), "calibration", "paper", 64.0, {...})
    cache.put(key, {"steps": steps}, {"threshold": 0.52})   # arrays, JSON-able meta
    entry = cache.get(key)                        # CacheEntry(arrays, meta) or None
    entry.arrays["steps"], entry.meta["threshold"]

- ``cache_key(*parts)``: a hex digest of the parts as canonical JSON (tuples become lists,
  numpy scalars become numbers), so equal parts give the same key in every process. Put in
  it everything the value depends on: the run's stamp (dynconf.core.store.run_stamp, which
  changes whenever a run file does), the split, the decoder, kappa and parameters.
- ``put`` writes one ``<key>.npz`` atomically (dynconf/core/atomic.py): the arrays and the
  meta as a JSON byte array. Object arrays are refused (nothing is ever pickled). A cache
  that cannot be written (read-only home, full disk) is skipped: ``put`` returns False.
- ``get`` reads with ``allow_pickle=False``, opens regular files only, refuses members whose
  declared size exceeds the cache's bound before inflating them, and treats a damaged
  entry as a miss (and removes it).
- The folder holds at most ``max_bytes`` (default DEFAULT_MAX_BYTES, or
  ``DYNCONF_CACHE_MAX_BYTES``); after each put the least recently used entries go first.

Location: ``DYNCONF_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/dynconf``, else
``~/.cache/dynconf``. ``DYNCONF_CACHE_DIR=off`` turns the cache off (every get misses).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynconf.core.atomic import atomic_write
from dynconf.core.safeopen import open_regular, read_regular_bytes
from dynconf.errors import DynconfError

DEFAULT_MAX_BYTES = 1 << 30
META_NAME = "__meta__"
SUFFIX = ".npz"


def default_cache_dir() -> Path | None:
    """Where the cache lives (module doc); None when it is turned off."""
    given = os.environ.get("DYNCONF_CACHE_DIR")
    if given:
        return None if given.strip().lower() == "off" else Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dynconf"


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def cache_key(*parts) -> str:
    """A stable hex key for JSON-able parts (module doc)."""
    text = json.dumps(_plain(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@functools.lru_cache(maxsize=8)
def code_digest(*parts: str) -> str:
    """A digest of dynconf's own source under ``parts`` (subpackages such as "core" or
    modules such as "app/instant.py", relative to the package): put in a key, it makes an
    entry that older or newer code wrote a miss, since the code computes what it holds."""
    package = Path(__file__).resolve().parents[1]
    paths = set()
    for part in parts:
        where = package / part
        paths.update(where.rglob("*.py") if where.is_dir() else [where])
    digest = hashlib.sha256()
    for path in sorted(paths):
        source = read_regular_bytes(path, "dynconf source file", max_bytes=1 << 24)
        digest.update(str(path.relative_to(package)).encode() + b"\0" + source)
    return digest.hexdigest()[:20]


@dataclass(eq=False)
class CacheEntry:
    arrays: dict[str, np.ndarray]
    meta: dict


class AnalysisCache:
    """Named arrays + JSON per key in one folder, bounded and atomic (module doc)."""

    def __init__(self, folder: Path | str | None = None, max_bytes: int | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        if max_bytes is None:
            max_bytes = int(os.environ.get("DYNCONF_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES))
        self.max_bytes = int(max_bytes)

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise DynconfError(f"cache keys are hex digests (cache_key), got {key!r}")
        return self.folder / f"{key}{SUFFIX}"

    def get(self, key: str) -> CacheEntry | None:
        if not self.enabled:
            return None
        path = self.path(key)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            entry = self._read(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return entry

    def _read(self, path: Path) -> CacheEntry:
        with open_regular(path, "cache entry", OSError) as fh, zipfile.ZipFile(fh) as archive:
            if sum(info.file_size for info in archive.infolist()) > self.max_bytes:
                raise ValueError("entry larger than the cache")
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        meta = json.loads(arrays.pop(META_NAME).tobytes().decode("utf-8"))
        return CacheEntry(arrays, meta)

    def put(self, key: str, arrays: dict | None = None, meta: dict | None = None) -> bool:
        """Store arrays and meta under key; False when the cache is off or not writable."""
        if not self.enabled:
            return False
        arrays = dict(arrays or {})
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.dtype.kind == "O" or name == META_NAME:
                raise DynconfError(f"cache array {name!r}: object arrays are not stored")
            arrays[name] = arr
        text = json.dumps(_plain(meta or {}), allow_nan=False).encode("utf-8")
        arrays[META_NAME] = np.frombuffer(text, np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        if buffer.tell() > self.max_bytes:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path(key), lambda fh: fh.write(buffer.getbuffer()))
        except OSError:
            return False
        self.prune()
        return True

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of every entry, oldest first."""
        out = []
        try:
            names = list(os.scandir(self.folder)) if self.enabled else []
        except OSError:
            return []
        for item in names:
            if item.name.endswith(SUFFIX) and item.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    st = item.stat(follow_symlinks=False)
                    out.append((st.st_mtime, st.st_size, Path(item.path)))
        return sorted(out)

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def prune(self) -> None:
        """Drop least recently used entries until the folder is within max_bytes."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size

    def clear(self) -> None:
        for _, _, path in self.entries():
            with contextlib.suppress(OSError):
                path.unlink()

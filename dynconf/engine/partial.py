"""The work folder of a resumable run in the making (``.NAME.partial`` beside the run).

Every batch a recording finishes is written there at once, atomically, as one part
(``SPLIT-INDEX.npz``); a killed job resumes by part name, so the folder must only ever hold
parts of the same job. ``claim`` records the job's settings on first use and refuses to
continue with other ones (another model, T, encoder, sample plan, ...).

Invariants the folder keeps, whatever was done to it between two runs:

- every file is opened through ``open_regular`` (a FIFO or a device in place of
  ``settings.json``, a writer record or a part is a one-line error, never a hang);
- a part carries a digest of its own arrays (``part_digest``) and the digest of the batch it
  was computed from (``digest``: inputs, labels, ids). On resume a part that cannot be read,
  whose arrays do not match their digest, whose labels or ids are not the batch's, or whose
  shape is not ``[T, B, K]`` is reported in one line and computed again; a sound part of
  another batch (other inputs or order) refuses the resume, naming the batch;
- each process group that writes parts leaves a writer record (``writer-NNN.json``: its
  world size and start date), and each part names its writer, so a run resumed with another
  number of processes says which writer made which samples.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from dynconf.core.atomic import atomic_write, write_json_atomic
from dynconf.core.provenance import now_utc
from dynconf.core.safeopen import open_regular
from dynconf.errors import DataError, DynconfError

SETTINGS_FILE = "settings.json"
MAX_SETTINGS_BYTES = 64 << 20  # a plan of millions of sample positions still fits
REQUIRED = ("outputs", "labels", "ids", "digest", "part_digest")


class BadPart(DynconfError):
    """A part that cannot be used as it is (the reason is the message)."""


def read_json(path: Path, what: str, limit: int = MAX_SETTINGS_BYTES):
    """A small JSON file of the work folder, read only if it is a regular file."""
    with open_regular(path, what) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise DataError(f"{path}: over {limit:,} bytes, not a {what}")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def claim(work: Path, settings: dict, what: str) -> None:
    """Claim ``work`` for a job with ``settings``; ``what`` says which settings (message)."""
    record = work / SETTINGS_FILE
    if record.exists() or record.is_symlink():
        if read_json(record, "work-folder settings file") != settings:
            raise DataError(
                f"{work} holds partial results of a {what}; delete it or repeat that job exactly"
            )
    else:
        write_json_atomic(record, settings, indent=None)


def writer_files(work: Path) -> list[Path]:
    return sorted(work.glob("writer-[0-9][0-9][0-9].json"))


def new_writer(work: Path, world_size: int, device: str) -> int:
    """Record a new writer (rank 0, before the other ranks look); returns its number."""
    number = len(writer_files(work))
    record = {"world_size": int(world_size), "date": now_utc(), "device": device}
    write_json_atomic(work / f"writer-{number:03d}.json", record, indent=None)
    return number


def last_writer(work: Path) -> int:
    """The newest writer's number (the other ranks, after rank 0 recorded it)."""
    files = writer_files(work)
    if not files:
        raise DataError(f"{work}: rank 0 recorded no writer; rerun the same command")
    return int(files[-1].stem.split("-")[1])


def writers_of(work: Path, numbers: list[int]) -> dict[int, dict]:
    """``{number: record}`` of the writers the parts name (unreadable records: empty)."""
    out = {}
    for number in sorted(set(numbers)):
        record = read_json(work / f"writer-{number:03d}.json", "writer record")
        out[number] = record if isinstance(record, dict) else {}
    return out


def part_path(work: Path, split: str, index: int) -> Path:
    return work / f"{split}-{index:07d}.npz"


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """A digest of a part's arrays (names, dtypes, shapes and bytes; not its own digest)."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(arrays):
        if key == "part_digest":
            continue
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def write_part(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one part atomically, with the digest of its arrays."""
    arrays = dict(arrays)
    arrays["part_digest"] = np.array(arrays_digest(arrays))
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_part(path: Path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """A part's arrays, checked against their digest; ``BadPart`` when it cannot be used.

    ``max_bytes`` bounds what its members may inflate to (checked before reading them).
    A FIFO or another non-regular file is a ``RunFormatError``, not a ``BadPart``: it is
    not ours to remove.
    """
    with open_regular(path, "work-folder part") as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                size = sum(info.file_size for info in zf.infolist())
                if max_bytes is not None and size > max_bytes:
                    raise BadPart(f"its arrays would take {size:,} bytes, over {max_bytes:,}")
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as f:
                arrays = {key: f[key] for key in f.files}
        except BadPart:
            raise
        except Exception as exc:  # a truncated or rewritten file raises many types
            raise BadPart(f"unreadable ({type(exc).__name__}: {exc})".split("\n")[0]) from None
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise BadPart(f"it has no {', '.join(missing)}")
    if str(arrays["part_digest"]) != arrays_digest(arrays):
        raise BadPart("its arrays do not match their digest")
    return arrays


def check_part(arrays: dict, T: int, labels: np.ndarray, ids: np.ndarray) -> None:
    """A part read back must be the batch ``labels``/``ids`` at ``T`` steps (else BadPart)."""
    outputs = arrays["outputs"]
    B = len(labels)
    if outputs.ndim != 3 or outputs.shape[:2] != (T, B):
        raise BadPart(f"its outputs have shape {outputs.shape}, not [T, B, K] = [{T}, {B}, K]")
    if not (np.array_equal(arrays["labels"], labels) and np.array_equal(arrays["ids"], ids)):
        raise BadPart("its labels or ids are not those of the batch")
    for role in ("spikes", "synops"):
        if role in arrays and arrays[role].shape != (T, B):
            raise BadPart(f"its {role} have shape {arrays[role].shape}, not [{T}, {B}]")

"""The checks of meta.json (schema 1): every field a page, a command or the store reads is of
the type and range it expects, so a hostile or damaged meta.json fails in one line naming
the field instead of crashing a consumer later (format.py re-exports validate_meta)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from dynconf.core.format import (
    FILE_STEM,
    META_FILE,
    SCHEMA,
    SPLIT_NAME,
    STORAGES,
    _is_int,
    _is_number,
)
from dynconf.errors import RunFormatError

STEP_KEY = re.compile(r"[1-9][0-9]{0,8}\Z")

# Fields of "created" that pages show, and the types they must have when present.
_CREATED_TYPES = {
    "command": str,
    "code_version": str,
    "date": str,
    "device": str,
    "seed": int,
    "limit": int,
    "wall_time_s": (int, float),
    "simulation_seconds": (int, float),
}


def _safe_relative_path(value: str) -> bool:
    p = Path(value)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in value


def validate_meta(meta, where: str = META_FILE) -> dict:
    """Check meta.json content (types, ranges, split names); returns it unchanged."""

    def bad(problem: str):
        raise RunFormatError(f"{where}: {problem}")

    if not isinstance(meta, dict):
        bad(f"expected a JSON object, got {type(meta).__name__}")
    _check_identity(meta, bad)
    _check_shape_fields(meta, bad)
    _check_files(meta.get("files"), meta["splits"], bad)
    _check_created(meta.get("created"), bad)
    _check_provenance(meta, bad)
    _check_summaries(meta, bad)
    return meta


def _check_identity(meta: dict, bad) -> None:
    """schema, the names and the free-text fields."""
    schema = meta.get("schema")
    if not _is_int(schema):
        bad("'schema' is missing or not an integer")
    if schema != SCHEMA:
        bad(f"schema {schema} is not supported (this dynconf reads schema {SCHEMA})")
    for key in ("name", "dataset", "model"):
        if not isinstance(meta.get(key), str):
            bad(f"'{key}' is missing or not a string")
    for key in ("notes", "id_scheme", "arch"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(f"'{key}' must be a string")


def _check_shape_fields(meta: dict, bad) -> None:
    """T_max, classes, splits, storage (and its top-k settings), neurons, levels."""
    T_max = meta.get("T_max")
    if not _is_int(T_max) or T_max < 1:
        bad("'T_max' must be an integer >= 1")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        bad("'classes' must be a list of strings")
    if len(classes) < 2:
        bad("'classes' must name at least 2 classes")
    splits = meta.get("splits")
    if not isinstance(splits, dict) or not splits:
        bad("'splits' must be a non-empty object {split name: number of samples}")
    for split, n in splits.items():
        if not SPLIT_NAME.match(split):
            bad(f"split name {split!r} is not allowed (letters, digits, '_' and '-', max 64)")
        if not _is_int(n) or n < 1:
            bad(f"split '{split}': sample count must be an integer >= 1")
    storage = meta.get("storage")
    if storage not in STORAGES:
        bad(f"'storage' must be one of {', '.join(STORAGES)}")
    from dynconf.core.storage import storage_of

    for problem in storage_of(storage).meta_problems(meta, len(classes)):
        bad(problem)
    for key in ("neurons", "levels"):
        value = meta.get(key)
        if value is not None and (not _is_int(value) or value < 1):
            bad(f"'{key}' must be a positive integer")


def _check_provenance(meta: dict, bad) -> None:
    """history, checkpoint and id_source."""
    history = meta.get("history")
    if history is not None and not (
        isinstance(history, list) and all(isinstance(h, dict) for h in history)
    ):
        bad("'history' must be a list of objects")
    checkpoint = meta.get("checkpoint")
    if checkpoint is not None and (
        not isinstance(checkpoint, str) or not checkpoint or not _safe_relative_path(checkpoint)
    ):
        bad("'checkpoint' must be a relative path without '..'")
    id_source = meta.get("id_source")
    if id_source is not None and not (
        isinstance(id_source, dict) and all(isinstance(v, str) for v in id_source.values())
    ):
        bad("'id_source' must map split names to strings")


def _check_summaries(meta: dict, bad) -> None:
    """Accuracy summaries: a fraction per run, or one per split ({split: ...})."""
    ann = meta.get("ann_accuracy")
    if ann is not None and not (
        _is_fraction(ann) or (isinstance(ann, dict) and all(_is_fraction(v) for v in ann.values()))
    ):
        bad("'ann_accuracy' must be a number in [0, 1] or {split: number in [0, 1]}")
    by_T = meta.get("snn_accuracy_by_T")
    if by_T is not None and not _accuracy_by_steps(by_T, meta["T_max"]):
        bad(
            "'snn_accuracy_by_T' must map step counts 1..T_max to numbers in [0, 1] "
            "(or splits to such objects)"
        )


def _is_fraction(x) -> bool:
    return _is_number(x) and 0 <= x <= 1


def _accuracy_by_steps(by_T, T_max: int) -> bool:
    """{"1": acc, ...} with step counts 1..T_max, or {split: that}; never the two mixed."""

    def steps(d) -> bool:
        return isinstance(d, dict) and all(
            isinstance(k, str) and STEP_KEY.match(k) and int(k) <= T_max and _is_fraction(v)
            for k, v in d.items()
        )

    if not isinstance(by_T, dict):
        return False
    if all(isinstance(v, dict) for v in by_T.values()) and by_T:
        return all(SPLIT_NAME.match(k) and steps(v) for k, v in by_T.items())
    return steps(by_T)


def _check_files(files, splits: dict, bad) -> None:
    if files is None:
        return
    if not isinstance(files, dict):
        bad("'files' must map split names to file stems")
    for split, stem in files.items():
        if split not in splits:
            bad(f"'files' names split {split!r}, which 'splits' does not list")
        match = FILE_STEM.match(stem) if isinstance(stem, str) else None
        if stem != split and (match is None or match.group("split") != split):
            bad(f"'files': stem {stem!r} of split {split!r} must be '{split}' or '{split}~<hex>'")


def _check_created(created, bad) -> None:
    if created is None:
        return
    if not isinstance(created, dict):
        bad("'created' must be an object")
    for key, kind in _CREATED_TYPES.items():
        value = created.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            bad(f"'created.{key}' has the wrong type ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            bad(f"'created.{key}' must be finite")
    commands = created.get("training_commands")
    if commands is not None and not (
        isinstance(commands, list) and all(isinstance(c, str) for c in commands)
    ):
        bad("'created.training_commands' must be a list of strings")

"""The one writer of a run in the making, for every adapter (``record`` and ``simulate``).

``RunWriter`` holds what every recording shares: the checks on the run's folder before any
work, the claim of the work folder (engine/partial.py), one part per finished batch, resume
with every part checked, the progress bar and progress file, the torchrun barrier and merge
(engine/distributed.py), the run lock around the final write, accuracy-by-T, ``id_source``
and the ``created`` block. What a batch becomes (outputs, spikes, synops, per-batch extras
such as the ANN's correct count) is the caller's ``compute``.

Under torchrun rank r records its block of each split's batches (every r-th batch when the
batches have no length); after a barrier rank 0 checks that every part is visible, merges
them into the run a single process would write, and removes the work folder. A job that
fails leaves only finished parts, which the same call resumes from, with any number of
processes; ``created.writers`` lists every process group that wrote parts (oldest first)
and each entry of ``created.shards`` names its writer and rank, so the provenance of a run
resumed with another world size stays consistent.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dynconf.core.atomic import write_json_atomic
from dynconf.core.format import SPLIT_NAME, check_run_name
from dynconf.core.locking import run_lock
from dynconf.core.provenance import code_version, now_utc
from dynconf.engine import partial
from dynconf.engine.batches import batch_digest, unpack
from dynconf.engine.distributed import World, shard, shards_of, wait_for_parts
from dynconf.errors import DataError

EXACT_FLOAT32 = 2**24  # spike counts up to this are exact in float32
STANDARD = ("outputs", "labels", "ids", "spikes", "synops")


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse a run folder that exists (without ``overwrite``) or a bad name, before any work."""
    if not os.path.lexists(out):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(out.name)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")


def check_splits(plan: Mapping) -> None:
    if not plan:
        raise DataError("no splits to record")
    for split_name in plan:
        if not isinstance(split_name, str) or not SPLIT_NAME.match(split_name):
            raise DataError(
                f"split name {split_name!r} is not allowed (letters, digits, '-' and '_')"
            )


def id_source(splits: Iterable[str]) -> dict[str, str]:
    """Which source split each run split's ids index: calibration is held out of train."""
    return {s: ("train" if s == "calibration" else s) for s in splits}


def powers_of_two(T: int) -> list[int]:
    """1, 2, 4, ... below T, then T: the steps accuracy-by-T reports."""
    steps, t = [], 1
    while t < T:
        steps.append(t)
        t *= 2
    return [*steps, T]


def accuracy_by_T(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of argmax S_t at t = 1, 2, 4, ..., T (S_t the accumulated outputs)."""
    S = np.cumsum(outputs, axis=0, dtype=np.float64)
    return {str(t): float((S[t - 1].argmax(1) == labels).mean()) for t in powers_of_two(len(S))}


def owned_batches(split_batches, world: World) -> Callable[[int], bool]:
    """``owned(index)``: whether this rank records batch ``index`` (all of them in one
    process): a contiguous block when the batches have a length, else every size-th one."""
    if world.size == 1:
        return lambda index: True
    try:
        block = shard(len(split_batches), world)
    except TypeError:  # a generator: no length known in advance
        return lambda index: index % world.size == world.rank
    return lambda index: index in block


class RunWriter:
    """Write one run from batches: claim, parts, resume, merge, save (see the module doc).

    ``settings``: what makes two jobs the same (claimed in the work folder); ``what``: how a
    refusal names them. ``T``: steps per sample, checked on every resumed part.
    """

    def __init__(self, out, *, T: int, world: World, settings: dict, what: str,
                 overwrite: bool = False, device: str = "cpu", progress: bool = True,
                 progress_file=None):  # fmt: skip
        self.out, self.T, self.world = Path(out), int(T), world
        self.work = self.out.parent / f".{self.out.name}.partial"
        self.settings, self.what, self.overwrite = settings, what, overwrite
        self.device, self.progress = device, progress
        self.progress_file = Path(progress_file) if progress_file and world.main else None
        self.started = time.time()
        self.counts: dict[str, int] = {}
        self.created_folder = False
        self.writer = 0

    # ------------------------------------------------------------------ claim and record

    def claim(self) -> None:
        """Rank 0 claims the work folder and records this writer; then the other ranks."""
        world = self.world
        if world.main:
            self.created_folder = not self.work.exists()
            self.work.mkdir(parents=True, exist_ok=True)
            partial.claim(self.work, self.settings, self.what)
            self.writer = partial.new_writer(self.work, world.size, self.device)
        world.barrier()
        if not world.main:
            partial.claim(self.work, self.settings, self.what)
            self.writer = partial.last_writer(self.work)

    def record(self, plan: Mapping[str, Iterable], compute: Callable, on_first=None) -> None:
        """Drive ``compute(x, y, split, index) -> {arrays}`` over this rank's batches of every
        split, skipping the sound parts of a resume; ``on_first()`` runs after the first
        batch computed here (the detection line)."""
        from tqdm import tqdm

        total = _total_samples(plan)
        self._bar = tqdm(total=total, unit="sample", file=sys.stderr, mininterval=2.0,
                         disable=not (self.progress and self.world.main))  # fmt: skip
        self._done, self._total = 0, total
        try:
            self.claim()
            for split_name, split_batches in plan.items():
                self._bar.set_postfix_str(split_name)
                self._record_split(split_name, split_batches, compute, on_first)
                if self.counts[split_name] == 0:
                    raise DataError(f"split '{split_name}': the batches yielded nothing")
        except BaseException:
            self._abandon()
            raise
        finally:
            self._bar.close()

    def _record_split(self, split_name, split_batches, compute, on_first) -> None:
        self.counts[split_name] = 0
        position = 0
        owned = owned_batches(split_batches, self.world)
        for index, batch in enumerate(split_batches):
            x, y, ids = unpack(batch, split_name, index, position)
            position += len(y)
            self.counts[split_name] += 1
            if not owned(index):  # another rank records this one
                continue
            part = partial.part_path(self.work, split_name, index)
            digest = batch_digest(x, y, ids)
            if not self._resumed(part, digest, y, ids, split_name, index):
                t0 = time.time()
                arrays = compute(x, y, split_name, index)
                arrays.update(labels=y, ids=ids, digest=np.array(digest),
                              rank=np.int64(self.world.rank), writer=np.int64(self.writer),
                              seconds=np.float64(time.time() - t0))  # fmt: skip
                partial.write_part(part, arrays)
                if on_first is not None:
                    on_first(self._bar)
                    on_first = None
            self._advance(len(y), split_name)

    def _resumed(self, part: Path, digest: str, y, ids, split: str, index: int) -> bool:
        """Whether ``part`` holds this batch, sound; a bad part is said and removed."""
        if not (part.exists() or part.is_symlink()):
            return False
        try:
            arrays = partial.load_part(part, self._part_bound(len(y)))
            if str(arrays["digest"]) != digest:
                raise DataError(
                    f"split '{split}', batch {index + 1} is not the batch recorded before the "
                    f"interruption (other inputs, labels or order; part {part.name}); delete "
                    f"{self.work} to start again"
                )
            partial.check_part(arrays, self.T, y, ids)
        except partial.BadPart as bad:
            print(f"record: part {part.name} of {self.work} is damaged ({bad}); computing it "
                  "again", file=sys.stderr)  # fmt: skip
            part.unlink(missing_ok=True)
            return False
        return True

    def _part_bound(self, batch: int) -> int:
        """What a sound part can inflate to: T x B values for up to 2**20 classes, and more."""
        return 8 * self.T * batch * ((1 << 20) + 4) + (1 << 20)

    def _advance(self, samples: int, split: str) -> None:
        self._bar.update(samples)
        self._done += samples
        if self.progress_file is not None:
            rate = self._bar.format_dict.get("rate") or 0
            left = (self._total - self._done) / rate if rate and self._total else None
            report = {"done": self._done, "total": self._total, "split": split,
                      "eta_s": left, "state": "running"}  # fmt: skip
            write_json_atomic(self.progress_file, report, indent=None)

    def _abandon(self) -> None:
        """After a failure: a work folder this call made and that holds no part goes (with
        several ranks the others may be writing there: the folder stays)."""
        work = self.work
        mine = self.world.size == 1 and self.created_folder and work.is_dir()
        if mine and not any(work.glob("*.npz")):
            shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------------ merge and save

    def merge(self) -> dict | None:
        """After every rank's parts are written: rank 0 gets ``{split: arrays}`` plus what the
        parts say (``extras``, ``layers``, ``shards``, ``writers``, ``seconds``); other ranks
        get None (they wait in ``finish`` for rank 0's run)."""
        self.world.barrier()
        if not self.world.main:
            return None
        paths = [partial.part_path(self.work, s, i) for s, n in self.counts.items()
                 for i in range(n)]  # fmt: skip
        wait_for_parts(paths, self.work)
        merged = {"arrays": {}, "extras": {}, "layers": {}, "shards": {}, "seconds": 0.0}
        writer_numbers = []
        for split_name, n in self.counts.items():
            parts = [self._merge_load(split_name, i) for i in range(n)]
            merged["arrays"][split_name] = concatenate(split_name, parts)
            merged["extras"][split_name] = _sum_extras(parts)
            merged["layers"] = merged["layers"] or next(
                (_json(p["layers"]) for p in parts if "layers" in p), {}
            )
            writer_numbers += [int(p["writer"]) for p in parts]
            merged["seconds"] += sum(float(p["seconds"]) for p in parts)
            merged["shards"][split_name] = parts
        records = partial.writers_of(self.work, writer_numbers)
        order = {number: i for i, number in enumerate(records)}
        for split_name, parts in merged["shards"].items():
            merged["shards"][split_name] = shards_of(
                [int(p["rank"]) for p in parts], [len(p["labels"]) for p in parts],
                [order[int(p["writer"])] for p in parts],
            )  # fmt: skip
        merged["writers"] = list(records.values())
        return merged

    def _merge_load(self, split: str, index: int) -> dict:
        path = partial.part_path(self.work, split, index)
        try:
            return partial.load_part(path)
        except partial.BadPart as bad:
            path.unlink(missing_ok=True)
            raise DataError(
                f"part {path.name} of {self.work} is damaged ({bad}); it was removed: rerun "
                "the same command to compute it again"
            ) from None

    def created(self, merged: dict, command: str, seed, seconds_key: str, **extra) -> dict:
        """The run's ``created`` block."""
        return {
            "command": command,
            **extra,
            "seed": seed,
            "code_version": code_version(),
            "date": now_utc(),
            "wall_time_s": round(time.time() - self.started, 1),
            # compute time of every batch, all ranks and writers together
            seconds_key: round(merged["seconds"], 1),
            "device": self.device,
            # world_size: the processes of the writer that merged the run; writers: every
            # process group that wrote parts of it, oldest first (several after a resume)
            "world_size": self.world.size,
            "writers": merged["writers"],
            "shards": merged["shards"],  # {split: [{"rank", "writer", "samples"}, ...]}
        }

    def finish(self, meta: dict | None, arrays: dict | None, extra_files=None):
        """Rank 0 saves the run under its lock and removes the work folder; every rank
        returns the run."""
        from dynconf.core.store import load_run, save_run

        if not self.world.main:
            self.world.barrier()  # rank 0 has merged the parts into the run
            self.world.close()
            return load_run(self.out)
        # With the run's lock held: save_run re-checks that no other writer created `out`
        # in the meantime (refused unless overwrite), and the work folder goes only with a
        # saved run.
        with run_lock(self.out):
            run = save_run(self.out, meta, arrays, overwrite=self.overwrite,
                           extra_files=extra_files)  # fmt: skip
            shutil.rmtree(self.work, ignore_errors=True)
        self.world.barrier()
        self.world.close()
        if self.progress_file is not None:
            report = {"done": self._total, "total": self._total, "eta_s": 0,
                      "state": "complete", "run": str(self.out)}  # fmt: skip
            write_json_atomic(self.progress_file, report, indent=None)
        return run


def concatenate(split: str, parts: list[dict]) -> dict[str, np.ndarray]:
    """One split's arrays from its parts, in order."""
    K = {part["outputs"].shape[2] for part in parts}
    if len(K) > 1:
        raise DataError(f"split '{split}': the model's outputs have K = {sorted(K)} across batches")
    arrays = {
        "outputs": np.concatenate([p["outputs"] for p in parts], axis=1).astype(np.float32),
        "labels": np.concatenate([p["labels"] for p in parts]).astype(np.int64),
        "ids": np.concatenate([p["ids"] for p in parts]).astype(np.int64),
    }
    if all("spikes" in p for p in parts):
        spikes = np.concatenate([p["spikes"] for p in parts], axis=1)
        exact = spikes.size == 0 or spikes.max() < EXACT_FLOAT32
        arrays["spikes"] = spikes.astype(np.float32 if exact else np.float64)
    if all("synops" in p for p in parts):
        arrays["synops"] = np.concatenate([p["synops"] for p in parts], axis=1).astype(np.int64)
    return arrays


def _sum_extras(parts: list[dict]) -> dict[str, float]:
    """Per-batch scalars a compute added (``extra_NAME``), summed over the split."""
    names = {key for part in parts for key in part if key.startswith("extra_")}
    return {name[6:]: float(sum(float(p[name]) for p in parts if name in p)) for name in names}


def _json(value) -> Any:
    import json

    return json.loads(str(value))


def _total_samples(plan: Mapping) -> int | None:
    try:
        return sum(int(batches.samples) for batches in plan.values())
    except (AttributeError, TypeError):
        return None

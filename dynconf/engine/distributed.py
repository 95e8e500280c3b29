"""`simulate` and `record` over several processes, GPUs or machines, launched by torchrun.

``torchrun --nproc_per_node P -m dynconf simulate ...`` starts P copies of the command; each
learns its place from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR/PORT) and ``join`` puts it in the process group (NCCL when it
simulates on a GPU, gloo on the CPU) only when WORLD_SIZE > 1; without torchrun nothing
changes. The work is split by whole batches (``shard``): rank r takes a contiguous block of
every split's batches, so each batch holds the same samples as in a single-process run and
the merged run is the same, sample for sample, id for id. Every rank writes its finished
batches into the run's work folder (engine/partial.py), which must therefore be on a
filesystem all machines share; after a barrier rank 0 checks that every batch is there,
merges them into the run atomically and removes the work folder. A rank that fails stops
the job (torchrun ends the others) before the merge, so a failure leaves no half run, only
finished batches, which the same command resumes from, with any number of processes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dynconf.errors import DataError

# A finished rank waits at the merge barrier for the slowest one: hours, on ImageNet.
BARRIER_TIMEOUT = timedelta(hours=48)
# How long rank 0 waits for another machine's finished batch to show on a shared filesystem.
VISIBILITY_WAIT_S = 60.0


@dataclass
class World:
    """This process's place among the job's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    owns_group: bool = False  # whether join() started the process group (and ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DataError(f"environment variable {name}={value!r} is not a whole number") from None


def env_world() -> World:
    """The world torchrun describes in the environment (not joined yet)."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_size = _env_int("LOCAL_WORLD_SIZE", 1 if size == 1 else size)
    if size < 1 or not 0 <= rank < size or not 0 <= local_rank < max(local_size, 1):
        raise DataError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={size} do not describe a process "
            "of the job (start several processes with torchrun)"
        )
    return World(rank, size, local_rank, max(local_size, 1))


def join(device_name: str = "auto"):
    """Join the job torchrun started, if any; returns ``(world, device)``.

    ``device_name`` as for ``pick_device``; with several processes on a machine, ``auto`` and
    ``cuda`` mean this process's own GPU, ``cuda:LOCAL_RANK``. An already initialised
    process group (a user's own torchrun script calling ``record_run``) is used as it is.
    """
    import torch

    from dynconf.engine.device import pick_device

    world = current_world()
    if world.size > 1 and device_name in ("auto", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
    else:
        device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    ensure_group(world, device)
    return world, device


def current_world() -> World:
    """The initialised process group's world, else the environment's."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        env = env_world()
        return World(dist.get_rank(), dist.get_world_size(), env.local_rank, env.local_size)
    return env_world()


def ensure_group(world: World, device) -> World:
    """Start the process group for ``world`` (NCCL for a GPU, gloo for the CPU) if needed."""
    import torch.distributed as dist

    if world.size == 1 or (dist.is_available() and dist.is_initialized()):
        return world
    if not dist.is_available():
        raise DataError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    import torch

    # NCCL wants one GPU per process; more processes than GPUs on a machine (or the CPU) use
    # gloo, which serves the barriers just as well (no tensors travel between the ranks).
    on_gpu = getattr(device, "type", "cpu") == "cuda"
    one_each = on_gpu and world.local_size <= torch.cuda.device_count()
    backend = "nccl" if one_each else "gloo"
    kwargs = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(backend, timeout=BARRIER_TIMEOUT, **kwargs)
    world.owns_group = True
    return world


def threads_per_process(threads: int | None, world: World) -> int | None:
    """Torch threads for this process: as asked, else the machine's cores shared among the
    job's processes on it (P processes with all cores each would thrash)."""
    if threads is not None or world.local_size <= 1:
        return threads
    return max(1, (os.cpu_count() or 1) // world.local_size)


def shard(n_items: int, world: World) -> range:
    """The contiguous block of ``n_items`` (batches) that this rank takes."""
    return range(world.rank * n_items // world.size, (world.rank + 1) * n_items // world.size)


def quiet_unless_main(world: World) -> None:
    """torchrun passes every rank's stdout through; `--json` promises one object: only rank 0
    prints the result."""
    if not world.main:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)


def wait_for_parts(paths: list[Path], work: Path) -> None:
    """Rank 0, after the barrier: every rank's batches must be visible here before a merge."""
    deadline = time.monotonic() + VISIBILITY_WAIT_S
    missing = [p for p in paths if not p.exists()]
    while missing and time.monotonic() < deadline:
        time.sleep(1.0)
        missing = [p for p in missing if not p.exists()]
    if missing:
        raise DataError(
            f"{len(missing)} finished batch(es) of other ranks are not in {work} (first: "
            f"{missing[0].name}); with several machines the run's folder must be on a "
            "filesystem they all share. Nothing was merged; rerun the same command to resume"
        )


def shards_of(ranks: list[int], sizes: list[int], writers: list[int] | None = None) -> list[dict]:
    """``[{"rank": r, "samples": [start, stop]}, ...]``: which rank made which samples (in
    run order), from each batch's rank and size; with ``writers`` (each batch's writer, an
    index into ``created.writers``) every entry names its writer too."""
    shards: list[dict] = []
    start = 0
    tags = writers if writers is not None else [None] * len(ranks)
    for rank, size, writer in zip(ranks, sizes, tags, strict=True):
        last = shards[-1] if shards else None
        if (
            last is not None
            and last["rank"] == rank
            and last.get("writer") == writer
            and last["samples"][1] == start
        ):
            last["samples"][1] = start + size
        else:
            entry = {"rank": int(rank)}
            if writer is not None:
                entry["writer"] = int(writer)
            entry["samples"] = [start, start + size]
            shards.append(entry)
        start += size
    return shards

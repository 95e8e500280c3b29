"""The paper's demo setting on one lent GPU, in one command: train, simulate, pack the result.

    python3 -m lease.paper_demo --out "$OUT" --data-pack .lease/cifar10.jpgpack --deadline-s 450

The Dynamic Confidence demo (method.md section 7) uses a CIFAR ResNet-18 with 2-bit QCFS
(L = 3) simulated for T_max = 27 steps. A lease gives minutes of GPU time, 10 per command,
and brings back at most 8 files of 16 MiB (lease/README.md), so this command does the whole
job against a deadline and leaves its result in files that fit the way back:

1. data: unpack the CIFAR-10 JPEG tree from its pack (lease/jpegpack.py), byte for byte;
2. train: `python -m dynconf train` with ``--time-budget`` set to what the deadline leaves
   after ``--reserve-s``, so the epoch count is sized from a timed first epoch of this very
   run (bf16 autocast, channels_last, the whole uint8 training set on the GPU, torch.compile
   kept only if measured faster, float16 weights in model.pt);
3. simulate: `python -m dynconf simulate` at T_max on calibration and test, in exact float32;
4. pack: model.pt and the run's files into ``result.partNN`` parts with a manifest
   (lease/bundle.py), plus ``summary.json`` (settings, timings, results) and ``log.txt``.

Step 4 runs whatever happened before it: a failed or late simulation still sends the trained
weights back (they simulate on a CPU too, in about 40 minutes). Each phase runs as a child
process that is stopped when the deadline comes, so the command ends on time and the device
tool's own timeout (set it 30 s or more above ``--deadline-s``) never cuts the packing short.
The work folder (``--work``, default ``checkpoints/paper_demo``, ignored by git) survives on a
machine that is still warm, so a rerun resumes training from its last.pt and reuses the data.
lease/assemble.py turns the returned files into a run in cached_runs/ on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dynconf.core.atomic import write_json_atomic
from dynconf.errors import DynconfError

MIB = 2**20


@dataclass
class DemoConfig:
    """Settings of one lease command; the defaults are the paper's demo setting."""

    out: str  # the folder whose files come back ($OUT on the GPU machine)
    data_pack: str | None = None  # a lease.jpegpack file of the dataset's ImageFolder tree
    data_root: str | None = None  # or a dataset root as it is (rehearsals on a CPU)
    dataset: str = "cifar10"
    arch: str = "resnet18"
    levels: int = 3  # 2-bit QCFS
    T: int = 27
    deadline_s: float = 450.0  # the command ends within this many seconds of its start
    reserve_s: float = 120.0  # kept after training: final evaluation, simulation, packing
    max_epochs: int = 400  # the time budget decides, up to this
    batch_size: int = 512
    lr: float = 0.2
    weight_decay: float = 5e-4
    amp: str = "bf16"
    compile: bool = True
    checkpoint_every: int = 10
    train_limit: int | None = None  # rehearsals: train and evaluate on this many images
    sim_limit: int | None = None  # rehearsals: simulate this many images of each split
    sim_batch_size: int = 1000
    device: str = "auto"
    seed: int = 0
    work: str = "checkpoints/paper_demo"  # kept on a warm machine: a rerun resumes
    run_name: str = "cifar10_resnet18_l3"
    part_mib: int = 15
    max_files: int = 8  # what the way back takes; parts + manifest + summary + log


class PhaseFailed(DynconfError):
    """A phase's child process failed or ran out of time."""


class Log:
    """Lines to stdout (the device tool's output tail) and to OUT/log.txt, flushed each."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        line = line.rstrip("\n")
        with self._lock:
            print(line, flush=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


def run_phase(words: list[str], timeout_s: float, log: Log) -> str:
    """Run ``python -m dynconf WORDS...``; its stderr goes to the log line by line.

    Returns its stdout (the command's --json result). Stops it when ``timeout_s`` passes.
    """
    command = [sys.executable, "-m", "dynconf", *words]
    log("$ python -m dynconf " + " ".join(words))
    if timeout_s <= 0:
        raise PhaseFailed(f"no time left for {words[0]}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, so a stop reaches its workers too
    )
    stdout: list[str] = []
    readers = [
        threading.Thread(target=lambda: [log("  " + line) for line in proc.stderr]),
        threading.Thread(target=lambda: stdout.extend(proc.stdout)),
    ]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise PhaseFailed(
            f"{words[0]} stopped: the deadline came after {timeout_s:.0f} s"
        ) from None
    finally:
        for reader in readers:
            reader.join()
    if proc.returncode != 0:
        raise PhaseFailed(f"{words[0]} failed with exit status {proc.returncode}")
    return "".join(stdout)


def environment() -> dict:
    """What ran this: the machine's GPU, torch and Python, for the closing note."""
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def prepare_data(cfg: DemoConfig, work: Path, log: Log) -> str:
    """The dataset root to train on: unpacked from ``data_pack`` (once per machine)."""
    from lease.jpegpack import unpack_tree

    if cfg.data_pack is None:
        return cfg.data_root or ""
    root = work / "data"
    tree = root / cfg.dataset
    stamp = root / f"{cfg.dataset}.unpacked.json"
    if tree.is_dir() and stamp.is_file():  # a warm machine: unpacked by an earlier call
        log(f"data: {tree} already unpacked ({stamp.read_text().strip()})")
        return str(root)
    if tree.exists():
        shutil.rmtree(tree)
    root.mkdir(parents=True, exist_ok=True)
    stats = unpack_tree(Path(cfg.data_pack), tree)
    write_json_atomic(stamp, stats, indent=None)
    log(f"data: unpacked {stats['files']} files into {tree}")
    return str(root)


def train_words(cfg: DemoConfig, data_root: str, ckpt_dir: Path, budget_s: float) -> list[str]:
    words = [
        "train", "--json", "--no-progress",
        "--dataset", cfg.dataset, "--arch", cfg.arch, "--levels", str(cfg.levels),
        "--epochs", str(cfg.max_epochs), "--time-budget", f"{budget_s:.0f}",
        "--batch-size", str(cfg.batch_size), "--lr", str(cfg.lr),
        "--weight-decay", str(cfg.weight_decay), "--warmup-epochs", "1",
        "--amp", cfg.amp, "--checkpoint-every", str(cfg.checkpoint_every), "--half-weights",
        "--seed", str(cfg.seed), "--device", cfg.device, "--out", str(ckpt_dir),
    ]  # fmt: skip
    if data_root:
        words += ["--data-root", data_root]
    if cfg.compile:
        words.append("--compile")
    if cfg.train_limit:
        words += ["--limit", str(cfg.train_limit)]
    return words


def simulate_words(cfg: DemoConfig, data_root: str, checkpoint: Path, run: Path) -> list[str]:
    words = [
        "simulate", "--json", "--no-progress",
        "--checkpoint", str(checkpoint), "--dataset", cfg.dataset, "--T", str(cfg.T),
        "--splits", "calibration,test", "--batch-size", str(cfg.sim_batch_size),
        "--device", cfg.device, "--out", str(run), "--overwrite",
    ]  # fmt: skip
    if data_root:
        words += ["--data-root", data_root]
    if cfg.sim_limit:
        words += ["--limit", str(cfg.sim_limit)]
    return words


def pack_result(cfg: DemoConfig, checkpoint: Path, run: Path, out: Path, log: Log) -> dict:
    """model.pt and the run's files (its own copy of model.pt left out) as result parts."""
    from lease.bundle import pack_files

    entries = []
    if checkpoint.is_file():
        entries.append(("model.pt", checkpoint))
    if (run / "meta.json").is_file():
        copy = run / "model.pt"
        if copy.is_file() and not filecmp.cmp(copy, checkpoint, shallow=False):
            raise PhaseFailed(f"{copy} is not the trained checkpoint")
        entries += [
            (f"{cfg.run_name}/{p.name}", p)
            for p in sorted(run.iterdir())
            if p.is_file() and p.name != "model.pt"
        ]
    if not entries:
        return {"files": []}
    written = pack_files(
        entries,
        out,
        "result",
        part_bytes=cfg.part_mib * MIB,
        max_parts=cfg.max_files - 3,  # the manifest, summary.json and log.txt come back too
    )
    names = [name for name, _ in entries]
    log(f"packed {len(names)} files into {len(written) - 1} parts: {', '.join(names)}")
    return {"files": names, "parts": [p.name for p in written]}


def run_demo(cfg: DemoConfig) -> dict:
    """Do the whole lease job (module docstring); returns what summary.json holds."""
    started = time.monotonic()
    out, work = Path(cfg.out), Path(cfg.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.txt")
    ckpt_dir, run = work / "checkpoint", work / "runs" / cfg.run_name
    checkpoint = ckpt_dir / "model.pt"
    summary: dict = {"config": dataclasses.asdict(cfg), "phases": {}}

    def elapsed() -> float:
        return time.monotonic() - started

    def phase(name: str, fn):
        t = time.monotonic()
        log(f"[{elapsed():7.1f} s] {name}")
        try:
            return fn()
        finally:
            summary["phases"][name] = round(time.monotonic() - t, 1)

    try:
        summary["environment"] = phase("environment", environment)
        log(json.dumps(summary["environment"]))
        data_root = phase("data", lambda: prepare_data(cfg, work, log))
        if checkpoint.is_file():  # a rerun on a warm machine after training had finished
            log(f"train: {checkpoint} exists, not trained again")
        else:
            budget = cfg.deadline_s - elapsed() - cfg.reserve_s
            if budget < 10:
                raise PhaseFailed(f"only {budget:.0f} s left for training; raise --deadline-s")
            summary["train_budget_s"] = round(budget, 1)
            words = train_words(cfg, data_root, ckpt_dir, budget)
            # the child stops itself by the budget; the hard stop leaves time to pack
            stdout = phase("train", lambda: run_phase(words, cfg.deadline_s - elapsed() - 20, log))
            summary["train"] = json.loads(stdout)
        words = simulate_words(cfg, data_root, checkpoint, run)
        stdout = phase("simulate", lambda: run_phase(words, cfg.deadline_s - elapsed() - 15, log))
        summary["simulate"] = json.loads(stdout)
    except (DynconfError, OSError, ValueError) as exc:  # pack what there is, say what failed
        summary["failed"] = str(exc)
        log(f"FAILED: {exc}")
    try:
        summary["packed"] = phase("pack", lambda: pack_result(cfg, checkpoint, run, out, log))
    except (DynconfError, OSError) as exc:
        summary["failed"] = f"{summary.get('failed', '')}; packing: {exc}".lstrip("; ")
        log(f"FAILED to pack: {exc}")
    summary["seconds"] = round(elapsed(), 1)
    log(
        f"[{elapsed():7.1f} s] done"
        + (f" (failed: {summary['failed']})" if "failed" in summary else "")
    )
    write_json_atomic(out / "summary.json", summary)
    return summary


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    parser = argparse.ArgumentParser(
        prog="python -m lease.paper_demo", description=__doc__.split("\n")[0]
    )
    for field in dataclasses.fields(DemoConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
            continue
        kind = {"int": int, "float": float, "int | None": int}.get(field.type, str)
        required = field.default is dataclasses.MISSING
        parser.add_argument(
            flag, type=kind, required=required, default=None if required else field.default
        )
    args = parser.parse_args(argv)
    return DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if (cfg.data_pack is None) == (cfg.data_root is None) and cfg.dataset == "cifar10":
        print("error: give one of --data-pack or --data-root", file=sys.stderr)
        return 2
    summary = run_demo(cfg)
    return 1 if "failed" in summary else 0


if __name__ == "__main__":
    sys.exit(main())

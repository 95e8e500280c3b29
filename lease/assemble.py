"""Back on the CPU: the files a lease returned, checked and installed as a run in cached_runs/.

    python -m lease.assemble /work/.device/<files_at> --into cached_runs --data-root ../shared/data

1. unbundle ``result.manifest.json`` (every part and file checked against its sha256);
2. put model.pt into the run folder (lease/paper_demo.py sent it once, not twice) and load
   the run with full validation (shapes, dtypes, finite values, labels);
3. re-simulate ``--check`` evenly spaced test images on this CPU from that model.pt and compare
   with the outputs the GPU wrote: the same criteria as tests/engine/test_shipped_runs.py
   (under 1 % of per-step outputs differ, since another device and batch size round sums
   differently and a spike sitting at its threshold can move by a step; the same class at
   T_max for every image);
4. move the run into ``--into`` in one rename (refused if a run of that name exists, unless
   ``--overwrite``).

The report (one JSON object on stdout) carries the GPU command's summary.json and the
comparison, for the README and the closing note. Exit 2 with one line for anything refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from dynconf.core.atomic import TMP_PREFIX
from dynconf.errors import RunFormatError
from lease import print_result


def compare_with_cpu(run_dir: Path, data_root: str | None, count: int) -> dict:
    """Re-simulate ``count`` test images on the CPU and compare with the stored outputs."""
    import torch

    from dynconf.core.store import load_run
    from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from dynconf.engine.data import load_dataset
    from dynconf.engine.snn import SpikingNetwork, simulate

    run = load_run(run_dir)
    split = run.split("test")
    ids = np.asarray(split.ids)
    pick = np.unique(np.linspace(0, len(ids) - 1, count).round().astype(int))
    source = load_dataset(run.meta["dataset"], data_root, splits=("test",)).splits["test"]
    position = {int(i): p for p, i in enumerate(source.ids)}
    rows = np.asarray([position[int(i)] for i in ids[pick]])
    x, y, _ = next(source.take(rows).batches(len(rows)))
    if not np.array_equal(np.asarray(split.labels)[pick], y.numpy()):
        raise RunFormatError("the run's test labels do not match the dataset's images")
    torch.set_num_threads(os.cpu_count() or 1)
    ann = model_from_checkpoint(load_checkpoint(run_dir / run.meta["checkpoint"]))
    again = simulate(SpikingNetwork(ann), x, run.T_max).outputs
    stored = np.asarray(split.outputs)[:, pick]
    differs = np.abs(again - stored) > 1e-4 * (1 + np.abs(stored))
    same_class = again.sum(0).argmax(1) == stored.sum(0).argmax(1)
    return {
        "images": len(pick),
        "per_step_outputs_differing": float(differs.mean()),
        "max_abs_difference": float(np.abs(again - stored).max()),
        "output_range": float(np.abs(stored).max()),
        "same_class_at_T_max": int(same_class.sum()),
        "passed": bool(differs.mean() < 0.01 and same_class.all()),
    }


def assemble(
    returned: Path,
    into: Path,
    data_root: str | None = None,
    check: int = 6,
    overwrite: bool = False,
) -> dict:
    """Unbundle, validate, compare on the CPU and install (module docstring)."""
    from dynconf.core.store import load_run
    from lease.bundle import unpack_files

    manifest = returned / "result.manifest.json"
    summary_path = returned / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    staging = into / f"{TMP_PREFIX}{os.getpid()}-assemble"
    if staging.exists():
        shutil.rmtree(staging)
    into.mkdir(parents=True, exist_ok=True)
    try:
        files = unpack_files(manifest, staging)
        runs = {Path(name).parts[0] for name in files if len(Path(name).parts) == 2}
        if len(runs) != 1 or "model.pt" not in files:
            raise RunFormatError(
                f"{manifest} holds no run and model.pt (it holds {', '.join(sorted(files))}); "
                "see summary.json for what failed on the GPU"
            )
        name = runs.pop()
        run_dir = staging / name
        meta = json.loads((run_dir / "meta.json").read_text())
        if meta.get("checkpoint") != "model.pt":
            raise RunFormatError(f"{name}/meta.json names no model.pt checkpoint")
        os.replace(staging / "model.pt", run_dir / "model.pt")
        run = load_run(run_dir)  # full validation
        comparison = compare_with_cpu(run_dir, data_root, check) if check else None
        if comparison is not None and not comparison["passed"]:
            raise RunFormatError(
                f"re-simulating {comparison['images']} test images on the CPU does not "
                f"reproduce the GPU's outputs: {json.dumps(comparison)}"
            )
        target = into / name
        if target.exists():
            if not overwrite:
                raise RunFormatError(f"{target} exists (pass --overwrite to replace it)")
            shutil.rmtree(target)
        os.replace(run_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "run": str(target),
        "T_max": run.T_max,
        "splits": {s: len(run.split(s).labels) for s in run.split_names},
        "snn_accuracy_by_T": run.meta.get("snn_accuracy_by_T"),
        "cpu_check": comparison,
        "gpu_summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lease.assemble", description=__doc__.split("\n")[0]
    )
    parser.add_argument("returned", help="the folder holding result.manifest.json and its parts")
    parser.add_argument("--into", default="cached_runs", help="where the run goes")
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument("--check", type=int, default=6, help="test images re-simulated (0: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run of that name")
    args = parser.parse_args(argv)
    return print_result(
        lambda: assemble(
            Path(args.returned), Path(args.into), args.data_root, args.check, args.overwrite
        )
    )


if __name__ == "__main__":
    sys.exit(main())

"""Record your own SpikingJelly, snnTorch or step/reset network on a dataset into a run.

The `record` command: argparse over dynconf.engine.record. ``--model PKG.MODULE:FUNCTION``
names a function of yours that builds the network (called with no arguments, or with the
keyword arguments of ``--model-kwargs '{"hidden": 64}'``); ``--weights`` is a state dict
read with ``torch.load(weights_only=True)`` (never unpickled). The dataset's splits come from
dynconf's dataset registry. Resumable after a kill like `simulate`: rerun the same command.
torch is imported only when the command runs. Started by torchrun
(``torchrun --nproc_per_node P -m dynconf record ...``) the processes share the batches and
rank 0 writes the run (engine/distributed.py; README, "More than one machine").
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex

from dynconf.engine.batches import SplitBatches
from dynconf.engine.config import parse_splits
from dynconf.engine.data import dataset_names
from dynconf.engine.data.base import TRANSFORMS
from dynconf.engine.frameworks import ENCODERS, framework_names
from dynconf.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="PKG.MODULE:FUNCTION that returns the network"
    )
    parser.add_argument("--model-kwargs", default=None, help="JSON object of keyword arguments")
    parser.add_argument("--weights", default=None, help="state dict (.pt) to load into it")
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument("--T", type=int, default=32, help="time steps per sample (T_max)")
    parser.add_argument("--splits", default="calibration,test", help="comma-separated splits")
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--name", default=None, help="run name (default: the folder name)")
    parser.add_argument("--framework", default="auto", choices=("auto", *framework_names()))
    parser.add_argument("--encoder", default="direct", choices=tuple(ENCODERS))
    parser.add_argument(
        "--transform",
        default="auto",
        choices=("auto", *TRANSFORMS),
        help="how pixels become inputs: 'normalize' (the dataset's mean/std, what dynconf's "
        "models train on), 'none' (raw pixels in [0, 1], e.g. x / 16 on digits); auto: none "
        "for --encoder poisson, else normalize. Stored in meta.recording",
    )
    parser.add_argument(
        "--steps-itself",
        action="store_true",
        help="the model's forward loops over time itself (takes [B, ...], returns the mean "
        "over its own T steps): per-step outputs are taken from a hook",
    )
    parser.add_argument(
        "--readout",
        default=None,
        choices=("membrane", "spikes", "output"),
        help="snnTorch: which return value holds the class scores (default: membrane of a "
        "tuple, else the output)",
    )
    parser.add_argument("--step-mode", default=None, choices=("s", "m"), help="SpikingJelly")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--limit", type=int, default=None, help="only N evenly spaced samples of each split"
    )
    parser.add_argument("--seed", type=int, default=0, help="calibration hold-out and poisson")
    parser.add_argument("--no-spikes", action="store_true", help="do not count hidden spikes")
    parser.add_argument("--no-synops", action="store_true", help="do not count synaptic operations")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--progress-file", default=None, help="JSON progress for other processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")


def build_model(spec: str, kwargs_json: str | None = None):
    """Call the user's ``PKG.MODULE:FUNCTION`` (with ``--model-kwargs``) and return its model."""
    module_name, sep, function_name = spec.partition(":")
    if not sep or not module_name or not function_name:
        raise DataError(f"--model must be PKG.MODULE:FUNCTION, got {spec!r}")
    kwargs = {}
    if kwargs_json:
        try:
            kwargs = json.loads(kwargs_json)
        except ValueError as exc:
            raise DataError(f"--model-kwargs is not JSON ({exc})") from None
        if not isinstance(kwargs, dict):
            raise DataError("--model-kwargs must be a JSON object")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(f"cannot import {module_name} for --model ({exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(f"{module_name} has no function {function_name!r} (from --model)")
    try:
        return function(**kwargs)
    except TypeError as exc:
        raise DataError(f"{spec}(**{kwargs}) failed: {exc}") from None


def load_weights(model, path: str) -> None:
    """Load a state dict (or a checkpoint whose "state_dict"/"model" entry is one)."""
    import torch

    from dynconf.core.safeopen import open_regular
    from dynconf.engine.checkpoint import torch_refusal

    if not os.path.lexists(path):
        raise DataError(f"--weights {path}: no such file")

    def weights_error(message: str) -> DataError:
        return DataError(f"--weights {message}")

    with open_regular(path, "state dict file", weights_error) as fh:  # a FIFO would block
        try:
            state = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle of other objects, a damaged file
            reason = torch_refusal(exc)
            raise DataError(f"--weights {path}: not a loadable state dict ({reason})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not callable(getattr(model, "load_state_dict", None)):
        raise DataError(f"--weights {path}: expected a state dict for a model with weights")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())  # torch's message spans several lines
        raise DataError(f"--weights {path} do not fit the model: {reason}") from None


def run_command(args: argparse.Namespace) -> dict:
    import torch

    from dynconf.engine.data import load_dataset
    from dynconf.engine.data.base import evenly_spaced
    from dynconf.engine.device import set_threads
    from dynconf.engine.distributed import join, quiet_unless_main, threads_per_process
    from dynconf.engine.record import record_run
    from dynconf.engine.writer import id_source

    if args.batch_size < 1:
        raise DataError("--batch-size must be at least 1")
    splits = parse_splits(args.splits)
    world, device = join(args.device)  # one process of several under torchrun
    quiet_unless_main(world)  # only rank 0 prints the result
    set_threads(threads_per_process(args.threads, world))
    model = build_model(args.model, args.model_kwargs)
    if args.weights:
        load_weights(model, args.weights)
    if isinstance(model, torch.nn.Module):
        model = model.to(device)
    data = load_dataset(args.dataset, args.data_root, seed=args.seed, splits=tuple(splits))
    transform = resolve_transform(args.transform, args.encoder)
    data = data.with_transform(transform)
    missing = [s for s in splits if s not in data.splits]
    if missing:
        raise DataError(f"dataset {args.dataset} has no split {missing[0]!r}")
    plan = {}
    for split_name in splits:
        split = data.splits[split_name]
        positions = evenly_spaced(len(split), args.limit)
        if len(positions) < len(split):
            split = split.take(positions)
        plan[split_name] = SplitBatches(split, args.batch_size)
    words = getattr(args, "argv", None)
    command = "python -m dynconf " + shlex.join(words) if words else None
    run = record_run(
        model,
        plan,
        T=args.T,
        out=args.out,
        framework=args.framework,
        encoder=args.encoder,
        classes=list(data.classes),
        dataset=args.dataset,
        model_name=args.model,
        count_spikes=not args.no_spikes,
        count_synops=not args.no_synops,
        readout=args.readout,
        step_mode=args.step_mode,
        steps_itself=args.steps_itself,
        seed=args.seed,
        progress=not args.no_progress,
        progress_file=args.progress_file,
        overwrite=args.overwrite,
        name=args.name,
        extra_meta={
            "id_scheme": data.id_scheme,
            "id_source": id_source(splits),
            "weights": str(args.weights) if args.weights else None,
        },
        recording_extra={"transform": transform, "transform_detail": data.transform(transform)},
        command=command,
    )
    world.close()
    recording = run.meta["recording"]
    by_T = run.meta["snn_accuracy_by_T"]
    return {
        "run": str(run.path),
        "T_max": run.T_max,
        "splits": dict(run.meta["splits"]),
        "framework": recording["framework"],
        "step_mode": recording["step_mode"],
        "readout": recording["readout"],
        "neurons": run.meta.get("neurons"),
        "accuracy_at_T": {s: by_T[s][str(run.T_max)] for s in by_T},
        "wall_time_s": run.meta["created"]["wall_time_s"],
    }


def resolve_transform(transform: str, encoder: str) -> str:
    """``--transform auto``: raw pixels for rate coding (it needs [0, 1]), else the dataset's
    normalisation."""
    if transform != "auto":
        return transform
    return "none" if encoder == "poisson" else "normalize"

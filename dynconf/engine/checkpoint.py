"""Checkpoints: the one file format between `train` and `simulate`/`ann`.

A checkpoint (``model.pt``, or ``last.pt`` while training) is a dict of tensors and plain
Python values, so it loads with ``torch.load(weights_only=True)``: opening a file from
elsewhere can never run code. It holds ``model`` (the state dict), ``config`` (the training
settings and dataset facts, see ``checkpoint_config``), ``history`` and ``result`` (JSON
text) and ``command``. Tensors are always stored on the CPU so a checkpoint written on a GPU
loads and resumes without one. Writes are atomic (dynconf.core.atomic): a kill never leaves
half a checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dynconf.core.atomic import atomic_write
from dynconf.engine.config import (
    CHECKPOINT_DATA_KEYS,
    CHECKPOINT_FIELDS,
    CHECKPOINT_OPTIONAL_FIELDS,
    TrainConfig,
)
from dynconf.errors import DataError

REFUSED_OBJECTS = (
    "it holds Python objects that dynconf will not unpickle; only tensors and plain "
    "containers are loaded"
)


def torch_refusal(exc: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in dynconf's words: a file that holds
    other objects is said to (torch's own text would advise unpickling it), else the first
    line of torch's reason."""
    import pickle

    text = " ".join(str(exc).split())
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text.lower():
        return REFUSED_OBJECTS
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return " ".join(first.split())


def load_torch_file(path: str | os.PathLike, what: str, error=DataError):
    """torch.load(weights_only=True) of a regular file only (a FIFO would block it): raises
    ``error`` "PATH: is not a regular file ..." or "{what} PATH cannot be loaded safely:
    REASON" (torch_refusal), one line."""
    import torch

    from dynconf.core.safeopen import open_regular

    with open_regular(path, what, error) as fh:
        try:
            return torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged or unsafe files
            raise error(f"{what} {path} cannot be loaded safely: {torch_refusal(exc)}") from None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a dynconf checkpoint safely (weights_only) and check what it must hold."""
    path = Path(path)
    if not os.path.lexists(path):
        raise DataError(f"checkpoint {path} does not exist")
    ckpt = load_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise DataError(
            f"checkpoint {path} is not a dynconf checkpoint (needs 'model' and 'config')"
        )
    return ckpt


def save_checkpoint(obj: dict, path: Path) -> None:
    """torch.save through the atomic-write helper (temp file, fsync, rename)."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh))


def checkpoint_config(config: TrainConfig, data, train_levels: list[int]) -> dict:
    """The ``config`` a checkpoint stores: the training settings and the dataset facts.

    ``calibration_ids`` are the training images held out for calibration, which `simulate`
    and `--init` check so that no calibration image is ever trained on.
    """
    settings = config.to_dict()
    stored = {key: settings[key] for key in CHECKPOINT_FIELDS[:3]}
    stored["num_classes"] = len(data.classes)
    stored["classes"] = data.classes
    stored.update({key: settings[key] for key in CHECKPOINT_FIELDS[3:]})
    stored["train_levels"] = list(train_levels)
    stored["train_size"] = len(data.splits["train"])
    stored["id_scheme"] = data.id_scheme
    calibration = data.splits.get("calibration")
    stored["calibration_ids"] = calibration.ids.tolist() if calibration is not None else []
    defaults = TrainConfig.defaults()
    for key in CHECKPOINT_OPTIONAL_FIELDS:
        if settings[key] != defaults[key]:
            stored[key] = settings[key]
    return stored


def train_config_of(ckpt: dict, out: str = "") -> TrainConfig:
    """The training settings a checkpoint records, as a TrainConfig writing to ``out``.

    Settings that older checkpoints did not record yet get today's defaults; ``init`` is
    the checkpoint that a warm restart started from.
    """
    stored = dict(ckpt["config"])
    init = stored.pop("init", None) or {}
    stored["init"] = init.get("checkpoint")
    return TrainConfig.from_dict(dict(stored, out=out), ignore=CHECKPOINT_DATA_KEYS)


def training_commands(ckpt: dict) -> list[str]:
    """Every command that shaped a checkpoint's weights, oldest first.

    A warm restart (``--init``) records the commands of the checkpoint it started from, so a
    chain of restarts keeps its whole history, not just the last link.
    """
    init = ckpt["config"].get("init") or {}
    # checkpoints restarted before the chain was recorded hold only the previous command
    earlier = init.get("commands") or ([init["command"]] if init.get("command") else [])
    return [*earlier, *([ckpt["command"]] if ckpt.get("command") else [])]


def model_from_checkpoint(ckpt: dict):
    """Rebuild the QCFS network described by a checkpoint and load its weights."""
    from dynconf.engine.models import build_model

    cfg = ckpt["config"]
    model = build_model(cfg["arch"], cfg["levels"], cfg["num_classes"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise DataError(f"checkpoint weights do not fit {cfg['arch']}: {exc}") from exc
    return model.eval()


def check_init_compatible(init_config: dict, config: dict, path) -> None:
    """Refuse to fine-tune from weights of another network or another calibration hold-out.

    A different hold-out would mean some calibration images were seen in training, which makes
    the calibration split useless for choosing a threshold.
    """
    for key in ("arch", "levels", "num_classes", "dataset", "id_scheme"):
        if init_config.get(key) != config.get(key):
            raise DataError(
                f"--init {path}: its {key} is {init_config.get(key)!r}, "
                f"this run's is {config.get(key)!r}"
            )
    if list(init_config.get("calibration_ids", [])) != list(config["calibration_ids"]):
        raise DataError(
            f"--init {path} held out other calibration images (another --seed?): "
            "fine-tuning would train on this run's calibration split"
        )


def load_checkpoint_data(config: dict, dataset: str, data_root, splits):
    """The splits of ``dataset`` for a checkpoint whose stored ``config`` is given.

    Refuses a dataset other than the one trained on, and a calibration split other than the
    images held out of that training (else "calibration" accuracy would be training accuracy).
    """
    from dynconf.engine.data import load_dataset

    if config["dataset"] != dataset:
        raise DataError(f"checkpoint was trained on {config['dataset']}, not {dataset}")
    data = load_dataset(dataset, data_root, seed=config.get("seed", 0), splits=tuple(splits))
    missing = [s for s in splits if s not in data.splits]
    if missing:
        raise DataError(f"dataset {dataset} has no split {', '.join(missing)}")
    held_out = config.get("calibration_ids")
    if (
        "calibration" in splits
        and held_out
        and not np.array_equal(data.splits["calibration"].ids, np.asarray(held_out))
    ):
        raise DataError("calibration split differs from the one held out at training time")
    return data


def on_cpu(obj):
    """A copy of a (nested) state dict with every tensor on the CPU.

    Checkpoints written on a GPU must load and resume on a machine without one.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(on_cpu(value) for value in obj)
    return obj

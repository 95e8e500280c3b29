"""The settings of each engine command as a dataclass: what `train`, `simulate` and `ann` take.

The CLI builds one of these from its flags (dynconf/cli/), and so can any other caller, so
the engine never sees an argparse Namespace. Each optional field holds the flag's default.
``to_dict``/``from_dict`` give plain JSON values (lists, not tuples). A checkpoint stores the
training fields of its ``TrainConfig`` (``CHECKPOINT_FIELDS``) plus what training learned
about the dataset (``CHECKPOINT_DATA_KEYS``; see checkpoint.checkpoint_config), and
checkpoint.train_config_of reads them back as a ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass

from dynconf.errors import DataError

SCHEDULES = ("cosine", "onecycle", "constant", "cyclic")
AMP_MODES = ("off", "bf16")


class _Config:
    """to_dict/from_dict for the dataclasses below."""

    def to_dict(self) -> dict:
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in dataclasses.fields(self)
            for value in [getattr(self, f.name)]
        }

    @classmethod
    def defaults(cls) -> dict:
        """Each field's default (fields without one are left out), for the CLI's flags."""
        return {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING
        }

    @classmethod
    def from_dict(cls, values: dict, ignore: tuple[str, ...] = ()):
        """Build from a dict of field values; keys in ``ignore`` are skipped, others refused."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names - set(ignore)
        if unknown:
            raise DataError(f"{cls.__name__}: unknown setting(s) {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, value in values.items():
            if name not in names:
                continue
            if isinstance(value, list) and _is_tuple(hints[name]):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)


def _is_tuple(hint) -> bool:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return any(typing.get_origin(option) is tuple for option in options)


@dataclass
class TrainConfig(_Config):
    """`python -m dynconf train`: train a QCFS ANN (see dynconf/engine/train.py)."""

    dataset: str
    arch: str
    out: str  # checkpoint directory (resumed if present)
    data_root: str | None = None  # else $DYNCONF_DATA
    download: bool = False  # let torchvision download CIFAR-10 into data_root
    levels: int = 4  # QCFS quantisation levels L
    init: str | None = None  # start from the weights of this finished checkpoint
    train_levels: tuple[int, ...] | None = None  # cycled one per batch; must include levels
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # one of SCHEDULES
    average_from: int = 0  # average the weights of every epoch from this one on (0: off)
    seed: int = 0
    device: str = "auto"  # auto (CUDA if present), cpu, cuda[:i]
    threads: int | None = None  # torch threads (None: all cores)
    # Time-boxed training (engine/speed.py):
    limit: int | None = None  # train and evaluate on this many evenly spaced images per split
    amp: str = "off"  # one of AMP_MODES: "bf16" autocasts the training steps (not evaluation)
    compile: bool = False  # torch.compile the training steps, kept only if measured faster
    time_budget_s: float | None = None  # epochs (at most `epochs`) that fit, sized after epoch 1
    checkpoint_every: int = 1  # write last.pt every this many epochs (and after the last one)
    half_weights: bool = False  # model.pt keeps conv/linear weights rounded to float16

    def resolved_train_levels(self) -> list[int]:
        """The levels cycled in training: ``train_levels``, which must include ``levels``."""
        return resolve_train_levels(self.train_levels, self.levels)


# The TrainConfig fields a checkpoint records, in the order it always has (`init` is stored
# as a record of the restart, not as the path; see checkpoint.checkpoint_config).
CHECKPOINT_FIELDS = (
    "arch",
    "levels",
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "label_smoothing",
    "warmup_epochs",
    "schedule",
    "average_from",
    "train_levels",
    "seed",
)
# TrainConfig fields added later, stored only when they differ from their default, so the
# checkpoint of a run that does not use them holds exactly the keys above. (checkpoint_every,
# device and threads do not change the weights, so they are not recorded.)
CHECKPOINT_OPTIONAL_FIELDS = ("limit", "amp", "compile", "time_budget_s", "half_weights")
# What a checkpoint's config holds besides TrainConfig fields: facts about the data trained on.
CHECKPOINT_DATA_KEYS = ("num_classes", "classes", "train_size", "id_scheme", "calibration_ids")


@dataclass
class SimulateConfig(_Config):
    """`python -m dynconf simulate`: a checkpoint's SNN into a run (dynconf/engine/simulate.py)."""

    checkpoint: str  # model.pt written by `train`
    dataset: str
    out: str  # run directory to create
    data_root: str | None = None
    T: int = 64  # time steps per sample (T_max)
    splits: tuple[str, ...] = ("calibration", "test")
    name: str | None = None  # run name (None: the folder name)
    batch_size: int = 64
    chunk: int = 4  # time steps per multi-step call
    limit: int | None = None  # only this many evenly spaced samples of each split
    device: str = "auto"
    threads: int | None = None
    progress_file: str | None = None  # JSON progress for other processes
    copy_checkpoint: bool = True  # copy the checkpoint into the run as model.pt
    overwrite: bool = False  # replace an existing run


@dataclass
class LevelsConfig(_Config):
    """`python -m dynconf ann`: ANN accuracy at more QCFS levels (dynconf/engine/levels.py)."""

    checkpoint: str
    dataset: str
    data_root: str | None = None
    split: str = "calibration"
    levels: tuple[int, ...] | None = None  # None: the checkpoint's own
    batch_size: int = 500
    device: str = "auto"
    threads: int | None = None


def parse_level_list(text: str, option: str) -> list[int]:
    """A comma list of QCFS levels such as ``"4,8,16,64"`` as ints; errors name ``option``."""
    try:
        parsed = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DataError(f"{option} {text!r}: expected integers such as 4,8,16,64") from None
    return check_levels(parsed, option, text)


def check_levels(levels, option: str, text: str | None = None) -> list[int]:
    levels = [int(n) for n in levels]
    if not levels or min(levels) < 1:
        shown = text if text is not None else ",".join(str(n) for n in levels)
        raise DataError(f"{option} {shown!r}: levels must be integers >= 1")
    return levels


def parse_train_levels(text: str | None, levels: int) -> list[int]:
    """``--train-levels "4,8,16,64"`` as a list of ints; it must include ``--levels``."""
    parsed = None if text is None else parse_level_list(text, "--train-levels")
    return resolve_train_levels(parsed, levels, text)


def resolve_train_levels(train_levels, levels: int, text: str | None = None) -> list[int]:
    """The levels cycled in training (default: just ``levels``); they must include ``levels``,
    the levels the checkpoint keeps."""
    if train_levels is None:
        return [levels]
    parsed = check_levels(train_levels, "--train-levels", text)
    if levels not in parsed:
        shown = text if text is not None else ",".join(str(n) for n in parsed)
        raise DataError(
            f"--train-levels {shown!r} must include --levels {levels}, the levels the "
            "checkpoint keeps and is evaluated at"
        )
    return parsed


def parse_splits(text: str) -> tuple[str, ...]:
    """``"calibration,test"`` as a tuple of split names."""
    return tuple(s.strip() for s in text.split(",") if s.strip())

"""Engine settings as dataclasses: defaults, JSON round trips, the checkpoint record, the CLI.

The `train`, `simulate` and `ann` commands build these from their flags; the shipped
checkpoints' stored configs must keep reading as TrainConfigs.
"""

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynconf.cli import ann as ann_cli
from dynconf.cli import simulate as simulate_cli
from dynconf.cli import train as train_cli
from dynconf.engine.checkpoint import checkpoint_config, train_config_of
from dynconf.engine.config import (
    CHECKPOINT_DATA_KEYS,
    CHECKPOINT_FIELDS,
    CHECKPOINT_OPTIONAL_FIELDS,
    LevelsConfig,
    SimulateConfig,
    TrainConfig,
)
from dynconf.engine.data import DATASETS, load_digits
from dynconf.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
# every key a checkpoint's config held before the configs became dataclasses
STORED_KEYS = [
    "arch", "levels", "dataset", "num_classes", "classes", "epochs", "batch_size", "lr",
    "momentum", "weight_decay", "label_smoothing", "warmup_epochs", "schedule", "average_from",
    "train_levels", "seed", "train_size", "id_scheme", "calibration_ids",
]  # fmt: skip


def parse(module, *argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("cls", [TrainConfig, SimulateConfig, LevelsConfig])
def test_configs_round_trip_through_plain_dicts(cls):
    required = {f.name: "x" for f in dataclasses.fields(cls) if f.name not in cls.defaults()}
    config = cls(**required)
    plain = config.to_dict()
    assert cls.from_dict(plain) == config
    assert all(not isinstance(v, tuple) for v in plain.values())  # JSON values: lists
    with pytest.raises(DataError, match="unknown setting"):
        cls.from_dict({**plain, "epochz": 3})


def test_tuple_settings_come_back_as_tuples():
    config = TrainConfig("digits", "digits_cnn", "out", train_levels=(4, 16))
    assert config.to_dict()["train_levels"] == [4, 16]
    assert TrainConfig.from_dict(config.to_dict()).train_levels == (4, 16)
    assert config.resolved_train_levels() == [4, 16]
    with pytest.raises(DataError, match="must include --levels 8"):
        dataclasses.replace(config, levels=8).resolved_train_levels()


def test_the_checkpoint_record_keeps_its_keys_in_order():
    data = load_digits()
    config = TrainConfig("digits", "digits_cnn", "out", epochs=3)
    stored = checkpoint_config(config, data, [4])
    assert list(stored) == STORED_KEYS
    assert stored["train_levels"] == [4] and stored["num_classes"] == 10
    assert stored["calibration_ids"] == data.splits["calibration"].ids.tolist()
    assert set(CHECKPOINT_FIELDS) | set(CHECKPOINT_DATA_KEYS) == set(STORED_KEYS)
    again = train_config_of({"config": stored}, out="out")
    assert again == dataclasses.replace(config, train_levels=(4,))


def test_time_boxed_settings_are_recorded_only_when_used():
    data = load_digits()
    config = TrainConfig(
        "digits", "digits_cnn", "out", amp="bf16", compile=True, time_budget_s=300.0,
        half_weights=True, limit=50, checkpoint_every=5,
    )  # fmt: skip
    stored = checkpoint_config(config, data, [4])
    assert list(stored)[: len(STORED_KEYS)] == STORED_KEYS
    extra = {k: stored[k] for k in list(stored)[len(STORED_KEYS) :]}
    assert extra == dict(limit=50, amp="bf16", compile=True, time_budget_s=300.0, half_weights=True)
    assert set(extra) == set(CHECKPOINT_OPTIONAL_FIELDS)
    # checkpoint_every changes no weight, so it is not recorded and reads back as the default
    again = train_config_of({"config": stored}, out="out")
    assert again == dataclasses.replace(config, train_levels=(4,), checkpoint_every=1)


@pytest.mark.parametrize("name", ["digits", "cifar10_resnet20"])
def test_shipped_checkpoints_read_as_train_configs(name):
    ckpt = torch.load(ROOT / "cached_runs" / name / "model.pt", weights_only=True)
    assert set(ckpt["config"]) >= set(STORED_KEYS) - {"average_from", "train_levels"}
    config = train_config_of(ckpt)
    for key in CHECKPOINT_FIELDS:
        if key in ckpt["config"]:
            stored = ckpt["config"][key]
            assert getattr(config, key) == (tuple(stored) if isinstance(stored, list) else stored)
    if "init" in ckpt["config"]:
        assert config.init == ckpt["config"]["init"]["checkpoint"]


def test_train_flags_build_the_config():
    args = parse(
        train_cli, "--dataset", "digits", "--arch", "digits_cnn", "--out", "o",
        "--train-levels", "4, 8", "--lr", "0.05", "--no-progress",
    )  # fmt: skip
    config = train_cli.config_from_args(args)
    assert config == TrainConfig("digits", "digits_cnn", "o", lr=0.05, train_levels=(4, 8))
    timed = parse(
        train_cli, "--dataset", "digits", "--arch", "a", "--out", "o", "--amp", "bf16",
        "--compile", "--time-budget", "300", "--checkpoint-every", "10", "--half-weights",
        "--limit", "64",
    )  # fmt: skip
    assert train_cli.config_from_args(timed) == TrainConfig(
        "digits", "a", "o", amp="bf16", compile=True, time_budget_s=300.0,
        checkpoint_every=10, half_weights=True, limit=64,
    )  # fmt: skip
    defaults = parse(train_cli, "--dataset", "digits", "--arch", "a", "--out", "o")
    assert train_cli.config_from_args(defaults) == TrainConfig("digits", "a", "o")
    bad = parse(
        train_cli, "--dataset", "digits", "--arch", "a", "--out", "o", "--train-levels", "4,x"
    )
    with pytest.raises(DataError, match="expected integers"):
        train_cli.config_from_args(bad)


def test_simulate_and_ann_flags_build_their_configs():
    args = parse(
        simulate_cli,
        *["--checkpoint", "c", "--dataset", "digits", "--out", "r", "--splits", "test"],
    )
    assert simulate_cli.config_from_args(args) == SimulateConfig(
        "c", "digits", "r", splits=("test",)
    )
    args = parse(simulate_cli, *["--checkpoint", "c", "--dataset", "digits", "--out", "r"],
                 "--no-checkpoint-copy", "--limit", "5")  # fmt: skip
    config = simulate_cli.config_from_args(args)
    assert config.splits == ("calibration", "test") and not config.copy_checkpoint
    assert config.limit == 5 and config.T == 64 and config.batch_size == 64
    args = parse(ann_cli, *["--checkpoint", "c", "--dataset", "digits", "--levels", "4,16"])
    assert ann_cli.config_from_args(args) == LevelsConfig("c", "digits", levels=(4, 16))
    args = parse(ann_cli, *["--checkpoint", "c", "--dataset", "digits"])
    assert ann_cli.config_from_args(args).levels is None


@pytest.mark.parametrize("module", [train_cli, simulate_cli, ann_cli])
def test_dataset_choices_come_from_the_registry(module):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    (action,) = [a for a in parser._actions if a.dest == "dataset"]
    assert tuple(action.choices) == tuple(DATASETS)
    assert tuple(DATASETS) == ("digits", "cifar10", "imagefolder", "noisy_digits")


def test_command_modules_and_the_dataset_registry_import_no_torch():
    code = (
        "import sys, dynconf.cli.train, dynconf.cli.simulate, dynconf.cli.ann, "
        "dynconf.engine.data; assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_one_device_choice_and_thread_setting():
    from dynconf.engine.device import device_label, pick_device, set_threads

    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == pick_device().type == expected
    saved = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
    assert device_label(torch.device("cpu")) == "cpu"

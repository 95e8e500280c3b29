"""Train a QCFS network (the ANN that gets converted to an SNN), with resumable checkpoints.

``train(TrainConfig(...))`` is what the `train` command runs (dynconf/cli/train.py):

``python -m dynconf train --dataset cifar10 --data-root DATA --arch resnet20
--levels 4 --epochs 30 --out checkpoints/resnet20``

SGD with Nesterov momentum, a linear warm-up then a cosine, one-cycle, constant or cyclic
learning rate, standard CIFAR augmentation (random crop from a 4-pixel pad, horizontal flip).
After every epoch the whole training state is written atomically to ``OUT/last.pt``; running the
same command again resumes from it, so a killed run loses at most one epoch. ``--init CKPT``
starts a new schedule from the weights of a finished checkpoint (a warm restart: a short model is
trained longer without repeating its epochs); it must hold out the same calibration images, so
none leak into training.
When training ends, ``OUT/model.pt`` holds the weights plus the configuration and the final ANN
accuracy on calibration and test.
``--average-from K`` averages the weights at the end of every epoch from epoch K on
(stochastic weight averaging, Izmailov et al. 2018; pair it with ``--schedule constant`` or
``cyclic``): the average of points along the SGD trajectory lies in a flatter,
better-generalising region than any one of them. BatchNorm statistics are then recomputed for
the averaged weights with one pass over the training data, since no batch ever ran through them.
``--device cuda`` (the default when CUDA is present) trains on a GPU: each uint8 batch is
moved there and converted and augmented there, and checkpoints are written with CPU tensors,
so a run started on a GPU resumes on a CPU (or the other way round) with the same command.
Checkpoints contain only tensors and plain Python values, so they load with
``torch.load(weights_only=True)`` (see checkpoint.py).
Time-boxed training on any GPU (engine/speed.py): ``--time-budget S`` trains as
many epochs as fit in S seconds, counted after the first epoch from its own timing (that epoch
must be all warm-up, so the schedule is the one ``--epochs N`` gives); ``--amp bf16``
autocasts the training steps; ``--compile`` times eager against compiled steps in the first
epoch and keeps the faster; ``--half-weights`` stores float16 conv/linear weights that are
exactly the network evaluated; ``--checkpoint-every N`` writes last.pt less often.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from dynconf.engine.checkpoint import (
    check_init_compatible,
    checkpoint_config,
    load_checkpoint,
    on_cpu,
    save_checkpoint,
    training_commands,
)
from dynconf.engine.config import AMP_MODES, TrainConfig
from dynconf.engine.data.base import evenly_spaced
from dynconf.engine.device import device_label, pick_device, set_threads
from dynconf.engine.evaluate import evaluate_ann
from dynconf.engine.schedule import learning_rate, update_average
from dynconf.engine.speed import (
    Clock,
    CompileProbe,
    check_budget_settings,
    epochs_that_fit,
    round_weights_to_half,
)
from dynconf.errors import DataError

__all__ = ["Training", "check_train_config", "learning_rate", "train", "update_average"]


def train(config: TrainConfig, progress: bool = True, argv_words: list[str] | None = None) -> dict:
    """Train (or resume, or warm-restart) as ``config`` says; returns the result summary.

    ``argv_words``: the words after ``python -m dynconf`` that ran this, recorded in the
    checkpoint as its ``command`` (default: this process's own arguments).
    """
    check_train_config(config)
    run = Training(config, progress)
    while run.state["epoch"] < run.epochs:
        run.train_epoch()
    return run.finish(sys.argv[1:] if argv_words is None else list(argv_words))


def check_train_config(config: TrainConfig) -> None:
    """Refuse settings that cannot train, before any data is loaded."""
    if config.average_from < 0:
        raise DataError("--average-from must be an epoch number >= 1, or 0 for off")
    config.resolved_train_levels()
    if config.amp not in AMP_MODES:
        raise DataError(f"--amp {config.amp!r}: choose one of {', '.join(AMP_MODES)}")
    if config.checkpoint_every < 1:
        raise DataError("--checkpoint-every must be at least 1")
    check_budget_settings(config.time_budget_s, config.warmup_epochs)


class Training:
    """One training job: its data, model, optimiser and state, resumed from ``last.pt`` when
    there is one. ``train_epoch`` runs one epoch and writes the state; ``finish`` writes
    ``model.pt``."""

    def __init__(self, config: TrainConfig, progress: bool):
        import torch

        self.config, self.progress = config, progress
        self.train_levels = config.resolved_train_levels()
        set_threads(config.threads)
        self.device = pick_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.last = self.out / "last.pt"
        self._load_data()
        self._build_model()
        self.state = {"epoch": 0, "history": [], "wall_time_s": 0.0}
        self.average = None  # running mean of the weights (--average-from), with its count
        self.resumed_config = None
        if config.init:
            self._warm_start()
        if self.last.exists():
            self._resume()
        self._plan_steps()
        self.clock = Clock(self.device)
        self._prepare_compile()
        self.autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=config.amp == "bf16"
        )
        self.first_epoch = self.state["epoch"]

    # ---------------------------------------------------------------- set-up

    def _load_data(self) -> None:
        from dynconf.engine.data import load_dataset

        config = self.config
        data = load_dataset(
            config.dataset, config.data_root, seed=config.seed, download=config.download
        )
        if "train" not in data.splits:
            raise DataError(f"dataset {config.dataset} has no training split (no train/ folder?)")
        # the whole hold-out is recorded, always
        self.stored = checkpoint_config(config, data, self.train_levels)
        if config.limit is not None:  # a smoke test: a few evenly spaced images of every split
            for name, split in data.splits.items():
                data.splits[name] = split.take(evenly_spaced(len(split), config.limit))
            self.stored["train_size"] = len(data.splits["train"])
        self.data, self.train_split = data, data.splits["train"]

    def _build_model(self) -> None:
        import torch

        from dynconf.engine.models import build_model

        config = self.config
        torch.manual_seed(config.seed)
        model = build_model(config.arch, config.levels, len(self.data.classes))
        self.model = model.to(self.device, memory_format=torch.channels_last)
        # Thresholds (lambda) and BN/bias parameters are not weight-decayed.
        decay = [p for n, p in self.model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim <= 1]
        self.optimizer = torch.optim.SGD(
            [
                {"params": decay, "weight_decay": config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=config.lr,
            momentum=config.momentum,
            nesterov=True,
        )

    def _warm_start(self) -> None:
        """``--init``: the weights of a finished checkpoint with the same hold-out."""
        init = load_checkpoint(self.config.init)
        check_init_compatible(init["config"], self.stored, self.config.init)
        self.model.load_state_dict(init["model"])
        self.stored["init"] = {
            "checkpoint": str(self.config.init),
            "commands": training_commands(init),
            "epochs": len(json.loads(init.get("history", "[]"))),
        }

    def _resume(self) -> None:
        config, last = self.config, self.last
        ckpt = load_checkpoint(last)
        if ckpt["config"]["arch"] != config.arch or ckpt["config"]["levels"] != config.levels:
            raise DataError(f"{last} was trained with another arch/levels; use a new --out")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state = {
            "epoch": ckpt["epoch"],
            "history": json.loads(ckpt["history"]),
            "wall_time_s": float(ckpt["wall_time_s"]),
        }
        if "average" in ckpt:
            average = ckpt["average"]
            names = {name for name, _ in self.model.named_parameters()}
            if set(average.get("params", {})) != names or average.get("count", 0) < 1:
                raise DataError(f"{last} holds a broken weight average; use a new --out")
            average["params"] = {k: v.to(self.device) for k, v in average["params"].items()}
            self.average = average
        self.resumed_config = ckpt["config"]
        print(f"resuming from {last} after epoch {self.state['epoch']}", file=sys.stderr)

    def _plan_steps(self) -> None:
        config = self.config
        # A compiled model would compile again for the smaller last batch, so --compile drops
        # it (a different random 1-in-N images each epoch).
        n = len(self.train_split)
        self.steps_per_epoch = (
            n // config.batch_size if config.compile else math.ceil(n / config.batch_size)
        )
        if self.steps_per_epoch < 1:
            raise DataError(f"{n} training images do not fill one batch of {config.batch_size}")
        self.epochs = config.epochs
        if config.time_budget_s is not None and self.state["epoch"] > 0:
            # sized when this run's first epoch ended
            self.epochs = int(self.resumed_config["epochs"])
        self.warmup_steps = int(config.warmup_epochs * self.steps_per_epoch)

    def _prepare_compile(self) -> None:
        import torch

        compiled = torch.compile(self.model) if self.config.compile else None  # at first call
        self.forward, self.probe = self.model, None
        if compiled is not None:
            self.probe = CompileProbe(self.model, compiled, self.steps_per_epoch, self.clock)
            if self.state["epoch"] > 0:  # resumed: the probe ran in an earlier process
                history = self.state["history"]
                kept = [r["compile"]["compiled_kept"] for r in history if "compile" in r]
                self.forward = self.model if kept and not kept[-1] else compiled
                self.probe = None

    def training_batches(self, seed: int):
        """One shuffled pass over the training split, augmented except for digits."""
        return self.train_split.batches(
            self.config.batch_size,
            shuffle=True,
            augment=self.config.dataset != "digits",
            seed=seed,
            device=self.device,
        )

    def save_training_state(self, epoch_started: float) -> None:
        """last.pt: what a resumed run needs, with the time this epoch has taken so far."""
        training_state = {
            "model": on_cpu(self.model.state_dict()),
            "optimizer": on_cpu(self.optimizer.state_dict()),
            "epoch": self.state["epoch"],
            "config": self.stored,
            "history": json.dumps(self.state["history"]),
            "wall_time_s": self.state["wall_time_s"] + (self.clock.now() - epoch_started),
        }
        if self.average is not None:
            training_state["average"] = on_cpu(self.average)
        save_checkpoint(training_state, self.last)

    # ---------------------------------------------------------------- one epoch

    def train_epoch(self) -> None:
        """One epoch: the steps, the evaluation, the average, last.pt, the budget's sizing."""
        from dynconf.engine.models import set_levels

        config, epoch = self.config, self.state["epoch"]
        started = self.clock.now()
        record, mid = self._steps(epoch, started)
        loop_end = self.clock.now()
        set_levels(self.model, config.levels)
        record["seconds"] = round(loop_end - started, 3)  # the training steps, not evaluation
        if self.probe is not None and self.probe.report is not None:
            record["compile"] = self.probe.report
        self.probe = None  # only the first epoch of a run is probed
        self._evaluate_epoch(record, epoch)
        self.state["history"].append(record)
        self.state["epoch"] = epoch + 1
        sizing = config.time_budget_s is not None and epoch == 0 == self.first_epoch
        done = self.state["epoch"]
        if sizing or done % config.checkpoint_every == 0 or done == self.epochs:
            save_start = self.clock.now()
            self.save_training_state(started)
            save_s = self.clock.now() - save_start
        if sizing:
            self._size_schedule(record, started, loop_end, mid, save_start, save_s)
        self.state["wall_time_s"] += self.clock.now() - started
        print(json.dumps(record), file=sys.stderr, flush=True)

    def _steps(self, epoch: int, started: float):
        """The training steps of one epoch: ``(record, (mid_step, mid_time))``."""
        import torch
        from tqdm import tqdm

        from dynconf.engine.models import set_levels

        config, model, steps = self.config, self.model, self.steps_per_epoch
        model.train()
        seen = 0
        # Sums stay on the device: reading them every step would stall a GPU once per batch.
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        bar = tqdm(self.training_batches(seed=config.seed * 1000 + epoch), total=steps,
                   desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.progress,
                   file=sys.stderr, mininterval=2.0)  # fmt: skip
        # Steady step time, for --time-budget: from mid-epoch (after any compile) to the end.
        mid_step = max(steps // 2, self.probe.done_at if self.probe else 0)
        mid_time = None
        for i, (x, y, _) in enumerate(bar):
            if i >= steps:  # the partial last batch, dropped with --compile
                break
            if self.probe is not None:
                self.forward = self.probe.model_for(i)
            if i == mid_step:
                mid_time = self.clock.now()
            lr = learning_rate(epoch * steps + i, self.epochs * steps, self.warmup_steps,
                               config.lr, config.schedule, cycle_steps=steps)  # fmt: skip
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if len(self.train_levels) > 1:
                set_levels(model, self.train_levels[i % len(self.train_levels)])
            with self.autocast:
                logits = self.forward(x.contiguous(memory_format=torch.channels_last))
                loss = loss_fn(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            seen += len(y)
            correct += (logits.argmax(1) == y).sum()
            loss_sum += loss.detach() * len(y)
            if self.progress and i % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}",
                                acc=f"{correct.item() / seen:.3f}", lr=f"{lr:.4f}")  # fmt: skip
        bar.close()
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
        }
        return record, (mid_step, mid_time)

    def _evaluate_epoch(self, record: dict, epoch: int) -> None:
        """Calibration accuracy (at the kept and the highest trained level) and the average."""
        config, splits = self.config, self.data.splits
        if "calibration" in splits:
            record["calibration_accuracy"] = evaluate_ann(self.model, splits["calibration"])
            if max(self.train_levels) > config.levels:
                top = max(self.train_levels)
                record[f"calibration_accuracy_L{top}"] = evaluate_ann(
                    self.model, splits["calibration"], levels=top
                )
        if config.average_from and epoch + 1 >= config.average_from:
            self.average = update_average(self.average, self.model)
            record["averaged_epochs"] = self.average["count"]

    def _size_schedule(self, record, started, loop_end, mid, save_start, save_s) -> None:
        """``--time-budget``: the epochs that fit, from the first epoch's timings."""
        config, steps = self.config, self.steps_per_epoch
        mid_step, mid_time = mid
        # Each further epoch: its steps at the steady rate, evaluation, and its share of a
        # checkpoint write. The schedule up to here was all warm-up, so it stays valid.
        overhead = (save_start - loop_end) + save_s / config.checkpoint_every
        if mid_time is not None and mid_step < steps:
            step_s = (loop_end - mid_time) / (steps - mid_step)
        else:
            step_s = (loop_end - started) / steps
        estimate = step_s * steps + overhead
        elapsed = self.clock.now() - started
        self.epochs = epochs_that_fit(config.time_budget_s, elapsed, estimate, config.epochs)
        self.stored["epochs"] = self.epochs
        record.update(sized_epochs=self.epochs, epoch_estimate_s=round(estimate, 3))
        print(
            f"--time-budget {config.time_budget_s:g} s: {self.epochs} epochs "
            f"(first {self.clock.now() - started:.1f} s, then about {estimate:.2f} s each)",
            file=sys.stderr,
            flush=True,
        )
        self.save_training_state(started)  # with the sized schedule, so a resume keeps it

    # ---------------------------------------------------------------- the end

    def _apply_average(self) -> None:
        import torch
        from torch.optim.swa_utils import update_bn

        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(self.average["params"][name])
        # Averaged weights never ran a batch, so the BatchNorm statistics left from training
        # belong to other weights: refit them as an equal-weight mean over one training pass.
        started = time.time()
        update_bn(self.training_batches(seed=self.config.seed * 1000 + self.epochs), self.model)
        self.state["wall_time_s"] += time.time() - started

    def finish(self, words: list[str]) -> dict:
        """Average (``--average-from``), round (``--half-weights``), evaluate, write model.pt."""
        if self.average is not None:
            self._apply_average()
        half = round_weights_to_half(self.model) if self.config.half_weights else []
        result = {
            "checkpoint": str(self.out / "model.pt"),
            "epochs": self.state["epoch"],
            "train_wall_time_s": round(self.state["wall_time_s"], 1),
            "device": device_label(self.device),
        }
        if self.average is not None:
            result["averaged_epochs"] = self.average["count"]
        probes = [r["compile"] for r in self.state["history"] if "compile" in r]
        if probes:
            result["compile"] = probes[-1]
        if half:
            result["half_weights"] = len(half)
        for name in ("calibration", "test"):
            if name in self.data.splits:
                result[f"ann_{name}_accuracy"] = evaluate_ann(self.model, self.data.splits[name])
        weights = on_cpu(self.model.state_dict())
        for name in half:  # float16 holds these values exactly (round_weights_to_half)
            weights[name] = weights[name].half()
        save_checkpoint(
            {
                "model": weights,
                "config": self.stored,
                "history": json.dumps(self.state["history"]),
                "result": json.dumps(result),
                "command": " ".join(["python", "-m", "dynconf", *words]),
            },
            self.out / "model.pt",
        )
        return result

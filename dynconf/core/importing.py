"""Import a user's outputs file (.npz, .npy, .pt) as a split of a new or existing run.

Everything a file holds is checked (dynconf/core/npyio.py, format.py) before it becomes a run;
an existing run gains the split atomically (store.add_split). Whether the run exists is
decided with the run's lock held (dynconf/core/locking.py), so two imports into one run
serialise: the second adds its split to the run the first created, or is refused.

Two mistakes give wrong numbers without any error, so they are refused unless the caller says
what the file holds (messages name the CLI flags; the app translates them to its choices):

- batch-first outputs [N, T, K] (SEENN's layout) read as [T, N, K]. ``layout`` says which; when
  it is not given, a shape whose first two axes are equal is ambiguous and refused, and a shape
  whose first axis matches the labels is called batch-first (check_layout).
- accumulated outputs S_t read as per-step outputs z_t. ``cumulative=None`` detects them: see
  accumulation_evidence for the rule; True differences them, False imports them as they are.

Imports stream, so ImageNet-sized files (T x N x K values, gigabytes) import on one machine:
the outputs stay on disk (npyio.read_outputs_file(stream=True)), are read a block of samples
at a time for all T (TimeFirst; a time-first file is read one step's slice of the block at a
time, so every read is one contiguous piece), converted, checked and reduced block by block,
and the stored arrays are written piece by piece (store.NpyWriter) into temporary files that
the store renames into place (_StreamingPrepare). Peak memory is a block's, not the file's.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from dynconf.core.atomic import temp_name
from dynconf.core.format import (
    ARRAY_SUFFIXES,
    OPTIONAL_ROLES,
    OUTPUT_DTYPES,
    Run,
    accumulation_problem,
    check_run_name,
    check_shape,
    check_split_arrays,
    check_split_inputs,
    stored_optional,
)
from dynconf.core.locking import run_lock
from dynconf.core.npyio import ArrayFile, read_outputs_file
from dynconf.core.provenance import make_created
from dynconf.core.store import NpyWriter, add_split, is_run_dir, load_run, save_run
from dynconf.core.topk import block_samples, index_dtype, topk_block
from dynconf.errors import RunFormatError

LAYOUTS = ("TNK", "NTK")

# The accumulated-outputs rule (accumulation_evidence). Per-step outputs of a converted SNN
# settle after a few steps; running sums S_t = z_1 + ... + z_t grow with t (linearly when the
# z_t have a steady mean, like sqrt(t) when they are noise). Measured on the shipped runs' test
# and calibration outputs cut to T = 4, 8, ..., 64 and on tests.helpers.synthetic_split (5
# seeds, same T; tests/core/test_import_traps.py): per-step outputs rise at <= 73 % of the
# steps, end <= 1.27x their step-1 norm and grow <= 1.08x over the second half; their running
# sums rise at every step, end >= 3.4x and grow >= 1.88x over the second half. The thresholds
# sit between, with room on both sides.
ACCUMULATION_MIN_STEPS = 4  # fewer steps cannot tell a warm-up from a running sum
ACCUMULATION_RISING_FRACTION = 0.9  # mean norm rises at >= 90 % of the steps
ACCUMULATION_TOTAL_GROWTH = 2.0  # ... ends >= 2x its step-1 value
ACCUMULATION_LATE_GROWTH = 1.3  # ... and still grows >= 1.3x over the second half
ACCUMULATION_DIFF_MARGIN = 1.5  # the step differences grow >= 1.5x slower than the values
ACCUMULATION_SAMPLES = 1024  # samples read for the rule (a memory map is not read whole)


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ")"


def check_labels(labels: np.ndarray, where: str) -> None:
    """Labels must be one class index per sample; say so in words when they are not."""
    if labels.ndim == 1:
        return
    hint = ""
    if labels.ndim == 2 and labels.shape[1] > 1:
        hint = " (one-hot or scores? store labels.argmax(axis=1))"
    elif labels.ndim == 2 and labels.shape[1] == 1:
        hint = " (store labels.reshape(-1))"
    raise RunFormatError(
        f"{where}: labels must be a 1-D array of N class indices (one integer per sample), "
        f"got shape {_shape(labels.shape)}{hint}"
    )


def check_layout(outputs: np.ndarray, n_labels: int, layout: str | None, where: str) -> str:
    """Which layout a 3-D outputs array has, "TNK" or "NTK"; refuse a guess that could be wrong.

    layout None means TNK (time first, the run format) but not said: a shape whose first two
    axes both equal the number of labels (T = N) is then refused as ambiguous, and one whose
    first axis (not its second) matches the labels is refused as batch-first. A given layout
    is checked the same way, with the other layout named when the shape fits it instead.
    """
    if layout is not None and layout not in LAYOUTS:
        raise RunFormatError(f"layout must be TNK or NTK, got {layout!r}")
    a, b, _ = outputs.shape
    shape, n = _shape(outputs.shape), n_labels
    if layout is None and a == b == n:
        raise RunFormatError(
            f"{where}: outputs has shape {shape}, whose first two axes are equal ({a}), so it "
            "could be time-first [T, N, K] or batch-first [N, T, K]; pass --layout TNK or "
            "--layout NTK"
        )
    wanted = layout or "TNK"
    n_axis, other_axis = (b, a) if wanted == "TNK" else (a, b)
    if n_axis != n and other_axis == n:
        looks = "batch-first [N, T, K]" if wanted == "TNK" else "time-first [T, N, K]"
        other = "NTK" if wanted == "TNK" else "TNK"
        raise RunFormatError(
            f"{where}: outputs has shape {shape} for {n} labels: this looks {looks}; "
            f"pass --layout {other}"
        )
    return wanted


class TimeFirst:
    """Outputs as time first [T, N, K] whatever their layout (NTK is transposed here), from
    an array in memory or an npyio.ArrayFile, read a block of samples at a time (block) or a
    few samples of one step (rows), so a file is never read whole."""

    def __init__(self, data: np.ndarray | ArrayFile, layout: str = "TNK"):
        self.data, self.ntk = data, layout == "NTK"
        a, b, K = (int(n) for n in data.shape)
        self.shape = (b, a, K) if self.ntk else (a, b, K)
        self.dtype, self.ndim = data.dtype, 3

    def block(self, lo: int, hi: int) -> np.ndarray:
        """outputs[:, lo:hi] as an array [T, hi - lo, K] of the file's dtype."""
        T, N, K = self.shape
        d = self.data
        if not isinstance(d, ArrayFile):
            return np.asarray(d[lo:hi].swapaxes(0, 1) if self.ntk else d[:, lo:hi])
        if self.ntk:  # [N, T, K]: the block is one contiguous piece
            piece = d.read(lo * T * K, (hi - lo) * T * K).reshape(hi - lo, T, K)
            return np.ascontiguousarray(piece.swapaxes(0, 1))
        out = np.empty((T, hi - lo, K), d.dtype)
        for t in range(T):  # one contiguous piece per step
            d.read((t * N + lo) * K, (hi - lo) * K, out=out[t])
        return out

    def rows(self, t: int, rows: np.ndarray) -> np.ndarray:
        """outputs[t, rows] as an array [len(rows), K]."""
        T, N, K = self.shape
        d = self.data
        if not isinstance(d, ArrayFile):
            return np.asarray(d[rows, t] if self.ntk else d[t, rows])
        out = np.empty((len(rows), K), d.dtype)
        for i, r in enumerate(rows):
            d.read(((int(r) * T + t) if self.ntk else (t * N + int(r))) * K, K, out=out[i])
        return out


def _rows(outputs, t: int, rows: np.ndarray) -> np.ndarray:
    return outputs.rows(t, rows) if isinstance(outputs, TimeFirst) else outputs[t, rows]


def _mean_norms(outputs: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step t, the mean over the sampled rows of ||x_t|| and of ||x_t - x_(t-1)||
    (x_0 = 0), in float64, one step in memory at a time."""
    T = outputs.shape[0]
    values, diffs = np.empty(T), np.empty(T)
    previous = np.zeros((len(rows), outputs.shape[2]))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            x = np.asarray(_rows(outputs, t, rows), dtype=np.float64)
            values[t] = np.linalg.norm(x, axis=1).mean()
            diffs[t] = np.linalg.norm(x - previous, axis=1).mean()
            previous = x
    return values, diffs


def accumulation_evidence(outputs: np.ndarray | TimeFirst) -> str | None:
    """What makes time-first outputs [T, N, K] look accumulated (running sums S_t), or None.

    The rule, on m_t = the mean over samples of ||outputs[t]|| (up to ACCUMULATION_SAMPLES
    samples, evenly spaced) and d_t = the same for the step differences outputs[t] -
    outputs[t-1] (what the per-step outputs would be if the file held sums), h = ceil(T/2):
    they look accumulated when T >= 4 and all of
      - m_t rises from one step to the next at >= 90 % of the steps (a steady growth),
      - m_T >= 2 m_1 (it grows overall),
      - m_T >= 1.3 m_h (it still grows over the second half, where per-step outputs of a
        converted SNN have settled after their warm-up),
      - the differences grow >= 1.5x slower than the values (median of the second half over
        the median of the first half, for d_t and for m_t): the differences look like
        per-step outputs.
    Non-finite values are left to the checks that refuse them.
    """
    T, N = int(outputs.shape[0]), int(outputs.shape[1])
    if T < ACCUMULATION_MIN_STEPS or N == 0 or outputs.shape[2] == 0:
        return None
    rows = np.unique(np.linspace(0, N - 1, min(N, ACCUMULATION_SAMPLES)).astype(np.int64))
    m, d = _mean_norms(outputs, rows)
    if not (np.isfinite(m).all() and np.isfinite(d).all()) or m[-1] <= 0:
        return None
    h = (T + 1) // 2
    rising = float(np.mean(np.diff(m) > 0))
    late = m[-1] / m[h - 1] if m[h - 1] > 0 else np.inf
    value_growth = np.median(m[h - 1 :]) / max(np.median(m[:h]), 1e-300)
    diff_growth = np.median(d[h - 1 :]) / max(np.median(d[:h]), 1e-300)
    total = m[-1] / m[0] if m[0] > 0 else np.inf
    if (
        rising >= ACCUMULATION_RISING_FRACTION
        and total >= ACCUMULATION_TOTAL_GROWTH
        and late >= ACCUMULATION_LATE_GROWTH
        and diff_growth * ACCUMULATION_DIFF_MARGIN <= value_growth
    ):
        grows = f"grows {total:.0f}x" if np.isfinite(total) else "grows from 0"
        return (
            f"their mean norm {grows} from step 1 to {T}, rising at {rising:.0%} of the steps "
            f"({late:.1f}x over the second half), while the step-to-step differences stay "
            "the size of per-step outputs"
        )
    return None


class _StreamingPrepare:
    """store's ``prepare`` for an import: format.prepare_split's checks and conversions, done
    a block of samples at a time on TimeFirst outputs, the stored arrays written piece by
    piece into temporary files beside the destination (``folder``) whose paths it returns;
    the store renames them into place. Files left behind by a failure are in ``temps``.

    Per block, in prepare_split's order: cumulative outputs differenced (with their finite
    check), the dtype conversion (with its overflow check), integers to float64, the check
    of the running sums S_t (format.accumulation_problem), then the reduction to top-k or
    the copy. A file with several problems in different blocks reports the first block's.
    """

    def __init__(self, source: Path, folder: Path, cumulative: bool | None, dtype: str | None):
        self.source, self.folder = source, folder
        self.cumulative, self.dtype = cumulative, dtype
        self.temps: list[Path] = []

    def stored_dtype(self, outputs: TimeFirst) -> np.dtype:
        if self.dtype is not None:
            return np.dtype(self.dtype)
        if self.cumulative or outputs.dtype.kind in "iub":
            return np.dtype(np.float64)
        return outputs.dtype

    def convert(self, z: np.ndarray) -> np.ndarray:
        """One block of outputs as stored (before the reduction), checked."""
        if self.cumulative:
            acc = z.astype(np.float64)
            if not np.isfinite(acc).all():
                raise RunFormatError(f"{self.source}: outputs contain NaN or infinite values")
            z = np.diff(acc, axis=0, prepend=np.zeros_like(acc[:1]))
        if self.dtype is not None:
            with np.errstate(over="ignore"):
                z = z.astype(self.dtype)
            if not np.isfinite(z).all():
                raise RunFormatError(
                    f"{self.source}: outputs overflow {self.dtype} (NaN/inf after conversion)"
                )
        if z.dtype.kind in "iub":
            z = z.astype(np.float64)  # exact for any realistic integer output
        return z

    def writer(self, split: str, role: str, shape, dtype) -> NpyWriter:
        path = temp_name(self.folder / f"{split}.{role}.npy")
        self.temps.append(path)
        return NpyWriter(path, shape, dtype)

    def __call__(self, split: str, arrays: Mapping, meta: dict, label: str) -> dict:
        check_split_inputs(split, arrays, label)
        outputs, labels = arrays["outputs"], arrays.get("labels")
        if labels is None:
            raise RunFormatError(f"{label}: no 'labels' array")
        dtype = self.stored_dtype(outputs)
        if dtype not in OUTPUT_DTYPES:
            raise RunFormatError(f"{label}: outputs dtype {dtype} is not float16/32/64")
        T, K = meta["T_max"], len(meta["classes"])
        where = {role: f"{label}: {role}" for role in ARRAY_SUFFIXES}
        small = {r: np.asarray(a) for r, a in arrays.items() if r != "outputs" and a is not None}
        N = check_split_arrays(where, {"labels": small["labels"]}, T, K)
        check_shape(outputs, (T, N, K), where["outputs"], "outputs")
        check_split_arrays(where, small, T, K)
        stored: dict = {"labels": small["labels"].astype(np.int64)}
        writers = {}
        try:
            if meta["storage"] == "full":
                writers["outputs"] = self.writer(split, "outputs", (T, N, K), dtype)
            else:
                k, kappas = meta["topk"], meta["topk_kappas"]
                writers["topk_values"] = self.writer(split, "topk_values", (T, N, k), np.float64)
                writers["topk_indices"] = self.writer(
                    split, "topk_indices", (T, N, k), index_dtype(K)
                )
                writers["lognorm"] = self.writer(
                    split, "lognorm", (len(kappas) + 1, T, N), np.float64
                )
            block = block_samples(T, K)
            for lo in range(0, N, block):
                hi = min(N, lo + block)
                z = self.convert(outputs.block(lo, hi))
                problem = accumulation_problem(z)
                if problem:
                    raise RunFormatError(
                        f"{where['outputs']}: the accumulated outputs S_t are {problem}"
                    )
                if meta["storage"] == "full":
                    for t in range(T):
                        writers["outputs"].write((t * N + lo) * K, z[t])
                    continue
                S = np.cumsum(np.asarray(z, dtype=np.float64), axis=0)
                values, indices, lognorm = topk_block(S, k, kappas)
                for t in range(T):
                    writers["topk_values"].write((t * N + lo) * k, values[t])
                    writers["topk_indices"].write((t * N + lo) * k, indices[t])
                for row in range(lognorm.shape[0]):
                    for t in range(T):
                        writers["lognorm"].write((row * T + t) * N + lo, lognorm[row, t])
            for role, w in writers.items():
                stored[role] = w.close()
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for role in OPTIONAL_ROLES:  # as prepare_split stores them
            if role in small:
                stored[role] = stored_optional(role, small[role])
        return stored


def import_outputs(
    source: Path | str,
    run_dir: Path | str,
    *,
    split: str = "test",
    cumulative: bool | None = None,
    layout: str | None = None,
    labels_path: Path | str | None = None,
    outputs_key: str = "outputs",
    labels_key: str = "labels",
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
    storage: str = "full",
    topk: int = 5,
    topk_kappas: list[float] | None = None,
    dtype: str | None = None,
    neurons: int | None = None,
    created: dict | None = None,
    overwrite: bool = False,
    read_pt: Callable[[Path], dict[str, np.ndarray] | np.ndarray] | None = None,
    max_bytes: int | None = None,
) -> Run:
    """Import an outputs file (see read_outputs_file) as a split of a new or existing run.

    layout: "TNK" (time first, the run format) or "NTK" (batch first, transposed here); None
    is TNK, with an ambiguous or batch-first-looking shape refused (check_layout).
    cumulative: None detects accumulated outputs and refuses them (accumulation_evidence);
    True: the file holds accumulated outputs S_t; they are differenced (in float64, stored as
    float64 unless dtype says otherwise, so S_t is reconstructed exactly); False: per-step
    outputs, imported as they are without the check.
    outputs_key, labels_key: the names of those arrays in an .npz or a dict .pt file.
    dtype: store outputs as float16/float32/float64 (default: keep the file's float type).
    An existing run gets the split added (its storage settings apply; overwrite=True replaces
    a split of the same name); otherwise a new run is created. read_pt reads .pt files
    (dynconf.engine.tensor_files.read_tensors; the core never imports torch). max_bytes
    bounds the inflated size of the file's arrays (read_outputs_file; default 16 GiB or
    $DYNCONF_MAX_IMPORT_BYTES). A new run's name must pass format.check_run_name.
    The outputs are streamed (see the module docstring): memory stays at a block of samples
    for .npy and .npz files (a compressed .npz's outputs are first inflated into an
    anonymous temporary file beside the destination, so that much disk is needed there).
    """
    start = time.perf_counter()
    source, run_dir = Path(source), Path(run_dir)
    if layout is not None and layout not in LAYOUTS:
        raise RunFormatError(f"layout must be TNK or NTK, got {layout!r}")
    if not os.path.lexists(run_dir):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(run_dir.name)  # before reading a possibly large file
    # A compressed archive's outputs are inflated beside the destination (its filesystem
    # has room for the run), else in the system's temporary folder.
    parent = run_dir.parent if run_dir.parent.is_dir() else None
    arrays = read_outputs_file(
        source,
        labels_path,
        read_pt,
        max_bytes=max_bytes,
        outputs_key=outputs_key,
        labels_key=labels_key,
        stream=True,
        spill_dir=parent,
    )
    prepare = None
    try:
        outputs, labels = arrays["outputs"], arrays["labels"]
        check_labels(labels, str(labels_path or source))
        if outputs.ndim != 3:
            raise RunFormatError(
                f"{source}: outputs must be [T, N, K] (time first; --layout NTK for batch "
                f"first), got shape {_shape(outputs.shape)}"
            )
        if outputs.dtype.kind not in "fiu":
            raise RunFormatError(f"{source}: outputs must be numbers, got {outputs.dtype}")
        outputs = TimeFirst(outputs, check_layout(outputs, len(labels), layout, str(source)))
        if cumulative is None:
            seen = accumulation_evidence(outputs)
            if seen:
                raise RunFormatError(
                    f"{source}: outputs look accumulated (running sums S_t, not per-step "
                    f"outputs): {seen}; pass --cumulative if they are sums, or --per-step if "
                    "they are per-step outputs"
                )
        if dtype is not None and np.dtype(dtype) not in OUTPUT_DTYPES:
            raise RunFormatError(f"dtype must be float16, float32 or float64, got {dtype}")
        arrays["outputs"] = outputs
        with run_lock(run_dir):
            if run_dir.exists() and is_run_dir(run_dir):
                run = load_run(run_dir, check_values=False)
                for key, given, have in (
                    ("dataset", dataset, run.meta["dataset"]),
                    ("model", model, run.meta["model"]),
                ):
                    if given is not None and given != have:
                        raise RunFormatError(f"{run_dir}: run has {key} '{have}', not '{given}'")
                if classes is not None and list(classes) != run.classes:
                    raise RunFormatError(f"{run_dir}: class names differ from the run's")
                if split in run.meta["splits"] and not overwrite:
                    raise RunFormatError(
                        f"{run_dir}: split '{split}' already exists; pass --overwrite to "
                        "replace it, or choose another --split"
                    )
                prepare = _StreamingPrepare(source, run_dir, cumulative, dtype)
                return add_split(run_dir, split, **arrays, overwrite=overwrite, prepare=prepare)
            if created is None:
                created = make_created(wall_time_s=None)
            prepare = _StreamingPrepare(source, run_dir.parent, cumulative, dtype)
            return save_run(
                run_dir,
                {split: arrays},
                dataset=dataset or "unknown",
                model=model or "unknown",
                classes=classes,
                storage=storage,
                topk=topk,
                topk_kappas=topk_kappas,
                neurons=neurons,
                created={**created, "wall_time_s": round(time.perf_counter() - start, 3)},
                extra_meta={"notes": f"imported from {source.name}"},
                prepare=prepare,
            )
    finally:
        if isinstance(arrays["outputs"], TimeFirst):
            arrays["outputs"] = arrays["outputs"].data
        if isinstance(arrays["outputs"], ArrayFile):
            arrays["outputs"].close()
        for path in prepare.temps if prepare is not None else ():
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # renamed into the run unless the write failed

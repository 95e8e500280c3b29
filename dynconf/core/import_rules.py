"""The rules that keep an import from giving wrong numbers without an error.

Two mistakes read a file wrongly yet silently, so they are refused unless the caller says what
the file holds (messages name the CLI flags; the app translates them to its choices):

- batch-first outputs [N, T, K] (SEENN's layout) read as [T, N, K] (check_layout);
- accumulated outputs S_t read as per-step outputs z_t (accumulation_evidence).

check_labels names the usual wrong labels (one-hot scores, a column) in words.
"""

from __future__ import annotations

import numpy as np

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


def _rows(outputs, t: int, rows: np.ndarray) -> np.ndarray:
    """outputs[t, rows] of an array, or of an import_stream.TimeFirst (its rows method)."""
    return outputs.rows(t, rows) if hasattr(outputs, "rows") else outputs[t, rows]


def accumulation_evidence(outputs) -> str | None:
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

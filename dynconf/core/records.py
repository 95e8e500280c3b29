"""The threshold rule's records, compacted so that a browser can evaluate a slider position itself.

A threshold slider only takes the values of a grid, C_g = g / steps for g = 0..steps. For
those thresholds the exit step of a sample needs far less than its confidence curve: its
records (the steps where its running maximum confidence rises, see policies/threshold.py)
reduced to the ones where the number of grid thresholds below the record's value rises.
Call that number the record's *cell*: cell = #{g : C_g < value}, so the record passes the
strict rule at C_g (value > C_g) exactly when g < cell. Cells never decrease along a sample's
records, so the first record passing at C_g is the first with cell > g, and that one is
always where the cell rises: the records kept here. For each sample the exit step at C_g is
the step of its first kept record with cell > g, or T if there is none -- the library's rule
at that same float, with its tie rule (a value equal to C_g has cell g and does not pass).

Besides the kept records (cell, step, prediction at that step), the browser gets what turns
exit steps into the explorer's numbers: labels, the fixed-t correct counts (iso-accuracy T),
each sample's runs of correct steps (the capped curve) and, when the split recorded spikes,
the mean spikes at exit for every grid threshold, computed here with the library's own
formula so that the numbers match ``dynconf.metrics.evaluate`` to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.policies.threshold import threshold_cache
from dynconf.core.results import baseline_counts, cumulative_spikes

GRID_STEPS = 200  # the slider's resolution, 0.005 (dynconf/app/state.py THRESHOLD_STEP)


def grid(steps: int = GRID_STEPS) -> np.ndarray:
    """The slider's thresholds C_g = g / steps (computed the same way in the browser)."""
    return np.arange(steps + 1, dtype=np.float64) / steps


def grid_index(threshold: float, steps: int = GRID_STEPS) -> int | None:
    """g when ``threshold`` is exactly C_g (the same float), else None."""
    g = round(float(threshold) * steps)
    return g if 0 <= g <= steps and g / steps == float(threshold) else None


def _smallest_uint(top: int) -> type:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


@dataclass(eq=False)
class Records:
    """Everything the browser needs to evaluate C_g on one decoded split.

    Per kept record, sample-major (sample i owns ``offsets[i]:offsets[i + 1]``): ``cell``,
    ``step`` (1-based) and ``pred`` (the answer at that step). Per sample: ``final_pred``
    (the answer at T, for samples that never exit early) and ``labels``. ``run_offsets``,
    ``run_start`` and ``run_stop`` are each sample's runs of correct steps, steps
    run_start..run_stop - 1 (1-based). ``spikes_at_exit[g]`` is the mean cumulative spikes
    at the exit step for C_g and ``spikes_full`` the mean over the whole run (None without
    spikes).
    """

    N: int
    T: int
    K: int
    steps: int
    offsets: np.ndarray
    cell: np.ndarray
    step: np.ndarray
    pred: np.ndarray
    final_pred: np.ndarray
    labels: np.ndarray
    baseline_counts: np.ndarray
    run_offsets: np.ndarray
    run_start: np.ndarray
    run_stop: np.ndarray
    spikes_at_exit: np.ndarray | None = None
    spikes_full: float | None = None

    def exit_steps(self, g: int) -> np.ndarray:
        """Exit steps at C_g, from the kept records alone (the browser's computation)."""
        counts = np.diff(self.offsets)
        sample = np.repeat(np.arange(self.N), counts)
        passing = np.flatnonzero(self.cell > g)
        steps = np.full(self.N, self.T, np.int32)
        if passing.size == 0:
            return steps
        # The first passing record of each sample (records are sample-major).
        first = passing[np.r_[True, sample[passing][1:] != sample[passing][:-1]]]
        steps[sample[first]] = self.step[first]
        return steps

    def nbytes(self) -> int:
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))


def build_records(dec: Decoded, spikes=None, steps: int = GRID_STEPS) -> Records:
    """The kept records of ``dec`` for the grid g / steps (spikes [T, N] optional)."""
    cache = threshold_cache(dec)
    N, T = dec.N, dec.T
    K = int(max(int(dec.prediction.max(initial=0)), int(dec.labels.max(initial=0)))) + 1
    thresholds = grid(steps)
    cell = np.searchsorted(thresholds, cache.rec_values, side="left")  # #{g : C_g < value}
    counts = cache.ends - cache.starts
    sample = np.repeat(np.arange(N), counts)
    previous = np.empty_like(cell)
    previous[1:] = cell[:-1]
    previous[cache.starts[counts > 0]] = 0  # a sample's first record: kept if it passes any C_g
    keep = cell > previous
    kept_sample = sample[keep]
    kept_steps = cache.rec_steps[keep]
    offsets = np.zeros(N + 1, np.int64)
    np.cumsum(np.bincount(kept_sample, minlength=N), out=offsets[1:])
    pred = dec.prediction[kept_steps - 1, kept_sample]

    # Runs of correct steps per sample: +1 where a run starts, -1 one past where it stops.
    padded = np.zeros((N, T + 2), np.int8)
    padded[:, 1:-1] = dec.correct.T
    edges = np.diff(padded, axis=1)  # [N, T + 1]; column j is the edge before step j + 1
    start_i, start_j = np.nonzero(edges == 1)
    _, stop_j = np.nonzero(edges == -1)  # same order: one stop per start, per sample
    run_offsets = np.zeros(N + 1, np.int64)
    np.cumsum(np.bincount(start_i, minlength=N), out=run_offsets[1:])

    step_t = _smallest_uint(T + 1)
    rec = Records(
        N=N,
        T=T,
        K=K,
        steps=steps,
        offsets=offsets.astype(np.uint32),
        cell=cell[keep].astype(_smallest_uint(steps + 1)),
        step=kept_steps.astype(step_t),
        pred=pred.astype(_smallest_uint(K)),
        final_pred=dec.prediction[T - 1].astype(_smallest_uint(K)),
        labels=np.asarray(dec.labels).astype(_smallest_uint(K)),
        baseline_counts=baseline_counts(dec).astype(np.int64),
        run_offsets=run_offsets.astype(np.uint32),
        run_start=(start_j + 1).astype(step_t),
        run_stop=(stop_j + 1).astype(step_t),
    )
    if spikes is not None:
        rec.spikes_at_exit, rec.spikes_full = _spikes_by_grid(dec, rec, spikes)
    return rec


def _spikes_by_grid(dec: Decoded, rec: Records, spikes) -> tuple[np.ndarray, float]:
    """Mean spikes at exit for every C_g, as results.summarize computes them.

    The exit steps are walked up the grid: at g a kept record with cell g stops passing, so
    its sample's exit moves to its next kept record (or T).
    """
    N, T = rec.N, rec.T
    cum = cumulative_spikes(dec, spikes)
    flat = cum.reshape(-1)
    columns = np.arange(N)
    counts = np.diff(rec.offsets.astype(np.int64))
    sample = np.repeat(columns, counts)
    step = rec.step.astype(np.int64)
    nxt = np.empty_like(step)
    nxt[:-1] = step[1:]
    last = rec.offsets[1:].astype(np.int64)[counts > 0] - 1
    nxt[last] = T
    exits = np.full(N, T, np.int64)
    firsts = rec.offsets[:-1].astype(np.int64)[counts > 0]
    exits[sample[firsts]] = step[firsts]  # g = 0: every kept record passes
    order = np.argsort(rec.cell, kind="stable")
    bounds = np.searchsorted(rec.cell[order], np.arange(rec.steps + 2), side="left")
    out = np.empty(rec.steps + 1, np.float64)
    for g in range(rec.steps + 1):
        moved = order[bounds[g] : bounds[g + 1]]  # records with cell == g stop passing at g
        # Within a sample cells rise strictly, so a sample moves at most once per g.
        exits[sample[moved]] = nxt[moved]
        # results.at_steps then .mean(): the library's exact arithmetic.
        out[g] = float(flat[(exits - 1) * N + columns].mean())
    return out, float(cum[-1].mean())

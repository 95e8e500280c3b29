"""dynconf.core.records: the kept records give the library's exit steps at every grid C."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.decoders.decode import Decoded
from dynconf.core.policies.threshold import threshold_cache
from dynconf.core.records import GRID_STEPS, build_records, grid, grid_index
from tests.helpers import build_synthetic_run


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    run = build_synthetic_run(tmp_path_factory.mktemp("records") / "synth", n_test=500, T=24)
    return run.split("test")


def tied(dec: Decoded) -> Decoded:
    """Confidences on multiples of 1/40: each equals a grid threshold, and repeats."""
    conf = np.round(dec.confidence * 40) / 40
    return Decoded(dec.decoder, dec.kappa, conf, dec.prediction, dec.correct, dec.labels)


def decoders(split):
    out = {name: decode(split, name) for name in ("paper", "margin", "step")}
    out["tied"] = tied(out["paper"])
    return out


def test_grid_is_the_sliders_floats():
    g = grid()
    assert len(g) == GRID_STEPS + 1 and g[0] == 0.0 and g[-1] == 1.0
    assert all(grid_index(v) == i for i, v in enumerate(g))
    assert grid_index(0.5251) is None and grid_index(np.nextafter(0.5, 1.0)) is None
    assert grid_index(0.53) == 106  # what a browser's 0.53 parses to


def test_kept_records_give_the_librarys_exits_at_every_grid_threshold(split):
    for name, dec in decoders(split).items():
        rec = build_records(dec, split.spikes)
        cache = threshold_cache(dec)
        assert rec.cell.size <= cache.rec_values.size
        assert rec.offsets[-1] == rec.cell.size and rec.offsets.size == dec.N + 1
        for g in range(GRID_STEPS + 1):
            res = metrics.evaluate(dec, g / GRID_STEPS, spikes=split.spikes, neurons=2000)
            np.testing.assert_array_equal(rec.exit_steps(g), res.exit_steps, err_msg=f"{name} {g}")
            # The library's own arithmetic for the spikes: equal to the bit.
            assert rec.spikes_at_exit[g] == res.spikes_per_image_at_exit, (name, g)
        assert rec.spikes_full == res.spikes_per_image_full


def test_cells_rise_within_each_sample_and_runs_cover_the_correct_steps(split):
    dec = decode(split, "paper")
    rec = build_records(dec, None)
    assert rec.spikes_at_exit is None and rec.spikes_full is None
    for i in range(0, dec.N, 37):
        cells = rec.cell[rec.offsets[i] : rec.offsets[i + 1]].astype(int)
        assert np.all(np.diff(cells) > 0) and (cells.size == 0 or cells[0] > 0)
        steps = rec.step[rec.offsets[i] : rec.offsets[i + 1]].astype(int)
        np.testing.assert_array_equal(
            rec.pred[rec.offsets[i] : rec.offsets[i + 1]], dec.prediction[steps - 1, i]
        )
        covered = np.zeros(dec.T + 2, bool)
        for k in range(rec.run_offsets[i], rec.run_offsets[i + 1]):
            covered[rec.run_start[k] : rec.run_stop[k]] = True
        np.testing.assert_array_equal(covered[1 : dec.T + 1], dec.correct[:, i])
    np.testing.assert_array_equal(rec.baseline_counts, dec.correct.sum(axis=1))
    assert rec.cell.dtype == np.uint8 and rec.step.dtype == np.uint8  # 3 bytes a record here

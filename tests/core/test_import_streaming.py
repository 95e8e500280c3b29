"""The streaming import (ImageNet size on one machine): `import` reads the outputs a
block of samples at a time and writes the stored arrays piece by piece, so its memory is a
block's, not T x N x K.

What must hold: the streamed run equals the run the in-memory path (format.prepare_split)
stores, array for array, whatever the file kind (.npy time first or batch first, .npz
compressed or stored) and the block size; the topk run's metrics equal a full-storage
import's; the file is never read whole; a failure halfway (NaN in the last block, a damaged
archive, a file that shrinks) leaves no partial run and no temporary file. Peak memory and
time at ImageNet size are measured in benchmarks/bench_import.py, not here.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import array_checks as format_module
from dynconf.core import import_stream, importing, metrics, npyio, npz, topk
from dynconf.core.atomic import TMP_PREFIX
from dynconf.core.decoders import decode
from dynconf.core.format import prepare_split
from dynconf.core.importing import import_outputs
from dynconf.core.store import NpyWriter, load_run, save_run
from dynconf.errors import RunFormatError
from tests.helpers import synthetic_split

T, N, K = 12, 150, 40


@pytest.fixture
def split() -> dict[str, np.ndarray]:
    return synthetic_split(N, T, K, seed=3, neurons=100)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 samples (so a split is many blocks, the last one short), and every .npz
    outputs member streamed, however small."""
    monkeypatch.setattr(topk, "CHUNK_ELEMENTS", 7 * T * K)
    monkeypatch.setattr(npz, "STREAM_MIN_BYTES", 0)
    return 7


def _stored(run, split="test") -> dict[str, np.ndarray]:
    sp = run.split(split)
    roles = ("labels", "outputs", "topk_values", "topk_indices", "lognorm", "spikes", "ids")
    return {r: np.asarray(getattr(sp, r)) for r in roles if getattr(sp, r) is not None}


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for role in a:
        assert a[role].dtype == b[role].dtype, role
        assert np.array_equal(a[role], b[role]), role


def _leftovers(*folders: Path) -> list[str]:
    return [p.name for f in folders for p in f.iterdir() if p.name.startswith(TMP_PREFIX)]


# ------------------------------------------------------------------- same run as in memory


@pytest.mark.parametrize("storage", ["full", "topk"])
@pytest.mark.parametrize("kind", ["npy", "npy-ntk", "npz", "npz-stored"])
def test_streamed_import_stores_what_the_in_memory_path_stores(
    tmp_path, split, small_blocks, storage, kind
):
    reference = save_run(tmp_path / "ref", {"test": split}, storage=storage, topk=4)
    outputs = split["outputs"]
    if kind.startswith("npy"):
        source, labels = tmp_path / "outputs.npy", tmp_path / "labels.npy"
        np.save(source, np.ascontiguousarray(outputs.swapaxes(0, 1)) if "ntk" in kind else outputs)
        np.save(labels, split["labels"])
        given = {"labels_path": labels, "layout": "NTK" if "ntk" in kind else None}
    else:
        source = tmp_path / "outputs.npz"
        (np.savez if kind == "npz-stored" else np.savez_compressed)(source, **split)
        given = {}
    run = import_outputs(source, tmp_path / "run", storage=storage, topk=4, **given)
    expected = _stored(reference)
    if kind.startswith("npy"):  # a bare .npy carries no spikes or ids
        expected = {r: a for r, a in expected.items() if r not in ("spikes", "ids")}
    _assert_same(_stored(run), expected)
    assert _leftovers(tmp_path, tmp_path / "run") == []


def test_block_size_does_not_change_a_number(tmp_path, split, monkeypatch):
    np.savez(tmp_path / "o.npz", **split)
    runs = []
    for samples in (1, 13, N + 5):  # one sample per block, uneven blocks, one block
        monkeypatch.setattr(topk, "CHUNK_ELEMENTS", samples * T * K)
        runs.append(import_outputs(tmp_path / "o.npz", tmp_path / f"r{samples}", storage="topk"))
    for run in runs[1:]:
        _assert_same(_stored(run), _stored(runs[0]))


def test_topk_arrays_match_a_slow_reference(tmp_path, split, small_blocks):
    """Per sample and step, in plain Python: sort S_t by (-value, class), keep k, and
    log sum exp((S - max) / s) with math.fsum."""
    np.savez(tmp_path / "o.npz", **split)
    run = import_outputs(tmp_path / "o.npz", tmp_path / "run", storage="topk", topk=3)
    sp, k, kappas = run.split("test"), 3, run.meta["topk_kappas"]
    S = np.cumsum(split["outputs"].astype(np.float64), axis=0)
    for n in (0, 6, 7, 77, N - 1):  # both sides of a block boundary
        for t in range(T):
            row = [float(v) for v in S[t, n]]
            ranked = sorted(range(K), key=lambda c: (-row[c], c))[:k]
            assert list(sp.topk_indices[t, n]) == ranked
            assert list(sp.topk_values[t, n]) == [row[c] for c in ranked]
            for r, scale in enumerate([*kappas, t + 1]):
                ref = math.log(math.fsum(math.exp((v - row[ranked[0]]) / scale) for v in row))
                assert sp.lognorm[r, t, n] == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_topk_import_gives_the_metrics_of_a_full_import(tmp_path, small_blocks):
    arrays = synthetic_split(400, 16, 100, seed=8, neurons=100)
    np.save(tmp_path / "o.npy", arrays["outputs"])
    np.save(tmp_path / "y.npy", arrays["labels"])
    full, top = (
        import_outputs(tmp_path / "o.npy", tmp_path / s, labels_path=tmp_path / "y.npy", storage=s)
        for s in ("full", "topk")
    )
    for decoder in ("paper", "mean", "margin"):
        a, b = decode(full.split("test"), decoder), decode(top.split("test"), decoder)
        assert np.array_equal(a.prediction, b.prediction)
        np.testing.assert_allclose(b.confidence, a.confidence, rtol=0, atol=1e-12)
        assert np.ptp(a.confidence) > 0.5  # confidences spread out: thresholds matter
        exits = 0.0
        for C in np.linspace(0.05, 0.95, 19):
            ra, rb = metrics.evaluate(a, C), metrics.evaluate(b, C)
            assert (ra.accuracy, ra.mean_latency) == (rb.accuracy, rb.mean_latency)
            exits = max(exits, 16 - ra.mean_latency)
        assert exits > 1  # some thresholds exit early: the comparison is not vacuous


def test_cumulative_and_dtype_are_applied_block_by_block(tmp_path, split, small_blocks):
    sums = np.cumsum(split["outputs"].astype(np.float64), axis=0)
    np.savez_compressed(tmp_path / "s.npz", outputs=sums, labels=split["labels"])
    run = import_outputs(tmp_path / "s.npz", tmp_path / "run", cumulative=True, dtype="float32")
    expected = np.diff(sums, axis=0, prepend=np.zeros_like(sums[:1])).astype(np.float32)
    out = run.split("test").outputs
    assert out.dtype == np.float32 and np.array_equal(out, expected)
    ints = np.arange(T * N * K, dtype=np.int32).reshape(T, N, K) % 7
    np.savez(tmp_path / "i.npz", outputs=ints, labels=split["labels"])
    run = import_outputs(tmp_path / "i.npz", tmp_path / "ints", cumulative=False)
    assert run.split("test").outputs.dtype == np.float64
    assert np.array_equal(run.split("test").outputs, ints)


def test_optional_arrays_are_stored_as_prepare_split_stores_them(tmp_path, split, small_blocks):
    split = {**split, "spikes": split["spikes"].astype(np.int32), "ids": split["ids"][::-1]}
    np.savez(tmp_path / "o.npz", **split)
    run = import_outputs(tmp_path / "o.npz", tmp_path / "run")
    meta = {**run.meta, "storage": "full"}
    expected = prepare_split("test", split, meta, "split 'test'")
    _assert_same({r: a for r, a in _stored(run).items()}, expected)
    assert run.split("test").spikes.dtype == np.float64


@pytest.mark.parametrize("compressed", [False, True])
def test_large_side_arrays_are_streamed_and_stored_as_in_memory(
    tmp_path, split, small_blocks, monkeypatch, compressed
):
    split = {**split, "spikes": split["spikes"].astype(np.int32), "ids": split["ids"][::-1],
             "synops": (split["spikes"] * 7).astype(np.int64)}  # fmt: skip
    (np.savez_compressed if compressed else np.savez)(tmp_path / "o.npz", **split)
    streamed, member = [], npz._member_array

    def spy(fh, zf, info, where, spill_dir):
        array = member(fh, zf, info, where, spill_dir)
        streamed.append(info.filename)
        return array

    monkeypatch.setattr(npz, "_member_array", spy)
    monkeypatch.setattr(format_module, "CHUNK_ELEMENTS", 37)  # many pieces, the last short
    monkeypatch.setattr(import_stream, "CHUNK_ELEMENTS", 37)
    run = import_outputs(tmp_path / "o.npz", tmp_path / "run")
    assert sorted(streamed) == ["ids.npy", "outputs.npy", "spikes.npy", "synops.npy"]
    expected = prepare_split("test", split, {**run.meta, "storage": "full"}, "split 'test'")
    _assert_same(_stored(run) | {"synops": np.asarray(run.split("test").synops)}, expected)


@pytest.mark.parametrize(
    "role, value, message",
    [("spikes", np.nan, "spikes contain NaN or infinite values"),
     ("synops", -1.0, "synops must be >= 0 \\(they are counts\\)")],
)  # fmt: skip
def test_a_bad_value_in_a_streamed_side_array_is_refused_and_leaves_nothing(
    tmp_path, split, small_blocks, role, value, message
):
    split = {**split, role: split["spikes"].astype(np.float64)}
    split[role][-1, -1] = value  # in the last piece
    np.savez(tmp_path / "o.npz", **split)
    with pytest.raises(RunFormatError, match=f"split 'test': {role}: {message}"):
        import_outputs(tmp_path / "o.npz", tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "o.npz"]


# ------------------------------------------------------------------- never read whole


def test_the_outputs_file_is_read_in_pieces_and_never_mapped(tmp_path, split, monkeypatch):
    source = tmp_path / "o.npy"
    np.save(source, split["outputs"])
    np.save(tmp_path / "y.npy", split["labels"])
    monkeypatch.setattr(topk, "CHUNK_ELEMENTS", 10 * T * K)
    pieces = []
    read, memmap, inode = npyio.ArrayFile.read, np.memmap, source.stat().st_ino

    def counting(self, start, count, out=None):
        if self.where == str(source):  # (the labels file is read whole, it is small)
            pieces.append(count)
        return read(self, start, count, out)

    def no_map(f, *args, **kwargs):  # the run written at the end is mapped, as always
        assert os.fstat(f.fileno()).st_ino != inode, "the outputs file was memory-mapped"
        return memmap(f, *args, **kwargs)

    monkeypatch.setattr(npyio.ArrayFile, "read", counting)
    monkeypatch.setattr(np, "memmap", no_map)
    import_outputs(source, tmp_path / "run", labels_path=tmp_path / "y.npy")
    assert max(pieces) <= 10 * K  # one step of one block at a time
    assert sum(p for p in pieces if p > K) == T * N * K  # the block reads cover it once


def test_compressed_outputs_are_inflated_into_an_anonymous_file(tmp_path, split, small_blocks):
    dest = tmp_path / "runs"
    dest.mkdir()
    np.savez_compressed(tmp_path / "o.npz", **split)
    seen = []
    member = npz._member_array

    def spy(*args):
        array = member(*args)
        seen.append(array)
        return array

    npz._member_array = spy
    try:
        import_outputs(tmp_path / "o.npz", dest / "run")
    finally:
        npz._member_array = member
    assert sorted(a.where.rsplit("[", 1)[1] for a in seen) == ["ids]", "outputs]", "spikes]"]
    for array in seen:  # the inflated copies, closed after use
        assert array.offset == 0 and array.file.closed
    assert sorted(p.name for p in dest.iterdir()) == [".run.lock", "run"]


def test_npy_writer_writes_what_np_save_writes(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 5, 4))
    w = NpyWriter(tmp_path / "w.npy", data.shape, np.float64)
    for t in (2, 0, 1):  # in any order
        w.write(t * 20, data[t])
    w.close()
    np.save(tmp_path / "s.npy", data)
    assert (tmp_path / "w.npy").read_bytes() == (tmp_path / "s.npy").read_bytes()


# ------------------------------------------------------------------- failures leave nothing


def test_nan_in_the_last_block_refuses_with_todays_message_and_leaves_nothing(
    tmp_path, split, small_blocks
):
    split["outputs"][-1, -1, 0] = np.nan
    np.savez(tmp_path / "o.npz", **split)
    with pytest.raises(RunFormatError) as err:
        import_outputs(tmp_path / "o.npz", tmp_path / "run", storage="topk")
    assert str(err.value) == (
        "split 'test': outputs: the accumulated outputs S_t are not finite (NaN or infinite "
        "values, or sums that overflow)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "o.npz"]


def test_failed_replacement_keeps_the_old_split(tmp_path, split, small_blocks):
    np.savez(tmp_path / "good.npz", **split)
    run = import_outputs(tmp_path / "good.npz", tmp_path / "run", storage="topk")
    before = _stored(run)
    bad = {**split, "outputs": split["outputs"].astype(np.float32) * 1e5}  # > float16's max
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(RunFormatError, match="overflow float16"):
        import_outputs(tmp_path / "bad.npz", tmp_path / "run", overwrite=True, dtype="float16")
    _assert_same(_stored(load_run(tmp_path / "run")), before)
    assert _leftovers(tmp_path, tmp_path / "run") == []
    run = import_outputs(tmp_path / "good.npz", tmp_path / "run", split="cal")
    assert run.meta["splits"] == {"test": N, "cal": N} and run.storage == "topk"
    _assert_same(_stored(run, "cal"), before)


def test_a_damaged_stored_member_is_refused_by_its_crc(tmp_path, split, small_blocks):
    np.savez(tmp_path / "o.npz", **split)
    with zipfile.ZipFile(tmp_path / "o.npz") as zf:
        info = zf.getinfo("outputs.npy")
    data = bytearray((tmp_path / "o.npz").read_bytes())
    data[info.header_offset + info.compress_size // 2] ^= 0x40  # inside the array data
    (tmp_path / "o.npz").write_bytes(bytes(data))
    with pytest.raises(RunFormatError, match=r"o\.npz\[outputs\]: damaged .npz archive"):
        import_outputs(tmp_path / "o.npz", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_file_that_shrinks_while_imported_is_an_error_not_a_crash(
    tmp_path, split, small_blocks, monkeypatch
):
    np.save(tmp_path / "o.npy", split["outputs"])
    np.save(tmp_path / "y.npy", split["labels"])
    evidence = importing.accumulation_evidence

    def shrink_then_check(outputs):
        with open(tmp_path / "o.npy", "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        return evidence(outputs)

    monkeypatch.setattr(importing, "accumulation_evidence", shrink_then_check)
    with pytest.raises(RunFormatError, match=r"o\.npy: truncated while reading"):
        import_outputs(tmp_path / "o.npy", tmp_path / "run", labels_path=tmp_path / "y.npy")
    assert not (tmp_path / "run").exists() and _leftovers(tmp_path) == []

"""Imported files that try to choose our memory or kill the importer.

- A small .npz whose outputs are tiny but whose side array (spikes, synops, ids, labels)
  inflates to gigabytes is refused from that member's header, at once and with little
  memory, whatever the order of the members (peak memory measured in a child process).
- A separate labels file larger than the outputs' samples allow is refused from its header.
- A Fortran-order outputs file is refused with the one-line conversion (it used to be
  memory-mapped, so a file truncated during the import killed the importer with SIGBUS).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from dynconf.core.importing import import_outputs
from dynconf.core.npz import member_bound
from dynconf.errors import RunFormatError
from tests.helpers import synthetic_split

REPO = Path(__file__).resolve().parents[2]
T, N, K = 8, 20, 4
BOMB_BYTES = 3 << 30  # the side array's inflated size: 3 GiB of float64


def _member(name: str, raw: bytes | None = None, deflated=None) -> tuple:
    """(name, deflated bytes, crc, inflated size) of one archive member."""
    if raw is not None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return name, c.compress(raw) + c.flush(), zlib.crc32(raw), len(raw)
    return (name, *deflated)


def _write_zip(path: Path, members) -> None:
    """A zip archive of deflated members, written by hand (no data descriptors)."""
    local, central = bytearray(), bytearray()
    for name, data, crc, size in members:
        offset, encoded = len(local), name.encode()
        fields = (20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + data
        central += struct.pack("<IH", 0x02014B50, 20) + struct.pack("<HHHHHIIIHH", *fields)
        central += struct.pack("<HHHII", 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                      len(central), len(local), 0)  # fmt: skip
    path.write_bytes(bytes(local) + bytes(central) + end)


def _deflated_zeros_npy(shape, dtype) -> tuple[bytes, int, int]:
    """A .npy member of zeros, deflated without ever holding it: the deflate stream of one
    chunk of zeros, ended by a full flush (no reference reaches back past it), repeated."""
    header_file = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header_file, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    header = header_file.getvalue()
    total = int(np.prod(shape)) * np.dtype(dtype).itemsize
    chunk = bytes(64 << 20)
    count, rest = divmod(total, len(chunk))

    def flushed(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # the final (empty) block
    crc = zlib.crc32(header)
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(chunk[:rest], crc)
    data = flushed(header) + flushed(chunk) * count + flushed(chunk[:rest]) + tail
    return data, crc, len(header) + total


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture(scope="module")
def side_bomb(tmp_path_factory) -> dict[str, Path]:
    """~3 MB archives whose outputs are 8 x 20 x 4 and one side array a deflated 3 GiB of
    float64, the bomb first or last among the members."""
    folder = tmp_path_factory.mktemp("side_bomb")
    arrays = synthetic_split(N, T, K, seed=0, neurons=10, dtype=np.float32)
    small = [_member("outputs.npy", _npy_bytes(arrays["outputs"])),
             _member("labels.npy", _npy_bytes(arrays["labels"]))]  # fmt: skip
    zeros = _deflated_zeros_npy((BOMB_BYTES // 8 // N, N), np.float64)  # [huge T, N]
    paths = {}
    for role in ("spikes", "synops"):
        paths[role] = folder / f"{role}.npz"
        _write_zip(paths[role], [*small, _member(f"{role}.npy", deflated=zeros)])
    paths["first"] = folder / "first.npz"
    _write_zip(paths["first"], [_member("spikes.npy", deflated=zeros), *small])
    flat = _deflated_zeros_npy((BOMB_BYTES // 8,), np.int64)
    paths["ids"] = folder / "ids.npz"
    _write_zip(paths["ids"], [*small, _member("ids.npy", deflated=flat)])
    paths["labels"] = folder / "labels.npz"
    _write_zip(paths["labels"], [small[0], _member("labels.npy", deflated=flat)])
    for path in paths.values():
        assert path.stat().st_size < 3_500_000
    return paths


# Runs the import command in a child and prints the child's exit code and peak RSS (MiB).
MEASURED = """
import resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "dynconf", "import", *sys.argv[1:]],
                      capture_output=True, text=True, timeout=120)
print(proc.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(proc.stderr.strip())
"""


def _import_measured(*argv: str) -> tuple[int, int, str]:
    proc = subprocess.run([sys.executable, "-c", MEASURED, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    code, peak, err = proc.stdout.split("\n", 2)
    return int(code), int(peak), err.strip()


@pytest.mark.parametrize("which", ["spikes", "synops", "ids", "labels", "first"])
def test_a_side_array_bomb_is_refused_from_its_header_with_little_memory(
    tmp_path, side_bomb, which
):
    code, peak_mib, err = _import_measured(str(side_bomb[which]), "--out", str(tmp_path / "r"))
    role = "spikes" if which == "first" else which
    assert code == 2 and err.count("\n") == 0, err
    assert f"[{role}]" in err and "refused before reading it" in err, err
    assert peak_mib < 400, f"peak RSS {peak_mib} MiB"
    assert not (tmp_path / "r").exists()


def test_side_arrays_that_fit_are_still_imported(tmp_path):
    arrays = synthetic_split(N, T, K, seed=1, neurons=10, dtype=np.float32)
    arrays["synops"] = (arrays["spikes"] * 3).astype(np.int64)
    np.savez_compressed(tmp_path / "o.npz", **arrays)
    split = import_outputs(tmp_path / "o.npz", tmp_path / "r").split("test")
    assert np.array_equal(split.spikes, arrays["spikes"])
    assert np.array_equal(split.synops, arrays["synops"])
    assert np.array_equal(split.ids, arrays["ids"])
    ntk = {**arrays, "outputs": arrays["outputs"].transpose(1, 0, 2).copy()}
    np.savez(tmp_path / "ntk.npz", **ntk)  # batch first: spikes stay [T, N]
    split = import_outputs(tmp_path / "ntk.npz", tmp_path / "r2", layout="NTK").split("test")
    assert np.array_equal(split.outputs, arrays["outputs"])


@pytest.mark.parametrize(
    "key, shape, ok",
    [("spikes", (T, N), True), ("spikes", (N, T), True), ("spikes", (T, N + 1), False),
     ("spikes", (T * N,), False), ("ids", (N,), True), ("ids", (T,), True),
     ("ids", (N * T,), False), ("labels", (N, K), True), ("labels", (N * K + 1,), False),
     ("synops", (10**9, N), False)],
)  # fmt: skip
def test_member_bound_allows_exactly_the_shapes_the_outputs_imply(key, shape, ok):
    bound = member_bound(Path("f.npz"), {"outputs": (T, N, K), key: shape}, "outputs", "labels")
    assert (bound(key, shape) is None) is ok


def test_a_labels_file_larger_than_the_samples_is_refused_from_its_header(tmp_path):
    arrays = synthetic_split(N, T, K, seed=2, neurons=10, dtype=np.float32)
    np.save(tmp_path / "o.npy", arrays["outputs"])
    np.save(tmp_path / "y.npy", np.zeros(N * K + 1, np.int64))
    with pytest.raises(RunFormatError, match=r"y\.npy: labels of shape .*refused before"):
        import_outputs(tmp_path / "o.npy", tmp_path / "r", labels_path=tmp_path / "y.npy")
    np.savez(tmp_path / "y.npz", labels=np.zeros(N * K + 1, np.int64), other=np.zeros(3))
    with pytest.raises(RunFormatError, match=r"y\.npz: labels of shape .*refused before"):
        import_outputs(tmp_path / "o.npy", tmp_path / "r", labels_path=tmp_path / "y.npz")
    np.save(tmp_path / "y.npy", arrays["labels"])
    assert import_outputs(tmp_path / "o.npy", tmp_path / "r", labels_path=tmp_path / "y.npy")


# ------------------------------------------------------------------------- Fortran order


def test_a_fortran_order_file_is_refused_with_the_conversion(tmp_path):
    arrays = synthetic_split(N, T, K, seed=3, neurons=10, dtype=np.float32)
    np.save(tmp_path / "f.npy", np.asfortranarray(arrays["outputs"]))
    np.save(tmp_path / "y.npy", arrays["labels"])
    with pytest.raises(RunFormatError, match=r"f\.npy: stored in Fortran .*ascontiguousarray"):
        import_outputs(tmp_path / "f.npy", tmp_path / "r", labels_path=tmp_path / "y.npy")
    np.savez(tmp_path / "f.npz", outputs=np.asfortranarray(arrays["outputs"]),
             labels=arrays["labels"])  # fmt: skip
    with pytest.raises(RunFormatError, match=r"f\.npz\[outputs\]: stored in Fortran"):
        import_outputs(tmp_path / "f.npz", tmp_path / "r")
    np.save(tmp_path / "c.npy", np.ascontiguousarray(np.load(tmp_path / "f.npy")))
    run = import_outputs(tmp_path / "c.npy", tmp_path / "r", labels_path=tmp_path / "y.npy")
    assert np.array_equal(run.split("test").outputs, arrays["outputs"])
    assert not list(tmp_path.glob(".dynconf-tmp-*"))


# Truncates the outputs file while the import reads it, then reports how the import ended.
TRUNCATED = """
import sys
from dynconf.cli import main
from dynconf.core import importing
evidence = importing.accumulation_evidence
def truncate_then_check(outputs):
    with open(sys.argv[1], "r+b") as f:
        f.truncate(f.seek(0, 2) // 3)
    return evidence(outputs)
importing.accumulation_evidence = truncate_then_check
sys.exit(main(["import", sys.argv[1], "--labels", sys.argv[2], "--out", sys.argv[3]]))
"""


@pytest.mark.parametrize("order", ["F", "C"])
def test_a_file_truncated_during_the_import_is_an_error_never_a_signal(tmp_path, order):
    arrays = synthetic_split(400, 16, 10, seed=4, neurons=10, dtype=np.float32)
    outputs = arrays["outputs"]
    np.save(tmp_path / "o.npy", np.asfortranarray(outputs) if order == "F" else outputs)
    np.save(tmp_path / "y.npy", arrays["labels"])
    argv = [str(tmp_path / "o.npy"), str(tmp_path / "y.npy"), str(tmp_path / "r")]
    proc = subprocess.run([sys.executable, "-c", TRUNCATED, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # SIGBUS would be -7
    assert proc.stderr.count("\n") == 1, proc.stderr
    wanted = "stored in Fortran" if order == "F" else "truncated while reading"
    assert wanted in proc.stderr and not (tmp_path / "r").exists()

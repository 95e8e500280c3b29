"""Peak memory and time of `python -m dynconf import` on ImageNet-sized outputs.

    python -m benchmarks.bench_import [--n 50000] [--t 64] [--k 1000] [--compare-n 4000]
                                      [--also-full] [--tmp DIR] [--keep]
    python -m benchmarks.bench_import --side-bomb [--bomb-gib 3]

Writes a synthetic float16 outputs file [T, N, K] (time first, the run format; 6.4 GB at the
default size) and its labels into a temporary folder, built chunk by chunk with open_memmap
so that this process never holds it, then imports it in a child process with
`--storage topk` and reads that child's peak resident memory from the kernel (os.wait4's
rusage, ru_maxrss: the high-water mark of the child alone, file pages it mapped included).
The outputs behave like a converted SNN's over ImageNet classes: each sample has a fixed
logit vector with its class (or, for a minority, a confusable one) boosted, plus noise at
every step, so the top-5 classes change over time and top-k storage matters.

The topk run must give exactly the metrics of a full-storage import of the same file:
checked at --compare-n samples (a second, smaller file; 0 = the same file, which needs room
for another T x N x K copy on disk) with `evaluate --json` for several decoders and
thresholds, `oracle --json` and `info --json`, every number compared for equality.
The last line is one JSON object: n, t, k, peak_rss_mb, seconds, metrics_equal, plus the
comparison's own numbers.

--side-bomb measures a hostile archive instead: ~3 MB whose outputs are 8 x 20 x 4 and whose
spikes.npy is a deflated --bomb-gib GiB of float64 zeros. The import must be refused from
that member's header; the JSON gives the child's exit code, peak RSS and seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_outputs(path: Path, labels_path: Path, n: int, t: int, k: int, seed: int = 0) -> None:
    """A float16 [t, n, k] .npy written block of samples by block (never whole in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(t, n, k))
    labels = np.empty(n, np.int64)
    block = max(1, (1 << 23) // k)  # 8 M float32 values at a time
    ramp = np.minimum(1.0, np.arange(1, t + 1) / 2.0).astype(np.float32)  # slow first steps
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        rng = np.random.default_rng([seed, lo])
        y = rng.integers(0, k, hi - lo)
        clean = rng.standard_normal((hi - lo, k), dtype=np.float32)
        margin = np.clip(rng.normal(8.0, 3.0, hi - lo), 0, None).astype(np.float32)
        rows = np.arange(hi - lo)
        clean[rows, y] += margin
        confused = np.flatnonzero(rng.random(hi - lo) < 0.1)
        clean[confused, (y[confused] + 1) % k] += 1.5 + margin[confused]
        for step in range(t):
            noise = rng.standard_normal((hi - lo, k), dtype=np.float32)
            out[step, lo:hi] = ramp[step] * clean + 2.5 * noise
        labels[lo:hi] = y
    out.flush()
    del out
    np.save(labels_path, labels)


def write_in_child(path: Path, labels_path: Path, n: int, t: int, k: int, seed: int = 0):
    """write_outputs in a child process: the pages it maps would otherwise raise this
    process's resident memory, and a child started by fork or vfork inherits that peak
    into its own ru_maxrss (Linux carries the old memory's high-water mark over exec)."""
    code = (
        "import sys; from pathlib import Path; from benchmarks.bench_import import write_outputs; "
        f"write_outputs(Path({str(path)!r}), Path({str(labels_path)!r}), {n}, {t}, {k}, {seed})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def run_cli(args: list[str]) -> tuple[dict, float, float]:
    """Run `python -m dynconf ARGS --json` in a child; (its JSON, seconds, peak RSS in MB)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "dynconf", *args, "--json"],
            stdout=out_f,
            stderr=err_f,
            env=env,
            cwd=REPO,
        )
        # Reaped with wait4: its rusage is this child's alone (RUSAGE_CHILDREN would report
        # the largest of all children so far).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if child.returncode != 0:
        raise SystemExit(f"dynconf {' '.join(args)} failed:\n{err.decode()[-2000:]}")
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return json.loads(out), seconds, rss_mb


def import_run(outputs: Path, labels: Path, run: Path, storage: str) -> tuple[float, float]:
    result, seconds, rss = run_cli(
        ["import", str(outputs), "--labels", str(labels), "--out", str(run), "--storage", storage]
    )
    assert result["storage"] == storage, result
    return seconds, rss


def metrics_of(run: Path) -> list:
    """Every metric the CLI reports for a run that both storages support, without paths."""
    results = []
    for decoder in ("paper", "mean", "margin"):
        for threshold in ("0.3", "0.6", "0.9"):
            out, _, _ = run_cli(
                ["evaluate", str(run), "--decoder", decoder, "--threshold", threshold]
            )
            out.pop("run")
            results.append(out)
    for command in ("oracle", "info"):
        out, _, _ = run_cli([command, str(run)])
        out.pop("run")
        if command == "info":
            out = out["splits"]
            for split in out.values():
                split.pop("bytes")  # the storages differ in size, by design
        results.append(out)
    return results


def compare(folder: Path, outputs: Path | None, labels: Path | None, n, t, k) -> dict:
    """Import one file as topk and as full; are their metrics equal, number for number?"""
    if outputs is None:
        outputs, labels = folder / "compare.npy", folder / "compare_labels.npy"
        write_in_child(outputs, labels, n, t, k, seed=1)
    s_topk, rss_topk = import_run(outputs, labels, folder / "cmp_topk", "topk")
    s_full, rss_full = import_run(outputs, labels, folder / "cmp_full", "full")
    topk, full = metrics_of(folder / "cmp_topk"), metrics_of(folder / "cmp_full")
    equal = topk == full
    if not equal:
        for a, b in zip(topk, full, strict=True):
            if a != b:
                diff = {key: (a.get(key), b.get(key)) for key in a if a.get(key) != b.get(key)}
                print(f"metrics differ: {json.dumps(diff)[:2000]}", file=sys.stderr)
    first = topk[0]
    return {
        "compare_n": n,
        "metrics_equal": bool(equal),
        "compare_paper_0.6_accuracy": topk[1]["accuracy"],
        "compare_paper_0.6_mean_latency": topk[1]["mean_latency"],
        "compare_baseline_accuracy": first["baseline_accuracy"],
        "compare_topk_seconds": round(s_topk, 2),
        "compare_topk_peak_rss_mb": round(rss_topk, 1),
        "compare_full_seconds": round(s_full, 2),
        "compare_full_peak_rss_mb": round(rss_full, 1),
    }


def _deflated(data: bytes, mode: int = zlib.Z_FINISH) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(mode)


def write_side_bomb(path: Path, gib: int) -> None:
    """An .npz (zip written by hand) with small outputs and labels and a spikes.npy of
    ``gib`` GiB of float64 zeros, deflated without ever holding it: one chunk's deflate
    stream ended by a full flush (nothing refers back past it) repeated, then a final block."""
    rng = np.random.default_rng(0)
    members = []
    for name, arr in (("outputs", rng.normal(size=(8, 20, 4))), ("labels", np.arange(20) % 4)):
        buf = io.BytesIO()
        np.save(buf, arr)
        raw = buf.getvalue()
        members.append((f"{name}.npy", _deflated(raw), zlib.crc32(raw), len(raw)))
    chunk, count = bytes(160 << 20), gib * (1 << 30) // (160 << 20)  # [rows, 20] float64
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (count * (1 << 20), 20)}
    np.lib.format.write_array_header_1_0(buf, header)
    crc = zlib.crc32(buf.getvalue())
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    body = _deflated(buf.getvalue(), zlib.Z_FULL_FLUSH)
    body += _deflated(chunk, zlib.Z_FULL_FLUSH) * count + _deflated(b"")
    members.append(("spikes.npy", body, crc, len(buf.getvalue()) + count * len(chunk)))
    local, central = bytearray(), bytearray()
    for name, data, crc, size in members:
        offset, encoded = len(local), name.encode()
        fields = (20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + data
        central += struct.pack("<IH", 0x02014B50, 20) + struct.pack("<HHHHHIIIHH", *fields)
        central += struct.pack("<HHHII", 0, 0, 0, 0, offset) + encoded
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0
    )
    path.write_bytes(bytes(local) + bytes(central) + end)


def side_bomb(gib: int) -> dict:
    """Import the side-array bomb in a child: its exit code, peak RSS, seconds, message."""
    folder = Path(tempfile.mkdtemp(prefix="bench_side_bomb_"))
    try:
        bomb = folder / "bomb.npz"
        write_side_bomb(bomb, gib)
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "dynconf", "import", str(bomb), "--out", str(folder / "r")],
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        message = child.stderr.read().decode().strip()
        child.stderr.close()
        return {
            "bomb_file_mb": round(bomb.stat().st_size / 1e6, 2),
            "bomb_inflated_gib": gib,
            "exit_code": os.waitstatus_to_exitcode(status),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "seconds": round(seconds, 2),
            "refused_from_header": "refused before reading it" in message,
            "message": message,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side-bomb", action="store_true", help="measure the side-array bomb only")
    p.add_argument("--bomb-gib", type=int, default=3)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--t", type=int, default=64)
    p.add_argument("--k", type=int, default=1_000)
    p.add_argument("--compare-n", type=int, default=4_000, help="0: compare on the same file")
    p.add_argument("--tmp", default=None, help="folder for the temporary files (default: TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument(
        "--also-full",
        action="store_true",
        help="also import the large file with --storage full (peak RSS and seconds only; "
        "needs room for another T x N x K copy)",
    )
    args = p.parse_args()
    if args.side_bomb:
        print(json.dumps(side_bomb(args.bomb_gib)))
        return
    n, t, k = args.n, args.t, args.k
    copies = 1 + (args.compare_n == 0 or args.also_full)
    need = t * n * k * 2 * copies + t * n * 5 * 10 + (64 << 20)
    free = shutil.disk_usage(args.tmp or tempfile.gettempdir()).free
    if need > free:
        raise SystemExit(f"needs about {need / 1e9:.1f} GB of disk, {free / 1e9:.1f} GB free")
    folder = Path(tempfile.mkdtemp(prefix="bench_import_", dir=args.tmp))
    try:
        outputs, labels = folder / "outputs.npy", folder / "labels.npy"
        start = time.perf_counter()
        write_in_child(outputs, labels, n, t, k)
        print(f"wrote {outputs.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s")
        seconds, rss = import_run(outputs, labels, folder / "run_topk", "topk")
        print(f"import --storage topk: {seconds:.1f} s, peak RSS {rss:.0f} MB")
        full = {}
        if args.also_full:
            full_s, full_rss = import_run(outputs, labels, folder / "run_full", "full")
            full = {"full_seconds": round(full_s, 2), "full_peak_rss_mb": round(full_rss, 1)}
            print(f"import --storage full: {full_s:.1f} s, peak RSS {full_rss:.0f} MB")
            shutil.rmtree(folder / "run_full")
        if args.compare_n == 0:
            cmp = compare(folder, outputs, labels, n, t, k)
        else:
            outputs.unlink()  # room for the comparison's files
            cmp = compare(folder, None, None, args.compare_n, t, k)
        print(
            f"compare at n={cmp['compare_n']}: metrics equal {cmp['metrics_equal']}; full import "
            f"{cmp['compare_full_seconds']} s, peak RSS {cmp['compare_full_peak_rss_mb']} MB"
        )
        result = {
            "n": n,
            "t": t,
            "k": k,
            "peak_rss_mb": round(rss, 1),
            "seconds": round(seconds, 2),
            "target_rss_mb": 1500,
            "meets_target": bool(rss < 1500),
            **full,
            **cmp,
        }
        # The floor under every child's ru_maxrss (see write_in_child): this process's peak.
        result["bench_process_peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        print(json.dumps(result))
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Fit and evaluation time and peak memory of every exit policy of the registry, and the
`policies` command against `select` on a run.

    python -m benchmarks.bench_policies [--n 50000] [--t 256] [--k 10] [--run DIR]
    python -m benchmarks.bench_policies --vs-select DIR [--repeats 3] [--baseline TREE]

Synthetic calibration and evaluation splits of N samples each (T steps, K classes; noisy
per-step logits whose running sum firms up, stored as float16 as `import --dtype float16`
keeps them), or a run's calibration and test splits with --run (e.g.
cached_runs/cifar10_resnet20). For each policy: decoding both splits, the fit on
calibration (``cls().fit``: the search for the fastest operating point meeting the target)
and one evaluation on the other split, in seconds (wall and this process's CPU), with the
process's peak resident memory during each (reset before each phase, so it includes what is
resident then, such as both decoded splits). The largest of those peaks is printed at the
end. With ``--baseline TREE`` (another source tree of the package, e.g. an unpacked
release) the same benchmark runs there too, in a subprocess, after this one.

``--vs-select DIR`` times whole commands instead: `python -m dynconf policies DIR --no-cache`
against `python -m dynconf select DIR`, each in a fresh process with an empty analysis cache
(DYNCONF_CACHE_DIR), interleaved A B A B so that load on the machine hits both alike, and
reports medians, their ratio and the load average; ``--baseline TREE`` adds that tree's
`policies` to every round.

Not part of the test suite. The last line is one JSON object: n, t, k, peak_rss_mb,
fits_total_s and per policy fit_s, fit_cpu_s, evaluate_s, decode_both_s, decode_peak_mb,
resident_before_fit_mb, fit_peak_mb (the fit's own peak, from what was resident before it),
evaluate_peak_mb, accuracy, mean_latency (or, with --vs-select, the commands' times,
medians and ratio).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dynconf.core.decoders import decode_outputs, decode_split
from dynconf.core.policies import POLICIES, attach_outputs


def synthetic_outputs(n: int, t: int, k: int, seed: int):
    """Per-step logits [t, n, k] float16, drawn one step at a time (no float64 copy)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    clean = rng.normal(0.0, 1.0, (n, k))
    clean[np.arange(n), labels] += np.clip(rng.normal(2.0, 1.5, n), 0.0, None)
    outputs = np.empty((t, n, k), np.float16)
    for step in range(t):
        outputs[step] = clean + rng.normal(0.0, 3.0, (n, k))
    return outputs, labels


def synthetic_decoders(n: int, t: int, k: int):
    splits = {name: synthetic_outputs(n, t, k, seed) for name, seed in (("cal", 0), ("test", 1))}

    def decoded(name: str, decoder: str):
        outputs, labels = splits[name]
        return attach_outputs(decode_outputs(outputs, labels, decoder), outputs)

    return decoded, (n, t, k)


def run_decoders(path: str):
    from dynconf.core.store import load_run

    run = load_run(path)
    names = {"cal": "calibration", "test": "test"}

    def decoded(name: str, decoder: str):
        split = names[name]
        return attach_outputs(decode_split(run, split, decoder), run.split(split).outputs)

    test = run.split("test")
    return decoded, (test.N, test.T, test.K)


def reset_peak() -> bool:
    """Reset the process's peak resident memory (Linux: /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    """The process's resident memory now, MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """The process's peak resident memory since the last reset_peak, MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(fn):
    """(result, seconds, CPU seconds, peak resident MiB of the process while it ran: the
    arrays it allocated plus everything already resident, such as both decoded splits)."""
    gc.collect()
    reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu, peak_rss_mb()


def bench_one(cls, decoded) -> dict:
    decoder = cls.decoder or "paper"
    start = time.perf_counter()
    reset_peak()
    cal, test = decoded("cal", decoder), decoded("test", decoder)
    decode_s, decoded_mb = time.perf_counter() - start, peak_rss_mb()
    gc.collect()
    resident_mb = rss_mb()
    policy, fit_s, fit_cpu, fit_mb = measured(lambda: cls().fit(cal, 0.0))
    res, eval_s, _, eval_mb = measured(lambda: policy.evaluate(test))
    return {
        "fit_s": round(fit_s, 3),
        "fit_cpu_s": round(fit_cpu, 3),
        "evaluate_s": round(eval_s, 3),
        "decode_both_s": round(decode_s, 3),
        "decode_peak_mb": round(decoded_mb, 1),
        "resident_before_fit_mb": round(resident_mb, 1),
        "fit_peak_mb": round(fit_mb, 1),
        "evaluate_peak_mb": round(eval_mb, 1),
        "accuracy": res.accuracy,
        "mean_latency": res.mean_latency,
        "params": policy.describe(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed_command(argv: list[str], cwd: str) -> float:
    """Wall seconds of one command in a fresh process with an empty analysis cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DYNCONF_CACHE_DIR": cache, "PYTHONPATH": cwd}
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def vs_select(run: str, repeats: int, baseline: str | None) -> dict:
    """`policies --no-cache` against `select` on ``run``, interleaved (module doc)."""
    here = str(Path(__file__).resolve().parents[1])
    run = str(Path(run).resolve())
    commands = {
        "select": ([sys.executable, "-m", "dynconf", "select", run], here),
        "policies": ([sys.executable, "-m", "dynconf", "policies", run, "--no-cache"], here),
    }
    if baseline:
        base = str(Path(baseline).resolve())
        commands["policies_baseline"] = (commands["policies"][0], base)
    times: dict[str, list[float]] = {name: [] for name in commands}
    loads = [load_average()]
    for round_ in range(repeats):
        for name, (argv, cwd) in commands.items():
            times[name].append(round(timed_command(argv, cwd), 3))
        loads.append(load_average())
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
              + f" (load {loads[-1][0]})", flush=True)  # fmt: skip
    medians = {name: round(statistics.median(v), 3) for name, v in times.items()}
    out = {"run": run, "repeats": repeats, "times_s": times, "median_s": medians,
           "policies_over_select": round(medians["policies"] / medians["select"], 3),
           "load_average": loads}  # fmt: skip
    if baseline:
        out["baseline"] = baseline
        out["baseline_over_select"] = round(medians["policies_baseline"] / medians["select"], 3)
    print("medians: " + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
          + f"; policies / select {out['policies_over_select']:.2f}")  # fmt: skip
    return out


def bench_policies(decoded, n: int, t: int, k: int, run: str | None) -> dict:
    rows = {}
    print(f"N={n} T={t} K={k}" + (f" run {run}" if run else " synthetic"))
    print(f"{'policy':<10} {'fit s':>8} {'fit cpu':>8} {'eval s':>8} {'before MB':>9} "
          f"{'fit MB':>8} {'eval MB':>8} {'acc':>7} {'latency':>8}")  # fmt: skip
    for name, cls in POLICIES.items():
        row = rows[name] = bench_one(cls, decoded)
        print(f"{name:<10} {row['fit_s']:>8.2f} {row['fit_cpu_s']:>8.2f} "
              f"{row['evaluate_s']:>8.2f} {row['resident_before_fit_mb']:>9.1f} "
              f"{row['fit_peak_mb']:>8.1f} "
              f"{row['evaluate_peak_mb']:>8.1f} {row['accuracy']:>7.4f} "
              f"{row['mean_latency']:>8.2f}", flush=True)  # fmt: skip
        gc.collect()
    peak_rss = max(max(r["decode_peak_mb"], r["fit_peak_mb"], r["evaluate_peak_mb"])
                   for r in rows.values())  # fmt: skip
    total = sum(r["fit_s"] for r in rows.values())
    print(f"all fits {total:.1f} s, peak resident memory {peak_rss:.0f} MiB, "
          f"load {load_average()}")  # fmt: skip
    return {"n": n, "t": t, "k": k, "run": run, "peak_rss_mb": round(peak_rss),
            "fits_total_s": round(total, 3), "load_average": load_average(),
            "policies": rows}  # fmt: skip


def baseline_bench(tree: str, argv: list[str]) -> dict:
    """The same benchmark in another source tree, in a subprocess (its last JSON line)."""
    tree = str(Path(tree).resolve())
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_policies", *argv], cwd=tree,
                          env=env, check=True, capture_output=True, text=True)  # fmt: skip
    print(done.stdout, end="")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--run", default=None, help="a run with calibration and test splits")
    parser.add_argument("--vs-select", default=None, metavar="RUN",
                        help="time `policies --no-cache` against `select` on RUN")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="rounds for --vs-select")
    parser.add_argument("--baseline", default=None, metavar="TREE",
                        help="another source tree to run the same benchmark in")  # fmt: skip
    args = parser.parse_args(argv)
    if args.vs_select:
        out = vs_select(args.vs_select, args.repeats, args.baseline)
        print(json.dumps(out))
        return out
    if args.run:
        decoded, (n, t, k) = run_decoders(args.run)
        args.run = str(Path(args.run).resolve())
    else:
        decoded, (n, t, k) = synthetic_decoders(args.n, args.t, args.k)
    out = bench_policies(decoded, n, t, k, args.run)
    if args.baseline:
        del decoded
        gc.collect()
        same = ["--n", str(args.n), "--t", str(args.t), "--k", str(args.k)]
        print(f"baseline {args.baseline}:")
        base = baseline_bench(args.baseline, same + (["--run", args.run] if args.run else []))
        out["baseline"] = {"tree": args.baseline, **base}
        out["fits_total_vs_baseline"] = round(out["fits_total_s"] / base["fits_total_s"], 3)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

"""Fit and evaluation time and peak memory of every exit policy of the registry.

    python -m benchmarks.bench_policies [--n 50000] [--t 256] [--k 10] [--run DIR]

Synthetic calibration and evaluation splits of N samples each (T steps, K classes; noisy
per-step logits whose running sum firms up, stored as float16 as `import --dtype float16`
keeps them), or a run's calibration and test splits with --run (e.g.
cached_runs/cifar10_resnet20). For each policy: decoding both splits, the fit on
calibration (``cls().fit``: the search for the fastest operating point meeting the target)
and one evaluation on the other split, in seconds, with the process's peak resident memory
during each (reset before each phase, so it includes what is resident then, such as both
decoded splits). The largest of those peaks is printed at the end. Not part of the test
suite. The last line is one JSON
object: n, t, k, peak_rss_mb, fits_total_s and per policy fit_s, evaluate_s, decode_both_s,
fit_peak_mb, evaluate_peak_mb, accuracy, mean_latency.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import time

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
    """(result, seconds, peak resident MiB of the process while it ran: the arrays it
    allocated plus everything already resident, such as both decoded splits)."""
    gc.collect()
    reset_peak()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start, peak_rss_mb()


def bench_one(cls, decoded) -> dict:
    decoder = cls.decoder or "paper"
    start = time.perf_counter()
    reset_peak()
    cal, test = decoded("cal", decoder), decoded("test", decoder)
    decode_s, decoded_mb = time.perf_counter() - start, peak_rss_mb()
    policy, fit_s, fit_mb = measured(lambda: cls().fit(cal, 0.0))
    res, eval_s, eval_mb = measured(lambda: policy.evaluate(test))
    return {
        "fit_s": round(fit_s, 3),
        "evaluate_s": round(eval_s, 3),
        "decode_both_s": round(decode_s, 3),
        "fit_peak_mb": round(max(fit_mb, decoded_mb), 1),
        "evaluate_peak_mb": round(eval_mb, 1),
        "accuracy": res.accuracy,
        "mean_latency": res.mean_latency,
        "params": policy.describe(),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--run", default=None, help="a run with calibration and test splits")
    args = parser.parse_args(argv)
    if args.run:
        decoded, (n, t, k) = run_decoders(args.run)
    else:
        decoded, (n, t, k) = synthetic_decoders(args.n, args.t, args.k)
    rows = {}
    print(f"N={n} T={t} K={k}" + (f" run {args.run}" if args.run else " synthetic"))
    print(f"{'policy':<10} {'fit s':>8} {'eval s':>8} {'fit MB':>8} {'eval MB':>8} {'acc':>7} "
          f"{'latency':>8}")  # fmt: skip
    for name, cls in POLICIES.items():
        row = rows[name] = bench_one(cls, decoded)
        print(f"{name:<10} {row['fit_s']:>8.2f} {row['evaluate_s']:>8.2f} "
              f"{row['fit_peak_mb']:>8.1f} {row['evaluate_peak_mb']:>8.1f} "
              f"{row['accuracy']:>7.4f} {row['mean_latency']:>8.2f}")  # fmt: skip
        gc.collect()
    peak_rss = max(max(r["fit_peak_mb"], r["evaluate_peak_mb"]) for r in rows.values())
    total = sum(r["fit_s"] for r in rows.values())
    print(f"all fits {total:.1f} s, peak resident memory {peak_rss:.0f} MiB")
    out = {"n": n, "t": t, "k": k, "run": args.run, "peak_rss_mb": round(peak_rss),
           "fits_total_s": round(total, 3), "policies": rows}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

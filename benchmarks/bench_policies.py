"""Fit and evaluation time of every exit policy of the registry on a synthetic run.

    python -m benchmarks.bench_policies [--n 50000] [--t 256] [--k 10]

Calibration and evaluation splits of N samples each (T steps, K classes; noisy per-step
logits whose running sum firms up). For each policy: the fit on calibration (the sweep of
its operating points and the choice of the fastest meeting the target) and one evaluation
on the other split, in seconds, through the same comparison code the CLI uses. Not part of
the test suite. The last line is one JSON object: n, t, k and per policy fit_s, evaluate_s,
accuracy, mean_latency.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dynconf.core.decoders import decode_outputs
from dynconf.core.policies import POLICIES, attach_outputs


def synthetic_outputs(n: int, t: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    clean = rng.normal(0.0, 1.0, (n, k))
    clean[np.arange(n), labels] += np.clip(rng.normal(2.0, 1.5, n), 0.0, None)
    outputs = (clean[None] + rng.normal(0.0, 3.0, (t, n, k))).astype(np.float32)
    return outputs, labels


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    splits = {}
    for name, seed in (("calibration", 0), ("test", 1)):
        outputs, labels = synthetic_outputs(args.n, args.t, args.k, seed)
        splits[name] = (outputs, labels)
    rows = {}
    print(f"N={args.n} T={args.t} K={args.k}")
    print(f"{'policy':<10} {'fit s':>8} {'eval s':>8} {'accuracy':>9} {'latency':>8}")
    for name, cls in POLICIES.items():
        decoder = cls.decoder or "paper"
        t0 = time.perf_counter()
        cal = attach_outputs(
            decode_outputs(*splits["calibration"], decoder), splits["calibration"][0]
        )
        test = attach_outputs(decode_outputs(*splits["test"], decoder), splits["test"][0])
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        policy = cls.fit(cal, 0.0)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = policy.evaluate(test)
        eval_s = time.perf_counter() - t0
        rows[name] = {
            "fit_s": round(fit_s, 3),
            "evaluate_s": round(eval_s, 3),
            "decode_both_s": round(decode_s, 3),
            "accuracy": res.accuracy,
            "mean_latency": res.mean_latency,
        }
        acc, lat = res.accuracy, res.mean_latency
        print(f"{name:<10} {fit_s:>8.2f} {eval_s:>8.2f} {acc:>9.4f} {lat:>8.2f}")
    out = {"n": args.n, "t": args.t, "k": args.k, "policies": rows}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

"""How much a threshold costs: one threshold (a slider move), a 1,000-threshold sweep, and a
naive per-sample Python loop, on synthetic outputs N=50,000, T=256, K=10.

    python -m benchmarks.bench_metrics [--n 50000] [--t 256] [--k 10] [--naive-subset 200]

The naive loop is what one writes without this library: for each sample, accumulate the
outputs step by step, compute the paper's confidence, stop once it passes C. It is timed on
a subset of samples and scaled to N (stated in the output). A second naive loop that only
scans already-decoded confidences is timed too, to show what the decoding alone costs.
The last line is one JSON object: n, t, k, one_threshold_ms, thresholds, sweep_ms,
naive_ratio (naive loop time / one threshold), plus the details.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from dynconf.core import metrics
from dynconf.core.decoders import decode_outputs


def synthetic_outputs(n: int, t: int, k: int, seed: int = 0):
    """Noisy per-step logits whose running sum firms up: accuracy grows with t."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    clean = rng.standard_normal((n, k), dtype=np.float32)
    margin = np.clip(rng.normal(5.0, 2.5, n), 0, None).astype(np.float32)
    clean[np.arange(n), labels] += margin
    confused = np.flatnonzero(rng.random(n) < 0.08)  # a minority leans to another class
    clean[confused, (labels[confused] + 1) % k] += 2.0 + margin[confused]
    outputs = np.empty((t, n, k), np.float32)
    for step in range(t):  # one step at a time keeps peak memory at the output array
        outputs[step] = clean + 2.5 * rng.standard_normal((n, k), dtype=np.float32)
    return outputs, labels


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_from_outputs(outputs, labels, C, kappa, samples) -> tuple[float, float]:
    """Per sample and step in plain Python: accumulate, softmax, compare."""
    T, _, K = outputs.shape
    correct = latency = 0
    for i in samples:
        rows = outputs[:, i, :].tolist()
        S = [0.0] * K
        for t in range(T):
            S = [s + z for s, z in zip(S, rows[t], strict=True)]
            m = max(S)
            conf = 1.0 / sum(math.exp((s - m) / kappa) for s in S)
            if conf > C or t == T - 1:
                correct += S.index(m) == labels[i]
                latency += t + 1
                break
    return correct, latency


def naive_from_confidence(dec, C, samples) -> int:
    T = dec.T
    latency = 0
    for i in samples:
        for t in range(T):
            if dec.confidence[t, i] > C or t == T - 1:
                latency += t + 1
                break
    return latency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--t", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--thresholds", type=int, default=1000)
    ap.add_argument("--naive-subset", type=int, default=200)
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    n, t, k, C = args.n, args.t, args.k, args.threshold

    start = time.perf_counter()
    outputs, labels = synthetic_outputs(n, t, k)
    gen_s = time.perf_counter() - start
    print(f"synthetic outputs [{t}, {n}, {k}] float32 built in {gen_s:.1f} s")

    start = time.perf_counter()
    dec = decode_outputs(outputs, labels, "paper")
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    cache = metrics.policy_cache(dec)
    cache_s = time.perf_counter() - start
    start = time.perf_counter()
    cache.sweep_counts([0.5])  # builds the sorted events used by sweeps
    events_s = time.perf_counter() - start
    records = len(cache.rec_values)
    print(
        f"one-off per run and decoder: decode {decode_s:.2f} s, records {cache_s:.2f} s "
        f"({records:,} records = {records / n:.1f} per sample), sweep events {events_s:.2f} s"
    )

    one_s = best_of(lambda: metrics.evaluate(dec, C), repeat=20)
    exit_s = best_of(lambda: metrics.exit_steps(dec, C), repeat=20)
    grid = np.linspace(0.0, 1.0, args.thresholds)
    sweep_s = best_of(lambda: metrics.sweep(dec, grid), repeat=5)
    res = metrics.evaluate(dec, C)
    print(
        f"one threshold (evaluate, C={C}): {1e3 * one_s:.2f} ms (exit steps alone "
        f"{1e3 * exit_s:.2f} ms); accuracy {100 * res.accuracy:.2f} % at "
        f"{res.mean_latency:.2f} steps, baseline {100 * res.baseline_accuracy:.2f} %"
    )
    print(f"sweep of {args.thresholds} thresholds with Pareto front: {1e3 * sweep_s:.1f} ms")

    rng = np.random.default_rng(1)
    subset = np.sort(rng.choice(n, min(n, args.naive_subset), replace=False))
    start = time.perf_counter()
    ok, lat = naive_from_outputs(outputs, labels, C, float(t), subset)
    naive_sub_s = time.perf_counter() - start
    naive_s = naive_sub_s * n / len(subset)
    # Sanity: the naive loop agrees with the library on the subset.
    assert lat == int(res.exit_steps[subset].sum()) and ok == int(res.correct[subset].sum())
    start = time.perf_counter()
    naive_from_confidence(dec, C, subset)
    naive_conf_s = (time.perf_counter() - start) * n / len(subset)
    print(
        f"naive Python loop (accumulate + softmax per step): {naive_sub_s:.2f} s on "
        f"{len(subset)} samples, scaled to N={n}: {naive_s:.1f} s "
        f"= {naive_s / one_s:,.0f}x one threshold"
    )
    print(
        f"naive loop over already-decoded confidences, scaled: {naive_conf_s:.2f} s "
        f"= {naive_conf_s / one_s:,.0f}x"
    )
    print(
        json.dumps(
            {
                "n": n,
                "t": t,
                "k": k,
                "one_threshold_ms": round(1e3 * one_s, 3),
                "thresholds": args.thresholds,
                "sweep_ms": round(1e3 * sweep_s, 3),
                "naive_ratio": round(naive_s / one_s, 1),
                "naive_subset": len(subset),
                "naive_decoded_ratio": round(naive_conf_s / one_s, 1),
                "decode_s": round(decode_s, 3),
                "precompute_s": round(cache_s + events_s, 3),
                "records_per_sample": round(records / n, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

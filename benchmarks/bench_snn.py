"""Benchmark the SNN engine on a CIFAR ResNet-20: simulation cost and real early-exit savings.

    python -m benchmarks.bench_snn [--checkpoint cached_runs/cifar10_resnet20/model.pt]

1. ``snn_over_ann``: wall time of simulating T = 32 steps (multi-step mode, ``--chunk`` steps
   per call) divided by the wall time of 32 ANN forward passes on the same batch. Target <= 1.3.
   The same ratio is printed for other chunk sizes, since the best one depends on the cache.
2. ``wallclock_saving_over_latency_saving``: step-by-step simulation of a stream of images with
   real early exit (exited samples leave the batch, waiting ones take their slots) against the
   same step-by-step simulation without exit, at a threshold that halves the mean latency.
   The wall-clock saving divided by the latency saving; target >= 0.8 at batch >= 64. It
   cannot exceed 1 beyond noise: the exit run does a subset of the full run's sample-steps, at
   no lower cost per sample-step (``cost_per_sample_step`` shows both).
3. Peers, when SpikingJelly is installed: the same converted network with SpikingJelly's IF
   neurons in its single-step mode and in its multi-step mode (stateless layers on [T * B, ...]
   as its ``SeqToANNContainer`` does, the neurons on [T, B, ...]), and whether their outputs
   match ours (an independent implementation of the same IF neurons).

Timings to be compared are interleaved (A B A B ..., after one warm-up call of each), so load
that comes and goes on a shared machine falls on both sides; each reports its median and its
spread (min to max), and each ratio is the median of the per-round ratios. The machine's load
average is printed before and after. Random weights are used unless a trained checkpoint is
given (timings barely depend on weights, the exit pattern does). The last line printed is one
JSON object with every measured number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from dynconf.core.decoders import decode_outputs
from dynconf.core.metrics import evaluate, sweep
from dynconf.engine.models import build_model
from dynconf.engine.snn import SpikingNetwork, simulate, simulate_early_exit


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of every call of each function, called in turn (A B A B ...) ``repeats`` times
    after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def summary(seconds: list[float]) -> dict:
    """Median and spread of timed calls."""
    return {
        "median": round(statistics.median(seconds), 4),
        "min": round(min(seconds), 4),
        "max": round(max(seconds), 4),
    }


def paired(numerator: list[float], denominator: list[float], fn=lambda a, b: a / b) -> float:
    """The median over rounds of ``fn(numerator_i, denominator_i)`` (one round's calls ran
    back to back, under the same load)."""
    return statistics.median(fn(a, b) for a, b in zip(numerator, denominator, strict=True))


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def load_model(checkpoint: str | None):
    if checkpoint and os.path.exists(checkpoint):
        from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint

        return model_from_checkpoint(load_checkpoint(checkpoint)), "trained"
    torch.manual_seed(0)
    model = build_model("resnet20", levels=4, num_classes=10).eval()
    return model, "random"


def images(n: int, data_root: str | None) -> torch.Tensor:
    if data_root:
        from dynconf.engine.data import load_cifar10

        test = load_cifar10(data_root, splits=("test",)).splits["test"]
        pick = np.linspace(0, len(test) - 1, n).round().astype(int)
        return next(test.take(pick).batches(n))[0]
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


class _Scale(torch.nn.Module):
    """Multiply by a constant: SpikingJelly emits spikes of 1, the converted net needs theta."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class _MultiStepNeurons(torch.nn.Module):
    """SpikingJelly's multi-step IF node between stateless layers that see [T * B, ...]:
    the neurons get [T, B, ...] (SeqToANNContainer's convention), the output goes back."""

    def __init__(self, node, T: int):
        super().__init__()
        self.node, self.T = node, T

    def forward(self, x):
        return self.node(x.view(self.T, -1, *x.shape[1:])).flatten(0, 1)


def spikingjelly_peers(ann, x, T: int) -> dict | None:
    """SpikingJelly's IF neurons on the same converted network: ``{mode: run}`` where
    ``run()`` returns the per-step outputs ``[T, B, K]``; None when it is not installed.

    Each QCFS layer becomes ``IFNode(v_threshold=lambda, v_reset=None)`` (soft reset) followed
    by a scale to theta-weighted spikes, the membrane set to theta / 2 after each reset as in
    docs/METHOD.md section 6. ``single``: SpikingJelly's default single-step mode, T calls;
    ``multi``: its multi-step mode, one call on the input repeated T times.
    """
    try:
        from spikingjelly.activation_based import functional, neuron
    except ImportError:
        return None
    import copy

    from dynconf.engine.models import QCFS

    def convert(multi: bool):
        net = copy.deepcopy(ann).eval().to(memory_format=torch.channels_last)
        nodes = []

        def swap(module):
            for name, child in module.named_children():
                if isinstance(child, QCFS):
                    theta = float(child.threshold.detach())
                    node = neuron.IFNode(
                        v_threshold=theta, v_reset=None, step_mode="m" if multi else "s"
                    )
                    nodes.append((node, theta))
                    wrapped = _MultiStepNeurons(node, T) if multi else node
                    setattr(module, name, torch.nn.Sequential(wrapped, _Scale(theta)))
                else:
                    swap(child)

        swap(net)
        return net, nodes

    x = x.contiguous(memory_format=torch.channels_last)
    single, single_nodes = convert(False)
    multi, multi_nodes = convert(True)

    def reset(net, nodes):
        functional.reset_net(net)
        for node, theta in nodes:
            node.v = 0.5 * theta

    @torch.no_grad()
    def run_single():
        reset(single, single_nodes)
        return torch.stack([single(x) for _ in range(T)])

    @torch.no_grad()
    def run_multi():
        reset(multi, multi_nodes)
        frames = x.unsqueeze(0).expand(T, *x.shape).flatten(0, 1)
        return multi(frames.contiguous(memory_format=torch.channels_last)).view(T, x.shape[0], -1)

    return {"single": run_single, "multi": run_multi}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="cached_runs/cifar10_resnet20/model.pt")
    parser.add_argument("--data-root", default=os.environ.get("DYNCONF_DATA"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--stream", type=int, default=256, help="images in the early-exit stream")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=4, help="time steps per multi-step call")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    load_before = load_average()
    ann, weights = load_model(args.checkpoint)
    snn = SpikingNetwork(ann)
    x = images(args.stream, args.data_root if weights == "trained" else None)
    batch = x[: args.batch]
    T = args.T
    print(
        f"ResNet-20 ({weights} weights), batch {args.batch}, T = {T}, {os.cpu_count()} threads"
        f", load average {load_before}"
    )
    result = {
        "weights": weights,
        "batch": args.batch,
        "T": T,
        "stream": args.stream,
        "repeats": args.repeats,
        "chunk": args.chunk,
        "load_average_before": load_before,
    }
    result.update(snn_against_ann(ann, snn, batch, T, args))
    result["dynconf_images_per_s_T"] = round(args.batch / result.pop("_snn_median_s"), 2)
    result.update(early_exit(snn, x, T, args))
    result.update(peers(ann, snn, batch, T, args))
    result["load_average_after"] = load_average()
    print(f"load average after: {result['load_average_after']}")
    print(json.dumps(result))


def snn_against_ann(ann, snn, batch, T: int, args) -> dict:
    """1. The multi-step SNN against T ANN forward passes on the same batch, both in the faster
    channels_last layout (the SNN converts itself; the ANN is given the same advantage)."""
    fast_ann = ann.to(memory_format=torch.channels_last)
    fast_batch = batch.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def ann_passes():
        for _ in range(T):
            fast_ann(fast_batch)

    chunks = sorted({1, 2, 4, 8, args.chunk})
    fns = {"ann": ann_passes}
    fns.update({f"snn_chunk_{c}": (lambda c=c: simulate(snn, batch, T, chunk=c)) for c in chunks})
    times = interleaved(fns, args.repeats)
    ratio_by_chunk = {c: round(paired(times[f"snn_chunk_{c}"], times["ann"]), 3) for c in chunks}
    for c in chunks:
        got = summary(times[f"snn_chunk_{c}"])
        print(
            f"SNN T={T}, {c} steps per call: median {got['median']:.3f} s "
            f"({got['min']:.3f} to {got['max']:.3f}), over ANN {ratio_by_chunk[c]:.2f}"
        )
    ann_t, snn_t = summary(times["ann"]), summary(times[f"snn_chunk_{args.chunk}"])
    print(
        f"{T} ANN forward passes: median {ann_t['median']:.3f} s ({ann_t['min']:.3f} to "
        f"{ann_t['max']:.3f})   SNN (chunk {args.chunk}) over ANN "
        f"{ratio_by_chunk[args.chunk]:.2f} (target <= 1.3)"
    )
    return {
        "ann_seconds": ann_t,
        "snn_seconds": snn_t,
        "snn_over_ann": ratio_by_chunk[args.chunk],
        "snn_over_ann_by_chunk": ratio_by_chunk,
        "_snn_median_s": snn_t["median"],
    }


def early_exit(snn, x, T: int, args) -> dict:
    """2. Early exit on a stream, at the threshold that halves the mean latency on it."""
    cached = simulate(snn, x, T, chunk=args.chunk)
    labels = np.zeros(x.shape[0], dtype=np.int64)  # correctness is irrelevant for timing
    decoded = decode_outputs(cached.outputs, labels, "paper", float(T))
    grid = np.unique(decoded.confidence)
    swept = sweep(decoded, grid)
    pick = int(np.argmin(np.abs(np.asarray(swept.mean_latency) - T / 2)))
    # halfway to the next confidence value: no sample sits exactly at the threshold, where
    # float rounding in another batch layout could flip its exit
    threshold = float((grid[pick] + grid[min(pick + 1, len(grid) - 1)]) / 2)
    policy = evaluate(decoded, threshold)
    latency_saving = 1 - policy.mean_latency / T

    def run(c):
        return lambda: simulate_early_exit(snn, x, T, threshold=c, batch_size=args.batch)

    times = interleaved({"full": run(2.0), "early": run(threshold)}, args.repeats)
    exited = run(threshold)()
    # The step-by-step batches hold other samples than the cached run's, so convolutions round
    # differently and a spike at exactly threshold can move by a step: nearly all must agree.
    exits_agree = float(np.mean(exited.exit_steps == policy.exit_steps))
    assert exits_agree >= 0.98, f"early exit agrees with the cached run on {exits_agree:.1%} only"
    wall_saving = paired(times["early"], times["full"], lambda e, f: 1 - e / f)
    sample_steps = {"full": len(x) * T, "early": int(np.sum(exited.exit_steps))}
    cost = {k: statistics.median(times[k]) / sample_steps[k] for k in times}
    full_t, early_t = summary(times["full"]), summary(times["early"])
    print(
        f"threshold {threshold:.4f}: mean latency {policy.mean_latency:.2f} of {T} steps "
        f"(latency saving {latency_saving:.1%}); exits agree with the cached run: "
        f"{exits_agree:.1%}"
    )
    print(
        f"step-by-step, no exit: median {full_t['median']:.3f} s ({full_t['min']:.3f} to "
        f"{full_t['max']:.3f})   with early exit: median {early_t['median']:.3f} s "
        f"({early_t['min']:.3f} to {early_t['max']:.3f})   wall-clock saving "
        f"{wall_saving:.1%}   ratio {wall_saving / latency_saving:.2f} (target >= 0.8)"
    )
    print(
        f"cost per sample-step: no exit {cost['full'] * 1e6:.1f} us, early exit "
        f"{cost['early'] * 1e6:.1f} us"
    )
    return {
        "threshold": threshold,
        "mean_latency": round(policy.mean_latency, 3),
        "latency_saving": round(latency_saving, 4),
        "step_full_seconds": full_t,
        "step_early_exit_seconds": early_t,
        "wallclock_saving": round(wall_saving, 4),
        "cost_per_sample_step_us": {k: round(v * 1e6, 2) for k, v in cost.items()},
        "exit_steps_agree_with_cache": round(exits_agree, 4),
        "wallclock_saving_over_latency_saving": round(wall_saving / latency_saving, 3),
    }


def peers(ann, snn, batch, T: int, args) -> dict:
    """3. SpikingJelly single-step and multi-step against dynconf, interleaved."""
    found = spikingjelly_peers(ann, batch, T)
    if found is None:
        print("SpikingJelly: not installed (pip install spikingjelly); skipped")
        return {"spikingjelly_images_per_s_T": None, "spikingjelly_same_outputs": None}
    ours_out = simulate(snn, batch, T, chunk=args.chunk).outputs
    fns = {"dynconf": lambda: simulate(snn, batch, T, chunk=args.chunk)}
    fns.update({f"sj_{mode}": run for mode, run in found.items()})
    times = interleaved(fns, args.repeats)
    out = {"dynconf_images_per_s_T": round(args.batch / statistics.median(times["dynconf"]), 2)}
    for mode, run in found.items():
        same = bool(np.allclose(run().numpy(), ours_out, rtol=1e-4, atol=1e-4))
        speedup = paired(times[f"sj_{mode}"], times["dynconf"])
        rate = args.batch / statistics.median(times[f"sj_{mode}"])
        print(
            f"SpikingJelly {mode}-step: {rate:.1f} img/s (median), dynconf/SpikingJelly "
            f"{speedup:.2f}x, same outputs: {same}"
        )
        out[f"spikingjelly_{mode}_step"] = {
            "seconds": summary(times[f"sj_{mode}"]),
            "images_per_s_T": round(rate, 2),
            "dynconf_speedup": round(speedup, 3),
            "same_outputs": same,
        }
    # the keys of the single-step peer under their earlier names
    out["spikingjelly_images_per_s_T"] = out["spikingjelly_single_step"]["images_per_s_T"]
    out["spikingjelly_same_outputs"] = out["spikingjelly_single_step"]["same_outputs"]
    return out


if __name__ == "__main__":
    main()

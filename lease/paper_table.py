"""A run's numbers beside the Dynamic Confidence demo's, as the README's markdown table.

    python -m lease.paper_table cached_runs/cifar10_resnet18_l3

Every number comes from a `python -m dynconf` command run here with ``--json`` (listed under
the table, so each can be rerun): the SNN's test accuracy at t = 1, 2, 4, 8, 16 and T_max
(``evaluate`` at threshold 1.0 gives the baseline curve), Dynamic Confidence with the
demo's own rule (paper decoder, kappa 30, C 0.6) and at the C that ``select`` chooses on the
calibration split (kappa 30, tolerance 0), hidden spikes per neuron, and the oracles. The
demo's numbers are method.md section 7's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEMO = {
    "by_t": {1: 78.76, 2: 84.28, 4: 88.89, 8: 92.17, 16: 93.76, 27: 94.27},
    "dc_accuracy": 94.27,
    "dc_latency": 11.51,
    "spikes_full": 3.02,
    "spikes_at_exit": 1.29,
}
KAPPA, DEMO_C = 30.0, 0.6


def dynconf_json(*words: str) -> dict:
    """One `python -m dynconf ... --json` command's result."""
    done = subprocess.run(
        [sys.executable, "-m", "dynconf", *words, "--json"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"error: python -m dynconf {' '.join(words)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def measure(run: str, kappa: float = KAPPA, threshold: float = DEMO_C) -> dict:
    """The table's numbers for ``run``, and the commands that measured them."""
    k = f"{kappa:g}"
    commands = [
        ("evaluate", run, "--split", "test", "--kappa", k, "--threshold", f"{threshold:g}"),
        ("select", run, "--calibration-split", "calibration", "--eval-split", "test", "--kappa", k),
        ("oracle", run, "--split", "test"),
    ]
    demo_rule, chosen, oracle = (dynconf_json(*words) for words in commands)
    curve = demo_rule["baseline_curve"]
    T = len(curve)
    steps = sorted({t for t in DEMO["by_t"] if t <= T} | {T})
    return {
        "T_max": T,
        "by_t": {t: 100 * curve[t - 1] for t in steps},
        "demo_rule": demo_rule,
        "chosen": chosen,
        "oracle": oracle,
        "commands": ["python -m dynconf " + " ".join(words) + " --json" for words in commands],
    }


def table(numbers: dict) -> str:
    """The markdown table (ours against the demo's) and the commands under it."""

    def pct(x: float) -> str:
        return f"{100 * x:.2f} %"

    rule, chosen, oracle = numbers["demo_rule"], numbers["chosen"], numbers["oracle"]
    test = chosen["test"]
    by_t = numbers["by_t"]
    T = numbers["T_max"]
    ours_t = " / ".join(f"{v:.2f}" for v in by_t.values())
    demo_t = " / ".join(f"{DEMO['by_t'][t]:.2f}" if t in DEMO["by_t"] else "-" for t in by_t)
    lines = [
        "| | this run | the demo (method.md §7) |",
        "|---|---|---|",
        f"| SNN test accuracy at t = {' / '.join(str(t) for t in by_t)} | {ours_t} % "
        f"| {demo_t} % |",
        f"| Dynamic Confidence, kappa {KAPPA:g}, C {DEMO_C:g} (the demo's rule) "
        f"| {pct(rule['accuracy'])} at {rule['mean_latency']:.2f} mean steps "
        f"(-{pct(rule['latency_reduction'])}) "
        f"| {DEMO['dc_accuracy']:.2f} % at {DEMO['dc_latency']:.2f} steps (-57 %) |",
        f"| Dynamic Confidence, kappa {KAPPA:g}, C {chosen['threshold']:.3f} chosen on "
        f"calibration | {pct(test['accuracy'])} at {test['mean_latency']:.2f} mean steps "
        f"(-{pct(test['latency_reduction'])}) | |",
        f"| hidden spikes per neuron per image, T = {T} -> exit at C {DEMO_C:g} "
        f"| {rule['spikes_per_neuron_full']:.2f} -> {rule['spikes_per_neuron_at_exit']:.2f} "
        f"| {DEMO['spikes_full']:.2f} -> {DEMO['spikes_at_exit']:.2f} |",
    ]
    for name, label in (
        ("first_correct/cap", "oracle, first correct (never-correct run to T_max)"),
        ("stays_correct/cap", "oracle, stays correct (never-correct run to T_max)"),
    ):
        v = oracle["variants"][name]
        lines.append(f"| {label} | {pct(v['accuracy'])} at {v['mean_latency']:.2f} steps | |")
    lines += ["", "Measured with:", ""] + [f"    {c}" for c in numbers["commands"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lease.paper_table", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run", help="a run folder")
    parser.add_argument("--json", action="store_true", help="the numbers as JSON instead")
    args = parser.parse_args(argv)
    if not (Path(args.run) / "meta.json").is_file():
        print(f"error: {args.run} is not a run (no meta.json)", file=sys.stderr)
        return 2
    numbers = measure(args.run)
    if args.json:

        def per_sample(value) -> bool:  # the per-image lists of `evaluate` and `select`
            return isinstance(value, list) and len(value) > 100

        slim = {
            key: {k: v for k, v in value.items() if not per_sample(v)}
            if isinstance(value, dict)
            else value
            for key, value in numbers.items()
        }
        print(json.dumps(slim))
    else:
        print(table(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

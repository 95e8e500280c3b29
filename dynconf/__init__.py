"""dynconf: an interactive lab for Dynamic Confidence in spiking neural networks.

A spiking network runs T steps per input; Dynamic Confidence reads a confidence from the
accumulated output after every step and lets a sample stop as soon as it passes a threshold
C (docs/METHOD.md). dynconf records such runs, measures them (accuracy, latency, spikes and
synaptic operations saved, oracles, exit policies) and draws them.

The notebook API, on this one import::

    import dynconf

    run = dynconf.load("digits")              # a run folder, or a run name
    run.evaluate(threshold=0.5)               # accuracy, mean latency, costs saved
    run.sweep()                               # every threshold of the slider (DataFrame)
    run.select()                              # C chosen on calibration, reported on test
    run.policies()                            # every exit policy compared (DataFrame)
    run.oracle()                              # the oracle exits (DataFrame)
    run.figure("accuracy_latency")            # the app's Plotly figure
    dynconf.figure_names()                    # every figure name
    dynconf.record_run(net, batches, T=16, out="runs/my_snn")  # your own SNN (torch)

Public names: load, figure_names, record_run, Run, Evaluation, Selected, View.

``import dynconf`` imports no numpy, torch, pandas or plotly: each name brings in what it
needs when it is first used. The library has no Streamlit dependency (only dynconf.app has).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it (imported on first use).
_LAZY = {
    "Run": "dynconf.api",
    "Evaluation": "dynconf.api",
    "Selected": "dynconf.api",
    "View": "dynconf.core.view",
    "explore": "dynconf.widget",  # the notebook widget (anywidget, Plotly.js)
}


def load(path_or_name: Any):
    """Open a run by path or by name and return a :class:`dynconf.api.Run`.

    A bare name is looked up in the runs folders: ``DYNCONF_RUNS`` (several joined by
    ``:``), else ./runs, ./cached_runs and the bundled demo runs, then ``DYNCONF_WORK``.

    Example::

        run = dynconf.load("digits")
        print(run)                     # one line: dataset, model, T_max, splits, costs
        run.evaluate(threshold=0.5).accuracy
    """
    from dynconf.api import load as load_run

    return load_run(path_or_name)


def figure_names() -> tuple[str, ...]:
    """Every figure ``run.figure(name)`` draws (the app's figures, page by page).

    Example::

        for name in dynconf.figure_names():
            print(name)
    """
    from dynconf.api import figure_names as names

    return names()


def record_run(*args: Any, **kwargs: Any):
    """Record your own SpikingJelly, snnTorch or step/reset network as a run (imports torch;
    see dynconf.engine.record.record_run for every argument).

    Example::

        dynconf.record_run(net, {"test": test_batches}, T=16, out="runs/my_snn")
        run = dynconf.load("runs/my_snn")
    """
    from dynconf.record import record_run as record

    return record(*args, **kwargs)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dynconf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["Evaluation", "Run", "Selected", "View", "figure_names", "load", "record_run"]

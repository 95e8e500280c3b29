"""Command line: `python -m dynconf CMD ... [--json]`.

Metric commands (import, info: cli/runs.py; evaluate, oracle, sweep, select: cli/evaluate.py;
shared helpers in cli/metrics.py) run on cached runs with numpy only. train, simulate, ann,
record, policies and export each have a thin module of their own (cli/<command>.py),
imported only when that command runs (so `--help` and the metric commands never import
torch or kaleido); each provides add_arguments(parser)
and run_command(args) -> dict, and optionally format_text(result) -> str (the text printed
without --json). Commands take their options here and hand config objects to the engine
and report layers, which know nothing of argparse.

Output contract: with --json exactly one JSON object on stdout; without it a short summary.
Errors: one line on stderr, exit status 2 for bad input (any DynconfError, bad arguments) and
for a destination that cannot be written (full disk, read-only folder, a file where a folder
should be: `error: cannot write PATH: reason`), 1 for anything unexpected (set
DYNCONF_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from dynconf import __version__
from dynconf.cli import evaluate, runs
from dynconf.core.atomic import WRITE_ERRNOS
from dynconf.errors import DynconfError

# Commands that write files: an OSError of theirs with a file name is about the destination.
WRITING_COMMANDS = ("import", "simulate", "export", "train")

# Commands whose module (torch, kaleido) is imported only when that command runs.
LAZY_COMMANDS = {
    "train": ("dynconf.cli.train", "train a QCFS ANN (needs torch)"),
    "simulate": ("dynconf.cli.simulate", "simulate a checkpoint as an SNN into a run (torch)"),
    "export": ("dynconf.cli.export", "export figures, CSV and a LaTeX table of a run"),
    "ann": ("dynconf.cli.ann", "ANN accuracy at more QCFS levels, an SNN stand-in (torch)"),
    "record": ("dynconf.cli.record", "record your own SpikingJelly/snnTorch/torch SNN as a run"),
    "policies": ("dynconf.cli.policies", "exit policies fitted on calibration, compared on test"),
    "app": ("dynconf.cli.app", "start the dashboard (Streamlit) on your runs"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


# --------------------------------------------------------------------------- parser


def build_parser(lazy_command: str | None = None) -> argparse.ArgumentParser:
    """The full parser. Only `lazy_command` (if any) has its module imported."""
    parser = _Parser(
        prog="dynconf" if os.path.basename(sys.argv[0]) == "dynconf" else "python -m dynconf",
        description="Dynamic Confidence for spiking neural networks: runs, metrics, oracles.",
    )
    parser.add_argument("--version", action="version", version=f"dynconf {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def sub(name: str, help_text: str):
        p = subs.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    runs.add_commands(sub)  # import, info
    evaluate.add_commands(sub)  # evaluate, oracle, sweep, select

    for name, (module_name, help_text) in LAZY_COMMANDS.items():
        if name != lazy_command:
            sub(name, f"{help_text} [run `{name} --help` for options]")
            continue
        module = _import_command_module(name, module_name)
        p = sub(name, (module.__doc__ or help_text).strip().splitlines()[0])
        module.add_arguments(p)
        # A module may say how its result reads without --json (format_text), else key: value.
        p.set_defaults(
            func=module.run_command,
            lazy=True,
            text=getattr(module, "format_text", None),
            passes_through=getattr(module, "PASSES_THROUGH", False),
        )
    return parser


def _import_command_module(command: str, module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise DynconfError(
                f"command '{command}' is not available in this checkout ({module_name} missing)"
            ) from None
        raise DynconfError(
            f"command '{command}' needs the package '{exc.name}', which is not installed"
        ) from None


def _find_command(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _summary(result: dict) -> str:
    """Human text for a lazy command's dict result."""
    return "\n".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, (list, dict)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = _find_command(argv)
        parser = build_parser(command if command in LAZY_COMMANDS else None)
        args, extra = parser.parse_known_args(argv)
        if extra:  # unknown options go through only to a command that takes them (app)
            if not getattr(args, "passes_through", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.passthrough = extra
        args.argv = argv  # for the "created" record of commands that write runs
        if getattr(args, "lazy", False):
            result = args.func(args)
            text = args.text(result) if args.text else _summary(result)
        else:
            result, text = args.func(args)
        print(json.dumps(result, allow_nan=False) if args.json else text, flush=True)
        return 0
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix filters do. Point stdout
        # at /dev/null so the interpreter's final flush cannot raise the error again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except DynconfError as exc:
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except OSError as exc:
        if os.environ.get("DYNCONF_DEBUG") or exc.errno not in WRITE_ERRNOS or not exc.filename:
            return _internal_error(exc)
        verb = "cannot write" if _find_command(argv) in WRITING_COMMANDS else "cannot access"
        sys.stderr.write(f"error: {verb} {exc.filename}: {exc.strerror or exc}\n")
        return 2
    except Exception as exc:
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    if os.environ.get("DYNCONF_DEBUG"):
        raise exc
    sys.stderr.write(
        f"internal error: {type(exc).__name__}: {_one_line(exc)} "
        "(set DYNCONF_DEBUG=1 for the traceback)\n"
    )
    return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

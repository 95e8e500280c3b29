"""Start the dashboard: `dynconf app [--runs DIR]... [--data DIR] [--server.OPTION VALUE]...`.

Runs ``streamlit run`` on the app's entry script inside the installed package
(``dynconf/app/main.py``), from any directory. The app lists the runs in the ``--runs``
folders (first wins on a name clash), then those of ``DYNCONF_RUNS``, the current
directory's ``runs/`` and ``cached_runs/``, the bundled demo runs, and the user's own runs in
``DYNCONF_WORK`` (else ``./work_runs``). Options of the form ``--section.name VALUE``
(``--server.port 8502``, ``--server.headless true``) go to Streamlit unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from dynconf.core.roots import (
    RUNS_ENV,
    WORK_ENV,
    default_run_roots,
    default_work_root,
    split_paths,
    unique_paths,
)
from dynconf.errors import DynconfError

DATA_ENV = "DYNCONF_DATA"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding this dynconf
# Streamlit settings the app is made for (a clone reads the same from .streamlit/config.toml);
# an option given on the command line wins.
STREAMLIT_DEFAULTS = {
    "--browser.gatherUsageStats": "false",
    "--client.toolbarMode": "viewer",
    "--server.maxUploadSize": "200",
}
PASSES_THROUGH = True  # cli/__init__.py hands unknown --section.name options to this command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of runs to list (repeatable; listed before the default folders)",
    )
    parser.add_argument(
        "--data", default=None, metavar="DIR", help="dataset root for input images (DYNCONF_DATA)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the Streamlit command and the runs folders instead of starting it",
    )


def streamlit_options(extra: list[str]) -> list[str]:
    """The ``--section.name [VALUE]`` options for Streamlit, with this app's defaults for
    those not given. Anything that is not such an option is refused."""
    given = set()
    for arg in extra:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            if not name.startswith("--") or "." not in name:
                raise DynconfError(f"unrecognized argument {arg!r} (Streamlit options look "
                                   "like --server.port 8502)")  # fmt: skip
            given.add(name)
    defaults = [x for k, v in STREAMLIT_DEFAULTS.items() if k not in given for x in (k, v)]
    return [*defaults, *extra]


def runs_folders(extra_runs: list[str]) -> list[Path]:
    """--runs folders (each must be a directory), then DYNCONF_RUNS, then the defaults."""
    given = []
    for value in extra_runs:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise DynconfError(f"--runs {value}: not a directory")
        given.append(path.resolve())
    from_env = [p.resolve() for p in split_paths(os.environ.get(RUNS_ENV))]
    defaults = [p.resolve() for p in default_run_roots()]
    return unique_paths([*given, *from_env, *defaults])


def app_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment the dashboard runs in: its runs folders, work root and data root."""
    env = dict(os.environ)
    env[RUNS_ENV] = os.pathsep.join(str(p) for p in runs_folders(args.runs))
    env[WORK_ENV] = str(default_work_root().resolve())
    if args.data is not None:
        data = Path(args.data).expanduser()
        if not data.is_dir():
            raise DynconfError(f"--data {args.data}: not a directory")
        env[DATA_ENV] = str(data.resolve())
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p
    )
    return env


def entry_script() -> Path:
    """The app's entry script inside this package."""
    return PACKAGE_PARENT / "dynconf" / "app" / "main.py"


def run_command(args: argparse.Namespace) -> dict:
    if importlib.util.find_spec("streamlit") is None:
        raise DynconfError("`dynconf app` needs Streamlit: pip install 'dynconf[app]'")
    env = app_environment(args)
    cmd = [sys.executable, "-m", "streamlit", "run", str(entry_script()),
           *streamlit_options(list(getattr(args, "passthrough", [])))]  # fmt: skip
    if args.dry_run:
        return {
            "command": cmd,
            "runs": env[RUNS_ENV].split(os.pathsep),
            "work": env[WORK_ENV],
            "data": env.get(DATA_ENV),
        }
    sys.stdout.flush()
    if os.name == "posix":
        os.execve(sys.executable, cmd, env)  # Streamlit takes this process (and its signals)
    return {"returncode": subprocess.call(cmd, env=env)}


def format_text(result: dict) -> str:
    if "command" not in result:
        return f"streamlit exited with status {result['returncode']}"
    lines = ["command: " + " ".join(result["command"]), "runs folders:"]
    lines += [f"  {folder}" for folder in result["runs"]]
    lines.append(f"your runs: {result['work']}")
    if result["data"]:
        lines.append(f"data: {result['data']}")
    return "\n".join(lines)

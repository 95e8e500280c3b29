"""Running dynconf on a lent GPU machine, within what travels there (64 MiB) and back (8 files
of 16 MiB): lease/README.md says how a session uses it.

- jpegpack: an image tree (CIFAR-10's 60,000 JPEGs) as one small file, and back, byte for byte;
- bundle: result files as parts that fit the way back, rebuilt and checked on return;
- travel: what would travel, and the big shipped runs kept out of it for one call;
- paper_demo: the one GPU command (train against a deadline, simulate, pack);
- assemble: the returned files, checked and re-simulated here, installed as a run;
- paper_table: a run's numbers beside the Dynamic Confidence demo's.

Every command prints one JSON line, or one ``error:`` line and exit status 2 (print_result).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from dynconf.errors import DynconfError


def print_result(compute: Callable[[], dict]) -> int:
    """What every lease command does with its result: one JSON line on stdout and exit 0, or
    for anything refused (a DynconfError, a failed write) one line ``error: ...`` on stderr
    and exit 2."""
    try:
        result = compute()
    except (DynconfError, OSError, json.JSONDecodeError) as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        return 2
    print(json.dumps(result), flush=True)
    return 0

"""The work folder of a resumable run in the making (``.NAME.partial`` beside the run).

`simulate` and `record` write each finished batch there and resume a killed job by file name,
so the folder must only ever hold batches of the same job: ``claim`` records the job's
settings on first use and refuses to continue with other ones (another checkpoint, T,
sample plan, batch size, encoder, ...), which would splice foreign results into the run.
"""

from __future__ import annotations

import json
from pathlib import Path

from dynconf.core.atomic import write_json_atomic
from dynconf.errors import DataError

SETTINGS_FILE = "settings.json"


def claim(work: Path, settings: dict, what: str) -> None:
    """Claim ``work`` for a job with ``settings``; ``what`` says which settings (message)."""
    record = work / SETTINGS_FILE
    if record.exists():
        try:
            previous = json.loads(record.read_text())
        except ValueError:
            previous = None
        if previous != settings:
            raise DataError(
                f"{work} holds partial results of a {what}; delete it or repeat that job exactly"
            )
    else:
        write_json_atomic(record, settings, indent=None)

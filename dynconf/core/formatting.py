"""The one way dynconf writes a fraction as a percentage, in the CLI, the app and exports."""

from __future__ import annotations


def pct(x: float | None, digits: int = 2) -> str:
    """0.8812 -> "88.12 %"; None -> "n/a"."""
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"

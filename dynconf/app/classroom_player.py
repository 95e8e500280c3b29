"""The Classroom's playback, painted in the browser (``classroom_assets/``).

While the server steps through time, every step costs a rerun and a figure round trip, so
steps are skipped or late at a fast pace. Instead, Play sends the timeline arrays once (each
sample's exit step and whether it answered right, the watched sample's confidence) to one
``st.components.v2`` component, which paints every step t at the chosen pace: the sample
grid, the numbers, the confidence line and the exits so far, the same quantities as
``dynconf.core.timeline``. When the play ends or is paused, the step reached comes back as
``done`` and the page draws it with the exported figures.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dynconf.report.style import COLORS
from dynconf.report.timeline import RUNNING_COLOR, grid_shape, label_corner

ASSETS = Path(__file__).with_name("classroom_assets")
GRID_HEIGHT = 250  # px: the grid and the two charts fit above a 1024x768 projector's fold
SIDE_HEIGHT = 120


@cache
def _component() -> Any:
    read = lambda name: (ASSETS / name).read_text(encoding="utf-8")  # noqa: E731
    return st.components.v2.component(
        "dynconf.classroom_player",
        html=read("player.html"),
        css=read("player.css"),
        js=read("player.js"),
        isolate_styles=False,
    )


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def message(an: Any, res: Any, threshold: float, t0: int, seconds: float, stop_all: bool,
            watched: int, play: int) -> dict:  # fmt: skip
    """What the browser needs to paint steps t0..T of this play (JSON; arrays in base64)."""
    dec, data = an.decoded, an.data
    T, N = int(dec.T), int(dec.N)
    rows, cols = grid_shape(N)
    conf = np.asarray(dec.confidence[:, watched], dtype=float)
    sid = int(watched) if data.ids is None else int(data.ids[watched])
    return {
        "play": int(play),
        "T": T,
        "N": N,
        "C": float(threshold),
        "C_text": f"{threshold:.4g}",
        "t0": int(min(max(t0, 1), T)),
        "seconds": float(seconds),
        "stop_all": bool(stop_all),
        "rows": rows,
        "cols": cols,
        "grid_height": GRID_HEIGHT,
        "side_height": SIDE_HEIGHT,
        "steps": _b64(np.asarray(res.exit_steps, dtype="<u2")),
        "correct": _b64(np.asarray(res.correct, dtype=np.uint8)),
        "watched": int(watched),
        "watched_exit": int(res.exit_steps[watched]),
        "conf": [round(float(v), 6) for v in conf],
        "conf_title": f"Sample id {sid}: confidence",
        "corner": label_corner(conf, threshold),
        "colors": {
            "running": RUNNING_COLOR,
            "right": COLORS["correct"],
            "wrong": COLORS["wrong"],
            "current": COLORS["current"],
            "policy": COLORS["policy"],
            "baseline": COLORS["baseline"],
        },
    }


def play(msg: dict, on_done: Any, key: str = "classroom-player") -> Any:
    """Mount the player; ``on_done`` runs when the play ends or is paused (the step reached
    is ``st.session_state[key]["done"]["t"]``)."""
    return _component()(data=msg, key=key, on_done_change=on_done)

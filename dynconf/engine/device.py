"""Where the engine runs: the one device choice and the one thread setting of every command."""

from __future__ import annotations

import os


def pick_device(name: str = "auto"):
    """``auto``: CUDA when present, else the CPU; otherwise a torch device name (cuda:1)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(threads: int | None) -> int:
    """Give torch ``threads`` CPU threads (None: one per core); returns the number set."""
    import torch

    count = threads or os.cpu_count() or 1
    torch.set_num_threads(count)
    return count


def device_label(device) -> str:
    """``cpu``, or the GPU's name (``NVIDIA H200``), for a command's result."""
    import torch

    return str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)

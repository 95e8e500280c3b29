"""Read a .pt outputs file (a dict of named tensors) for `import`, without unpickling code.

torch.load with weights_only=True refuses anything but tensors and plain containers, so a
hostile file cannot run code. This lives in the engine because the core never imports torch;
the `import` command passes it to dynconf.core.importing.import_outputs as ``read_pt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynconf.errors import RunFormatError


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFormatError(f"{path}: cannot read as a safe torch file ({msg})") from None
    if not isinstance(obj, dict):
        raise RunFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise RunFormatError(f"{path}: entry {key!r} is not a named tensor")
        arrays[key] = value.detach().cpu().numpy()
    return arrays

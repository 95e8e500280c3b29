"""Read a .pt outputs file (a dict of named tensors, or one bare tensor) for `import`, without
unpickling code.

torch.load with weights_only=True refuses anything but tensors and plain containers, so a
hostile file cannot run code. This lives in the engine because the core never imports torch;
the `import` command passes it to dynconf.core.importing.import_outputs as ``read_pt``.

Tensors numpy cannot hold are converted where that is exact and refused otherwise, each with
a one-line RunFormatError: bfloat16 and the float8 types become float32 (every such value is
a float32 value, so nothing changes); quantized tensors (qint8, ...) and sparse or other
non-strided layouts are refused (dequantize or densify them explicitly, which decides the
meaning and the memory). torch's own warnings are captured, not printed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dynconf.core.safeopen import open_regular
from dynconf.engine.checkpoint import torch_refusal
from dynconf.errors import RunFormatError


def read_tensors(path: Path) -> dict[str, np.ndarray] | np.ndarray:
    """A dict of named tensors as a dict of arrays; a bare tensor (``torch.save(logits, f)``,
    the outputs alone, or a labels file) as one array."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about sparse invariants, storage, ...
        try:
            with open_regular(path, "torch file") as fh:
                obj = torch.load(fh, map_location="cpu", weights_only=True)
        except RunFormatError:
            raise
        except Exception as exc:  # torch raises many types for damaged or unsafe files
            msg = torch_refusal(exc)
            raise RunFormatError(f"{path}: cannot read as a safe torch file ({msg})") from None
        if isinstance(obj, torch.Tensor):
            return _to_numpy(torch, obj, str(path))
        if not isinstance(obj, dict):
            raise RunFormatError(
                f"{path}: expected a tensor or a dict of tensors, got {type(obj).__name__}"
            )
        arrays = {}
        for key, value in obj.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise RunFormatError(f"{path}: entry {key!r} is not a named tensor")
            arrays[key] = _to_numpy(torch, value, f"{path}[{key}]")
    return arrays


def _to_numpy(torch, tensor, where: str) -> np.ndarray:
    if tensor.is_quantized:
        raise RunFormatError(
            f"{where}: quantized tensor ({tensor.dtype}); save t.dequantize() instead"
        )
    if tensor.layout != torch.strided:
        raise RunFormatError(
            f"{where}: {str(tensor.layout).replace('torch.', '')} tensor; save t.to_dense() instead"
        )
    if tensor.is_complex():
        raise RunFormatError(f"{where}: complex tensor ({tensor.dtype}); outputs must be real")
    if tensor.dtype.is_floating_point and tensor.dtype not in (
        torch.float16,
        torch.float32,
        torch.float64,
    ):
        tensor = tensor.to(torch.float32)  # bfloat16 / float8: exact in float32
    try:
        return tensor.detach().cpu().resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFormatError(
            f"{where}: tensor of type {tensor.dtype} cannot be read ({msg})"
        ) from None

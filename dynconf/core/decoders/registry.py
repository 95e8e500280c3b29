"""The one list of confidence decoders.

CLI choices, the app's menu, figure captions, export and the engine's early exit all read
``DECODERS``. To add a decoder, write a module in this folder that defines ``DECODER`` (see
base.py), then name it in the import and in the tuple below (docs/ARCHITECTURE.md).
"""

from dynconf.core.decoders import entropy, gap, margin, mean, paper, step
from dynconf.core.decoders.base import Decoder
from dynconf.errors import DynconfError

DECODERS: dict[str, Decoder] = {
    d.name: d
    for d in (paper.DECODER, mean.DECODER, step.DECODER, entropy.DECODER, margin.DECODER,
              gap.DECODER)
}  # fmt: skip


def decoder_names() -> tuple[str, ...]:
    return tuple(DECODERS)


def get_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]
    except (KeyError, TypeError):
        raise DynconfError(
            f"unknown decoder {name!r} (choose from {', '.join(DECODERS)})"
        ) from None

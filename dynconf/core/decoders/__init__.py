"""Confidence decoders: per-step outputs -> confidence c_t, prediction and correctness [T, N].

One module per decoder (paper, mean, step, entropy, margin, gap), their common base in
base.py, the one list of them in registry.py, and decoding a whole split in decode.py.
"""

from dynconf.core.decoders.base import Decoder, TopkBlock
from dynconf.core.decoders.decode import (
    Decoded,
    check_kappa,
    class_probabilities,
    decode,
    decode_outputs,
    decode_split,
    kappa_label,
)
from dynconf.core.decoders.registry import DECODERS, decoder_names, get_decoder

__all__ = [
    "DECODERS",
    "Decoded",
    "Decoder",
    "TopkBlock",
    "check_kappa",
    "class_probabilities",
    "decode",
    "decode_outputs",
    "decode_split",
    "decoder_names",
    "get_decoder",
    "kappa_label",
]

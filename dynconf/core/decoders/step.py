"""Per-step output: c_t = max softmax(z_t), the current step's output alone (no memory).

It ignores the accumulated evidence, so it is the noisy reading the paper argues against;
kept as a contrast. It needs the full per-step outputs (top-k storage keeps only S_t).
"""

import numpy as np

from dynconf.core.decoders.base import Decoder, softmax_terms


class Step(Decoder):
    name = "step"
    label = "per-step output: max softmax(z_t)"
    uses_kappa = False

    def logits(self, S, z, steps, kappa):
        return z

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        return 1.0 / softmax_terms(z, 1.0)[2]


DECODER = Step()

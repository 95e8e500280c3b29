"""Mean output: c_t = max softmax(S_t / t), the softmax of the running mean of the outputs.

The scale grows with t, so this is the paper's decoder with kappa = t: it needs no kappa.
"""

import numpy as np

from dynconf.core.decoders.base import Decoder, TopkBlock, softmax_terms


class Mean(Decoder):
    name = "mean"
    label = "mean output: max softmax(S_t / t)"
    uses_kappa = False

    def logits(self, S, z, steps, kappa):
        return S / np.asarray(steps, dtype=np.float64)[..., None]

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        return 1.0 / softmax_terms(S, np.asarray(steps, dtype=np.float64)[..., None])[2]

    def confidence_topk(self, block: TopkBlock, kappa) -> np.ndarray:
        return np.exp(-block.lognorm(None))  # the row stored for scale s = t


DECODER = Mean()

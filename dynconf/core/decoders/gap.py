"""Top-2 gap: c_t = 1 - p_t[top2] / p_t[top1] = 1 - exp(-(S_t[top1] - S_t[top2]) / kappa).

A monotone map of the raw gap between the two largest accumulated outputs onto [0, 1): a
threshold C on it is a threshold kappa * log(1 / (1 - C)) on the raw gap, the quantity
SNNCutoff's top-k cutoff reads. Unlike the softmax decoders it ignores every class but the
top two, so it needs only the top-2 values of a top-k run.
"""

import numpy as np

from dynconf.core.decoders.base import Decoder, TopkBlock


class Gap(Decoder):
    name = "gap"
    label = "top-2 gap: 1 - exp(-(S_top1 - S_top2) / kappa)"

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        K = S.shape[-1]
        ordered = np.partition(S, (K - 2, K - 1), axis=-1)
        return 1.0 - np.exp((ordered[..., K - 2] - ordered[..., K - 1]) / kappa)

    def confidence_topk(self, block: TopkBlock, kappa) -> np.ndarray:
        top = block.top(2)
        return 1.0 - np.exp((top[:, :, 1] - top[:, :, 0]) / kappa)


DECODER = Gap()

"""Margin: c_t = p_t[top1] - p_t[top2] with p_t = softmax(S_t / kappa).

Low when two classes are close, whatever the absolute level of the top probability.
"""

import numpy as np

from dynconf.core.decoders.base import Decoder, TopkBlock, softmax_terms


class Margin(Decoder):
    name = "margin"
    label = "margin: top-1 minus top-2 of p_t"

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        x, _, Z = softmax_terms(S, kappa)
        K = S.shape[-1]
        second = np.partition(x, K - 2, axis=-1)[..., K - 2]
        return (1.0 - np.exp(second)) / Z

    def confidence_topk(self, block: TopkBlock, kappa) -> np.ndarray:
        top = block.top(2)
        top1 = np.exp(-block.lognorm(kappa))
        return top1 * (1.0 - np.exp((top[:, :, 1] - top[:, :, 0]) / kappa))


DECODER = Margin()

"""The paper's decoder: c_t = max softmax(S_t / kappa), kappa fixed (default T_max).

Dividing by a fixed kappa damps early steps (S_t is small then), so a lucky first step
cannot end a run; this is Dynamic Confidence as published (docs/METHOD.md section 2).
"""

import numpy as np

from dynconf.core.decoders.base import Decoder, TopkBlock, softmax_terms


class Paper(Decoder):
    name = "paper"
    label = "paper: max softmax(S_t / kappa)"

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        return 1.0 / softmax_terms(S, kappa)[2]

    def confidence_topk(self, block: TopkBlock, kappa) -> np.ndarray:
        return np.exp(-block.lognorm(kappa))  # max p = 1 / sum exp((S - S1) / kappa)


DECODER = Paper()

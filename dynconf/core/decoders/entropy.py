"""Normalised entropy: c_t = 1 - H(p_t) / log K with p_t = softmax(S_t / kappa).

Uses the whole distribution rather than its top entry: a sample split between two classes
scores lower than one whose runner-up votes are spread thinly.
"""

import math

import numpy as np

from dynconf.core.decoders.base import Decoder, softmax_terms


class Entropy(Decoder):
    name = "entropy"
    label = "normalised entropy: 1 - H(p_t) / log K"

    def confidence(self, S, z, steps, kappa) -> np.ndarray:
        x, e, Z = softmax_terms(S, kappa)
        H = np.log(Z) - (e * x).sum(axis=-1) / Z  # since log p = x - log Z
        return np.clip(1.0 - H / math.log(S.shape[-1]), 0.0, 1.0)


DECODER = Entropy()

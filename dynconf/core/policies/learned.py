"""Learned: a small logistic-regression stopping model on causal features, cross-fitted.

At every step t the model sees only what is known by then (FEATURES): the decoder's
confidence c_t, its change since t-1, whether the answer argmax S_t just changed, how long it
has held (divided by T_max), t / T_max, the running maximum of c, and c_t * t / T_max. Its
target is "safe to stop": the stays-correct oracle step is <= t (the answer is right now and
stays right to T_max). The score r_t = sigmoid(w . standardised features + b) is then a
confidence like any other, and a sample exits at the first t with r_t > C; else T_max.

Cross-fitting, so that C is not chosen on data the model was trained on: calibration samples
are split into ``folds`` (fixed seed); each fold's scores come from a model trained on the
other folds, C is the fastest threshold on those out-of-fold scores meeting the target
(the threshold rule's exact sweep over every distinct score; ``threshold`` given: that C),
and the final model, used on every other split, is
trained on all of calibration. On the calibration split itself the policy reports the
out-of-fold scores (kept on the Decoded), so its calibration numbers are honest.

scikit-learn (imported only when fitting) trains; scoring is plain numpy in a fixed order of
elementwise operations, identical in the cached and the online form, so both exit a sample
at the same step. Training uses every step of at most MAX_TRAIN_SAMPLES calibration samples
per model (sampled with a fixed seed), which bounds the cost at large N and T.
"""

from __future__ import annotations

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.oracle import _oracle_steps
from dynconf.core.policies.base import ExitPolicy, OnlineRule, check_threshold
from dynconf.core.policies.patience import stable_steps
from dynconf.core.policies.threshold import exact_choice, threshold_cache
from dynconf.errors import DynconfError

FEATURES = (
    "confidence",
    "confidence change",
    "answer changed",
    "answer held / T_max",
    "t / T_max",
    "running max confidence",
    "confidence x t / T_max",
)
FOLDS = 5
SEED = 0
MAX_TRAIN_ROWS = 400_000  # steps x samples per model
CHUNK_ELEMENTS = 1 << 21


def feature_list(c, dc, changed, run, t, running_max, T_max: int) -> list[np.ndarray]:
    """The features, elementwise, in the order of FEATURES (shared by both forms)."""
    T_max = float(T_max)
    tt = t / T_max
    return [c, dc, changed, run / T_max, tt, running_max, c * tt]


def split_features(conf: np.ndarray, pred: np.ndarray, T_max: int) -> list[np.ndarray]:
    """The features of a block of a split: confidence and prediction [T, B] -> F x [T, B]."""
    T = conf.shape[0]
    dc = np.zeros_like(conf)
    changed = np.zeros_like(conf)
    if T > 1:
        dc[1:] = conf[1:] - conf[:-1]
        changed[1:] = pred[1:] != pred[:-1]
    run = stable_steps(pred).astype(np.float64)
    t = np.broadcast_to(np.arange(1, T + 1, dtype=np.float64)[:, None], conf.shape)
    return feature_list(conf, dc, changed, run, t, np.maximum.accumulate(conf, axis=0), T_max)


def linear_score(features: list[np.ndarray], model: Learned) -> np.ndarray:
    """sigmoid(b + sum_f w_f (x_f - mean_f) / scale_f), summed in FEATURES order."""
    acc = np.full(np.shape(features[0]), model.bias_)
    for x, w, m, s in zip(features, model.weights_, model.means_, model.scales_, strict=True):
        acc = acc + w * ((x - m) / s)
    return 1.0 / (1.0 + np.exp(-acc))


def _train(conf, pred, safe, T_max: int, columns: np.ndarray, rng) -> tuple:
    """(weights, bias, means, scales) of a logistic regression on the given samples."""
    from sklearn.linear_model import LogisticRegression

    T = conf.shape[0]
    most = max(1, MAX_TRAIN_ROWS // T)
    if len(columns) > most:
        columns = np.sort(rng.choice(columns, most, replace=False))
    feats = split_features(conf[:, columns], pred[:, columns], T_max)
    X = np.stack([f.reshape(-1) for f in feats], axis=1)
    y = safe[:, columns].reshape(-1)
    means = X.mean(axis=0)
    scales = X.std(axis=0)
    scales[scales == 0] = 1.0
    if y.all() or not y.any():  # one class only: a constant score
        return (0.0,) * X.shape[1], 10.0 if y.all() else -10.0, tuple(means), tuple(scales)
    model = LogisticRegression(C=1.0, max_iter=500, random_state=SEED)
    model.fit((X - means) / scales, y)
    return (
        tuple(float(w) for w in model.coef_[0]),
        float(model.intercept_[0]),
        tuple(float(m) for m in means),
        tuple(float(s) for s in scales),
    )


class LearnedOnline(OnlineRule):
    def __init__(self, policy: Learned, decoder: str, kappa: float | None, T_max: int):
        self.policy, self.decoder, self.kappa, self.T_max = (
            policy,
            get_decoder(decoder),
            kappa,
            T_max,
        )
        self.state = None  # previous confidence, previous answer, run length, running max

    def step(self, S, z, t):
        t = np.asarray(t)
        tf = t.astype(np.float64)
        c = self.decoder.confidence(S, z, tf, self.kappa)
        answer = S.argmax(axis=1)
        fresh = t == 1
        if self.state is None:
            self.state = [c.copy(), answer.copy(), np.zeros(len(t)), c.copy()]
        prev_c, prev_answer, run, running_max = self.state
        dc = np.where(fresh, 0.0, c - prev_c)
        changed = np.where(fresh, False, answer != prev_answer).astype(np.float64)
        run = np.where(fresh | (changed > 0), 1.0, run + 1.0)
        running_max = np.where(fresh, c, np.maximum(running_max, c))
        self.state = [c, answer, run, running_max]
        feats = feature_list(c, dc, changed, run, tf, running_max, self.T_max)
        return linear_score(feats, self.policy) > self.policy.threshold_

    def keep(self, index):
        if self.state is not None:
            self.state = [a[index] for a in self.state]

    def restart(self, rows):
        pass  # a row at t = 1 ignores its previous state


class Learned(ExitPolicy):
    """Threshold C on a cross-fitted logistic-regression stopping score (module doc).

    The fit trains the model on calibration (``folds``-fold cross-fitting) and chooses C on
    the out-of-fold scores (``threshold`` None) or keeps the given one."""

    name = "learned"
    summary = (
        "exit once a cross-fitted logistic-regression score of causal features (confidence, "
        "its change, answer stability, t) is above C"
    )

    def __init__(self, threshold=None, folds: int = FOLDS):
        self.threshold = threshold
        self.folds = folds

    def describe(self) -> str:
        self.check_fitted()
        return f"C={self.threshold_:.4g}, {len(FEATURES)} features, {self.folds}-fold cross-fit"

    @property
    def params(self) -> dict:
        self.check_fitted()
        return {
            "threshold": self.threshold_,
            "weights": list(self.weights_),
            "bias": self.bias_,
            "means": list(self.means_),
            "scales": list(self.scales_),
            "folds": int(self.folds),
        }

    def model_key(self) -> tuple:
        return ("learned_oof", self.weights_, self.bias_, self.means_, self.scales_)

    def scored(self, dec: Decoded, out_of_fold: bool = True) -> Decoded:
        """dec with its confidence replaced by the model's score (out-of-fold on the split
        the model was cross-fitted on, unless ``out_of_fold`` is False), kept on dec."""
        self.check_fitted()
        held = dec.cache.get(self.model_key()) if out_of_fold else None
        held = held or dec.cache.get(("learned", self.model_key()))
        if held is not None:
            return held
        scores = np.empty((dec.T, dec.N))
        block = max(1, CHUNK_ELEMENTS // dec.T)
        for lo in range(0, dec.N, block):
            hi = min(dec.N, lo + block)
            feats = split_features(dec.confidence[:, lo:hi], dec.prediction[:, lo:hi], dec.T)
            scores[:, lo:hi] = linear_score(feats, self)
        out = dec.with_confidence(scores)
        dec.cache[("learned", self.model_key())] = out
        return out

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        return threshold_cache(self.scored(dec)).exit_steps(self.threshold_)

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        self.check_fitted()
        return LearnedOnline(self, decoder, kappa, T_max)

    def _set_model(self, params: tuple) -> None:
        self.weights_, self.bias_, self.means_, self.scales_ = params

    def _cross_fit(self, cal: Decoded) -> None:
        """Train on cal: the final model, with its out-of-fold scores kept on cal."""
        folds = int(self.folds)
        if folds < 2 or folds > cal.N:
            raise DynconfError(f"learned needs at least {max(folds, 2)} calibration samples")
        key = ("learned_fit", folds)
        if key not in cal.cache:
            rng = np.random.default_rng(SEED)
            steps = np.arange(1, cal.T + 1)[:, None]
            safe = _oracle_steps(cal, "stays_correct")[None, :] <= steps
            conf, pred = cal.confidence, cal.prediction
            fold_of = rng.permutation(cal.N) % folds
            oof = np.empty((cal.T, cal.N))
            part = Learned(folds=folds)
            for k in range(folds):
                held_out = np.flatnonzero(fold_of == k)
                part._set_model(_train(conf, pred, safe, cal.T, np.flatnonzero(fold_of != k), rng))
                feats = split_features(conf[:, held_out], pred[:, held_out], cal.T)
                oof[:, held_out] = linear_score(feats, part)
            final = _train(conf, pred, safe, cal.T, np.arange(cal.N), rng)
            cal.cache[key] = (final, oof)
        final, oof = cal.cache[key]
        self._set_model(final)
        cal.cache[self.model_key()] = cal.with_confidence(oof)

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> Learned:
        self.clear_fit()
        self._cross_fit(cal)
        if self.threshold is not None:
            self.threshold_ = check_threshold(self.threshold)
        else:
            # The generic choice over the out-of-fold scores, exact over every cut.
            self.threshold_ = exact_choice(self.scored(cal), tolerance)[0]
        return self

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        if not self.is_fitted:
            self.fit(cal)
        # The final model's own scores: the same grid whether or not this process holds the
        # out-of-fold scores (a fit read back from the cache does not).
        grid = threshold_cache(self.scored(cal, out_of_fold=False)).default_thresholds(400)
        out = []
        for c in np.union1d(grid, [1.0]):
            policy = Learned(float(c), self.folds)
            policy.set_fitted({**self.fitted_state(), "threshold_": float(c)})
            out.append(policy)
        return out

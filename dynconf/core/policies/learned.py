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

Training minimises scikit-learn's LogisticRegression(C=1) objective (L2 on the weights,
not the bias) to its unique optimum with Newton steps (logistic_fit; plain numpy, no
scikit-learn); scoring is plain numpy in a fixed order of elementwise operations, identical
in the cached and the online form, so both exit a sample at the same step. Training uses
every step of at most MAX_TRAIN_ROWS // T calibration samples per model (sampled with a
fixed seed), which bounds the cost at large N and T.
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
SHARED_ELEMENTS = 1 << 23  # features of a whole calibration split kept up to this size


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


MAX_NEWTON_STEPS = 100
NEAR = 1e-9  # Newton decrement per row below which steps are taken in full
DONE = 1e-20  # and below which the fit has converged


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def logistic_fit(X: np.ndarray, y: np.ndarray, l2: float = 1.0, start=None) -> np.ndarray:
    """theta = (w, b) minimising L = sum_i softplus(z_i) - y_i z_i + l2 / 2 |w|^2, z = w . x_i
    + b, for features by rows (X: [F, n]) and the bias unpenalised: scikit-learn's
    LogisticRegression(C=1 / l2) objective, solved to its unique optimum (L is strictly convex
    for l2 > 0 and y of both classes).

    Newton steps: the Hessian is positive definite, so each step is a descent direction, and
    far from the optimum a backtracking line search on L makes every step a decrease. Near
    it the last Hessian is reused (each step then costs one pass for the gradient; the exact
    gradient fixes the optimum, the curvature only how fast it is reached). ``start``:
    a point to begin at (e.g. the optimum on a superset of the rows); else w = 0 with b at
    the log-odds of y, the optimum along b alone."""
    F, n = X.shape
    y = y.astype(np.float64)
    y_sum = float(y.sum())
    if start is None:
        theta = np.zeros(F + 1)
        theta[F] = np.log(y_sum / (n - y_sum))
    else:
        theta = np.array(start, dtype=np.float64)
    penalty = np.full(F + 1, float(l2))
    penalty[F] = 0.0

    def objective(th: np.ndarray, z: np.ndarray) -> float:
        return float(softplus(z).sum() - y @ z + 0.5 * l2 * (th[:F] @ th[:F]))

    z = theta[:F] @ X + theta[F]
    value = objective(theta, z)
    hess = np.empty((F + 1, F + 1))
    previous = np.inf
    for _ in range(MAX_NEWTON_STEPS):
        with np.errstate(over="ignore"):  # exp(-z) = inf gives p = 0, as it should
            p = 1.0 / (1.0 + np.exp(-z))
        grad = np.append(X @ (p - y), p.sum() - y_sum) + penalty * theta
        if previous >= NEAR * n:  # near the optimum the last curvature serves
            s = p * (1.0 - p)
            sx = X * s
            hess[:F, :F] = sx @ X.T
            hess[:F, F] = hess[F, :F] = sx.sum(axis=1)
            hess[F, F] = s.sum()
            hess[np.diag_indices(F + 1)] += penalty
        step = np.linalg.solve(hess, grad)
        decrement = float(grad @ step)  # ~ twice the gain a full step promises
        # Converged: what is left of the step is ~ sqrt(decrement / n) per parameter, far
        # below any score's rounding; or the gradient no longer shrinks (its rounding floor).
        if not decrement > DONE * n or (decrement < NEAR * n and decrement > 0.5 * previous):
            break
        previous = decrement
        dz = step[:F] @ X + step[F]
        size = 1.0
        # Far from the optimum, backtrack (Armijo) until L decreases; near it, where L's
        # rounding hides the gain, full steps converge (the curvature is accurate there).
        while decrement >= NEAR * n and size > 1e-10:
            trial = objective(theta - size * step, z - size * dz)
            if trial <= value - 0.25 * size * decrement:
                value = trial
                break
            size *= 0.5
        theta = theta - size * step
        z = z - size * dz
    return theta


class SplitFeatures:
    """split_features of any set of a split's samples; computed once for the whole split
    when that is small (SHARED_ELEMENTS), since the features of a sample depend on that
    sample alone and every fold reads most of them."""

    def __init__(self, conf: np.ndarray, pred: np.ndarray, T_max: int):
        self.conf, self.pred, self.T_max = conf, pred, T_max
        small = len(FEATURES) * conf.size <= SHARED_ELEMENTS
        self.shared = split_features(conf, pred, T_max) if small else None

    def __call__(self, columns: np.ndarray) -> list[np.ndarray]:
        if self.shared is not None:
            return [f[:, columns] for f in self.shared]
        return split_features(self.conf[:, columns], self.pred[:, columns], self.T_max)


def _train(features: SplitFeatures, safe, columns: np.ndarray, start=None) -> tuple:
    """(weights, bias, means, scales) of a logistic regression on the given samples
    (``columns``, from training_columns); ``start``: a model of the same form to begin the
    fit at (mapped into these samples' standardised coordinates)."""
    X = np.stack([f.reshape(-1) for f in features(columns)])  # [F, rows]
    y = safe[:, columns].reshape(-1)
    means = X.mean(axis=1)
    scales = X.std(axis=1)
    scales[scales == 0] = 1.0
    if y.all() or not y.any():  # one class only: a constant score
        return (0.0,) * X.shape[0], 10.0 if y.all() else -10.0, tuple(means), tuple(scales)
    X -= means[:, None]
    X /= scales[:, None]
    if start is not None:  # a model (weights, bias, means, scales) in these coordinates
        w, b, m, sd = (np.asarray(v, dtype=np.float64) for v in start)
        start = np.append(w * scales / sd, b + float(w @ ((means - m) / sd)))
    theta = logistic_fit(X, y, start=start)
    return (
        tuple(float(w) for w in theta[:-1]),
        float(theta[-1]),
        tuple(float(m) for m in means),
        tuple(float(s) for s in scales),
    )


def training_columns(columns: np.ndarray, T: int, rng) -> np.ndarray:
    """The samples one model trains on: all of ``columns``, or MAX_TRAIN_ROWS // T of them
    drawn with ``rng`` when there are more."""
    most = max(1, MAX_TRAIN_ROWS // T)
    if len(columns) > most:
        columns = np.sort(rng.choice(columns, most, replace=False))
    return columns


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
    fit_version = 2  # trained to the objective's optimum (logistic_fit)
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
            features = SplitFeatures(cal.confidence, cal.prediction, cal.T)
            fold_of = rng.permutation(cal.N) % folds
            # Draws in a fixed order (each fold's training samples, then the final model's).
            train_on = [training_columns(np.flatnonzero(fold_of != k), cal.T, rng)
                        for k in range(folds)]  # fmt: skip
            final = _train(features, safe, training_columns(np.arange(cal.N), cal.T, rng))
            # Each fold's optimum is near the final model's: starting there saves Newton
            # steps, not accuracy (the optimum is unique).
            oof = np.empty((cal.T, cal.N))
            part = Learned(folds=folds)
            for k in range(folds):
                part._set_model(_train(features, safe, train_on[k], final))
                held_out = np.flatnonzero(fold_of == k)
                block = max(1, CHUNK_ELEMENTS // cal.T)
                for lo in range(0, len(held_out), block):
                    cols = held_out[lo : lo + block]
                    oof[:, cols] = linear_score(features(cols), part)
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

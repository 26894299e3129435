"""Calibration fitted on validation logits: temperature + bias, and an FPR-targeted threshold.

All functions are pure (NumPy in, numbers out). :func:`calibrate` returns the
:class:`forensics.scoring.Calibration` stored in the checkpoint, so scan, eval and verify-ids
all apply ``prob = sigmoid((logit - bias) / temperature)`` and the same threshold.
"""

from __future__ import annotations

import numpy as np

from forensics.scoring import Calibration

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, l2: float = 1e-6, iters: int = 100
) -> tuple[float, float]:
    """Fit ``temperature`` and ``bias`` by maximum likelihood (Platt scaling, Newton's method).

    Args:
        logits: Raw model logits, shape ``(N,)``.
        labels: 0 (real) / 1 (fake), shape ``(N,)``.
        l2: Tiny ridge on the two parameters, for separable data.
        iters: Maximum Newton iterations.

    Returns:
        ``(temperature, bias)``, temperature clipped to ``[MIN_TEMPERATURE,
        MAX_TEMPERATURE]``; ``(1.0, 0.0)`` when there is only one class or the fitted slope
        is not positive (a model that ranks backwards is not "calibrated" by flipping).

    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if z.size == 0 or y.min() == y.max():
        return 1.0, 0.0
    scale = max(float(np.std(z)), 1e-6)
    x = np.stack([z / scale, np.ones_like(z)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.max(np.abs(step)) < 1e-10:
            break
    a, c = w[0] / scale, w[1]
    if not np.isfinite(a) or a <= 1e-9:
        return 1.0, 0.0
    # Separable validation data drives the slope to infinity; a bounded temperature keeps
    # probabilities informative on photos unlike the validation set.
    temperature = float(np.clip(1.0 / a, MIN_TEMPERATURE, MAX_TEMPERATURE))
    return temperature, float(-c / a)


def threshold_for_fpr(real_scores: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold with at most ``target_fpr`` of ``real_scores`` at or above it.

    A score ``>= threshold`` is called fake. With ``n`` real scores, ``floor(target_fpr * n)``
    of them may lie at or above the returned value.
    """
    s = np.sort(np.asarray(real_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0:
        raise ValueError("no real scores to set a threshold on")
    k = int(np.floor(target_fpr * s.size + 1e-9))
    if k >= s.size:
        return float(s[-1])
    return float(np.nextafter(s[k], np.inf))


def calibrate(
    logits: np.ndarray,
    labels: np.ndarray,
    target_fpr: float = 0.01,
    band_fpr: float | None = None,
) -> Calibration:
    """Fit temperature/bias, then the threshold for ``target_fpr`` on the real samples.

    Args:
        logits: Validation logits ``(N,)``.
        labels: Validation labels ``(N,)`` (0 real, 1 fake); at least one real is required.
        target_fpr: Share of real photos allowed to be called fake.
        band_fpr: When set, probabilities from the threshold for this (larger) FPR up to the
            main threshold form the ``uncertain`` band.

    Returns:
        The calibration to store with the model.

    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    temperature, bias = fit_temperature(z, y)
    base = Calibration(temperature=temperature, bias=bias)
    # Chosen on the calibrated probabilities themselves: the exact quantity verdicts compare.
    real_probs = base.prob(z[y == 0])
    threshold = threshold_for_fpr(real_probs, target_fpr)
    band = None
    if band_fpr is not None:
        low = threshold_for_fpr(real_probs, band_fpr)
        band = (low, threshold) if low < threshold else None
    return Calibration(
        temperature=temperature, bias=bias, threshold=threshold, target_fpr=target_fpr, band=band
    )

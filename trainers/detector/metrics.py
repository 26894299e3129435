"""Detection metrics (pure functions): ROC AUC, AP, EER, TPR at 1% FPR, threshold rates, ECE.

Labels are 0 (real) / 1 (fake); scores are "higher means more likely fake". Metrics that need
both classes return ``nan`` when one is missing instead of raising.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _arrays(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel().astype(int)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    return y, s


def _both(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < y.sum() < y.size


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (sklearn)."""
    from sklearn.metrics import roc_auc_score

    y, s = _arrays(labels, scores)
    return float(roc_auc_score(y, s)) if _both(y) else math.nan


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision with fakes as the positive class (sklearn)."""
    from sklearn.metrics import average_precision_score

    y, s = _arrays(labels, scores)
    return float(average_precision_score(y, s)) if _both(y) else math.nan


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` arrays of the ROC curve."""
    from sklearn.metrics import roc_curve

    y, s = _arrays(labels, scores)
    if not _both(y):
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates are equal."""
    y, _ = _arrays(labels, scores)
    if not _both(y):
        return math.nan
    fpr, tpr = roc_points(labels, scores)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    if i + 1 < fpr.size and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        # Interpolate the crossing between two ROC points.
        d0, d1 = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        t = d0 / (d0 - d1)
        return float(fpr[i] + t * (fpr[i + 1] - fpr[i]))
    return float((fpr[i] + fnr[i]) / 2.0)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """The best true-positive rate whose false-positive rate is at most ``fpr``."""
    y, _ = _arrays(labels, scores)
    if not _both(y):
        return math.nan
    f, t = roc_points(labels, scores)
    ok = f <= fpr + 1e-12
    return float(t[ok].max()) if ok.any() else 0.0


def rates_at_threshold(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, FPR and TPR when ``prob >= threshold`` is called fake."""
    y, p = _arrays(labels, probs)
    pred = p >= threshold
    real, fake = y == 0, y == 1
    return {
        "accuracy": float((pred == fake).mean()) if y.size else math.nan,
        "fpr": float(pred[real].mean()) if real.any() else math.nan,
        "tpr": float(pred[fake].mean()) if fake.any() else math.nan,
    }


def reliability(
    labels: np.ndarray, probs: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: ``(mean predicted prob, observed fake rate, count)``."""
    y, p = _arrays(labels, probs)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, weights=p, minlength=n_bins) / count
        freq = np.bincount(bins, weights=y, minlength=n_bins) / count
    return conf, freq, count


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE: count-weighted mean gap between predicted probability and observed fake rate."""
    y, _ = _arrays(labels, probs)
    if not y.size:
        return math.nan
    conf, freq, count = reliability(labels, probs, n_bins)
    ok = count > 0
    return float(np.sum(count[ok] * np.abs(conf[ok] - freq[ok])) / count.sum())


def report(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """All metrics for one comparison, as a JSON-ready dict (``nan`` becomes ``None``)."""
    y, p = _arrays(labels, probs)
    out: dict[str, Any] = {
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "auc": roc_auc(y, p),
        "ap": average_precision(y, p),
        "eer": equal_error_rate(y, p),
        "tpr_at_1fpr": tpr_at_fpr(y, p, 0.01),
        "threshold": float(threshold),
        **rates_at_threshold(y, p, threshold),
        "ece": expected_calibration_error(y, p),
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

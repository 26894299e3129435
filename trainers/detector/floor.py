"""A ceiling on false positives per real source: raise a checkpoint's threshold to meet it.

The calibrated threshold holds a target FPR on the *pooled* validation reals, so a hard real
source (heavily processed photos) inside that pool can still be flagged far more often. Given
folders of real photos the model never trained on, :func:`floor_threshold` finds the lowest
threshold at which each folder has at most ``max_fpr`` of its photos flagged, and
:func:`apply_floor` writes a copy of the checkpoint whose threshold is the larger of the two.
Temperature and bias are unchanged; the header records both thresholds and per-folder rates.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensics.scoring import Detector

from .calibrate import threshold_for_fpr
from .evaluate import evaluate_folders


def floor_threshold(
    threshold: float, real_scores: Mapping[str, np.ndarray], max_fpr: float
) -> tuple[float, dict[str, dict[str, float]]]:
    """The smallest threshold ``>= threshold`` flagging at most ``max_fpr`` of each source.

    Args:
        threshold: The current threshold (it is never lowered).
        real_scores: Calibrated scores of real photos, per source.
        max_fpr: Largest share of any source's photos allowed at or above the threshold.

    Returns:
        ``(new_threshold, {source: {"n", "fpr_before", "fpr_after", "source_threshold"}})``.

    Raises:
        ValueError: ``max_fpr`` outside ``(0, 1)`` or a source without scores.

    """
    if not 0.0 < max_fpr < 1.0:
        raise ValueError("max_fpr must be between 0 and 1")
    per_source = {}
    for name, scores in real_scores.items():
        s = np.asarray(scores, dtype=np.float64)
        if s.size == 0:
            raise ValueError(f"real source {name!r} has no scored photos")
        per_source[name] = (s, threshold_for_fpr(s, max_fpr))
    new = max([float(threshold), *(t for _, t in per_source.values())])
    report = {
        name: {
            "n": int(s.size),
            "fpr_before": float(np.mean(s >= threshold)),
            "fpr_after": float(np.mean(s >= new)),
            "source_threshold": t,
        }
        for name, (s, t) in per_source.items()
    }
    return new, report


def _owner(path: str, folders: Sequence[str | os.PathLike]) -> int:
    """Index of the first folder holding ``path`` (symlinks are not followed), else -1."""
    p = Path(os.path.abspath(path))
    return next((i for i, f in enumerate(folders) if p.is_relative_to(os.path.abspath(f))), -1)


def band_low(real_scores: Mapping[str, np.ndarray], band_fpr: float) -> float:
    """The lower edge of an uncertainty band: the score ``band_fpr`` of each source reaches.

    The band runs from there up to the threshold: at most ``band_fpr`` of any real source
    scores inside or above it, so a score there is unusual for a real photo without being
    enough to call it fake (it is then ``uncertain``).
    """
    if not 0.0 < band_fpr < 1.0:
        raise ValueError("band_fpr must be between 0 and 1")
    return max(threshold_for_fpr(np.asarray(s, np.float64), band_fpr) for s in real_scores.values())


def apply_floor(
    detector: Detector,
    real: Sequence[str | os.PathLike],
    max_fpr: float | None = 0.05,
    band_fpr: float | None = None,
) -> tuple[Detector, dict[str, Any]]:
    """Score ``real`` folders as ``forensics scan`` does and raise the threshold to the floor.

    Args:
        detector: The model to copy.
        real: Folders of real photos it never trained on (each is a source).
        max_fpr: The floor's largest flagged share per source; ``None`` keeps the threshold.
        band_fpr: When set, the uncertainty band is refitted on these folders
            (:func:`band_low` up to the threshold); otherwise the old band is kept below
            the new threshold.

    Returns:
        ``(detector, summary)``: a new detector (same weights; threshold, band and header
        updated) and ``{"threshold_before", "threshold", "max_fpr", "band", "band_fpr",
        "sources"}`` (each source also gets ``in_band``, its share inside the band).

    Raises:
        ValueError: A folder is missing or holds no readable photo.

    """
    for folder in real:
        if not Path(folder).is_dir():
            raise ValueError(f"not a folder: {folder}")
    res = evaluate_folders(detector, list(real), [])
    scores = np.asarray(res.scores, dtype=np.float64)
    # Each folder is a source, grouped by path (a folder's files may carry another source
    # name, e.g. a generator family); two folders with one name are told apart by full path.
    names = [Path(f).name for f in real]
    names = [str(f) if names.count(n) > 1 else n for f, n in zip(real, names, strict=True)]
    owner = [_owner(p, real) for p in res.paths]
    by_source = {n: scores[[o == i for o in owner]] for i, n in enumerate(names)}
    cal = detector.calibration
    new, report = floor_threshold(cal.threshold, by_source, max_fpr or 0.5)
    if max_fpr is None:
        new = cal.threshold
        for name in by_source:
            report[name]["fpr_after"] = report[name]["fpr_before"]
    band = cal.band
    if band_fpr is not None:
        band = (band_low(by_source, band_fpr), new)
    if band is not None:
        band = (band[0], new) if band[0] < new else None
    for name, s in by_source.items():
        report[name]["in_band"] = float(np.mean((s >= band[0]) & (s < band[1]))) if band else 0.0
    summary = {
        "threshold_before": cal.threshold,
        "threshold": new,
        "max_fpr": max_fpr,
        "band": band,
        "band_fpr": band_fpr,
        "sources": report,
        "folders": [str(f) for f in real],
    }
    extra = {"threshold_floor": summary} if max_fpr is not None else {}
    if band_fpr is not None:
        extra["uncertainty_band"] = summary
    spec = dataclasses.replace(
        detector.spec,
        calibration=dataclasses.replace(cal, threshold=new, band=band),
        info={**detector.spec.info, **extra},
    )
    out = Detector(detector.model, spec, device=detector.device, name=detector.name)
    return out, summary

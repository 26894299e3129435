"""From the config to split, cropped data: collect, cap, hold out, split by group, crop once.

Under torchrun only rank 0 calls :func:`prepare_data` first (MTCNN runs and the crop cache is
written); the other ranks call it after a barrier and only read the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.faces import FaceDetector

from .config import DetectorTrainConfig
from .crops import CachedCrop, prepare_crops
from .data import (
    Sample,
    cap_per_source,
    collect_samples,
    count_by_source,
    split_holdout,
    split_train_val,
)
from .export import build_model, preprocess_of
from .selfblend import validation_blends


@dataclass
class PreparedData:
    """Cropped samples of each split, with their counts per source.

    Attributes:
        train: Training crops.
        val: Validation crops (early stopping and calibration).
        holdout: Fakes of held-out generators (measured at the end, never trained on).
        counts: ``{"train"|"val"|"holdout": {"real"|"fake": {source: n}}}``.
        errors: ``(path, reason)`` of unreadable files (skipped).

    """

    train: list[CachedCrop]
    val: list[CachedCrop]
    holdout: list[CachedCrop]
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


def prepare_data(
    cfg: DetectorTrainConfig,
    cache_dir: str | Path,
    on_progress: Callable[[str, int, int], None] | None = None,
    face_detector: FaceDetector | None = None,
) -> PreparedData:
    """Collect, cap, hold out, split by group and crop the run's data.

    Args:
        cfg: The run's configuration.
        cache_dir: Crop cache folder (``RUN/crops``).
        on_progress: Called as ``("crops", done, total)`` while faces are cropped.
        face_detector: MTCNN facade (the scanner's set-up when ``None``).

    Raises:
        ValueError: Missing folders, no images, or a split without both classes.

    """
    samples = collect_samples(cfg.real, cfg.fake, cfg.manifest)
    if not samples:
        raise ValueError("no images found in the given --real/--fake folders or manifests")
    samples = cap_per_source(samples, cfg.max_per_source, cfg.split_seed)
    pool, held = split_holdout(samples, cfg.holdout_generators)
    train, val = split_train_val(pool, cfg.val_fraction, cfg.split_seed)
    blends = cfg.selfblend > 0  # reals alone will do: blending makes the fakes
    _check_classes(train, val, blended=("training", "validation") if blends else ())
    everything = train + val + held
    progress = (lambda d, t: on_progress("crops", d, t)) if on_progress else None
    crops, errors = prepare_crops(
        everything,
        cache_dir,
        cfg.crop_margin,
        cfg.cache_side,
        face_detector,
        on_progress=progress,
        need_landmarks=cfg.selfblend > 0,
    )
    by_sample: dict[Sample, CachedCrop] = {c.sample: c for c in crops}

    def pick(part: list[Sample]) -> list[CachedCrop]:
        return [by_sample[s] for s in part if s in by_sample]

    out = PreparedData(pick(train), pick(val), pick(held), errors=errors)
    if blends:  # validation scores fixed blends of its reals, as training draws them
        blend_dir = Path(cache_dir) / "selfblend_val"
        out.val += validation_blends(
            out.val, blend_dir, cfg.selfblend, cfg.split_seed, cfg.selfblend_crude
        )
    if errors or blends:
        note = f" ({len(errors)} unreadable, e.g. {errors[0][0]}: {errors[0][1]})" if errors else ""
        if blends and not any(c.sample.label for c in out.val):
            note += " (no validation real had a face to blend)"
        _check_classes(
            [c.sample for c in out.train],
            [c.sample for c in out.val],
            note,
            blended=("training",) if blends else (),
        )
    out.counts = {
        name: count_by_source(c.sample for c in part)
        for name, part in (("train", out.train), ("val", out.val), ("holdout", out.holdout))
    }
    return out


__all__ = [
    "PreparedData",
    "build_model",
    "labels_of",
    "prepare_data",
    "preprocess_of",
]


def _check_classes(
    train: list[Sample], val: list[Sample], note: str = "", blended: tuple[str, ...] = ()
) -> None:
    """Raise ``ValueError`` unless both splits hold real and fake photos.

    Splits named in ``blended`` (``"training"``, ``"validation"``) need only reals: their
    fakes are self-blended from them.
    """
    for name, part in (("training", train), ("validation", val)):
        labels = {s.label for s in part}
        if name in blended and 0 in labels:
            labels.add(1)
        if labels != {0, 1}:
            missing = "real" if 0 not in labels else "fake"
            raise ValueError(
                f"the {name} split has no {missing} photos{note}: give more {missing} data "
                "(each class needs at least two groups: people, seeds or twin pairs)"
            )


def labels_of(items: list[CachedCrop]) -> np.ndarray:
    """0/1 labels of crops."""
    return np.array([it.sample.label for it in items], dtype=np.int64)

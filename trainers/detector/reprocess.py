"""The processing-invariance check: the same photos after the resizes and re-encodings they meet.

A detector that learned how one data set was encoded (its size, its JPEG history) instead of
what a generator does scores well as published and falls apart after ordinary re-processing.
Each variant here is applied to *both* classes alike, in memory, before the photo reaches the
scanner's pipeline, and ``forensics detector eval --reprocess`` reports every source under
every variant. All functions take and return RGB ``uint8`` ``(H, W, 3)`` and leave their input
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from forensics.media import encode_jpeg, load_image

from .augment import scale_by

PUBLISHED = "published"


def jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` and decode again (the one codec path of the project)."""
    return load_image(encode_jpeg(rgb, quality))


def box2_q90(rgb: np.ndarray) -> np.ndarray:
    """(a) 2x box downscale (each output pixel the mean of a 2x2 block), then JPEG 90."""
    return jpeg_round_trip(scale_by(rgb, 0.5, cv2.INTER_AREA), 90)


def to256_q75(rgb: np.ndarray) -> np.ndarray:
    """(b) Resize so the longer side is 256 px (area down, bicubic up), then JPEG 75."""
    scale = 256 / max(rgb.shape[:2])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return jpeg_round_trip(scale_by(rgb, scale, interpolation), 75)


def half_q70(rgb: np.ndarray) -> np.ndarray:
    """(c) Half size (area filter), then JPEG 70: a messaging app's copy."""
    return jpeg_round_trip(scale_by(rgb, 0.5, cv2.INTER_AREA), 70)


def up2_q90(rgb: np.ndarray) -> np.ndarray:
    """(d) 2x bicubic upscale, then JPEG 90: a small photo blown up by an editor."""
    return jpeg_round_trip(scale_by(rgb, 2.0, cv2.INTER_CUBIC), 90)


# Variant name -> transform, in the order the table prints them.
VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "box2_q90": box2_q90,
    "to256_q75": to256_q75,
    "half_q70": half_q70,
    "up2_q90": up2_q90,
}


def variant(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The transform of a variant name (``None`` for ``published``).

    Raises:
        ValueError: Unknown variant name.

    """
    if name == PUBLISHED:
        return None
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; use one of {PUBLISHED}, {', '.join(VARIANTS)}")
    return VARIANTS[name]

"""JPEG quality estimation: which IJG quality a file's quantisation tables were scaled from.

Reads only the file header (the quantisation tables), never the pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError


def jpeg_quality_estimate(path: str | os.PathLike) -> int | None:
    """Estimate the JPEG quality a file was saved with (None for non-JPEG files).

    Finds the IJG quality whose scaled standard luminance table is closest to the file's
    (exact for libjpeg/Pillow files). Pillow reports tables in natural (row-major) order.
    """
    try:
        with Image.open(path) as im:
            if im.format != "JPEG" or not getattr(im, "quantization", None):
                return None
            fit = ijg_quality(im.quantization[0])
    except (OSError, UnidentifiedImageError):
        return None
    return None if fit is None else fit[0]


def ijg_quality(table: Sequence[int]) -> tuple[int, float] | None:
    """The IJG quality whose scaled standard luminance table is closest to ``table``.

    Args:
        table: A JPEG luminance quantisation table, 64 values in natural order.

    Returns:
        ``(quality, mean absolute difference)``: 0 difference means the file used the
        standard libjpeg tables (Pillow, OpenCV, most web tools); a large one means tables
        of the camera's or editor's own. ``None`` for a table that is not 8x8.

    """
    values = np.asarray(list(table), dtype=np.float64)
    if values.size != _IJG_LUMA.size:
        return None
    errors = np.abs(_IJG_TABLES - values[None, :]).mean(axis=1)
    best = int(np.argmin(errors))
    return best + 1, float(errors[best])


_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
     56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104,
     113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip
"""IJG standard luminance quantisation table (quality 50), natural order."""


def _ijg_tables() -> np.ndarray:
    q = np.arange(1, 101, dtype=np.float64)[:, None]
    scale = np.where(q < 50, np.floor(5000.0 / q), 200.0 - 2.0 * q)
    return np.clip(np.floor((_IJG_LUMA[None, :] * scale + 50.0) / 100.0), 1, 255)


_IJG_TABLES = _ijg_tables()

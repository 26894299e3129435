"""Evidence maps as arrays: pure functions, no file I/O (rendering to disk is the caller's).

The detector's patch-logit map is calibrated like the face score and turned into a ``[0, 1]``
heat array at the crop's size, then placed on the original photo (or on a zoomed copy of the
crop) and blended as a colour overlay. The scale is absolute: never stretched per face.
"""

from __future__ import annotations

import numpy as np

from forensics.faces import Box


def evidence_to_heat(
    evidence: np.ndarray, size: tuple[int, int], bias: float = 0.0, temperature: float = 1.0
) -> np.ndarray:
    """Patch logits ``(h, w)`` to a float32 heat map of ``size`` ``(width, height)`` in [0, 1].

    Each cell is calibrated like the face score, ``sigmoid((logit - bias) / temperature)``,
    so 0.5 means "no evidence either way" and the scale is the face score's own, the same for
    every face and photo (never normalised per face: a face that scores low stays dark). The
    map is then resized bilinearly; NaN cells (not scored) stay NaN.

    Args:
        evidence: The model's patch-logit map.
        size: Output ``(width, height)``.
        bias: The detector's calibration bias (0 for maps already calibrated).
        temperature: The detector's calibration temperature (1 likewise).

    """
    z = (np.asarray(evidence, np.float64) - float(bias)) / max(float(temperature), 1e-6)
    heat = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return resize_heat(heat, size)


def zoom_crop(rgb: np.ndarray, box: Box, side: int) -> np.ndarray:
    """The ``box`` region of ``rgb`` resized so its longer side is ``side`` (up or down; a copy).

    ``box`` is clipped to the image; an empty region gives a ``1 x 1`` black picture.
    """
    from forensics.media import resize_rgb

    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((1, 1, 3), np.uint8)
    crop = np.ascontiguousarray(rgb[y1:y2, x1:x2])
    k = side / max(x2 - x1, y2 - y1)
    size = (max(1, round((x2 - x1) * k)), max(1, round((y2 - y1) * k)))
    return crop if size == (x2 - x1, y2 - y1) else resize_rgb(crop, size)


def resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize to ``size`` ``(width, height)`` that keeps NaN cells NaN, edges sharp."""
    import cv2

    w, h = int(size[0]), int(size[1])
    mask = np.isfinite(heat)
    if mask.all():
        return cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    # Interpolate the values with the gaps filled, then cut the gaps out again at
    # nearest-neighbour resolution, so unscored cells neither spread nor shrink the map.
    fill = float(heat[mask].mean()) if mask.any() else 0.5
    values = cv2.resize(np.where(mask, heat, fill).astype(np.float32), (w, h), cv2.INTER_LINEAR)
    keep = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return np.where(keep, values, np.nan).astype(np.float32)


def colorize(heat: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """Map a ``[0, 1]`` float array to RGB ``uint8`` with a matplotlib colormap."""
    from matplotlib import colormaps

    rgba = colormaps[colormap](np.clip(heat, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def place_heat(heat: np.ndarray, box: Box, image_shape: tuple[int, ...]) -> np.ndarray:
    """Paste a crop-sized heat map into a photo-sized array (NaN outside the crop)."""
    h, w = image_shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    full = np.full((h, w), np.nan, np.float32)
    if x2 > x1 and y2 > y1:
        full[y1:y2, x1:x2] = resize_heat(heat, (x2 - x1, y2 - y1))
    return full


def overlay(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a photo-sized heat map (NaN = untouched) over an RGB photo; returns a new array."""
    mask = np.isfinite(heat)
    out = rgb.copy()
    if mask.any():
        colour = colorize(np.where(mask, heat, 0.0)).astype(np.float32)
        blend = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colour
        out[mask] = blend[mask].round().astype(np.uint8)
    return out


def draw_box(rgb: np.ndarray, box: Box, colour: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """Return a copy of ``rgb`` with a rectangle drawn around ``box``."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(out, (x1, y1), (x2, y2), colour, max(1, width))
    return out

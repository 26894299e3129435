"""Augmentations applied identically to real and fake crops (NumPy/OpenCV, seeded).

Both classes get the same random JPEG re-compression, blur, downscaling, enlarging,
sharpening, flips, small crops, colour jitter and grey conversion, so codec, size or colour
cannot tell the classes apart and the detector has to learn generator traces that survive them
("half size + JPEG 70" included). Order follows a photo's life: framing, colour, optics,
resizing, sharpening, then compression last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forensics.media import encode_jpeg, load_image, resize_rgb


@dataclass(frozen=True)
class Augmenter:
    """Random photo-life degradations; call it with an RGB ``uint8`` crop and a generator.

    Attributes:
        p_crop: Probability of a random sub-crop.
        crop_min: Smallest sub-crop side, as a fraction of the crop side.
        p_flip: Probability of a horizontal flip.
        p_jitter: Probability of brightness/contrast/saturation jitter.
        jitter: Maximum relative change of each jitter factor.
        p_grey: Probability of grey conversion (kept as 3 channels).
        p_blur: Probability of a Gaussian blur.
        blur_sigma: Range of the blur's sigma in pixels.
        p_downscale: Probability of shrinking the crop (the model input resize brings it back).
        downscale: Range of the shrink factor.
        p_upscale: Probability of enlarging the crop (bicubic), as an editor or a phone
            does to a small photo. Off by default.
        upscale: Range of the enlarging factor.
        p_sharpen: Probability of an unsharp mask, the halo-making "enhance" step of phones
            and photo editors that otherwise reads as a generator trace. Off by default.
        sharpen: Range of the unsharp-mask amount (sigma is drawn from ``blur_sigma``).
        p_jpeg: Probability of JPEG re-compression.
        jpeg_quality: Range of the JPEG quality (inclusive).

    """

    p_crop: float = 0.5
    crop_min: float = 0.85
    p_flip: float = 0.5
    p_jitter: float = 0.3
    jitter: float = 0.2
    p_grey: float = 0.05
    p_blur: float = 0.15
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_downscale: float = 0.25
    downscale: tuple[float, float] = (0.5, 0.9)
    p_upscale: float = 0.0
    upscale: tuple[float, float] = (1.1, 1.6)
    p_sharpen: float = 0.0
    sharpen: tuple[float, float] = (0.3, 1.5)
    p_jpeg: float = 0.6
    jpeg_quality: tuple[int, int] = (30, 100)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Augmenter:
        """Defaults overridden by ``kwargs`` (JSON lists become tuples).

        Raises:
            TypeError: An unknown field.
            ValueError: A probability outside [0, 1] or an empty range.

        """
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        aug = cls(**fields)
        for name, value in vars(aug).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"{name} must be a (low, high) range")
        return aug

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy of ``rgb`` (the input is not modified)."""
        out = rgb
        if rng.random() < self.p_crop:
            out = random_crop(out, rng.uniform(self.crop_min, 1.0), rng)
        if rng.random() < self.p_flip:
            out = out[:, ::-1]
        if rng.random() < self.p_jitter:
            out = color_jitter(out, rng, self.jitter)
        if rng.random() < self.p_grey:
            out = to_grey(out)
        if rng.random() < self.p_blur:
            out = gaussian_blur(out, rng.uniform(*self.blur_sigma))
        if rng.random() < self.p_downscale:
            out = downscale(out, rng.uniform(*self.downscale))
        # The two steps added later draw from ``rng`` only when enabled, so a run configured
        # before they existed keeps its exact random stream.
        if self.p_upscale and rng.random() < self.p_upscale:
            out = upscale(out, rng.uniform(*self.upscale))
        if self.p_sharpen and rng.random() < self.p_sharpen:
            out = unsharp_mask(out, rng.uniform(*self.sharpen), rng.uniform(*self.blur_sigma))
        if rng.random() < self.p_jpeg:
            lo, hi = self.jpeg_quality
            out = jpeg(out, int(rng.integers(lo, hi + 1)))
        return np.ascontiguousarray(out)


def random_crop(rgb: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """A random square-ish sub-crop of ``frac`` of each side."""
    h, w = rgb.shape[:2]
    ch, cw = max(1, round(h * frac)), max(1, round(w * frac))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return rgb[y : y + ch, x : x + cw]


def color_jitter(rgb: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Random brightness, contrast and saturation factors in ``[1 - amount, 1 + amount]``."""
    x = rgb.astype(np.float32)
    b, c, s = rng.uniform(1.0 - amount, 1.0 + amount, size=3)
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = grey[..., None] + (x - grey[..., None]) * s
    mean = float(grey.mean())
    x = (x - mean) * c + mean * b
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Luma as three identical channels."""
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(np.clip(grey + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def gaussian_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with OpenCV (kernel size from sigma)."""
    import cv2

    return cv2.GaussianBlur(np.ascontiguousarray(rgb), (0, 0), sigmaX=float(sigma))


def downscale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` with the area filter (the model's input resize enlarges it again)."""
    h, w = rgb.shape[:2]
    return resize_rgb(rgb, (max(8, round(w * factor)), max(8, round(h * factor))))


def upscale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Enlarge by ``factor`` with the bicubic filter (a small photo blown up)."""
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_CUBIC)


def unsharp_mask(rgb: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """``rgb + amount * (rgb - blur(rgb))``, clipped to ``uint8``."""
    x = rgb.astype(np.float32)
    detail = x - gaussian_blur(rgb, sigma).astype(np.float32)
    return np.clip(x + amount * detail + 0.5, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through :mod:`forensics.media` (the one codec path)."""
    return load_image(encode_jpeg(rgb, quality))

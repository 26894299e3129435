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
        p_noise: Probability of additive Gaussian sensor noise (before compression). Off by
            default.
        noise_sigma: Range of the noise's standard deviation in grey levels.
        p_resize_to: Probability of shrinking the crop so its shorter side is a random
            number of pixels in ``resize_to``, with a random filter (area, bilinear, bicubic,
            Lanczos): the many sizes and resamplers a photo meets on its way. Off by default.
        resize_to: Range of that shorter side, in pixels (crops already smaller are kept).
        p_jpeg: Probability of JPEG re-compression.
        jpeg_quality: Range of the JPEG quality (inclusive).
        p_jpeg2: Probability of a second JPEG round trip at a new quality (a re-shared
            photo). Off by default.

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
    p_noise: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    p_resize_to: float = 0.0
    resize_to: tuple[int, int] = (96, 256)
    p_jpeg2: float = 0.0

    @classmethod
    def preset(cls, name: str) -> dict[str, Any]:
        """Named sets of overrides (see :data:`PRESETS`), to merge under user overrides.

        Raises:
            ValueError: Unknown preset name.

        """
        if name not in PRESETS:
            raise ValueError(f"unknown augmentation preset {name!r}; use one of {sorted(PRESETS)}")
        return dict(PRESETS[name])

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
        if self.p_resize_to and rng.random() < self.p_resize_to:
            side = int(rng.integers(self.resize_to[0], self.resize_to[1] + 1))
            out = resize_short_side(out, side, int(rng.integers(len(RESAMPLERS))))
        if self.p_noise and rng.random() < self.p_noise:
            out = gaussian_noise(out, rng.uniform(*self.noise_sigma), rng)
        lo, hi = self.jpeg_quality
        if rng.random() < self.p_jpeg:
            out = jpeg(out, int(rng.integers(lo, hi + 1)))
        if self.p_jpeg2 and rng.random() < self.p_jpeg2:
            out = jpeg(out, int(rng.integers(lo, hi + 1)))
        return np.ascontiguousarray(out)


# "heavy": one randomised chain that buries whatever size and codec history a public data set
# had under processing both classes share (crop, resize with a random filter, blur, noise,
# JPEG once or twice), so the detector cannot learn a set's encoding instead of its generator.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "heavy": {
        "p_crop": 0.8,
        "crop_min": 0.7,
        "p_jitter": 0.5,
        "p_blur": 0.2,
        "blur_sigma": (0.3, 1.2),
        "p_downscale": 0.0,
        "p_resize_to": 0.9,
        "resize_to": (96, 256),
        "p_upscale": 0.1,
        "p_sharpen": 0.1,
        "p_noise": 0.15,
        "p_jpeg": 0.9,
        "jpeg_quality": (40, 95),
        "p_jpeg2": 0.3,
    },
}

# Resampling filters a photo may meet (OpenCV flags), drawn at random by ``resize_to``.
RESAMPLERS = ("area", "linear", "cubic", "lanczos")


def resize_short_side(rgb: np.ndarray, side: int, resampler: int = 0) -> np.ndarray:
    """Shrink so the shorter side is ``side`` px with filter ``RESAMPLERS[resampler]``.

    A crop whose shorter side is already ``side`` or less is returned unchanged.
    """
    import cv2

    h, w = rgb.shape[:2]
    if min(h, w) <= side:
        return rgb
    flag = {
        "area": cv2.INTER_AREA,
        "linear": cv2.INTER_LINEAR,
        "cubic": cv2.INTER_CUBIC,
        "lanczos": cv2.INTER_LANCZOS4,
    }[RESAMPLERS[resampler]]
    return scale_by(rgb, side / min(h, w), flag)


def gaussian_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add i.i.d. Gaussian noise of ``sigma`` grey levels, clipped to ``uint8``."""
    noise = rng.normal(0.0, sigma, size=rgb.shape).astype(np.float32)
    return np.clip(rgb.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)


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


def scale_by(rgb: np.ndarray, factor: float, interpolation: int) -> np.ndarray:
    """Resize both sides by ``factor`` (rounded, at least 1 px) with an OpenCV filter flag."""
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(np.ascontiguousarray(rgb), size, interpolation=interpolation)


def upscale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Enlarge by ``factor`` with the bicubic filter (a small photo blown up)."""
    import cv2

    return scale_by(rgb, factor, cv2.INTER_CUBIC)


def unsharp_mask(rgb: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """``rgb + amount * (rgb - blur(rgb))``, clipped to ``uint8``."""
    x = rgb.astype(np.float32)
    detail = x - gaussian_blur(rgb, sigma).astype(np.float32)
    return np.clip(x + amount * detail + 0.5, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through :mod:`forensics.media` (the one codec path)."""
    return load_image(encode_jpeg(rgb, quality))

"""Face finding and cropping: a facade over facenet-pytorch's MTCNN plus pure crop functions.

MTCNN's weights ship inside the facenet-pytorch wheel, so nothing is downloaded. Detection
runs on a downscaled copy of the photo (fast on large photos); boxes and landmarks are
returned in the original photo's pixel coordinates. Small face-filled crops where nothing is
found can get one retry on an upscaled copy (``FaceDetector(retry_small=True)``, which the
scanner and ``detector eval`` use: re-measured on the only dev source with such crops, the 22
DFDC crops, it left both shipped models' AUC unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from forensics.device import resolve_device
from forensics.media import resize_rgb

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in pixels of the original image."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in original-image pixels.
        prob: MTCNN's face probability.
        landmarks: Five ``(x, y)`` points: left eye, right eye, nose, mouth left, mouth right.

    """

    box: Box
    prob: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]


class FaceDetector:
    """Find faces with MTCNN on a downscaled copy of each photo.

    Args:
        device: ``None``/``"auto"``, ``"cpu"`` or ``"cuda"``.
        detect_side: The photo is shrunk so its longer side is at most this before detection.
        min_face_px: Smallest face MTCNN looks for, in pixels of the downscaled copy.
        min_prob: Faces below this MTCNN probability are dropped.
        thresholds: MTCNN's three stage thresholds.
        factor: Scale step of MTCNN's image pyramid (smaller: fewer levels, faster).
        channels_last: Run MTCNN's nets in channels-last memory format (same results; its
            ceil-mode max-pools run several times faster on CPU).
        retry_small: When no face is found in a small, roughly face-shaped image (shorter
            side under ``SMALL_SIDE`` px, aspect 0.6-1.6, e.g. a face-filled crop), detect
            once more on an upscaled copy; boxes still come back in original pixels.

    """

    SMALL_SIDE = 160
    """Images whose shorter side is below this may get the upscaled retry."""
    RETRY_SIDE = 224
    """The upscaled retry copy's target shorter side (capped at 3x and at ``detect_side``)."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        detect_side: int = 480,
        min_face_px: int = 20,
        min_prob: float = 0.90,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        channels_last: bool = False,
        retry_small: bool = False,
    ) -> None:
        from facenet_pytorch import MTCNN

        self.device = resolve_device(device)
        self.detect_side = int(detect_side)
        self.min_face_px = int(min_face_px)
        self.min_prob = float(min_prob)
        self.retry_small = bool(retry_small)
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.min_face_px,
            thresholds=list(thresholds),
            factor=float(factor),
            device=self.device,
            post_process=False,
        )
        if channels_last:
            self._mtcnn = self._mtcnn.to(memory_format=torch.channels_last)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Detect faces in one RGB ``uint8`` image, largest-probability first."""
        return self.detect_many([rgb])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Detect faces in several images (batched through MTCNN when shapes match)."""
        small, scales = (
            zip(*(self._downscale(im) for im in images), strict=True) if images else ((), ())
        )
        results = self._detect_scaled(list(small), list(scales))
        if self.retry_small:
            todo = [i for i, faces in enumerate(results) if not faces]
            retry = {i: self._upscale_factor(images[i]) for i in todo}
            retry = {i: k for i, k in retry.items() if k > 1.0}
            if retry:
                idx = list(retry)
                ups = [_upscale(images[i], retry[i]) for i in idx]
                found = self._detect_scaled([u for u, _ in ups], [k for _, k in ups])
                for i, faces in zip(idx, found, strict=True):
                    h, w = images[i].shape[:2]
                    results[i] = [_clip(f, w, h) for f in faces]
        return results

    def _detect_scaled(self, small: list[np.ndarray], scales: list[float]) -> list[list[Face]]:
        """Run MTCNN on resized copies (batched by shape); map faces back by ``scales``."""
        results: list[list[Face]] = [[] for _ in small]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(small):
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            batch = np.stack([small[i] for i in idx])
            with torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for j, i in enumerate(idx):
                results[i] = _to_faces(boxes[j], probs[j], points[j], scales[i], self.min_prob)
        return results

    def _upscale_factor(self, rgb: np.ndarray) -> float:
        """Upscale factor for the small-image retry; ``<= 1`` means no retry."""
        h, w = rgb.shape[:2]
        short, long = min(h, w), max(h, w)
        if short < self.min_face_px or short >= self.SMALL_SIDE or not 0.6 <= w / h <= 1.6:
            return 1.0
        return min(3.0, self.RETRY_SIDE / short, self.detect_side / long)

    def _downscale(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        if scale >= 1.0:
            return rgb, 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return resize_rgb(rgb, size), scale


def _upscale(rgb: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """Enlarge ``rgb`` by ``factor``; returns the copy and its exact scale (longer side)."""
    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return resize_rgb(rgb, size), max(size) / max(h, w)


def _clip(face: Face, width: int, height: int) -> Face:
    """``face`` with its box clipped to the image."""
    x1, y1, x2, y2 = face.box
    box = (
        min(max(x1, 0.0), float(width)),
        min(max(y1, 0.0), float(height)),
        min(max(x2, 0.0), float(width)),
        min(max(y2, 0.0), float(height)),
    )
    return Face(box=box, prob=face.prob, landmarks=face.landmarks)


def _to_faces(boxes, probs, points, scale: float, min_prob: float) -> list[Face]:
    if boxes is None:
        return []
    faces = []
    for box, prob, pts in zip(boxes, probs, points, strict=True):
        if prob is None or not np.isfinite(prob) or prob < min_prob:
            continue
        b = tuple(float(v) / scale for v in box)
        lm = tuple((float(x) / scale, float(y) / scale) for x, y in pts)
        faces.append(Face(box=b, prob=float(prob), landmarks=lm))
    return sorted(faces, key=lambda f: -f.prob)


def square_box(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Grow ``box`` by ``margin`` (fraction of its size) into a square kept inside the image.

    Pure function. The square is shifted, not padded, to stay inside the image; it only
    shrinks when the image itself is smaller than the square.
    """
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    side = max(1.0, min(side, float(width), float(height)))
    left = min(max(cx - side / 2.0, 0.0), width - side)
    top = min(max(cy - side / 2.0, 0.0), height - side)
    s = int(round(side))
    left_i, top_i = int(round(left)), int(round(top))
    return left_i, top_i, min(left_i + s, width), min(top_i + s, height)


def crop_face(rgb: np.ndarray, box: Box, margin: float = 0.25) -> np.ndarray:
    """Cut a square crop around ``box`` with ``margin``, at native resolution (a copy)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = square_box(box, margin, w, h)
    return np.ascontiguousarray(rgb[y1:y2, x1:x2])


# Reference landmark positions (fraction of the output side) for aligned faces.
_ALIGN_REF = np.array(
    [[0.35, 0.40], [0.65, 0.40], [0.50, 0.56], [0.38, 0.72], [0.62, 0.72]], dtype=np.float32
)


def align_face(rgb: np.ndarray, landmarks: Sequence[tuple[float, float]], size: int) -> np.ndarray:
    """Rotate, scale and crop a face so its five landmarks land on a fixed template.

    Pure function; returns a new ``(size, size, 3)`` uint8 array.
    """
    import cv2

    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, _ALIGN_REF * size, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("cannot align: degenerate landmarks")
    return cv2.warpAffine(
        rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )

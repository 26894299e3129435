"""Quality of generated faces without downloaded networks.

- **face rate**: share of samples where MTCNN (weights ship with facenet-pytorch) finds a face
  with probability > 0.95. Samples are upscaled to ``detect_px`` first, because MTCNN misses
  faces that fill a tiny image edge to edge.
- **diversity**: mean pairwise Euclidean distance of samples in the feature space below,
  divided by the same for real photos. It falls towards 0 under mode collapse.
- **precision / coverage** (Kynkaenniemi et al. 2019; Naeem et al. 2020): k-nearest-neighbour
  measures against held-back real photos. Precision is the share of samples inside some real
  photo's k-NN ball; coverage is the share of real photos whose k-NN ball holds a sample.

Feature space (fixed, documented): each image is shrunk to 16x16 px (area filter), turned into
RGB values in ``[0, 1]`` and flattened (768 numbers). Distances are Euclidean.

- **FID** needs Inception weights, which are never downloaded: :func:`fid` computes it only
  when the user points at a local weights file and ``torch-fidelity`` is installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from forensics.media import resize_rgb

FEATURE_PX = 16
FACE_MIN_PROB = 0.95


def features(images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The fixed feature space: 16x16 RGB in ``[0, 1]``, flattened -> ``(N, 768)`` float32."""
    out = [resize_rgb(np.asarray(im), (FEATURE_PX, FEATURE_PX)) for im in images]
    return np.stack(out).reshape(len(out), -1).astype(np.float32) / 255.0


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    aa = (a * a).sum(1)[:, None]
    bb = (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(aa + bb - 2.0 * a @ b.T, 0.0))


def mean_pairwise_distance(images: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean Euclidean distance between all pairs of images in the feature space."""
    f = features(images)
    if len(f) < 2:
        raise ValueError("need at least two images")
    d = _pairwise(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def diversity(
    samples: Sequence[np.ndarray] | np.ndarray,
    real: Sequence[np.ndarray] | np.ndarray | None = None,
    real_distance: float | None = None,
) -> float:
    """Mean pairwise distance of samples over the same for real photos (1 = as varied as real).

    Pass either ``real`` images or their precomputed ``real_distance``.
    """
    if real_distance is None:
        if real is None:
            raise ValueError("pass real images or real_distance")
        real_distance = mean_pairwise_distance(real)
    return mean_pairwise_distance(samples) / max(real_distance, 1e-12)


def precision_coverage(
    samples: Sequence[np.ndarray] | np.ndarray,
    real: Sequence[np.ndarray] | np.ndarray,
    k: int = 5,
) -> dict[str, float]:
    """k-NN precision and coverage of samples against (held-back) real photos."""
    fake_f, real_f = features(samples), features(real)
    if len(real_f) <= k:
        raise ValueError(f"need more than k={k} real images")
    rr = _pairwise(real_f, real_f)
    radius = np.sort(rr, axis=1)[:, k]  # k-th neighbour, index 0 is the point itself
    rf = _pairwise(real_f, fake_f)  # (R, F)
    inside = rf <= radius[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "coverage": float(inside.any(axis=1).mean()),
    }


class FaceRate:
    """Share of images with an MTCNN face above ``min_prob`` (kept loaded between calls).

    Args:
        device: Device for MTCNN.
        detect_px: Images are resized to this side before detection.
        min_prob: Probability a face needs to count.

    """

    def __init__(
        self, device: str | None = None, detect_px: int = 128, min_prob: float = FACE_MIN_PROB
    ) -> None:
        from forensics.faces import FaceDetector

        self.detect_px = int(detect_px)
        self.detector = FaceDetector(
            device=device, detect_side=self.detect_px, min_face_px=20, min_prob=min_prob
        )

    def probs(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Best face probability per image (0 when none passes MTCNN's stages)."""
        side = self.detect_px
        resized = [
            im if im.shape[:2] == (side, side) else resize_rgb(np.asarray(im), (side, side))
            for im in images
        ]
        out = []
        for i in range(0, len(resized), 64):
            for faces in self.detector.detect_many(resized[i : i + 64]):
                out.append(faces[0].prob if faces else 0.0)
        return np.asarray(out, dtype=np.float64)

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> float:
        """The face rate of ``images`` (0..1)."""
        if len(images) == 0:
            raise ValueError("no images")
        return float((self.probs(images) > self.detector.min_prob).mean())


def fid(
    samples_dir: str | os.PathLike, real_dir: str | os.PathLike, inception_weights: str | None
) -> float:
    """Standard FID through ``torch-fidelity`` with user-supplied local Inception weights.

    Raises:
        RuntimeError: No weights were given, the file is missing, or torch-fidelity is not
            installed (FID is then simply not available; nothing is downloaded).

    """
    if not inception_weights or not os.path.isfile(inception_weights):
        raise RuntimeError(
            "FID not available: pass a local Inception weights file "
            "(pt_inception-2015-12-05 .pth); forensics never downloads weights"
        )
    try:
        import torch_fidelity
    except ImportError:
        raise RuntimeError("FID not available: torch-fidelity is not installed") from None
    result = torch_fidelity.calculate_metrics(
        input1=str(samples_dir),
        input2=str(real_dir),
        fid=True,
        feature_extractor_weights_path=inception_weights,
        verbose=False,
    )
    return float(result["frechet_inception_distance"])

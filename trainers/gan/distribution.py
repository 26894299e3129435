"""How well generated faces cover the real ones, in an ImageNet network's feature space.

These figures catch mode collapse, which pixel-level diversity does not:

- **Fréchet distance** between Gaussians fitted to the two feature sets (the FID formula,
  in MobileNetV2's global-pool space instead of Inception's, so the numbers are not FIDs).
- **precision / recall** (Kynkäänniemi et al. 2019) and **density / coverage** (Naeem et al.
  2020), k-nearest-neighbour balls (k = 5). Coverage is the share of real photos whose
  k-NN ball holds a sample: it falls when the generator drops modes.
- **CrossLID** (Barua et al. 2019): the mean local intrinsic dimensionality of each real
  feature estimated (MLE, k = 20) from its nearest *generated* neighbours. When samples miss
  a region of the real data, the real points there see only far-away, equidistant samples,
  and their estimate rises: lower is better.

Features: timm ``mobilenetv2_100`` (``pad_type="same"``) with the project's local ImageNet
weights (``../shared/weights/mobilenetv2_100_in1k.safetensors``; nothing is downloaded),
global-average-pooled (1280 numbers) on each image resized to 224 px and normalised as
``(x - 0.5) / 0.5``. The k-NN figures follow the authors' reference package ``prdc``, which
the tests check them against; it is not used at run time because it prints to stdout.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy import linalg

FEATURE_SIDE = 224
NEAREST_K = 5
LID_K = 20
MAX_LID = 1e6
"""CrossLID of a real point whose generated neighbours are all equidistant (e.g. copies)."""


class MobileNetFeatures:
    """Global-pool MobileNetV2 features of RGB ``uint8`` images, from a local weights file.

    Args:
        weights: A timm ``mobilenetv2_100`` state dict in safetensors (ImageNet weights).
        device: ``auto``/``None``, ``cpu`` or ``cuda``.
        batch_size: Images per forward pass.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ValueError: The file holds no MobileNetV2 weights.

    """

    def __init__(
        self, weights: str | os.PathLike, device: str | None = None, batch_size: int = 64
    ) -> None:
        import timm
        from safetensors.torch import load_file

        from forensics.device import resolve_device

        if not os.path.isfile(weights):
            raise FileNotFoundError(f"feature weights not found: {weights}")
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        model = timm.create_model(
            "mobilenetv2_100", pretrained=False, num_classes=0, pad_type="same"
        )
        state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("classifier")}
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(f"{weights}: not MobileNetV2 weights ({len(missing)} tensors missing)")
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(N, 1280)`` float64 features of ``N`` RGB ``uint8`` ``(H, W, 3)`` images."""
        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.cat([_resized(im) for im in images[i : i + self.batch_size]])
            out.append(self.model(((x - 0.5) / 0.5).to(self.device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.num_features))


def _resized(rgb: np.ndarray) -> torch.Tensor:
    """``(1, 3, 224, 224)`` float in ``[0, 1]`` (bilinear, antialiased) from RGB ``uint8``."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div(255.0)
    return torch.nn.functional.interpolate(
        x, size=(FEATURE_SIDE, FEATURE_SIDE), mode="bilinear", antialias=True
    )


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` between rows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def kth_neighbour_radius(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its ``k``-th nearest other row."""
    d = pairwise_distances(features, features)
    return np.partition(d, k, axis=1)[:, k]  # column 0 is the row itself (distance 0)


def frechet_from_moments(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between two Gaussians: ``|mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^½)``."""
    with warnings.catch_warnings():  # fewer images than dimensions: singular, expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as FID code does
        eps = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = np.real(covmean)
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False),
                                b.mean(0), np.cov(b, rowvar=False))  # fmt: skip


def prdc(real: np.ndarray, fake: np.ndarray, k: int = NEAREST_K) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` features.

    Raises:
        ValueError: Either set has ``k`` rows or fewer.

    """
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k={k} real and generated images")
    real_r = kth_neighbour_radius(real, k)
    fake_r = kth_neighbour_radius(fake, k)
    d = pairwise_distances(real, fake)  # (R, F)
    inside_real = d < real_r[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < fake_r[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < real_r).mean()),
    }


def cross_lid(real: np.ndarray, fake: np.ndarray, k: int = LID_K) -> float:
    """Mean MLE local intrinsic dimensionality of real points among generated neighbours.

    ``LID(x) = -(mean_i log(d_i / d_k))^-1`` over the ``k`` nearest generated features of
    each real feature ``x`` (capped at :data:`MAX_LID` when they are all equidistant).
    """
    k = min(k, len(fake))
    if k < 2:
        raise ValueError("need at least two generated images")
    d = np.partition(pairwise_distances(real, fake), k - 1, axis=1)[:, :k]
    d = np.maximum(np.sort(d, axis=1), 1e-12)
    mean_log = np.log(d / d[:, -1:]).mean(axis=1)
    lid = -1.0 / np.minimum(mean_log, -1.0 / MAX_LID)
    return float(lid.mean())


def distribution_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """All figures of this module for one pair of feature sets."""
    return {"frechet": frechet_distance(real, fake), **prdc(real, fake),
            "cross_lid": cross_lid(real, fake)}  # fmt: skip

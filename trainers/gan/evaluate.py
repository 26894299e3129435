"""Periodic evaluation during training: face rate, diversity, precision/coverage, sample grids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.media import save_image
from trainers.gan.config import GanConfig
from trainers.gan.data import to_tensor, to_uint8
from trainers.gan.metrics import FaceRate, mean_pairwise_distance, precision_coverage


@torch.no_grad()
def generate(
    generator: torch.nn.Module, inputs: torch.Tensor, device: torch.device, batch: int = 64
) -> np.ndarray:
    """Run a generator on latents (or, for ``resynth``, images in ``[-1, 1]``) in batches.

    Returns:
        uint8 ``(N, size, size, 3)`` images.

    """
    out = []
    for i in range(0, inputs.shape[0], batch):
        out.append(to_uint8(generator(inputs[i : i + batch].to(device)).float()))
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)


class Evaluator:
    """Measures an (EMA) generator on fixed latents or fixed held-back real photos.

    The score used to keep ``best`` is ``min(face_rate, min(diversity, 1))``: a run must make
    faces *and* varied ones.

    Args:
        cfg: The run's config (family, seed, eval_n, z_dim).
        holdout: Held-back real photos, uint8 ``(N, size, size, 3)``.
        device: Where the generator runs.

    """

    def __init__(self, cfg: GanConfig, holdout: np.ndarray, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.holdout = holdout
        self.conditional = cfg.family == "resynth"
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        n = min(cfg.eval_n, len(holdout)) if self.conditional else cfg.eval_n
        if self.conditional:
            self.inputs = to_tensor(holdout[:n])
            self.real_distance = mean_pairwise_distance(holdout[:n])
        else:
            self.inputs = torch.randn(n, cfg.z_dim, generator=gen)
            self.real_distance = mean_pairwise_distance(holdout[:256])
        gen = torch.Generator().manual_seed(cfg.seed + 54321)
        self.grid_inputs = (
            to_tensor(holdout[:32])
            if self.conditional
            else torch.randn(64, cfg.z_dim, generator=gen)
        )
        self._face_rate: FaceRate | None = None
        self._embed: Any = None
        self._holdout_features: np.ndarray | None = None

    def _feature_metrics(self, samples: np.ndarray) -> dict[str, float]:
        """Coverage, density and CrossLID in MobileNetV2 space (``cfg.features`` set)."""
        from trainers.gan.distribution import LID_K, MobileNetFeatures, cross_lid, prdc

        if self._embed is None:
            self._embed = MobileNetFeatures(self.cfg.features, device=str(self.device))
            self._holdout_features = self._embed(self.holdout[:256])
        fake = self._embed(samples)
        real = self._holdout_features
        k = min(5, len(real) - 1, len(fake) - 1)
        fig = prdc(real, fake, k=k)
        return {"feat_coverage": fig["coverage"], "feat_density": fig["density"],
                "cross_lid": cross_lid(real, fake, k=min(LID_K, len(fake)))}  # fmt: skip

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        """Face rate, diversity, precision, coverage and the ``score`` of ``generator``.

        With ``cfg.features``, also ``feat_coverage``, ``feat_density`` and ``cross_lid``.
        """
        if self._face_rate is None:
            self._face_rate = FaceRate(device=str(self.device))
        samples = generate(generator, self.inputs, self.device)
        face_rate = self._face_rate(samples)
        div = mean_pairwise_distance(samples) / max(self.real_distance, 1e-12)
        out: dict[str, Any] = {"face_rate": face_rate, "diversity": div, "n": len(samples)}
        if len(self.holdout) > 5:
            out.update(precision_coverage(samples, self.holdout))
        if self.cfg.features and min(len(self.holdout), len(samples)) >= 3:
            out.update(self._feature_metrics(samples))
        if self.conditional:
            real = self.inputs.numpy()
            out["rec_l1"] = float(np.abs(to_tensor(samples).numpy() - real).mean())
        out["score"] = min(face_rate, min(div, 1.0))
        return out

    def grid(self, generator: torch.nn.Module) -> np.ndarray:
        """An 8-wide grid of samples (for ``resynth``: real / re-synthesised pairs)."""
        samples = generate(generator, self.grid_inputs, self.device)
        if self.conditional:
            real = self.holdout[: len(samples)]
            pairs = np.stack([real, samples], axis=1).reshape(-1, *samples.shape[1:])
            samples = pairs
        return tile(samples, 8)


def tile(images: np.ndarray, cols: int) -> np.ndarray:
    """Tile uint8 NHWC images into one grid image (missing cells are black)."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * h : (r + 1) * h, k * w : (k + 1) * w] = im
    return grid


def save_grid(grid: np.ndarray, run_path: Path, step: int) -> Path:
    """Write ``samples/step_XXXXXXX.png`` and refresh ``samples.png`` (the latest grid)."""
    path = save_image(Path(run_path) / "samples" / f"step_{step:07d}.png", grid)
    save_image(Path(run_path) / ".samples.tmp.png", grid)
    (Path(run_path) / ".samples.tmp.png").replace(Path(run_path) / "samples.png")
    return path


def evaluate_checkpoint(
    checkpoint: str | Path | None,
    real: str | Path,
    n: int = 256,
    seed: int = 0,
    device: str | None = None,
    features: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Face rate, diversity, precision and coverage of a generator checkpoint on ``n`` samples.

    With ``features`` (local MobileNetV2 weights), ``feature_metrics`` adds the figures of
    :mod:`trainers.gan.distribution` (Fréchet distance, precision, recall, density,
    coverage, CrossLID) for the samples against ``n`` real photos, and the same for those
    photos against ``n`` *other* real photos of the folder as the ``reference`` line (when
    the folder has fewer than ``2n`` photos, it is split in halves).

    Args:
        checkpoint: Generator file, run folder, or ``None`` for the shipped default.
        real: Folder of real photos (the reference). ``resynth`` re-renders ``n`` *other*
            photos of it (the same ones as the reference line's), so no sample is the twin
            of a photo it is compared with.
        n: Number of samples (and at most this many real photos).
        seed: Seed of the latents.
        device: ``auto``/``None``, ``cpu`` or ``cuda``.
        features: MobileNetV2 weights file; ``None``: ``feature_metrics`` is ``None`` and
            ``feature_note`` says why.

    """
    from forensics.device import resolve_device
    from trainers.gan.data import load_faces
    from trainers.gan.export import family_label, load_generator
    from trainers.gan.metrics import FaceRate

    dev = resolve_device(device)
    generator, meta = load_generator(checkpoint, dev)
    conditional = getattr(generator, "conditional", False)
    halves = features is not None or conditional
    limit = 2 * n if halves else n
    reals = load_faces([real], int(meta["size"]), "auto", None, limit, device).images
    split = min(n, len(reals) // 2) if halves else n
    reals, others = reals[:split], reals[split:]
    if conditional:  # re-render *other* photos, so samples are never the reals' own twins
        inputs = to_tensor(others)
    else:
        gen = torch.Generator().manual_seed(int(seed))
        inputs = torch.randn(n, int(meta["kwargs"].get("z_dim", 128)), generator=gen)
    samples = generate(generator, inputs, dev)
    out: dict[str, Any] = {
        "checkpoint": meta["path"],
        "family": family_label(meta),
        "n": len(samples),
        "real": len(reals),
        "face_rate": FaceRate(device=str(dev))(samples),
        "real_face_rate": FaceRate(device=str(dev))(reals),
        "diversity": mean_pairwise_distance(samples) / mean_pairwise_distance(reals),
    }
    out.update(precision_coverage(samples, reals))
    out.update(feature_metrics=None, feature_note=None)
    if checkpoint is not None and (Path(checkpoint) / "metrics.jsonl").is_file():
        from trainers.gan.history import history_table, read_history

        out["history"] = history_table(read_history(checkpoint)["eval"])
    if features is None:
        out["feature_note"] = (
            "unavailable: pass --features with the MobileNetV2 weights "
            "(mobilenetv2_100_in1k.safetensors)"
        )
        return out
    from trainers.gan.distribution import MobileNetFeatures, distribution_metrics

    embed = MobileNetFeatures(features, device=str(dev))
    real_f = embed(reals)
    out["feature_metrics"] = {
        "samples": distribution_metrics(real_f, embed(samples)),
        "reference": distribution_metrics(real_f, embed(others)),
        "n_reference": len(others),
        "features": os.fspath(features),
    }
    return out

"""Turning the best training state into a calibrated, self-describing detector.

The best weights score the validation crops; :func:`trainers.detector.calibrate.calibrate`
fits temperature, bias and the FPR-targeted threshold on them; the resulting
:class:`forensics.scoring.Detector` carries arch, kwargs, preprocessing, calibration, data
sources and counts, metrics and seed in its checkpoint header.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from forensics.device import autocast
from forensics.media import load_image
from forensics.preprocess import Preprocess
from forensics.scoring import Detector, DetectorSpec

from .calibrate import calibrate
from .config import DetectorTrainConfig
from .crops import CachedCrop
from .metrics import report
from .prepare import PreparedData, labels_of, preprocess_of


def predict_logits(
    model: torch.nn.Module,
    items: Sequence[CachedCrop],
    preprocess: Preprocess,
    device: torch.device,
    amp: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Raw image logits of cached crops (no augmentation), in eval mode."""
    was_training = model.training
    model.eval()
    out = np.zeros(len(items), np.float32)
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            crops = [load_image(c.crop_path) for c in items[start : start + batch_size]]
            for idx, x in preprocess.batches(crops, batch_size):
                x = x.to(device)
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, amp):
                    out[[start + i for i in idx]] = model(x)["logit"].float().cpu().numpy()
    model.train(was_training)
    return out


def per_source_reports(
    items: Sequence[CachedCrop], probs: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Pooled metrics plus one report per fake source (against all reals of ``items``)."""
    y = labels_of(items)
    sources = np.array([c.sample.source for c in items])
    out: dict[str, Any] = {"pooled": report(y, probs, threshold), "sources": {}}
    for name in sorted(set(sources[y == 1])):
        keep = (y == 0) | (sources == name)
        out["sources"][name] = report(y[keep], probs[keep], threshold)
    return out


def finalize_model(
    model: torch.nn.Module,
    cfg: DetectorTrainConfig,
    data: PreparedData,
    device: torch.device,
    info: dict[str, Any],
) -> tuple[Detector, dict[str, Any]]:
    """Calibrate ``model`` (the best state) on validation and wrap it as a :class:`Detector`.

    Returns:
        ``(detector, summary)``: the summary holds validation (and holdout) metrics at the
        stored threshold, the calibration and the data counts.

    """
    preprocess = preprocess_of(cfg)
    logits = predict_logits(model, data.val, preprocess, device, cfg.amp)
    y = labels_of(data.val)
    cal = calibrate(logits, y, target_fpr=cfg.target_fpr, band_fpr=cfg.band_fpr)
    metrics: dict[str, Any] = {"val": per_source_reports(data.val, cal.prob(logits), cal.threshold)}
    if data.holdout:
        both = [c for c in data.val if c.sample.label == 0] + list(data.holdout)
        hold_logits = predict_logits(model, both, preprocess, device, cfg.amp)
        metrics["holdout"] = per_source_reports(both, cal.prob(hold_logits), cal.threshold)
    spec = DetectorSpec(
        arch=cfg.arch,
        arch_kwargs=dict(cfg.arch_kwargs),
        preprocess=preprocess,
        calibration=cal,
        info={**info, "metrics": metrics},
    )
    cpu_model = model.to("cpu").to(memory_format=torch.contiguous_format)
    detector = Detector(cpu_model, spec, device="cpu", name="model.safetensors")
    summary = {
        "calibration": {
            "temperature": cal.temperature,
            "bias": cal.bias,
            "threshold": cal.threshold,
            "target_fpr": cal.target_fpr,
            "band": cal.band,
        },
        "metrics": metrics,
        "counts": data.counts,
        **{k: info[k] for k in ("steps", "best_step", "stop_reason", "train_images_per_s")},
    }
    return detector, summary

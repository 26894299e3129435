"""Building the model, loading local initial weights, and writing the calibrated detector.

The final file is a :class:`forensics.scoring.Detector` checkpoint: safetensors weights plus a
JSON header with the architecture and kwargs, preprocessing, calibration (temperature, bias,
threshold, target FPR, band) and provenance (data sources and counts, metrics, seed, version).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forensics.checkpoint import CheckpointError, load_checkpoint, safe_torch_load
from forensics.models import create_model
from forensics.scoring import Calibration, Detector, DetectorSpec, Preprocess

from .config import DetectorTrainConfig

MODEL_NAME = "model.safetensors"


def preprocess_of(cfg: DetectorTrainConfig) -> Preprocess:
    """The preprocessing stored with (and applied by) the trained model."""
    return Preprocess(input_size=cfg.input_size, crop_margin=cfg.crop_margin)


def build_model(cfg: DetectorTrainConfig) -> nn.Module:
    """Create the architecture (``pretrained=False``) and load ``init_weights`` if given.

    Raises:
        ValueError: Unknown architecture or bad kwargs.
        CheckpointError: ``init_weights`` is missing, unsafe, or shares no tensor with the model.

    """
    try:
        model = create_model(cfg.arch, **cfg.arch_kwargs)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"cannot build {cfg.arch!r} with {cfg.arch_kwargs}: {exc}") from None
    if cfg.init_weights:
        load_init_weights(model, cfg.init_weights)
    return model


def load_init_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, int]:
    """Copy tensors from a local file into ``model`` where names and shapes match.

    Accepts a forensics checkpoint, any safetensors file, or a ``weights_only`` torch file
    (a bare state dict or ``{"state_dict": ...}``). A ``backbone.`` prefix is added or removed
    as needed, so plain timm weights fit :func:`forensics.models.patch_resnet`.

    Returns:
        ``{"loaded": n, "skipped": m}``.

    Raises:
        CheckpointError: Unsafe or unreadable file, or no tensor fits.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--init-weights: file not found: {path}")
    try:
        state, _ = load_checkpoint(path)
    except CheckpointError:
        obj = safe_torch_load(path)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path}: expected a state dict of tensors") from None
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{path}: no tensors found")
    own = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for name in (key, f"backbone.{key}", key.removeprefix("backbone.")):
            if name in own and own[name].shape == value.shape:
                loaded[name] = value
                break
    if not loaded:
        raise CheckpointError(f"{path}: no tensor matches the model by name and shape")
    model.load_state_dict(loaded, strict=False)
    return {"loaded": len(loaded), "skipped": len(state) - len(loaded)}


def val_logits(
    model: nn.Module, crops: list[np.ndarray], pre: Preprocess, device: torch.device, bs: int = 64
) -> np.ndarray:
    """Image logits of crops through exactly the scanner's tensor path (eval mode)."""
    was_training = model.training
    det = Detector(model, DetectorSpec(arch="-", preprocess=pre), device=device)
    try:
        logits, _ = det.logits(crops, batch_size=bs)
    finally:
        model.train(was_training)
    return logits


def write_detector(
    path: str | os.PathLike,
    model: nn.Module,
    cfg: DetectorTrainConfig,
    calibration: Calibration,
    info: dict[str, Any],
) -> Path:
    """Save the calibrated, self-describing detector checkpoint (atomically)."""
    spec = DetectorSpec(
        arch=cfg.arch,
        arch_kwargs=dict(cfg.arch_kwargs),
        preprocess=preprocess_of(cfg),
        calibration=calibration,
        info=info,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    cpu_model = create_model(cfg.arch, **cfg.arch_kwargs)
    cpu_model.load_state_dict(state)
    return Detector(cpu_model, spec, device="cpu").save(path)

"""Building the detector model for training and loading local initial weights.

The calibrated checkpoint itself is written by :mod:`trainers.detector.finalize`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from forensics.checkpoint import CheckpointError, load_checkpoint, safe_torch_load
from forensics.models import create_model
from forensics.preprocess import Preprocess

from .config import DetectorTrainConfig


def preprocess_of(cfg: DetectorTrainConfig, training: bool = False) -> Preprocess:
    """The preprocessing stored with (and applied by) the trained model.

    Args:
        cfg: The run's configuration.
        training: The training inputs' preprocessing instead: ``input_size`` windows even
            when a larger ``score_size`` is scored.

    """
    max_side = cfg.cache_side if cfg.fit == "center" else 0  # score what training saw
    if training or not cfg.score_size:
        size, min_size = cfg.input_size, 0
    else:  # score up to score_size; crops of input_size or more are never padded
        size, min_size = cfg.score_size, cfg.input_size
    return Preprocess(
        input_size=size,
        crop_margin=cfg.crop_margin,
        fit=cfg.fit,
        max_side=max_side,
        min_size=min_size,
        score_resize=0 if training else cfg.score_resize,
        score_jpeg=0 if training else cfg.score_jpeg,
    )


def build_model(cfg: DetectorTrainConfig) -> nn.Module:
    """Create the architecture and load ``init_weights`` if given.

    The stored architecture kwargs never ask for a download: with ``init_weights="timm"``
    the backbone is built once with ``pretrained=True`` here, and the saved model is rebuilt
    later with ``pretrained=False`` and its trained weights.

    Raises:
        ValueError: Unknown architecture or bad kwargs.
        CheckpointError: ``init_weights`` is missing, unsafe, or shares no tensor with the model.

    """
    kwargs = dict(cfg.arch_kwargs)
    if cfg.init_weights == TIMM_INIT:
        kwargs["pretrained"] = True
    try:
        model = create_model(cfg.arch, **kwargs)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"cannot build {cfg.arch!r} with {cfg.arch_kwargs}: {exc}") from None
    if cfg.init_weights and cfg.init_weights != TIMM_INIT:
        load_init_weights(model, cfg.init_weights)
    return model


TIMM_INIT = "timm"


def init_provenance(init_weights: str | None) -> dict[str, str | None] | None:
    """Where a run's initial weights came from: ``{"source", "sha256"}`` (``None``: scratch)."""
    if not init_weights:
        return None
    if init_weights == TIMM_INIT:
        return {"source": "timm pretrained=True (downloaded)", "sha256": None}
    from forensics.checkpoint import file_sha256

    path = Path(init_weights)
    return {"source": str(path), "file": path.name, "sha256": file_sha256(path)}


def load_init_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, int]:
    """Copy tensors from a local file into ``model`` where names and shapes match.

    Accepts a forensics checkpoint, any safetensors file, or a ``weights_only`` torch file
    (a bare state dict or ``{"state_dict": ...}``). A ``backbone.`` prefix is added or removed
    as needed, so plain timm weights fit :func:`forensics.models.patch_resnet`, and a child
    module's name is tried as a prefix, so a trained ``spectral_patch`` seeds the spectral
    branch of ``spectral_hybrid``.

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
    children = [name for name, _ in model.named_children()]
    loaded: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        names = [key, f"backbone.{key}", key.removeprefix("backbone.")]
        names += [f"{child}.{key}" for child in children]  # e.g. spectral_patch -> hybrid
        for name in names:
            if name in own and own[name].shape == value.shape:
                loaded[name] = value
                break
    if not loaded:
        raise CheckpointError(f"{path}: no tensor matches the model by name and shape")
    model.load_state_dict(loaded, strict=False)
    return {"loaded": len(loaded), "skipped": len(state) - len(loaded)}

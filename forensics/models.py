"""Detector architectures, made through a registry and a factory (as timm does).

A detector maps a batch of normalised face crops ``(B, 3, H, W)`` to a dict with
``"logit"`` ``(B,)``, the image-level fake logit, and ``"patch_logits"`` ``(B, h, w)``, a
map of local evidence. The image logit is the mean of the patch logits, so the map *is*
the model's explanation (Chai et al., ECCV 2020) and needs no extra backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` creatable by name through :func:`create_model`."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered detector architectures."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered detector architecture with freshly initialised weights.

    Raises:
        KeyError: No architecture has that name.

    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown detector architecture {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel-relationship residual (Tan et al., CVPR 2024).

    ``x`` minus its own 2x nearest-neighbour down-then-up copy: it keeps the local pixel
    correlations that up-sampling layers leave and drops most image content.
    """
    h, w = x.shape[-2:]
    down = x[..., : h - h % 2 : 2, : w - w % 2 : 2]
    up = F.interpolate(down, scale_factor=2.0, mode="nearest")
    up = F.pad(up, (0, w - up.shape[-1], 0, h - up.shape[-2]), mode="replicate")
    return x - up


class InputFilter(nn.Module):
    """Turn RGB into the detector's input: ``rgb``, ``npr``, ``rgb+npr`` or ``highpass``."""

    CHANNELS = {"rgb": 3, "npr": 3, "rgb+npr": 6, "highpass": 3}

    def __init__(self, kind: str = "rgb+npr", gain: float = 4.0) -> None:
        super().__init__()
        if kind not in self.CHANNELS:
            raise ValueError(f"unknown input filter {kind!r}; use one of {sorted(self.CHANNELS)}")
        self.kind, self.gain = kind, float(gain)

    @property
    def out_channels(self) -> int:
        """Channels the filter outputs."""
        return self.CHANNELS[self.kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the filter."""
        if self.kind == "rgb":
            return x
        if self.kind == "highpass":
            blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
            return (x - blur) * self.gain
        residual = npr_residual(x) * self.gain
        return residual if self.kind == "npr" else torch.cat([x, residual], dim=1)


class PatchDetector(nn.Module):
    """A truncated timm backbone with a 1x1 head: one fake logit per receptive-field patch.

    Args:
        backbone: A timm architecture name supporting ``features_only`` (e.g. ``resnet18``).
        stage: Index of the last backbone stage kept; fewer stages mean a smaller
            receptive field, so evidence stays local and content cannot be used globally.
        input_filter: See :class:`InputFilter`.
        dropout: Dropout on features before the head.
        pretrained: Load timm's own pretrained weights (downloads them: needs a network).
            Off by default; local weights are loaded by the trainer's ``--init`` instead.
        **backbone_kwargs: Extra timm arguments (e.g. ``pad_type="same"`` for weights
            converted from TensorFlow).

    """

    def __init__(
        self,
        backbone: str = "resnet18",
        stage: int = 2,
        input_filter: str = "rgb+npr",
        dropout: float = 0.1,
        pretrained: bool = False,
        **backbone_kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        self.filter = InputFilter(input_filter)
        self.backbone = timm.create_model(
            backbone,
            pretrained=pretrained,
            features_only=True,
            out_indices=(stage,),
            in_chans=self.filter.out_channels,
            **backbone_kwargs,
        )
        channels = self.backbone.feature_info.channels()[-1]
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"logit": (B,), "patch_logits": (B, h, w)}``."""
        feats = self.backbone(self.filter(x))[-1]
        patch = self.head(self.dropout(feats)).squeeze(1)
        return {"logit": patch.mean(dim=(1, 2)), "patch_logits": patch}


@register_model
def patch_resnet(
    backbone: str = "resnet18", stage: int = 2, input_filter: str = "rgb+npr", dropout: float = 0.1
) -> nn.Module:
    """Truncated ResNet patch detector: ResNet stages up to ``stage`` (stride 8 at stage 2)."""
    return PatchDetector(backbone=backbone, stage=stage, input_filter=input_filter, dropout=dropout)


@register_model
def patch_mobilenet(
    backbone: str = "mobilenetv2_100",
    stage: int = 4,
    input_filter: str = "rgb",
    dropout: float = 0.2,
    pad_type: str = "same",
    pretrained: bool = False,
) -> nn.Module:
    """MobileNetV2 patch detector, built to be fine-tuned from ImageNet weights.

    All five stages are kept (stride 32: a 7x7 evidence map on a 224-px face). ``pad_type``
    ``"same"`` matches weights converted from TensorFlow, such as the project's shared
    ``mobilenetv2_100_in1k.safetensors``; their input normalisation is ``(x - 0.5) / 0.5``,
    which is :class:`forensics.preprocess.Preprocess`'s default. RGB input keeps the stem's
    pretrained filters usable.
    """
    extra = {"pad_type": pad_type} if pad_type else {}
    return PatchDetector(
        backbone=backbone,
        stage=stage,
        input_filter=input_filter,
        dropout=dropout,
        pretrained=pretrained,
        **extra,
    )


@register_model
def patch_tiny(input_filter: str = "rgb+npr", width: int = 8) -> nn.Module:
    """A tiny fully-convolutional patch detector for tests and quick experiments."""
    return TinyPatchDetector(input_filter=input_filter, width=width)


class TinyPatchDetector(nn.Module):
    """Three conv layers and a 1x1 head; same output contract as :class:`PatchDetector`."""

    def __init__(self, input_filter: str = "rgb+npr", width: int = 8) -> None:
        super().__init__()
        self.filter = InputFilter(input_filter)
        c = self.filter.out_channels
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width * 2, width * 2, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Conv2d(width * 2, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"logit": (B,), "patch_logits": (B, h, w)}``."""
        patch = self.head(self.body(self.filter(x))).squeeze(1)
        return {"logit": patch.mean(dim=(1, 2)), "patch_logits": patch}


# Architectures defined in their own modules register themselves on import.
from forensics import ensemble as _ensemble  # noqa: E402, F401
from forensics import fusion as _fusion  # noqa: E402, F401
from forensics import spectral as _spectral  # noqa: E402, F401

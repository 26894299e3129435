"""A projected discriminator: small heads on a frozen ImageNet network's features.

Sauer et al. (NeurIPS 2021, *Projected GANs Converge Faster*) showed that a discriminator
reading the multi-scale features of a frozen pretrained network, through fixed random
projections, trains a generator many times faster and with far less mode dropping than a
discriminator learnt from pixels: the pretrained features already separate faces by pose,
skin, hair and lighting, so a generator that keeps producing one face is caught at once.
That is what a 2-core CPU needs: few images seen, most of them useful.

Here the frozen network is timm ``mobilenetv2_100`` with the project's local ImageNet
weights (the file ``--features`` names; nothing is downloaded). Images in ``[-1, 1]`` are
resized to ``side`` px and normalised as the weights expect; the outputs of four stages
(strides 4, 8, 16, 32) are each mixed across channels by a fixed random 1x1 convolution
(cross-channel mixing), then top-down across scales by fixed random 1x1 convolutions and
upsampling (cross-scale mixing). A small trainable head (spectral-normalised stride-2
convolutions) on each scale gives one logit map, averaged to one logit per scale. The
discriminator returns ``(B, 4)`` logits; the hinge losses average them.

**Caveat for evaluation:** ``forensics gan eval --features`` measures coverage, density and
Fréchet distance in the same network's global-pool space. A generator trained against these
features can look better there than in other feature spaces (Kynkäänniemi et al., ICLR 2023).
The face rate (MTCNN) and pixel diversity are independent of it; report them beside.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

STAGES = (1, 2, 3, 4)
"""timm ``features_only`` indices of MobileNetV2 (strides 4, 8, 16, 32)."""
PROJ_CHANNELS = (64, 64, 128, 256)
"""Channels of the fixed random projection at each stage."""


def load_frozen_mobilenet(weights: str | os.PathLike) -> nn.Module:
    """The timm ``mobilenetv2_100`` as a frozen multi-stage feature extractor (eval mode).

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ValueError: The file holds no MobileNetV2 weights.

    """
    import timm
    from safetensors.torch import load_file

    if not os.path.isfile(weights):
        raise FileNotFoundError(f"discriminator feature weights not found: {weights}")
    net = timm.create_model(
        "mobilenetv2_100", pretrained=False, features_only=True, out_indices=STAGES,
        pad_type="same",
    )  # fmt: skip
    wanted = net.state_dict()
    state = {k: v for k, v in load_file(str(weights)).items() if k in wanted}
    missing = [k for k in wanted if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{weights}: not MobileNetV2 weights ({len(missing)} tensors missing)")
    net.load_state_dict(state, strict=False)
    return net.eval().requires_grad_(False)


def _fixed_conv(cin: int, cout: int, generator: torch.Generator) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(cout, cin, 1, 1, generator=generator) * (2.0 / cin) ** 0.5)
        conv.bias.zero_()
    return conv.requires_grad_(False)


class ScaleHead(nn.Module):
    """Spectral-normalised stride-2 convolutions down to ``<= 4`` px, then a logit map."""

    def __init__(self, cin: int, res: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        while res > 4:
            cout = min(width * 4, max(width, c * 2))
            layers += [spectral_norm(nn.Conv2d(c, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c, res = cout, res // 2
        layers.append(spectral_norm(nn.Conv2d(c, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image: the mean of the logit map."""
        return self.net(x).mean(dim=(1, 2, 3))


class ProjectedDiscriminator(nn.Module):
    """Frozen MobileNetV2 features -> fixed random projections -> trainable heads.

    Args:
        weights: MobileNetV2 ImageNet weights (safetensors), e.g.
            ``../shared/weights/mobilenetv2_100_in1k.safetensors``.
        side: Side the images are resized to before the frozen network (a multiple of 32).
        width: Channel width of the trainable heads.
        seed: Seed of the fixed random projections (stored with the run's config).

    """

    def __init__(
        self, weights: str | os.PathLike, side: int = 128, width: int = 64, seed: int = 0
    ) -> None:
        super().__init__()
        if side % 32:
            raise ValueError(f"projected discriminator side must be a multiple of 32, not {side}")
        self.side = int(side)
        self.backbone = load_frozen_mobilenet(weights)
        chans = self.backbone.feature_info.channels()
        reds = self.backbone.feature_info.reduction()
        gen = torch.Generator().manual_seed(int(seed))
        self.ccm = nn.ModuleList(
            _fixed_conv(c, p, gen) for c, p in zip(chans, PROJ_CHANNELS, strict=True)
        )
        self.csm = nn.ModuleList(
            _fixed_conv(PROJ_CHANNELS[i + 1], PROJ_CHANNELS[i], gen)
            for i in range(len(PROJ_CHANNELS) - 1)
        )
        self.heads = nn.ModuleList(
            ScaleHead(p, self.side // r, width) for p, r in zip(PROJ_CHANNELS, reds, strict=True)
        )
        self.register_buffer("mean", torch.tensor(0.5))
        self.register_buffer("std", torch.tensor(0.5))
        self.train()

    def trainable(self) -> list[nn.Parameter]:
        """The heads' parameters: the only ones an optimiser should see."""
        return list(self.heads.parameters())

    def requires_grad_(self, requires_grad: bool = True) -> ProjectedDiscriminator:
        """Toggle gradients of the heads only; the network and projections stay frozen."""
        self.heads.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        """Set train mode on the heads only: the frozen network's BatchNorm stays in eval."""
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Projected, scale-mixed feature maps (finest first) of images in ``[-1, 1]``."""
        x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        x = ((x + 1.0) / 2.0 - self.mean) / self.std
        feats = [proj(f) for proj, f in zip(self.ccm, self.backbone(x), strict=True)]
        for i in range(len(feats) - 2, -1, -1):  # top-down: coarse context into finer maps
            up = F.interpolate(feats[i + 1], size=feats[i].shape[-2:], mode="bilinear",
                               align_corners=False)  # fmt: skip
            feats[i] = feats[i] + self.csm[i](up)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 4)`` logits, one per feature scale."""
        return torch.stack(
            [head(f) for head, f in zip(self.heads, self.features(x), strict=True)], dim=1
        )

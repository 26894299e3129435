"""The projected discriminator: frozen pretrained features, trainable heads only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers.gan.config import GanConfig
from trainers.gan.losses import d_hinge
from trainers.gan.projected import ProjectedDiscriminator

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "shared/weights/mobilenetv2_100_in1k.safetensors"
)
needs_weights = pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="no ../shared/weights")


@needs_weights
def test_one_logit_per_scale_and_only_the_heads_learn():
    torch.manual_seed(0)
    D = ProjectedDiscriminator(SHARED_WEIGHTS, side=64, width=16)
    frozen = {k: v.clone() for k, v in D.state_dict().items() if not k.startswith("heads.")}
    heads = {k: v.clone() for k, v in D.heads.state_dict().items()}
    opt = torch.optim.Adam(D.trainable(), lr=1e-2)
    D.train().requires_grad_(True)  # what the training loop does before each D step
    assert not D.backbone.training, "the frozen network's BatchNorm must stay in eval mode"
    assert not any(p.requires_grad for p in D.backbone.parameters())
    real, fake = torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 3, 64, 64) * 2 - 1
    logits = D(real)
    assert logits.shape == (4, 4)
    d_hinge(logits, D(fake)).backward()
    opt.step()
    after = D.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert any(not torch.equal(D.heads.state_dict()[k], v) for k, v in heads.items())


@needs_weights
def test_gradients_reach_the_generator_through_the_frozen_network():
    D = ProjectedDiscriminator(SHARED_WEIGHTS, side=64, width=16).requires_grad_(False)
    fake = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    (-D(fake).mean()).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_projected_needs_feature_weights_and_a_valid_side(tmp_path):
    with pytest.raises(ValueError, match="needs --features"):
        GanConfig(data=("x",), disc="projected").validate()
    with pytest.raises(ValueError, match="multiple of 32"):
        GanConfig(data=("x",), disc_side=50).validate()
    with pytest.raises(ValueError, match="conv or projected"):
        GanConfig(data=("x",), disc="pixels").validate()

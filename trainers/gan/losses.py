"""GAN losses: hinge losses for D and G, and the R1 gradient penalty on real images."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: ``relu(1 - D(real)) + relu(1 + D(fake))``, averaged."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: ``-D(fake)``, averaged."""
    return -fake_logits.mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): mean squared gradient norm of D at real images.

    ``real_images`` must have ``requires_grad=True`` and have produced ``real_logits``.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()

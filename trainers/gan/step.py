"""One GAN training step: the hinge losses (+ lazy R1 and reconstruction) and both updates."""

from __future__ import annotations

import torch

from forensics.device import autocast
from trainers.gan.augment import diff_augment
from trainers.gan.config import GanConfig
from trainers.gan.losses import d_hinge, g_hinge, r1_penalty

CODE_PENALTY = 0.01
"""``ae_gan``: weight of the codes' mean square, relative to the L1 reconstruction loss."""


def train_step(
    cfg: GanConfig,
    step: int,
    G: torch.nn.Module,
    D: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    scaler_g: torch.amp.GradScaler,
    scaler_d: torch.amp.GradScaler,
    images: torch.Tensor,
    n_train: int,
    policy: tuple[str, ...],
    device: torch.device,
    use_amp: bool,
) -> dict[str, float]:
    """One D update and one G update (the fake batch is generated once and reused).

    Args:
        cfg: The run's config (batch, latent size, R1 and reconstruction weights).
        step: Steps completed before this one (decides whether lazy R1 runs).
        G: The generator being trained.
        D: The discriminator being trained.
        opt_g: The generator's optimiser.
        opt_d: The discriminator's optimiser.
        scaler_g: Gradient scaler for the generator loss (disabled without AMP).
        scaler_d: Gradient scaler for the discriminator loss (disabled without AMP).
        images: Training images, ``uint8`` NHWC on ``device``.
        n_train: How many of ``images`` to draw the batch from.
        policy: DiffAugment policy (from :func:`trainers.gan.augment.parse_policy`).
        device: Where the models and images live.
        use_amp: Run the forward passes under autocast.

    Returns:
        The step's losses: ``d_loss``, ``d_real``, ``d_fake``, ``g_loss``, and ``r1`` when R1
        ran and ``rec_l1`` for conditional or autoencoder generators.

    """
    idx = torch.randint(0, n_train, (cfg.batch,), device=device)
    real = images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
    flip = torch.rand(cfg.batch, device=device) < 0.5
    real = torch.where(flip[:, None, None, None], real.flip(3), real)
    autoencoder = getattr(G, "autoencoder", False)
    with autocast(device, use_amp):
        if G.conditional:
            fake = G(real)
        elif autoencoder:  # ae_gan: D judges reconstructions and samples of the mixture
            codes = G.encode(real)
            recon = G.decode(codes)
            half = cfg.batch // 2
            sampled = G(torch.randn(cfg.batch - half, cfg.z_dim, device=device))
            fake = torch.cat([recon[:half], sampled])
        else:
            fake = G(torch.randn(cfg.batch, cfg.z_dim, device=device))

    # Discriminator: hinge loss, lazy R1 on (augmented) reals.
    D.requires_grad_(True)
    do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
    real_in = real.detach().requires_grad_(do_r1)
    with autocast(device, use_amp):
        d_real = D(diff_augment(real_in, policy)).float()
        d_fake = D(diff_augment(fake.detach(), policy)).float()
        loss_d = d_hinge(d_real, d_fake)
    out = {
        "d_loss": loss_d.item(),
        "d_real": d_real.detach().mean().item(),
        "d_fake": d_fake.detach().mean().item(),
    }
    if do_r1:
        r1 = r1_penalty(d_real, real_in)
        loss_d = loss_d + 0.5 * cfg.r1_gamma * cfg.r1_every * r1
        out["r1"] = r1.item()
    opt_d.zero_grad(set_to_none=True)
    scaler_d.scale(loss_d).backward()
    scaler_d.step(opt_d)
    scaler_d.update()

    # Generator: hinge loss (+ L1 reconstruction for resynth); D is frozen.
    D.requires_grad_(False)
    with autocast(device, use_amp):
        loss_g = g_hinge(D(diff_augment(fake, policy)).float())
        out["g_loss"] = loss_g.item()
        if G.conditional or autoencoder:
            rec = ((recon if autoencoder else fake).float() - real).abs().mean()
            loss_g = loss_g + cfg.rec_weight * rec
            out["rec_l1"] = rec.item()
        if autoencoder:  # a regularised autoencoder: small codes, so a mixture fits them
            loss_g = loss_g + cfg.rec_weight * CODE_PENALTY * codes.float().pow(2).mean()
    opt_g.zero_grad(set_to_none=True)
    scaler_g.scale(loss_g).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    return out

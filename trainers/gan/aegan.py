"""``ae_gan``: an adversarial autoencoder whose samples come from a mixture fitted to its codes.

A GAN's generator is only ever told "look real", so nothing stops it from making one face
well (mode collapse, issue 17). An autoencoder is told "rebuild *this* face", for every face
of the training set, so its decoder must cover them all. This family trains:

- an encoder (stride-2 convolutions to a ``z_dim - 1`` vector) and a decoder that is exactly
  the generator of another family: ``resize_conv`` (the default: linear to 4x4, nearest
  upsampling + 3x3 convolutions), ``dcgan`` (transposed convolutions) or ``stylegan_lite``
  (mapping network, modulated convolutions, bilinear upsampling), so its samples carry that
  family's upsampling trace;
- with an L1 reconstruction loss, a small penalty on the codes' size (a regularised
  autoencoder, Ghosh et al., ICLR 2020), and the discriminator's hinge loss on both
  reconstructions and samples (Larsen et al., ICML 2016), which keeps them sharp.

Sampling is ex-post density estimation (Ghosh et al. 2020): a Gaussian mixture
(:class:`GaussianMixturePrior`, fitted with scikit-learn) is fitted to the codes of the
training faces and stored in the generator's buffers. A latent ``z`` of ``z_dim`` standard
normal numbers maps deterministically to a code: ``z[0]`` picks the component (through the
normal CDF and the mixture weights) and ``z[1:]`` is the component's Gaussian draw. So the
family plugs into ``gan sample`` like any latent generator, and the same seed gives the same
faces.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainers.gan.config import AE_DECODERS
from trainers.gan.models import channels, create_generator, register_generator


def make_decoder(decoder: str, size: int, width: int, code_dim: int) -> nn.Module:
    """The generator of family ``decoder`` (its defaults) with ``code_dim`` inputs, as a decoder.

    Raises:
        ValueError: ``decoder`` is not one of :data:`trainers.gan.config.AE_DECODERS`.

    """
    if decoder not in AE_DECODERS:
        raise ValueError(
            f"unknown ae_gan decoder {decoder!r}; choose from {', '.join(AE_DECODERS)}"
        )
    return create_generator(decoder, size=size, width=width, z_dim=code_dim)


class GaussianMixturePrior(nn.Module):
    """A Gaussian mixture over codes, held in buffers; maps standard normal ``z`` to codes.

    Args:
        dim: Code size.
        components: Mixture components.

    Until :meth:`fit` is called it is one standard normal (weights equal, means 0, identity
    covariances).

    """

    def __init__(self, dim: int, components: int) -> None:
        super().__init__()
        self.dim, self.components = int(dim), int(components)
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, dim))
        self.register_buffer("chol", torch.eye(dim).repeat(components, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, dim)`` for latents ``(B, dim + 1)``."""
        u = torch.special.ndtr(z[:, 0].float()).clamp(0.0, 1.0 - 1e-7)
        cum = torch.cumsum(self.weights, 0)
        k = torch.searchsorted(cum / cum[-1], u.contiguous()).clamp(max=self.components - 1)
        draw = torch.einsum("bij,bj->bi", self.chol[k], z[:, 1:].float())
        return (self.means[k] + draw).to(z.dtype)

    def fit(self, codes: np.ndarray, seed: int = 0) -> None:
        """Fit the mixture (full covariances) to ``codes`` ``(N, dim)`` and store it."""
        from sklearn.mixture import GaussianMixture

        k = max(1, min(self.components, len(codes) // max(2, self.dim // 4)))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed)
        gmm.fit(np.asarray(codes, np.float64))
        weights = np.zeros(self.components)
        weights[:k] = gmm.weights_
        means = np.zeros((self.components, self.dim))
        means[:k] = gmm.means_
        chol = np.repeat(np.eye(self.dim)[None], self.components, axis=0)
        chol[:k] = np.linalg.cholesky(gmm.covariances_)
        for buf, value in ((self.weights, weights), (self.means, means), (self.chol, chol)):
            buf.copy_(torch.as_tensor(value, dtype=buf.dtype))


class Encoder(nn.Module):
    """Stride-2 convolutions from ``size`` px down to 4 px, then a linear map to a code."""

    def __init__(self, size: int, width: int, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels(size, width, size), 3, 1, 1),
                                   nn.LeakyReLU(0.2)]  # fmt: skip
        res = size
        while res > 4:
            cin, cout = channels(size, width, res), channels(size, width, res // 2)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            res //= 2
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels(size, width, 4) * 16, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, dim)`` of images ``(B, 3, size, size)`` in ``[-1, 1]``."""
        return self.fc(self.features(x).flatten(1))


class AutoencoderGenerator(nn.Module):
    """Encoder + a family's generator as decoder + mixture prior; ``forward(z)`` samples."""

    conditional = False
    autoencoder = True

    def __init__(
        self, size: int, width: int, z_dim: int, components: int, with_encoder: bool = True,
        decoder: str = "resize_conv",
    ) -> None:  # fmt: skip
        super().__init__()
        if z_dim < 2:
            raise ValueError("ae_gan needs z_dim >= 2 (one number picks the component)")
        self.size, self.z_dim = size, z_dim
        self.code_dim = z_dim - 1
        self.encoder = Encoder(size, width, self.code_dim) if with_encoder else None
        self.decoder = make_decoder(decoder, size, width, self.code_dim)
        self.prior = GaussianMixturePrior(self.code_dim, components)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of real images in ``[-1, 1]``.

        Raises:
            RuntimeError: The generator was exported for sampling only (no encoder).

        """
        if self.encoder is None:
            raise RuntimeError("this ae_gan checkpoint was exported without its encoder")
        return self.encoder(x)

    def sampling_state(self) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        """What a sampling checkpoint needs: the decoder and prior, and the kwarg saying so."""
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        return state, {"with_encoder": False}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images in ``[-1, 1]`` for codes."""
        return self.decoder(codes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Sample: latents ``(B, z_dim)`` -> mixture codes -> images ``(B, 3, size, size)``."""
        return self.decoder(self.prior(z))


@register_generator
def ae_gan(
    size: int = 64, width: int = 16, z_dim: int = 65, components: int = 10,
    with_encoder: bool = True, decoder: str = "resize_conv",
) -> nn.Module:  # fmt: skip
    """Adversarial autoencoder sampled from a fitted code mixture.

    ``decoder`` names the family whose generator decodes (``AE_DECODERS``; its upsampling
    is the samples' trace). Exported checkpoints drop the encoder (``with_encoder=False``):
    sampling never needs it.
    """
    return AutoencoderGenerator(size, width, z_dim, components, with_encoder, decoder)


@torch.no_grad()
def fit_prior(
    generators: list[nn.Module], images: torch.Tensor, seed: int = 0, batch: int = 256,
    limit: int = 4096,
) -> np.ndarray:  # fmt: skip
    """Fit the mixture of ``generators[0]``'s codes of ``images`` into every generator given.

    Args:
        generators: ``ae_gan`` generators (the EMA copy first: its encoder gives the codes);
            the same mixture is stored in each, so an EMA update that copies buffers keeps it.
        images: uint8 ``(N, H, W, 3)`` training faces (at most ``limit`` evenly spaced used).
        seed: Seed of the mixture fit.
        batch: Images per encoder pass.
        limit: At most this many faces.

    Returns:
        The codes used, ``(n, code_dim)``.

    """
    source = generators[0]
    step = max(1, images.shape[0] // limit)
    chosen = images[::step][:limit]
    device = next(source.parameters()).device
    codes = []
    for i in range(0, chosen.shape[0], batch):
        x = chosen[i : i + batch].to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        codes.append(source.encode(x).float().cpu().numpy())
    all_codes = np.concatenate(codes)
    source.prior.fit(all_codes, seed)
    for other in generators[1:]:
        other.prior.load_state_dict(source.prior.state_dict())
    return all_codes

"""Generator families and the discriminator, made through a registry (like ``forensics.models``).

The families differ in how they upsample, because that is the trace a detector learns:

- ``dcgan``: transposed convolutions (stride 2, kernel 4), the classic checkerboard source;
- ``resize_conv``: nearest or bilinear upsampling followed by a 3x3 convolution;
- ``stylegan_lite``: a mapping network, modulated (demodulated) convolutions, per-pixel noise
  and bilinear upsampling, after StyleGAN2;
- ``resynth``: an autoencoder whose decoder is a generator upsampling stack (AutoGAN, Zhang,
  Karaman and Chang, WIFS 2019); it re-renders a real photo instead of sampling a latent.

Every generator outputs images in ``[-1, 1]`` with shape ``(B, 3, size, size)``. Unconditional
generators take latents ``(B, z_dim)``; ``resynth`` (``conditional = True``) takes images.
Generators have no batch statistics (pixel norm instead of batch norm), so an EMA copy is
exact and a sample depends only on its own latent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

if TYPE_CHECKING:
    from trainers.gan.config import GanConfig

_GENERATORS: dict[str, Callable[..., nn.Module]] = {}


def register_generator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` creatable by name through :func:`create_generator`."""
    _GENERATORS[fn.__name__] = fn
    return fn


def list_generators() -> list[str]:
    """Names of all registered generator families."""
    return sorted(_GENERATORS)


def create_generator(family: str, **kwargs: Any) -> nn.Module:
    """Build a registered generator family with freshly initialised weights.

    Raises:
        KeyError: No family has that name.

    """
    if family not in _GENERATORS:
        raise KeyError(
            f"unknown generator family {family!r}; known: {', '.join(list_generators())}"
        )
    return _GENERATORS[family](**kwargs)


def channels(size: int, width: int, res: int) -> int:
    """Channels at resolution ``res``: ``width`` at full size, doubling per halving, capped."""
    return int(min(width * 16, width * size // res))


def _levels(size: int) -> int:
    n = int(round(math.log2(size))) - 2
    if size < 8 or 2 ** (n + 2) != size:
        raise ValueError(f"size must be a power of two >= 8, not {size}")
    return n


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit RMS (ProGAN); no batch statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class UpBlock(nn.Module):
    """Double the resolution: transposed conv, or nearest/bilinear resize then 3x3 conv."""

    def __init__(self, cin: int, cout: int, mode: str) -> None:
        super().__init__()
        if mode == "transposed":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        elif mode in ("nearest", "bilinear"):
            align = {"align_corners": False} if mode == "bilinear" else {}
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=mode, **align), nn.Conv2d(cin, cout, 3, 1, 1)
            )
        else:
            raise ValueError(f"unknown upsampling {mode!r}: use transposed, nearest or bilinear")
        self.post = nn.Sequential(PixelNorm(), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        return self.post(self.up(x))


class UpStack(nn.Module):
    """A generator's upsampling stack from ``start`` px to ``size`` px, ending in RGB + tanh.

    With ``transposed`` the last layer is itself a transposed conv to RGB (as in DCGAN);
    with a resize mode a 3x3 conv maps the last features to RGB.
    """

    def __init__(self, size: int, width: int, start: int, mode: str) -> None:
        super().__init__()
        blocks = []
        res = start
        last = size // 2 if mode == "transposed" else size
        while res < last:
            blocks.append(UpBlock(channels(size, width, res), channels(size, width, res * 2), mode))
            res *= 2
        self.blocks = nn.Sequential(*blocks)
        cout = channels(size, width, res)
        if mode == "transposed":
            self.to_rgb: nn.Module = nn.ConvTranspose2d(cout, 3, 4, 2, 1)
        else:
            self.to_rgb = nn.Conv2d(cout, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        return torch.tanh(self.to_rgb(self.blocks(x)))


class LatentGenerator(nn.Module):
    """Latent -> 4x4 features (linear) -> :class:`UpStack`. Base of ``dcgan``/``resize_conv``."""

    conditional = False

    def __init__(self, size: int, width: int, z_dim: int, upsample: str) -> None:
        super().__init__()
        _levels(size)
        self.size, self.z_dim = size, z_dim
        self.c0 = channels(size, width, 4)
        self.fc = nn.Linear(z_dim, self.c0 * 16)
        self.norm = nn.Sequential(PixelNorm(), nn.LeakyReLU(0.2))
        self.stack = UpStack(size, width, 4, upsample)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        x = self.fc(z).view(z.shape[0], self.c0, 4, 4)
        return self.stack(self.norm(x))


@register_generator
def dcgan(size: int = 64, width: int = 16, z_dim: int = 128) -> nn.Module:
    """DCGAN-style generator: every upsampling is a stride-2 transposed convolution."""
    return LatentGenerator(size, width, z_dim, "transposed")


@register_generator
def resize_conv(
    size: int = 64, width: int = 16, z_dim: int = 128, upsample: str = "nearest"
) -> nn.Module:
    """Resize-then-convolve generator (nearest or bilinear upsampling, then a 3x3 conv)."""
    if upsample not in ("nearest", "bilinear"):
        raise ValueError("resize_conv upsamples with nearest or bilinear")
    return LatentGenerator(size, width, z_dim, upsample)


class ModConv(nn.Module):
    """StyleGAN2 modulated convolution with weight demodulation."""

    def __init__(self, cin: int, cout: int, k: int, w_dim: int, demod: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)
        self.scale = 1.0 / math.sqrt(cin * k * k)
        self.demod, self.pad = demod, k // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        style = self.affine(w)  # (B, cin)
        weight = self.weight * self.scale
        # Modulating the input instead of the weights is the same maths and much faster on
        # CPUs than StyleGAN2's grouped convolution.
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.pad)
        if self.demod:
            demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)
            out = out * demod[:, :, None, None]
        return out + self.bias[None, :, None, None]


EQUALIZED_LR_MULT = 10.0
"""Learning-rate multiplier of :class:`ModConv` weights, which are stored at unit scale and
scaled at run time (equalized learning rate, Karras et al. 2018): Adam moves every stored
number by about the learning rate, so at the 2e-4 of the other layers these weights would
learn about 30 times slower, relative to their size, than a plain convolution's. StyleGAN2
trains them at 0.002, ten times 2e-4."""


def generator_param_groups(generator: nn.Module, lr: float) -> list[dict[str, object]]:
    """Adam parameter groups of a generator: equalized-lr weights at ``lr * EQUALIZED_LR_MULT``.

    Generators without :class:`ModConv` layers get one group, all at ``lr``.
    """
    equalized = [m.weight for m in generator.modules() if isinstance(m, ModConv)]
    ids = {id(p) for p in equalized}
    groups: list[dict[str, object]] = [
        {"params": [p for p in generator.parameters() if id(p) not in ids], "lr": lr}
    ]
    if equalized:
        groups.append({"params": equalized, "lr": lr * EQUALIZED_LR_MULT})
    return groups


class StyleLayer(nn.Module):
    """Modulated 3x3 conv + per-pixel noise + leaky ReLU at a fixed resolution.

    In training the noise is fresh; in ``eval()`` mode a fixed noise buffer is used, so a
    sample is a pure function of its latent (the same seed gives the same image).
    """

    def __init__(self, cin: int, cout: int, w_dim: int, res: int) -> None:
        super().__init__()
        self.conv = ModConv(cin, cout, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        gen = torch.Generator().manual_seed(1000 + res)
        self.register_buffer("const_noise", torch.randn(1, 1, res, res, generator=gen))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        x = self.conv(x, w)
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.const_noise.to(x.dtype)
        return F.leaky_relu(x + self.noise_strength * noise, 0.2)


class StyleGanLite(nn.Module):
    """Compact StyleGAN-like generator: mapping MLP, constant input, bilinear upsampling."""

    conditional = False

    def __init__(self, size: int, width: int, z_dim: int, w_dim: int, mapping_layers: int) -> None:
        super().__init__()
        n = _levels(size)
        self.size, self.z_dim = size, z_dim
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(mapping_layers):
            layers += [nn.Linear(z_dim if i == 0 else w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)
        self.const = nn.Parameter(torch.randn(1, channels(size, width, 4), 4, 4))
        self.first = StyleLayer(channels(size, width, 4), channels(size, width, 4), w_dim, 4)
        self.layers = nn.ModuleList(
            StyleLayer(channels(size, width, 4 * 2**i), channels(size, width, 8 * 2**i), w_dim,
                       8 * 2**i)
            for i in range(n)
        )  # fmt: skip
        self.to_rgb = ModConv(channels(size, width, size), 3, 1, w_dim, demod=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        w = self.mapping(z)
        x = self.first(self.const.expand(z.shape[0], -1, -1, -1), w)
        for layer in self.layers:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(x, w)
        return torch.tanh(self.to_rgb(x, w))


@register_generator
def stylegan_lite(
    size: int = 64, width: int = 16, z_dim: int = 128, w_dim: int = 128, mapping_layers: int = 3
) -> nn.Module:
    """Compact StyleGAN-like generator (mapping net, modulated convs, noise, bilinear)."""
    return StyleGanLite(size, width, z_dim, w_dim, mapping_layers)


class Resynth(nn.Module):
    """Autoencoder re-rendering a real face through a generator's upsampling stack.

    The encoder (stride-2 convs) shrinks the image to ``size / 8`` px; the decoder is an
    :class:`UpStack`, so its output carries that stack's upsampling traces.
    """

    conditional = True

    def __init__(self, size: int, width: int, upsample: str) -> None:
        super().__init__()
        _levels(size)
        self.size = size
        self.bottom = size // 8
        enc: list[nn.Module] = [
            nn.Conv2d(3, channels(size, width, size), 3, 1, 1),
            nn.LeakyReLU(0.2),
        ]
        res = size
        while res > self.bottom:
            enc += [
                nn.Conv2d(channels(size, width, res), channels(size, width, res // 2), 4, 2, 1),
                nn.LeakyReLU(0.2),
            ]
            res //= 2
        enc += [nn.Conv2d(channels(size, width, res), channels(size, width, res), 3, 1, 1)]
        enc += [PixelNorm(), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = UpStack(size, width, self.bottom, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        return self.decoder(self.encoder(x))


@register_generator
def resynth(size: int = 64, width: int = 16, upsample: str = "transposed") -> nn.Module:
    """Re-synthesis generator (AutoGAN): real photo in, generator-rendered twin out."""
    return Resynth(size, width, upsample)


class MinibatchStd(nn.Module):
    """Append the mean standard deviation across a group of samples as one feature map."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        b, c, h, w = x.shape
        g = math.gcd(self.group, b)
        y = x.float().view(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/g,)
        y = y.view(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """Conv discriminator with a minibatch-stddev layer; returns ``(B,)`` logits.

    Args:
        size: Image side.
        width: Base channel width.
        spectral: Spectral normalisation on every layer (Miyato et al. 2018).
        mbstd: Minibatch standard deviation feature (Karras et al. 2018): lets D see a batch's
            lack of variety, which pushes G away from mode collapse.

    """

    def __init__(
        self, size: int = 64, width: int = 16, spectral: bool = True, mbstd: bool = True
    ) -> None:
        super().__init__()
        _levels(size)
        sn = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = [
            sn(nn.Conv2d(3, channels(size, width, size), 3, 1, 1)),
            nn.LeakyReLU(0.2),
        ]
        res = size
        while res > 4:
            cin, cout = channels(size, width, res), channels(size, width, res // 2)
            layers += [sn(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            res //= 2
        c = channels(size, width, 4)
        self.features = nn.Sequential(*layers)
        self.stddev = MinibatchStd() if mbstd else nn.Identity()
        extra = 1 if mbstd else 0
        self.head = nn.Sequential(
            sn(nn.Conv2d(c + extra, c, 3, 1, 1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            sn(nn.Linear(c * 16, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module."""
        return self.head(self.stddev(self.features(x))).squeeze(1)


def make_discriminator(cfg: GanConfig) -> nn.Module:
    """The run's discriminator: learnt from pixels, or projected (frozen MobileNetV2).

    Args:
        cfg: The run's config (``disc``, ``features``, ``disc_side``, ``size``, ``width``,
            ``spectral_norm``, ``mbstd``, ``seed``).

    Returns:
        A :class:`Discriminator` or a ``ProjectedDiscriminator``.

    """
    if cfg.disc == "projected":
        from trainers.gan.projected import ProjectedDiscriminator

        assert cfg.features is not None  # validated
        return ProjectedDiscriminator(cfg.features, cfg.disc_side, width=4 * cfg.width,
                                      seed=cfg.seed)  # fmt: skip
    return Discriminator(cfg.size, cfg.width, cfg.spectral_norm, cfg.mbstd)


def discriminator_params(D: nn.Module) -> Iterable[nn.Parameter]:
    """The parameters D's optimiser should see: a projected D's heads only, else all of them.

    Args:
        D: A discriminator from :func:`make_discriminator`.

    Returns:
        ``D.trainable()`` when D has it (frozen backbone), otherwise ``D.parameters()``.

    """
    return D.trainable() if hasattr(D, "trainable") else D.parameters()


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


from trainers.gan import aegan as _aegan  # noqa: E402,F401  (registers the ae_gan family)

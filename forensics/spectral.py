"""The spectral patch detector: local Fourier statistics of native-resolution pixels.

Generators leave their clearest trace in the top octave of the spectrum: their up-sampling
layers either smooth it away (StyleGAN-style faces carry less high-frequency energy than
camera photos processed the same way) or add periodic peaks (transposed convolutions,
nearest-neighbour up-sampling). Durall et al. (*Unmasking DeepFakes with simple Features*,
2019) and Dzanic et al. (*Fourier spectrum discrepancies in deep network generated images*,
NeurIPS 2020) show that the azimuthally averaged power spectrum alone separates them. Here the
spectrum is taken per 32x32 window, so the detector keeps the project's contract: one logit
per patch (the heatmap), image logit = their mean.

The pure feature functions (:func:`window_spectra`, radial means, and
:func:`window_quadrant_spectra`, 2-D spectra that keep orientation, which is what tells JPEG's
axis-aligned quantisation from a generator's smoothing) are separate from the model, so they can
be tested and reused; :class:`SpectralPatchDetector` adds a per-window MLP on top. The model
must see pixels at their native resolution (``Preprocess(fit="center")``): resizing a crop
rewrites exactly the frequencies it measures.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from forensics.models import PatchDetector, register_model

#: ITU-R BT.601 luma weights; the chroma channels are B-Y and R-Y.
_LUMA = (0.299, 0.587, 0.114)

_SHARED: contextvars.ContextVar[dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] | None]
_SHARED = contextvars.ContextVar("forensics_shared_spectra", default=None)


@contextlib.contextmanager
def shared_spectra() -> Iterator[None]:
    """Within the block, window spectra of one input tensor are computed once per setting.

    Members of an ensemble trained from one recipe (the shipped default's three spectral
    models) read the same crops with the same windows: their features are identical, and
    computing them is most of a spectral model's cost. The cache lives only inside the block,
    keyed by the input tensor's identity and the window settings, so results are unchanged.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def radial_index(window: int, onesided: bool = False) -> torch.Tensor:
    """Integer radius (in frequency bins, clipped to ``window // 2``) of each FFT coefficient.

    With ``onesided`` the columns are those of :func:`torch.fft.rfft2` (``window // 2 + 1``).
    """
    f = torch.fft.fftfreq(window) * window
    g = torch.fft.rfftfreq(window) * window if onesided else f
    r = torch.sqrt(f[:, None] ** 2 + g[None, :] ** 2).round().long()
    return r.clamp(max=window // 2)


@functools.cache
def radial_mean_matrix(window: int) -> torch.Tensor:
    """Matrix turning flattened one-sided power into the full spectrum's mean power per radius.

    Shape ``(window * (window // 2 + 1), window // 2 + 1)``, for :func:`torch.fft.rfft2` output.
    The spectrum of a real window is Hermitian, so each one-sided column but the first and the
    Nyquist one stands for two coefficients of the full plane.
    """
    half = window // 2
    r = radial_index(window, onesided=True)
    twice = torch.full((half + 1,), 2.0)
    twice[0] = twice[half] = 1.0
    weight = twice.expand(window, -1)
    counts = torch.bincount(radial_index(window).flatten(), minlength=half + 1).float()
    m = torch.zeros(r.numel(), half + 1)
    m[torch.arange(r.numel()), r.flatten()] = (weight / counts[r]).flatten()
    return m


def _luma(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB to ``(B, H, W)`` luma."""
    return sum(w * x[:, i] for i, w in enumerate(_LUMA))


def window_power(planes: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """One-sided power spectra of the mean-removed, Hann-tapered windows of each plane.

    Args:
        planes: ``(B, C, H, W)`` float images, ``H, W >= window``.
        window: Window side.
        stride: Step between windows.

    Returns:
        ``(B, C, nh, nw, window, window // 2 + 1)``: :func:`torch.fft.rfft2` power (the
        input is real, so the other half-plane is its mirror).

    """
    tiles = planes.unfold(2, window, stride).unfold(3, window, stride)  # (B,C,nh,nw,w,w)
    tiles = tiles - tiles.mean(dim=(-1, -2), keepdim=True)
    hann = torch.hann_window(window, periodic=False, device=planes.device)
    spectrum = torch.fft.rfft2(tiles * (hann[:, None] * hann[None, :]))
    return spectrum.real.square() + spectrum.imag.square()


def feature_count(window: int) -> int:
    """Length of :func:`window_spectra`'s feature vector for a window side."""
    return 2 * (window // 2) + 2


def window_spectra(x: torch.Tensor, window: int = 32, stride: int = 16) -> torch.Tensor:
    """Per-window spectral features of images in pixel units.

    Args:
        x: ``(B, 3, H, W)`` RGB in ``[0, 255]`` (any float dtype), ``H, W >= window``.
        window: Side of the square analysis window (a Hann taper is applied).
        stride: Step between windows.

    Returns:
        ``(B, F, nh, nw)`` with ``F = feature_count(window)``: the log radial power spectrum
        of luma (bins 1..window/2), the same for chroma (B-Y and R-Y pooled), and the log
        power at the axis and corner Nyquist frequencies (up-sampling checkerboards).

    """
    x = x.float()
    luma = _luma(x)
    chroma = torch.stack([x[:, 2] - luma, x[:, 0] - luma], dim=1)
    planes = torch.cat([luma[:, None], chroma], dim=1)  # (B, 3, H, W)
    power = window_power(planes, window, stride)  # (B,3,nh,nw,w,w//2+1)
    b, _, nh, nw = power.shape[:4]
    half = window // 2
    means = power.flatten(-2) @ radial_mean_matrix(window).to(x.device)
    radial = torch.log1p(means)[..., 1:]  # drop DC: (B,3,nh,nw,half)
    luma_radial = radial[:, 0]
    chroma_radial = radial[:, 1:].mean(dim=1)
    nyq_axis = torch.log1p(0.5 * (power[:, 0, :, :, half, 0] + power[:, 0, :, :, 0, half]))
    nyq_corner = torch.log1p(power[:, 0, :, :, half, half])
    feats = torch.cat(
        [luma_radial, chroma_radial, nyq_axis[..., None], nyq_corner[..., None]], dim=-1
    )
    return feats.permute(0, 3, 1, 2).reshape(b, -1, nh, nw)


def quadrant_feature_count(window: int, pool: int) -> int:
    """Length of :func:`window_quadrant_spectra`'s feature vector.

    Raises:
        ValueError: ``pool`` does not divide ``window // 2``.

    """
    if pool < 1 or (window // 2) % pool:
        raise ValueError("pool must divide window // 2")
    return (window // 2 // pool) ** 2


def window_quadrant_spectra(
    x: torch.Tensor, window: int = 64, stride: int = 32, pool: int = 4
) -> torch.Tensor:
    """Per-window 2-D log power spectrum of luma, folded onto one quadrant and pooled.

    The radial mean of :func:`window_spectra` mixes every orientation of a frequency band.
    JPEG quantises separable (horizontal x vertical) DCT frequencies of 8x8 blocks, hardest where
    both are high, and adds block-grid peaks along the axes: its footprint depends on
    orientation, while a generator's smoothing lowers power in every direction alike. Kept apart
    in 2-D, the two can be told apart after re-encoding.

    Args:
        x: ``(B, 3, H, W)`` RGB in ``[0, 255]``, ``H, W >= window``.
        window: Side of the square analysis window (Hann-tapered).
        stride: Step between windows.
        pool: Side of the square of frequency bins averaged into one feature; must divide
            ``window // 2``.

    Returns:
        ``(B, F, nh, nw)`` with ``F = quadrant_feature_count(window, pool)``: for vertical
        frequency ``1..window/2`` by horizontal frequency ``1..window/2`` (the DC row and
        column left out), the mean log power of each ``pool x pool`` block. Positive and
        negative vertical frequencies are averaged, so a mirrored window gives the same
        features.

    """
    quadrant_feature_count(window, pool)  # checks pool
    half = window // 2
    power = window_power(_luma(x.float())[:, None], window, stride)[:, 0]  # (B,nh,nw,w,half+1)
    folded = torch.cat(
        [
            0.5 * (power[..., 1:half, :] + power[..., half + 1 :, :].flip(-2)),
            power[..., half : half + 1, :],
        ],
        dim=-2,
    )[..., 1:]  # vertical 1..half x horizontal 1..half
    b, nh, nw = folded.shape[:3]
    logp = torch.log1p(folded).reshape(b * nh * nw, 1, half, half)
    feats = F.avg_pool2d(logp, pool).reshape(b, nh, nw, -1)
    return feats.permute(0, 3, 1, 2).contiguous()


#: Per-window feature kinds of :class:`SpectralPatchDetector`.
FEATURES = ("radial", "quadrant")


def summed_patch_maps(grid: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Add ``other``'s patch map, average-pooled onto ``grid``'s cells, to ``grid``'s.

    Returns the patch contract ``{"logit": (B,), "patch_logits": (B, h, w)}``: the image logit
    is the mean of the summed map, so the heatmap is exactly what the score is made of.
    """
    patch = grid + F.adaptive_avg_pool2d(other[:, None], grid.shape[-2:])[:, 0]
    return {"logit": patch.mean(dim=(1, 2)), "patch_logits": patch}


class SpectralPatchDetector(nn.Module):
    """Window spectra followed by a per-window MLP (1x1 convolutions).

    Args:
        window: Analysis window side in pixels.
        stride: Step between windows (the heatmap's cell size).
        hidden: Width of the MLP's hidden layer.
        dropout: Dropout on the hidden layer.
        features: ``"radial"`` (:func:`window_spectra`) or ``"quadrant"``
            (:func:`window_quadrant_spectra`).
        pool: ``"quadrant"`` only: frequency bins pooled per feature, per axis.

    """

    def __init__(
        self,
        window: int = 32,
        stride: int = 16,
        hidden: int = 64,
        dropout: float = 0.1,
        features: str = "radial",
        pool: int = 4,
    ) -> None:
        super().__init__()
        if window < 4 or window % 2 or stride < 1:
            raise ValueError("window must be an even number >= 4 and stride >= 1")
        if features not in FEATURES:
            raise ValueError(f"unknown spectral features {features!r}; use one of {FEATURES}")
        self.window, self.stride = int(window), int(stride)
        self.features, self.pool = features, int(pool)
        if features == "radial":
            n = feature_count(self.window)
        else:
            n = quadrant_feature_count(self.window, self.pool)
        self.norm = nn.BatchNorm2d(n)
        self.mlp = nn.Sequential(
            nn.Conv2d(n, hidden, 1),
            nn.GELU(),
            nn.Dropout2d(dropout),
            nn.Conv2d(hidden, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, 1, 1),
        )

    def window_features(self, x: torch.Tensor) -> torch.Tensor:
        """The per-window spectral features of crops ``x`` in ``[-1, 1]``: ``(B, n, h, w)``.

        Inside :func:`shared_spectra`, a second call with the same tensor and settings returns
        the first call's result.
        """
        cache = _SHARED.get()
        key = (id(x), self.features, self.window, self.stride, self.pool)
        if cache is not None and key in cache and cache[key][0] is x:
            return cache[key][1]
        h, w = x.shape[-2:]
        pixels = x
        if min(h, w) < self.window:
            pad = (0, max(0, self.window - w), 0, max(0, self.window - h))
            pixels = F.pad(x, pad, mode="replicate")
        pixels = (pixels.float() + 1.0) * 127.5
        if self.features == "radial":
            feats = window_spectra(pixels, self.window, self.stride)
        else:
            feats = window_quadrant_spectra(pixels, self.window, self.stride, self.pool)
        if cache is not None:
            cache[key] = (x, feats)  # holding x keeps its id from being reused in the block
        return feats

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: crops normalised to ``[-1, 1]``; returns ``{"logit", "patch_logits"}``."""
        patch = self.mlp(self.norm(self.window_features(x))).squeeze(1)
        return {"logit": patch.mean(dim=(1, 2)), "patch_logits": patch}


@register_model
def spectral_patch(
    window: int = 32,
    stride: int = 16,
    hidden: int = 64,
    dropout: float = 0.1,
    features: str = "radial",
    pool: int = 4,
) -> nn.Module:
    """Spectral patch detector (see :class:`SpectralPatchDetector`); use ``fit="center"``."""
    return SpectralPatchDetector(window, stride, hidden, dropout, features, pool)


class HybridPatchDetector(nn.Module):
    """Spectral and convolutional evidence on the same native-resolution window, summed.

    The spectral branch (:class:`SpectralPatchDetector`) sees global smoothness and periodic
    up-sampling peaks; the convolutional branch (a truncated timm ResNet on RGB + NPR, as in
    :func:`forensics.models.patch_resnet`) sees local texture and blending seams. Its finer
    patch map is average-pooled onto the spectral grid and the two maps are added, so the
    heatmap still shows exactly what the score is made of.
    """

    def __init__(
        self,
        window: int = 32,
        stride: int = 16,
        hidden: int = 64,
        dropout: float = 0.1,
        backbone: str = "resnet18",
        stage: int = 2,
        input_filter: str = "rgb+npr",
    ) -> None:
        super().__init__()
        self.spectral = SpectralPatchDetector(window, stride, hidden, dropout)
        self.cnn = PatchDetector(backbone, stage, input_filter, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"logit": (B,), "patch_logits": (B, h, w)}`` on the spectral grid."""
        return summed_patch_maps(self.spectral(x)["patch_logits"], self.cnn(x)["patch_logits"])


@register_model
def spectral_hybrid(**kwargs: Any) -> nn.Module:
    """Spectral + truncated-ResNet patch detector; kwargs as :class:`HybridPatchDetector`."""
    return HybridPatchDetector(**kwargs)


class MultiScaleSpectralDetector(nn.Module):
    """Two spectral patch detectors, 32-px and 64-px windows, on the same native pixels, summed.

    Small windows localise the evidence; large ones resolve the top octave into finer bins,
    which keeps generator smoothness apart from JPEG's quantisation. The fine map is
    average-pooled onto the coarse grid before the two are added, so the heatmap is still
    exactly what the score is made of.

    Args:
        windows: ``(fine, coarse)`` window sides; each branch's stride is half its window.
        hidden: Width of each branch's MLP.
        dropout: Dropout in each branch's MLP.
        features: ``(fine, coarse)`` feature kinds (see :class:`SpectralPatchDetector`).
        pool: Frequency bins pooled per ``"quadrant"`` feature, per axis.

    """

    def __init__(
        self,
        windows: tuple[int, int] = (32, 64),
        hidden: int = 64,
        dropout: float = 0.1,
        features: tuple[str, str] = ("radial", "radial"),
        pool: int = 4,
    ) -> None:
        super().__init__()
        fine, coarse = (int(w) for w in windows)
        if not fine < coarse:
            raise ValueError("windows must be (fine, coarse) with fine < coarse")
        kind_fine, kind_coarse = features
        self.fine = SpectralPatchDetector(fine, fine // 2, hidden, dropout, kind_fine, pool)
        self.coarse = SpectralPatchDetector(coarse, coarse // 2, hidden, dropout, kind_coarse, pool)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"logit": (B,), "patch_logits": (B, h, w)}`` on the coarse grid."""
        return summed_patch_maps(self.coarse(x)["patch_logits"], self.fine(x)["patch_logits"])


@register_model
def spectral_multiscale(
    windows: tuple[int, int] = (32, 64),
    hidden: int = 64,
    dropout: float = 0.1,
    features: tuple[str, str] = ("radial", "radial"),
    pool: int = 4,
) -> nn.Module:
    """32- and 64-px spectral patch detectors summed (:class:`MultiScaleSpectralDetector`).

    ``features=("radial", "quadrant")`` gives the coarse branch 2-D spectra (the shipped
    default); checkpoints without the key keep radial spectra in both branches.
    """
    if len(windows) != 2 or len(features) != 2:
        raise ValueError("windows and features must each name two branches (fine, coarse)")
    return MultiScaleSpectralDetector(
        windows=(windows[0], windows[1]),
        hidden=hidden,
        dropout=dropout,
        features=(features[0], features[1]),
        pool=pool,
    )

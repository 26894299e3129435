"""Typed configuration of a GAN training run: the single source of truth for its options."""

from __future__ import annotations

import os
from dataclasses import dataclass

FAMILIES = ("dcgan", "resize_conv", "stylegan_lite", "resynth", "ae_gan")
"""Generator families; they differ in how they upsample (the trace a detector learns)."""

AE_DECODERS = ("resize_conv", "dcgan", "stylegan_lite")
"""Families whose generator can be ``ae_gan``'s decoder (``trainers.gan.aegan.make_decoder``)."""


@dataclass
class GanConfig:
    """Everything that defines a GAN run; saved as ``config.json`` in the run folder.

    Attributes:
        family: Generator family, one of :data:`FAMILIES`.
        data: Folders (or files) of real face photos.
        size: Image side in pixels (a power of two, 16 to 128).
        width: Base channel width of G and D (channels grow towards low resolutions).
        z_dim: Latent size of the unconditional generators.
        upsample: ``auto`` or the upsampling of ``resize_conv`` (``nearest``/``bilinear``;
            auto = nearest) and of ``resynth``'s decoder (``transposed``/``nearest``/
            ``bilinear``; auto = transposed).
        batch: Images per step.
        lr_g: Generator learning rate (Adam).
        lr_d: Discriminator learning rate (Adam).
        beta1: Adam beta1.
        beta2: Adam beta2.
        r1_gamma: R1 gradient-penalty weight on real images (0 disables it).
        r1_every: Apply R1 lazily every this many steps (scaled up to compensate).
        spectral_norm: Spectral normalisation in the discriminator.
        mbstd: Minibatch standard-deviation feature in the discriminator.
        disc: ``conv`` (a discriminator learnt from pixels) or ``projected`` (small heads on
            the frozen MobileNetV2 of ``features``; :mod:`trainers.gan.projected`).
        disc_side: Side the projected discriminator resizes images to (a multiple of 32).
        ema_decay: Decay of the EMA generator used for sampling (0: sample from G itself).
        ema_start: Steps before the EMA starts (it copies G until then).
        diffaug: Comma-separated DiffAugment policy (``color``, ``translation``, ``cutout``).
        rec_weight: L1 reconstruction weight of the ``resynth`` and ``ae_gan`` families.
        decoder: ``ae_gan`` only: the family whose generator is the decoder (``resize_conv``,
            ``dcgan`` or ``stylegan_lite``); its upsampling is the samples' trace.
        crop: ``auto`` (detect whether files are already face crops), ``none`` (just resize)
            or ``mtcnn`` (always detect, align and crop).
        holdout: Real images held back from training for coverage/precision.
        max_images: Use at most this many training images (0 = all).
        steps: Stop after this many steps in total (0 = no step limit).
        minutes: Wall-clock budget of this invocation in minutes (0 = no time limit).
        checkpoint_every: Write ``last.pt`` and the exported generator every this many steps.
        sample_every: Write a sample grid PNG every this many steps.
        eval_every: Measure face rate and diversity every this many steps.
        eval_n: Samples used by the periodic evaluation.
        features: MobileNetV2 weights: the periodic evaluation then also measures coverage,
            density and CrossLID in its feature space (``feat_coverage``, ...).
        stop_on_collapse: End the run when feature coverage, pixel coverage or diversity falls
            below ``collapse_drop`` times its best value and stays there for
            ``collapse_patience`` evaluations in a row.
        collapse_drop: See ``stop_on_collapse``.
        collapse_patience: See ``stop_on_collapse``.
        log_every: Append losses to ``metrics.jsonl`` every this many steps.
        seed: Seed of everything (weights, data order, augmentation, sample grids).
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: CPU threads for torch (``None`` = torch's default).
        amp: Mixed precision on CUDA.

    """

    family: str = "resize_conv"
    data: tuple[str, ...] = ()
    size: int = 64
    width: int = 16
    z_dim: int = 128
    upsample: str = "auto"
    batch: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.99
    r1_gamma: float = 0.1
    r1_every: int = 4
    spectral_norm: bool = True
    mbstd: bool = True
    disc: str = "conv"
    disc_side: int = 64
    ema_decay: float = 0.995
    ema_start: int = 200
    diffaug: str = "color,translation"
    rec_weight: float = 10.0
    decoder: str = "resize_conv"
    crop: str = "auto"
    holdout: int = 256
    max_images: int = 0
    steps: int = 0
    minutes: float = 0.0
    checkpoint_every: int = 100
    sample_every: int = 250
    eval_every: int = 250
    eval_n: int = 64
    features: str | None = None
    stop_on_collapse: bool = False
    collapse_drop: float = 0.5
    collapse_patience: int = 3
    log_every: int = 25
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message on an impossible setting."""
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose from {', '.join(FAMILIES)}")
        if self.size not in (16, 32, 64, 128):
            raise ValueError(f"--size must be 16, 32, 64 or 128, not {self.size}")
        if not self.data:
            raise ValueError("no training data: pass --data FOLDER")
        if self.batch < 2:
            raise ValueError("--batch must be at least 2 (minibatch-stddev needs pairs)")
        if self.width < 1 or self.z_dim < 1:
            raise ValueError("--width and z_dim must be positive")
        allowed = ("auto", "nearest", "bilinear") + (
            ("transposed",) if self.family == "resynth" else ()
        )
        if self.upsample not in allowed:
            raise ValueError(f"--upsample must be one of {', '.join(allowed)} for {self.family}")
        if self.decoder not in AE_DECODERS:
            raise ValueError(f"--decoder must be one of {', '.join(AE_DECODERS)}")
        if self.decoder != "resize_conv" and self.family != "ae_gan":
            raise ValueError("--decoder is an ae_gan option; the other families are their own")
        if self.crop not in ("auto", "none", "mtcnn"):
            raise ValueError("--crop must be auto, none or mtcnn")
        if self.disc not in ("conv", "projected"):
            raise ValueError(f"--disc must be conv or projected, not {self.disc!r}")
        if self.disc == "projected" and self.features is None:
            raise ValueError("--disc projected needs --features (MobileNetV2 weights)")
        if self.disc_side < 32 or self.disc_side % 32:
            raise ValueError(f"--disc-side must be a multiple of 32, not {self.disc_side}")
        if self.features is not None and not os.path.isfile(self.features):
            raise ValueError(f"--features: file not found: {self.features}")
        if not 0.0 < self.collapse_drop < 1.0:
            raise ValueError("collapse_drop must be between 0 and 1")
        for name in ("checkpoint_every", "sample_every", "eval_every", "log_every", "r1_every",
                     "collapse_patience"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def model_kwargs(self) -> dict[str, object]:
        """Keyword arguments of the generator factory for this config."""
        kwargs: dict[str, object] = {"size": self.size, "width": self.width}
        if self.family != "resynth":
            kwargs["z_dim"] = self.z_dim
        if self.family in ("resize_conv", "resynth"):
            up = self.upsample
            if up == "auto":
                up = "nearest" if self.family == "resize_conv" else "transposed"
            kwargs["upsample"] = up
        if self.family == "ae_gan" and self.decoder != "resize_conv":
            kwargs["decoder"] = self.decoder
        return kwargs

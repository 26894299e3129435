"""Typed configuration of a detector training run: the single source of truth.

The CLI maps its options onto :class:`DetectorTrainConfig`; the resolved config is written to
the run folder as ``config.json`` so ``--resume`` continues with exactly the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def default_arch_kwargs() -> dict[str, Any]:
    """Kwargs of the default ``patch_resnet``: ResNet-18 cut after stage 2, RGB + NPR input."""
    return {"backbone": "resnet18", "stage": 2, "input_filter": "rgb+npr", "dropout": 0.1}


@dataclass
class DetectorTrainConfig:
    """Everything that defines a detector training run.

    Attributes:
        out: Run folder (config, metrics log, crop cache, last/best state, final model).
        real: Folders (or files) of real photos; the source name is the folder name.
        fake: Folders of fake photos; a folder with a ``manifest.jsonl`` from
            ``forensics gan sample`` names each file's generator family and real twin.
        manifest: CSV or JSONL files naming ``path,label,source[,group]`` per sample.
        holdout_generators: Fake sources removed from training and validation; the final
            model is evaluated on them to measure generalisation to unseen generators.
        max_per_source: Keep at most this many samples per source (``None``: all).
        arch: Registered detector architecture (:func:`forensics.models.create_model`).
        arch_kwargs: Keyword arguments of the architecture.
        input_size: Side of the square model input.
        fit: How crops become the input: ``resize`` (area filter) or ``center`` (a window
            of native-resolution pixels; needed by ``spectral_patch``).
        score_size: ``center`` fit only: side of the centre window scored at validation,
            calibration and scan time (``0``: ``input_size``). Training still takes random
            ``input_size`` windows. A patch model's image logit is the mean of its window
            logits, so scoring a larger window averages more evidence per face. Crops between
            ``input_size`` and ``score_size`` are scored whole, not padded.
        crop_margin: Margin around the MTCNN face box (fraction of the box side).
        cache_side: Cached crops larger than this are shrunk (area filter) to keep loading
            fast; ``0`` keeps native resolution.
        batch_size: Images per optimisation step (per process under torchrun).
        epochs: Maximum passes over the training data.
        max_steps: Stop after this many steps (``None``: no limit).
        max_minutes: Stop after this much training wall time (``None``: no limit).
        eval_every: Validate every N steps (``None`` or ``0``: once per epoch).
        lr: Peak AdamW learning rate (cosine decay with a short warm-up).
        weight_decay: AdamW weight decay.
        ema: Decay of an exponential moving average of the weights and BatchNorm statistics
            (e.g. ``0.995``); when set, the average is what is validated, selected and
            exported, which makes the result less dependent on the last few batches. ``0``: off.
        patch_loss: Weight of the per-patch loss added to the image-level loss.
        patience: Stop after this many validations without a better validation AP.
        target_fpr: False-positive rate on real validation photos the threshold is set for.
        band_fpr: When set (e.g. 0.05), probabilities between the threshold for this FPR and
            the main threshold are reported as ``uncertain``.
        val_fraction: Share of groups (people, seeds, twin pairs) held out for validation.
        augment: Apply the shared augmentations (JPEG, blur, downscale, flips...) to both classes.
        augment_kwargs: Overrides of :class:`trainers.detector.augment.Augmenter` fields
            (e.g. ``{"p_blur": 0.05, "jpeg_quality": [55, 100]}``).
        pair_twins: Put each re-synthesised fake and its real twin in the same batch.
        selfblend: Share of real training crops turned, each time one is drawn, into a
            self-blended fake (:mod:`trainers.detector.selfblend`; Shiohara & Yamasaki, CVPR
            2022): a new blend every epoch. Validation then also scores one fixed blend of
            that share of its reals, so early stopping and calibration see the same kind of
            fake, and real folders alone are enough to train. It needs the face's landmarks,
            so crops cached without them are cut again once. ``0``: off.
        selfblend_crude: Share of those blends (training and validation) that imitate a
            classical 3-D-model face swap: a wider, sharper-edged mask and another skin tone
            and lighting inside it. ``0``: off.
        seed: Seed of everything (split, augmentation, initialisation, order).
        data_seed: Seed of the data choice only (the per-source cap and the validation
            split), when it must differ from ``seed``: runs with different seeds and the same
            ``data_seed`` train on the same photos and validate on the same held-out groups,
            so they can be combined by ``forensics detector ensemble``. ``None``: ``seed``.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        workers: DataLoader worker processes (0 loads in the training process).
        threads: Torch CPU threads (``None``: all cores).
        amp: Mixed precision on CUDA (ignored on CPU).
        init_weights: Optional pretrained start: a local weights file (safetensors or a
            ``weights_only`` torch file) loaded into the model before training, tensors
            matched by name and shape; or ``"timm"`` for timm's own pretrained weights of the
            backbone (a download: needs a network). Its source and sha256 go into the model.
        score_resize: Scoring only: a face crop whose shorter side exceeds this is first
            shrunk to it (area filter), near the sizes the training chain shows the model.
            ``0``: off.
        score_jpeg: Scoring only: JPEG round trip at this quality after ``score_resize``,
            so every face meets the model already compressed once. ``0``: off.
        export: Optional extra path the final model is copied to.

    """

    out: str = "runs/detector"
    real: tuple[str, ...] = ()
    fake: tuple[str, ...] = ()
    manifest: tuple[str, ...] = ()
    holdout_generators: tuple[str, ...] = ()
    max_per_source: int | None = None
    arch: str = "patch_resnet"
    arch_kwargs: dict[str, Any] = field(default_factory=default_arch_kwargs)
    input_size: int = 128
    fit: str = "resize"
    score_size: int = 0
    crop_margin: float = 0.25
    cache_side: int = 256
    batch_size: int = 32
    epochs: int = 20
    max_steps: int | None = None
    max_minutes: float | None = None
    eval_every: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    ema: float = 0.0
    patch_loss: float = 0.5
    patience: int = 5
    target_fpr: float = 0.01
    band_fpr: float | None = None
    val_fraction: float = 0.15
    augment: bool = True
    augment_kwargs: dict[str, Any] = field(default_factory=dict)
    pair_twins: bool = True
    selfblend: float = 0.0
    selfblend_crude: float = 0.0
    seed: int = 0
    data_seed: int | None = None
    device: str = "auto"
    workers: int = 0
    threads: int | None = None
    amp: bool = True
    init_weights: str | None = None
    score_resize: int = 0
    score_jpeg: int = 0
    export: str | None = None

    @property
    def split_seed(self) -> int:
        """The seed of the per-source cap and the validation split."""
        return self.seed if self.data_seed is None else self.data_seed

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message for inconsistent settings."""
        if not (self.real or self.fake or self.manifest):
            raise ValueError("no data: give --real and --fake folders, or --manifest")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be between 0 and 1")
        if not 0.0 < self.target_fpr < 1.0:
            raise ValueError("target_fpr must be between 0 and 1")
        if self.band_fpr is not None and self.band_fpr <= self.target_fpr:
            raise ValueError("band_fpr must be larger than target_fpr")
        if self.patch_loss < 0:
            raise ValueError("patch_loss must be >= 0")
        if not 0.0 <= self.selfblend < 1.0:
            raise ValueError("selfblend must be a share in [0, 1)")
        if not 0.0 <= self.selfblend_crude <= 1.0:
            raise ValueError("selfblend_crude must be a share in [0, 1]")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be 0 (off) or a decay in (0, 1)")
        if self.input_size < 16 or self.batch_size < 2:
            raise ValueError("input_size must be >= 16 and batch_size >= 2")
        from forensics.preprocess import FITS

        from .augment import Augmenter

        try:
            Augmenter.from_kwargs(self.augment_kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"augment_kwargs: {exc}") from None
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(map(repr, FITS))}")
        if self.cache_side and self.cache_side < self.input_size:
            raise ValueError("cache_side must be 0 or at least input_size")
        if self.score_size and (self.fit != "center" or self.score_size < self.input_size):
            raise ValueError("score_size needs fit 'center' and must be at least input_size")
        if self.score_size and self.cache_side and self.cache_side < self.score_size:
            raise ValueError("cache_side must be 0 or at least score_size")
        if self.score_resize < 0 or not 0 <= self.score_jpeg <= 100:
            raise ValueError("score_resize must be >= 0 and score_jpeg in 0..100")
        if (self.score_resize or self.score_jpeg) and self.fit != "resize":
            raise ValueError("score_resize and score_jpeg need fit 'resize'")

"""Scoring face crops: the detector facade shared by scan, eval and verify-ids.

A :class:`Detector` is rebuilt from a self-describing checkpoint (see
:mod:`forensics.checkpoint`): architecture and kwargs, preprocessing and calibration all come
from its JSON header, so every command turns pixels into probabilities the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics import __version__
from forensics.checkpoint import CheckpointError, file_sha256, load_checkpoint, save_checkpoint
from forensics.device import inference_precision, resolve_device
from forensics.media import encode_jpeg, load_image, resize_rgb, shrink_to, shrunk_shape
from forensics.models import create_model

CHECKPOINT_FORMAT = "forensics.detector/1"
FITS = ("resize", "center")
DEFAULT_MODEL_NAME = "detector_default.safetensors"


@dataclass(frozen=True)
class Preprocess:
    """How a face crop becomes a tensor; stored with the model.

    Attributes:
        input_size: Side of the square model input.
        crop_margin: Margin around the MTCNN box, as a fraction of the box side.
        mean: Per-channel mean subtracted after scaling to [0, 1].
        std: Per-channel std divided by.
        fit: How a crop becomes ``input_size`` square. ``"resize"``: area filter down,
            bilinear up. ``"center"``: pixels stay at native resolution: the central
            ``input_size`` square is cut out, and a smaller crop is mirror-padded (for
            detectors of the spectrum, which any resizing would rewrite).
        max_side: ``"center"`` only: crops whose longer side exceeds this are first
            area-shrunk to it, as the training crop cache did (0: never shrink).
        min_size: ``"center"`` only: when set, a crop whose shorter side lies between
            ``min_size`` and ``input_size`` is scored whole as its own central square instead
            of being mirror-padded, and only crops under ``min_size`` are padded (to
            ``min_size``). The window side then varies per crop (see :meth:`side`); patch
            models that average window logits accept any side. ``0``: always ``input_size``.
        score_resize: ``"resize"`` only: a crop whose shorter side exceeds this is first
            area-shrunk to it, near the sizes training showed the model (0: off).
        score_jpeg: ``"resize"`` only: a JPEG round trip at this quality after
            ``score_resize``, so every face reaches the model compressed at least once
            (0: off).

    """

    input_size: int = 128
    crop_margin: float = 0.25
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    fit: str = "resize"
    max_side: int = 0
    min_size: int = 0
    score_resize: int = 0
    score_jpeg: int = 0

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"unknown preprocess fit {self.fit!r}; use one of {FITS}")
        if self.min_size and (self.fit != "center" or self.min_size > self.input_size):
            raise ValueError("min_size needs fit 'center' and must not exceed input_size")
        if (self.score_resize or self.score_jpeg) and self.fit != "resize":
            raise ValueError("score_resize and score_jpeg need fit 'resize'")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        """Rebuild from :func:`dataclasses.asdict` output (JSON lists become tuples)."""
        pre = dict(data)
        for key in ("mean", "std"):
            if key in pre:
                pre[key] = tuple(pre[key])
        return cls(**pre)

    def side(self, shape: tuple[int, ...]) -> int:
        """Side of the square a crop of ``shape`` (after ``max_side`` shrinking) becomes."""
        if not self.min_size:
            return self.input_size
        return max(self.min_size, min(self.input_size, *shape[:2]))

    def window(
        self, shape: tuple[int, ...], rng: np.random.Generator | None = None
    ) -> tuple[int, int]:
        """Top-left ``(y, x)`` of the :meth:`side` window in a crop (``"center"`` fit).

        Centred, or at a random position when ``rng`` is given (training); negative when the
        crop is smaller than the window and gets padded.
        """
        s = self.side(shape)
        offsets = []
        for side in shape[:2]:
            if side > s and rng is not None:
                offsets.append(int(rng.integers(0, side - s + 1)))
            else:
                offsets.append((side - s) // 2)
        return offsets[0], offsets[1]

    def fit_crop(self, rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """One RGB ``uint8`` crop as a :meth:`side` square (see ``fit``); input unchanged."""
        if self.fit == "resize":
            s = self.input_size
            rgb = self._score_chain(rgb)
            return rgb if rgb.shape[:2] == (s, s) else resize_rgb(rgb, (s, s))
        rgb = shrink_to(rgb, self.max_side)
        s = self.side(rgb.shape)
        if rgb.shape[:2] == (s, s):
            return rgb
        y, x = self.window(rgb.shape, rng)
        out = rgb[max(0, y) : max(0, y) + s, max(0, x) : max(0, x) + s]
        pad_y, pad_x = s - out.shape[0], s - out.shape[1]
        if pad_y or pad_x:
            top, left = max(0, -y), max(0, -x)
            pads = ((top, pad_y - top), (left, pad_x - left), (0, 0))
            out = np.pad(out, pads, mode="symmetric")
        return np.ascontiguousarray(out)

    def _score_chain(self, rgb: np.ndarray) -> np.ndarray:
        """The fixed ``score_resize`` / ``score_jpeg`` processing (a copy; may be ``rgb``)."""
        h, w = rgb.shape[:2]
        if self.score_resize and min(h, w) > self.score_resize:
            k = self.score_resize / min(h, w)
            rgb = resize_rgb(rgb, (max(1, round(w * k)), max(1, round(h * k))))
        if self.score_jpeg:
            rgb = load_image(encode_jpeg(rgb, self.score_jpeg))
        return rgb

    def evidence_in_crop(self, evidence: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Place a patch map over the whole crop it came from (NaN where nothing was scored).

        With ``"resize"`` the map already spans the crop. With ``"center"`` it spans only the
        scored window, so it is put at that window's place in a grid of the same cell size.
        """
        if self.fit == "resize":
            return evidence
        import cv2

        mh, mw = evidence.shape
        h, w = shrunk_shape(shape, self.max_side)
        s = self.side((h, w))
        y, x = self.window((h, w))
        full = np.full((h, w), np.nan, np.float32)
        big = cv2.resize(evidence.astype(np.float32), (s, s), interpolation=cv2.INTER_NEAREST)
        ys, xs = max(0, y), max(0, x)
        full[ys : y + s, xs : x + s] = big[ys - y : h - y, xs - x : w - x]
        cells = (max(1, round(w * mw / s)), max(1, round(h * mh / s)))
        return cv2.resize(full, cells, interpolation=cv2.INTER_NEAREST)

    def to_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Stack RGB ``uint8`` crops into a normalised ``(B, 3, S, S)`` float tensor.

        The crops must all become the same side (always so unless ``min_size`` is set; use
        :meth:`batches` then).
        """
        return self._normalise([self.fit_crop(c) for c in crops])

    def batches(
        self, crops: Sequence[np.ndarray], batch_size: int = 64
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield ``(indices, tensor)`` batches of crops that share an input side, in order."""
        groups: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            groups.setdefault(self.side(shrunk_shape(crop.shape, self.max_side)), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                part = idx[start : start + batch_size]
                yield part, self._normalise([self.fit_crop(crops[i]) for i in part])

    def _normalise(self, fitted: list[np.ndarray]) -> torch.Tensor:
        arr = np.stack(fitted).astype(np.float32)
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).div_(255.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


@dataclass(frozen=True)
class Calibration:
    """Turns logits into calibrated probabilities and verdicts; stored with the model.

    ``prob = sigmoid((logit - bias) / temperature)``. A probability at or above ``threshold``
    is ``fake``; when ``band`` is set, probabilities inside ``[band[0], band[1])`` are
    ``uncertain``.

    Attributes:
        temperature: Logit scale fitted on validation data.
        bias: Logit shift fitted on validation data.
        threshold: Decision threshold on the calibrated probability.
        target_fpr: False-positive rate on real photos the threshold was chosen for.
        band: Optional ``(low, high)`` uncertainty band.

    """

    temperature: float = 1.0
    bias: float = 0.0
    threshold: float = 0.5
    target_fpr: float | None = None
    band: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Rebuild from :func:`dataclasses.asdict` output (a JSON list band becomes a tuple)."""
        cal = dict(data)
        if cal.get("band") is not None:
            cal["band"] = tuple(cal["band"])
        return cls(**cal)

    def prob(self, logits: np.ndarray | float) -> np.ndarray:
        """Calibrated probability of being synthetic."""
        z = (np.asarray(logits, dtype=np.float64) - self.bias) / max(self.temperature, 1e-6)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def verdict(self, prob: float, threshold: float | None = None) -> str:
        """``"fake"``, ``"real"`` or ``"uncertain"`` for one probability."""
        t = self.threshold if threshold is None else threshold
        if self.band is not None and threshold is None and self.band[0] <= prob < self.band[1]:
            return "uncertain"
        return "fake" if prob >= t else "real"


@dataclass(frozen=True)
class Prediction:
    """The detector's output for one crop.

    Attributes:
        logit: Raw image-level logit (before calibration).
        prob: Calibrated probability of being synthetic.
        evidence: Patch-logit map ``(h, w)`` float32 over the whole crop: where the evidence
            lies (NaN where the model did not look, for native-resolution models).
        branches: For a fused detector, each branch's calibrated probability by branch name
            (``None`` otherwise).

    """

    logit: float
    prob: float
    evidence: np.ndarray
    branches: dict[str, float] | None = None


@dataclass
class DetectorSpec:
    """Everything needed to rebuild a detector; the checkpoint's JSON header."""

    arch: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: Preprocess = field(default_factory=Preprocess)
    calibration: Calibration = field(default_factory=Calibration)
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance: training sources and counts, metrics, seed, version..."""

    def to_meta(self) -> dict[str, Any]:
        """JSON-ready header for :func:`forensics.checkpoint.save_checkpoint`."""
        return {
            "format": CHECKPOINT_FORMAT,
            "arch": self.arch,
            "arch_kwargs": self.arch_kwargs,
            "preprocess": asdict(self.preprocess),
            "calibration": asdict(self.calibration),
            "info": {"forensics_version": __version__, **self.info},
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> DetectorSpec:
        """Parse a checkpoint header, with a clear error if it is not a detector."""
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"not a forensics detector checkpoint (format {meta.get('format')!r})"
            )
        return cls(
            arch=meta["arch"],
            arch_kwargs=dict(meta.get("arch_kwargs", {})),
            preprocess=Preprocess.from_dict(meta.get("preprocess", {})),
            calibration=Calibration.from_dict(meta.get("calibration", {})),
            info=dict(meta.get("info", {})),
        )


def default_model_path() -> Path:
    """Path of the detector shipped inside the package (it may not exist yet)."""
    return Path(str(resources.files("forensics") / "weights" / DEFAULT_MODEL_NAME))


class Detector:
    """A calibrated real-vs-fake face scorer.

    Build one with :meth:`from_checkpoint` (or :meth:`load` for the shipped default), then
    call :meth:`predict` on RGB ``uint8`` face crops.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        spec: DetectorSpec,
        device: str | torch.device | None = None,
        name: str = "in-memory",
        sha256: str | None = None,
        precision: str = "fp32",
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.name = name
        self.sha256 = sha256
        inference_precision(self.device, precision)  # validates
        self.precision = precision
        """``fp32`` or ``bf16`` (see :func:`forensics.device.inference_precision`)."""

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> Detector:
        """Rebuild a detector from a checkpoint file (never unpickles code).

        Raises:
            CheckpointError: Missing, malformed, unsafe or incompatible checkpoint.
            ValueError: Unknown ``precision``.

        """
        state, meta = load_checkpoint(path)
        spec = DetectorSpec.from_meta(meta)
        try:
            model = create_model(spec.arch, **spec.arch_kwargs)
            model.load_state_dict(state)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: weights do not fit {spec.arch!r}: {exc}") from None
        return cls(
            model,
            spec,
            device=device,
            name=Path(path).name,
            sha256=file_sha256(path),
            precision=precision,
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> Detector:
        """Load ``path``, or the shipped default model when ``path`` is ``None``.

        Raises:
            CheckpointError: No default shipped, or a bad checkpoint.
            ValueError: Unknown ``precision``.

        """
        if path is None:
            path = default_model_path()
            if not path.is_file():
                raise CheckpointError(
                    "no default detector is shipped in this build yet; pass --model PATH "
                    "(train one with `forensics detector train`)"
                )
        return cls.from_checkpoint(path, device=device, precision=precision)

    def save(self, path: str | os.PathLike) -> Path:
        """Write this detector as a self-describing checkpoint."""
        state = {k: v for k, v in self.model.state_dict().items()}
        return save_checkpoint(path, state, self.spec.to_meta())

    @property
    def preprocess(self) -> Preprocess:
        """The preprocessing stored with the model."""
        return self.spec.preprocess

    @property
    def calibration(self) -> Calibration:
        """The calibration stored with the model."""
        return self.spec.calibration

    def logits(
        self, crops: Sequence[np.ndarray], batch_size: int = 64
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Raw logits and patch maps for RGB ``uint8`` crops, in batches.

        A model that reads crops itself (a :mod:`forensics.fusion`) returns its maps already
        placed over each crop; any other model's maps span its own input.
        """
        logits, maps, _ = self._score(crops, batch_size)
        return logits, maps

    def _score(
        self, crops: Sequence[np.ndarray], batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
        """Logits, maps and, for a model that reads crops itself, its branch logits."""
        score_crops = getattr(self.model, "score_crops", None)
        with inference_precision(self.device, self.precision):
            if score_crops is not None:  # its branches run batch_logits under inference_mode
                return score_crops(crops, self.device, batch_size)
            logits, maps = batch_logits(self.model, self.preprocess, crops, self.device, batch_size)
        return logits, maps, None

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> list[Prediction]:
        """Calibrated predictions for RGB ``uint8`` crops (the inputs are not modified)."""
        logits, maps, branch_z = self._score(crops, batch_size)
        probs = self.calibration.prob(logits)
        placed = bool(getattr(self.model, "evidence_in_crop", False))
        names = list(getattr(self.model, "branch_names", []))
        branch_p = None if branch_z is None else 0.5 * (1.0 + np.tanh(0.5 * branch_z))  # sigmoid
        return [
            Prediction(
                logit=float(z),
                prob=_finite(p),
                evidence=m.astype(np.float32)
                if placed
                else self.preprocess.evidence_in_crop(m.astype(np.float32), c.shape),
                branches=None
                if branch_p is None
                else {n: _finite(q) for n, q in zip(names, branch_p[:, i], strict=True)},
            )
            for i, (z, p, m, c) in enumerate(zip(logits, probs, maps, crops, strict=True))
        ]


def batch_logits(
    model: torch.nn.Module,
    preprocess: Preprocess,
    crops: Sequence[np.ndarray],
    device: torch.device,
    batch_size: int = 64,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Raw logits ``(n,)`` and patch maps of a tensor model on RGB ``uint8`` crops, in batches.

    Crops are grouped by input side (see :meth:`Preprocess.batches`); results keep their order.
    """
    logits = np.zeros(len(crops), np.float32)
    maps: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(crops)
    with torch.inference_mode():
        for idx, x in preprocess.batches(crops, batch_size):
            out = model(x.to(device))
            logits[idx] = out["logit"].float().cpu().numpy()
            for i, m in zip(idx, out["patch_logits"].float().cpu().numpy(), strict=True):
                maps[i] = m
    return logits, maps


def _finite(p: float) -> float:
    p = float(p)
    return p if math.isfinite(p) else 0.5

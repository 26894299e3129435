"""Scoring face crops: the detector facade shared by scan, eval and verify-ids.

A :class:`Detector` is rebuilt from a self-describing checkpoint (see
:mod:`forensics.checkpoint`): architecture and kwargs, preprocessing and calibration all come
from its JSON header, so every command turns pixels into probabilities the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics import __version__
from forensics.checkpoint import CheckpointError, file_sha256, load_checkpoint, save_checkpoint
from forensics.device import inference_precision, resolve_device
from forensics.models import create_model
from forensics.preprocess import Preprocess

CHECKPOINT_FORMAT = "forensics.detector/1"
DEFAULT_MODEL_NAME = "detector_default.safetensors"


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

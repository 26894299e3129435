"""How a face crop becomes a model input: fitting, scoring chain and normalisation.

A :class:`Preprocess` is stored with each detector (see :mod:`forensics.scoring`) so that
training, scanning and evaluation turn pixels into tensors the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from forensics.media import encode_jpeg, load_image, resize_rgb, shrink_to, shrunk_shape

FITS = ("resize", "center")
"""How a crop can become the model's input square (see :class:`Preprocess`, ``fit``)."""


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

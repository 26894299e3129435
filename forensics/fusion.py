"""Fusion of detectors that look at a face in different ways: each with its own preprocessing.

An :mod:`forensics.ensemble` averages members that read the same input. A fusion combines
*branches* that do not: a spectral branch reads native-resolution pixels (any resizing would
rewrite the spectrum it measures), while a face-swap branch reads the whole crop resized. Each
branch keeps its own :class:`~forensics.preprocess.Preprocess` and its own calibration, and the
fusion combines the branches' **calibrated** logits, so their scales agree:

- ``"max"``: a face is as suspicious as its most suspicious branch (the fused probability is
  the largest branch probability). One branch catching a kind of fake is enough, which is the
  point of adding a branch for fakes the others miss; the price is that real photos flagged by
  either branch are flagged.
- ``"mean"``: the mean of the branches' calibrated logits.

A fusion checkpoint rebuilds itself through the registry like any other (``arch: "fusion"``,
``arch_kwargs: {"members": [...], "combine": ...}``); each member entry holds its ``arch``,
``arch_kwargs``, ``preprocess`` and ``calibration``. ``forensics detector fuse`` builds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from forensics.models import create_model, register_model

COMBINES = ("max", "mean")


def fusion_specs(members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated, JSON-ready copies of branch descriptions.

    Raises:
        ValueError: Fewer than two branches, a malformed entry, a nested fusion, or branches
            that cut faces with different margins (a face must be cut once for all).

    """
    if len(members) < 2:
        raise ValueError("a fusion needs at least two branches")
    out = []
    for i, m in enumerate(members):
        if not isinstance(m, Mapping) or not isinstance(m.get("arch"), str):
            raise ValueError(f"fusion branch {i} must name its 'arch'")
        if m["arch"] == "fusion":
            raise ValueError("fusions cannot be nested")
        for key in ("preprocess", "calibration"):
            if not isinstance(m.get(key), Mapping):
                raise ValueError(f"fusion branch {i} needs its {key!r}")
        out.append(
            {
                "arch": m["arch"],
                "arch_kwargs": dict(m.get("arch_kwargs") or {}),
                "preprocess": dict(m["preprocess"]),
                "calibration": dict(m["calibration"]),
                "name": str(m.get("name") or f"branch{i}"),
            }
        )
    names = [m["name"] for m in out]
    if len(set(names)) < len(names):
        raise ValueError(f"fusion branch names must differ, got {names}")
    margins = {float(m["preprocess"].get("crop_margin", 0.25)) for m in out}
    if len(margins) > 1:
        raise ValueError(f"fusion branches must share one crop margin, got {sorted(margins)}")
    return out


class FusionDetector(nn.Module):
    """Branches with their own preprocessing, combined on calibrated logits.

    It does not take a tensor: :class:`forensics.scoring.Detector` hands it the RGB crops
    (:meth:`score_crops`), and each branch turns them into its own input.

    Args:
        members: Branch descriptions (see :func:`fusion_specs`).
        combine: ``"max"`` or ``"mean"`` of the branches' calibrated logits.

    """

    evidence_in_crop = True
    """:meth:`score_crops` returns maps already placed over each whole crop."""

    def __init__(self, members: Sequence[Mapping[str, Any]], combine: str = "max") -> None:
        super().__init__()
        from forensics.preprocess import Preprocess
        from forensics.scoring import Calibration

        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}; use one of {COMBINES}")
        self.specs = fusion_specs(members)
        self.combine = combine
        self.members = nn.ModuleList(
            create_model(m["arch"], **m["arch_kwargs"]) for m in self.specs
        )
        self.preprocesses = [Preprocess.from_dict(m["preprocess"]) for m in self.specs]
        self.calibrations = [Calibration.from_dict(m["calibration"]) for m in self.specs]

    @property
    def branch_names(self) -> list[str]:
        """The branches' names, in order (``forensics detector fuse --name``)."""
        return [m["name"] for m in self.specs]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Not used: branches need the crops themselves (see :meth:`score_crops`)."""
        raise TypeError("a fusion scores RGB crops, not one tensor: use score_crops()")

    def branch_logits(
        self, crops: Sequence[np.ndarray], device: torch.device, batch_size: int = 64
    ) -> tuple[np.ndarray, list[list[np.ndarray]]]:
        """Each branch's calibrated logits ``(n_branches, n)`` and raw patch maps.

        A map spans the branch's own input (see :meth:`evidence` to place it over a crop).
        """
        from forensics.scoring import batch_logits

        z = np.zeros((len(self.members), len(crops)), np.float64)
        maps: list[list[np.ndarray]] = []
        for b, (model, pre, cal) in enumerate(
            zip(self.members, self.preprocesses, self.calibrations, strict=True)
        ):
            logits, raw = batch_logits(model, pre, crops, device, batch_size)
            z[b] = (logits.astype(np.float64) - cal.bias) / max(cal.temperature, 1e-6)
            maps.append(raw)
        return z, maps

    def evidence(self, branch: int, patch_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A branch's patch map, calibrated like its logit and placed over a crop of ``shape``.

        NaN where the branch did not look.
        """
        cal = self.calibrations[branch]
        scaled = ((patch_map - cal.bias) / max(cal.temperature, 1e-6)).astype(np.float32)
        return self.preprocesses[branch].evidence_in_crop(scaled, shape)

    def score_crops(
        self, crops: Sequence[np.ndarray], device: torch.device, batch_size: int = 64
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Fused logits, evidence maps and every branch's calibrated logits.

        Returns:
            ``(fused, maps, z)``: fused logits ``(n,)``; per crop, the map of the branch that
            scored it highest, placed over the crop; branch logits ``(n_branches, n)``.

        """
        z, maps = self.branch_logits(crops, device, batch_size)
        fused = z.max(axis=0) if self.combine == "max" else z.mean(axis=0)
        top = z.argmax(axis=0)
        evidence = [
            self.evidence(int(b), maps[int(b)][i], crops[i].shape) for i, b in enumerate(top)
        ]
        return fused.astype(np.float32), evidence, z


@register_model
def fusion(members: Sequence[Mapping[str, Any]] = (), combine: str = "max") -> nn.Module:
    """Branches with their own preprocessing (see :class:`FusionDetector`)."""
    return FusionDetector(members, combine)

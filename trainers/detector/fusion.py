"""Fusing trained detectors that preprocess faces differently into one checkpoint.

Each branch keeps its weights, preprocessing and calibration (:mod:`forensics.fusion`); the
fused model combines the branches' calibrated logits, so no new fit is needed. Its threshold
starts at the strictest branch threshold (``max``; with that branch's target FPR) or at the
mean of the branch thresholds' logits (``mean``); ``forensics detector threshold`` then raises
it where a real folder the branches never trained on is flagged too often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from forensics.models import create_model
from forensics.scoring import Calibration, Detector, DetectorSpec

from .ensemble import member_info, members_state


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def fuse_detectors(
    detectors: Sequence[Detector], combine: str = "max", names: Sequence[str] | None = None
) -> Detector:
    """One ``fusion`` detector holding every branch's weights, preprocessing and calibration.

    Args:
        detectors: Two or more trained detectors (not fusions themselves).
        combine: ``"max"`` (a face is as suspicious as its most suspicious branch) or
            ``"mean"`` of the branches' calibrated logits.
        names: The branches' names, in order (default: their file names); scan output
            reports each face's probability per branch under these names.

    Returns:
        The fused detector (on the first branch's device), ready to save.

    Raises:
        ValueError: Fewer than two branches, a nested fusion, different crop margins, an
            unknown ``combine``, or names that are not one distinct name per branch.

    """
    if len(detectors) < 2:
        raise ValueError("a fusion needs at least two branch checkpoints")
    names = [d.name for d in detectors] if names is None else [str(n) for n in names]
    if len(names) != len(detectors) or not all(names):
        raise ValueError(f"give one non-empty name per branch ({len(detectors)}), got {names}")
    members = [
        {
            "arch": d.spec.arch,
            "arch_kwargs": dict(d.spec.arch_kwargs),
            "preprocess": asdict(d.preprocess),
            "calibration": asdict(d.calibration),
            "name": name,
        }
        for d, name in zip(detectors, names, strict=True)
    ]
    model = create_model("fusion", members=members, combine=combine)
    model.load_state_dict(members_state(detectors))
    thresholds = [d.calibration.threshold for d in detectors]
    target_fpr = None
    if combine == "max":
        strictest = max(range(len(detectors)), key=lambda i: thresholds[i])
        threshold, target_fpr = thresholds[strictest], detectors[strictest].calibration.target_fpr
    else:
        threshold = 1.0 / (1.0 + math.exp(-sum(map(_logit, thresholds)) / len(thresholds)))
    info: dict[str, Any] = {
        "trainer": "trainers.detector.fusion",
        "combine": combine,
        "members": [member_info(d) for d in detectors],
        "branch_thresholds": thresholds,
        # Each branch's provenance, in branch order: training seed, data sources and counts.
        "seed": [d.spec.info.get("seed") for d in detectors],
        "data": [d.spec.info.get("data") for d in detectors],
        "counts": [d.spec.info.get("counts") for d in detectors],
        # Optimisation steps behind the fusion: the branches' own, summed.
        "steps": sum(int(d.spec.info.get("steps") or 0) for d in detectors),
    }
    spec = DetectorSpec(
        arch="fusion",
        arch_kwargs={"members": members, "combine": combine},
        preprocess=detectors[0].preprocess,  # only its crop margin is used; branches share it
        calibration=Calibration(1.0, 0.0, threshold=threshold, target_fpr=target_fpr),
        info=info,
    )
    return Detector(model, spec, device=detectors[0].device, name="fusion")


def branch_detector(fused: Detector, name: str) -> Detector:
    """One branch of a fused detector as a detector of its own, ready to save or re-fuse.

    The branch keeps its weights, preprocessing and calibration (threshold included); its
    provenance is what the fusion recorded of it (seed, data, counts), plus the fused file
    it was taken from.

    Raises:
        ValueError: ``fused`` is not a fusion, or has no branch called ``name``.

    """
    model = fused.model
    names = list(getattr(model, "branch_names", []))
    if fused.spec.arch != "fusion" or not names:
        raise ValueError(f"{fused.name} is not a fused detector (arch {fused.spec.arch!r})")
    if name not in names:
        raise ValueError(f"{fused.name} has no branch {name!r}; its branches: {names}")
    i = names.index(name)
    member = model.specs[i]
    info = fused.spec.info
    keys = ("seed", "data", "counts", "members")
    per_branch = {k: (info.get(k) or [None] * len(names))[i] for k in keys}
    recorded = per_branch.pop("members") or {}
    spec = DetectorSpec(
        arch=member["arch"],
        arch_kwargs=dict(member["arch_kwargs"]),
        preprocess=model.preprocesses[i],
        calibration=model.calibrations[i],
        info={
            **per_branch,
            "steps": recorded.get("steps"),
            "member": recorded or None,
            "taken_from": {"file": fused.name, "sha256": fused.sha256, "branch": name},
        },
    )
    return Detector(model.members[i], spec, device=fused.device, name=name)


__all__ = ["branch_detector", "fuse_detectors"]

"""Combining trained detectors into one calibrated ensemble checkpoint.

Members are existing checkpoints that share one preprocessing. The ensemble averages their
raw logits (:mod:`forensics.ensemble`) and is calibrated afresh, exactly as a training run is
finalised, on the validation split of a run folder: the members must not have trained on it,
which holds when each member was trained with the same ``data_seed`` (the same photos and the
same validation groups).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from forensics.device import resolve_device
from forensics.models import create_model
from forensics.scoring import Detector

from ..common.run import RunDir, config_to_dict
from .config import DetectorTrainConfig
from .finalize import finalize_model
from .prepare import prepare_data, preprocess_of
from .train import CROPS_DIR


def merge_members(detectors: Sequence[Detector]) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """One ``ensemble`` module holding the members' weights, and its member specs.

    Raises:
        ValueError: Fewer than two members, or members whose preprocessing differs.

    """
    if len(detectors) < 2:
        raise ValueError("an ensemble needs at least two member checkpoints")
    first = detectors[0].preprocess
    for d in detectors[1:]:
        if d.preprocess != first:
            raise ValueError(
                f"{d.name} preprocesses faces differently from {detectors[0].name}: "
                f"{d.preprocess} vs {first}"
            )
    specs = [{"arch": d.spec.arch, "kwargs": dict(d.spec.arch_kwargs)} for d in detectors]
    model = create_model("ensemble", members=specs)
    model.load_state_dict(members_state(detectors))
    return model, specs


def members_state(detectors: Sequence[Detector]) -> dict[str, torch.Tensor]:
    """The detectors' weights as one state dict of a ``members`` ModuleList (on the CPU)."""
    return {
        f"members.{i}.{k}": v.detach().cpu()
        for i, d in enumerate(detectors)
        for k, v in d.model.state_dict().items()
    }


def member_info(d: Detector) -> dict[str, Any]:
    """Provenance of a member checkpoint: file, sha256, arch, seeds and steps."""
    info = d.spec.info
    return {
        "file": d.name,
        "sha256": d.sha256,
        "arch": d.spec.arch,
        "seed": info.get("seed"),
        "data_seed": (info.get("config") or {}).get("data_seed"),
        "steps": info.get("steps"),
    }


def build_ensemble(
    members: Sequence[str | os.PathLike],
    calibrate_on: str | os.PathLike,
    device: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Detector, dict[str, Any]]:
    """Average ``members`` and calibrate the result on ``calibrate_on``'s validation split.

    Args:
        members: Checkpoint files, two or more, with identical preprocessing.
        calibrate_on: A ``forensics detector train`` run folder; its stored config re-derives
            the validation split (its crop cache makes that quick).
        device: ``auto``/``cpu``/``cuda[:N]`` for scoring the validation crops.
        on_progress: Called as ``("crops", done, total)`` if crops must be cut again.

    Returns:
        ``(detector, summary)`` as :func:`trainers.detector.finalize.finalize_model` gives.

    Raises:
        ValueError: Bad members, or preprocessing that differs from the run's.
        FileNotFoundError: ``calibrate_on`` is not a run folder.
        CheckpointError: A member cannot be loaded.

    """
    detectors = [Detector.from_checkpoint(p, device="cpu") for p in members]
    model, specs = merge_members(detectors)
    if not os.path.isdir(calibrate_on):
        raise FileNotFoundError(f"{calibrate_on} is not a run folder (no such folder)")
    run = RunDir(calibrate_on)
    cfg = run.load_config(DetectorTrainConfig)
    if preprocess_of(cfg) != detectors[0].preprocess:
        raise ValueError(
            f"the members' preprocessing {detectors[0].preprocess} differs from the run's "
            f"{preprocess_of(cfg)}: calibrate on a run trained with the members' recipe"
        )
    cfg = dataclasses.replace(cfg, arch="ensemble", arch_kwargs={"members": specs})
    data = prepare_data(cfg, run.path / CROPS_DIR, on_progress)
    dev = resolve_device(device)
    info = {
        "trainer": "trainers.detector.ensemble",
        "seed": cfg.seed,
        "config": config_to_dict(cfg),
        "calibrated_on": str(run.path),
        "members": [member_info(d) for d in detectors],
        "data": {"real": list(cfg.real), "fake": list(cfg.fake), "manifest": list(cfg.manifest)},
        "counts": data.counts,
        "skipped_files": len(data.errors),
        # Optimisation steps behind the ensemble: the members' own, summed.
        "steps": sum(int(d.spec.info.get("steps") or 0) for d in detectors),
        "best_step": None,
        "stop_reason": "ensemble",
        "train_images_per_s": 0.0,
    }
    return finalize_model(model.to(dev), cfg, data, dev, info)


__all__ = ["build_ensemble", "member_info", "members_state", "merge_members"]

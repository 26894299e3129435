"""The detector training loop: early stopping on validation AP, resumable, DDP-ready.

:func:`train_detector` prepares the data (crops cached in the run folder), trains with AdamW
and a warm-up + cosine schedule, validates every ``eval_every`` steps (or once per epoch), keeps
the best state by validation AP, stops on patience, ``max_steps`` or the ``max_minutes`` wall
budget, then calibrates the best state on validation and writes ``RUN/model.safetensors``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) it wraps the model in DistributedDataParallel, shards
batches over ranks, and only rank 0 writes files or reports progress.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from forensics.device import autocast, needs_grad_scaler, resolve_device, seed_everything
from forensics.scoring import Detector
from trainers.common.run import RunDir, config_to_dict

from . import distributed as D
from .augment import Augmenter
from .config import DetectorTrainConfig
from .dataset import CropDataset, TwinBatchSampler, make_collate
from .ema import make_ema
from .export import init_provenance
from .finalize import finalize_model, predict_logits
from .metrics import average_precision, roc_auc
from .prepare import PreparedData, build_model, labels_of, prepare_data, preprocess_of

StepFn = Callable[[dict[str, Any]], None]
ProgressFn = Callable[[str, int, int], None]
MODEL_FILE = "model.safetensors"
CROPS_DIR = "crops"
RESUME_OVERRIDES = ("max_minutes", "max_steps", "device", "workers", "threads", "export")


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        model_path: The calibrated final model (``RUN/model.safetensors``; rank 0 only).
        run_dir: The run folder.
        steps: Optimisation steps done in total (including before a resume).
        best_step: Step of the best validation AP.
        best_val_ap: Best validation AP.
        stop_reason: ``patience``, ``max_steps``, ``minutes`` or ``epochs``.
        images_per_s: Mean training throughput (all ranks) over the whole run, resumed
            sessions included (validation time counted); runs resumed from a state written
            before the image count was kept: over this session only.
        summary: The JSON summary written to ``RUN/summary.json``.

    """

    model_path: Path | None
    run_dir: Path
    steps: int
    best_step: int
    best_val_ap: float
    stop_reason: str
    images_per_s: float
    summary: dict[str, Any]


def resume_config(out: str, overrides: DetectorTrainConfig | None = None) -> DetectorTrainConfig:
    """The stored config of run ``out``, with run-time settings taken from ``overrides``."""
    cfg = RunDir(out).load_config(DetectorTrainConfig)
    if overrides is not None:
        for key in RESUME_OVERRIDES:
            value = getattr(overrides, key)
            if value is not None:
                setattr(cfg, key, value)
    cfg.out = out
    return cfg


def train_detector(
    cfg: DetectorTrainConfig,
    resume: bool = False,
    on_step: StepFn | None = None,
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Train, calibrate and save a detector as configured.

    Args:
        cfg: The run's configuration (validated here).
        resume: Continue from ``RUN/last.pt`` when it exists (same config).
        on_step: Called on rank 0 after every step (and validation) with a record dict.
        on_progress: Called on rank 0 as ``(stage, done, total)`` while crops are prepared.

    Returns:
        The :class:`TrainResult`.

    Raises:
        ValueError: Invalid configuration or data.

    """
    cfg.validate()
    dinfo = D.dist_from_env()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dinfo.enabled:
        device = torch.device("cuda", dinfo.local_rank)
        torch.cuda.set_device(device)
    D.setup(dinfo, device)
    if cfg.threads:
        torch.set_num_threads(max(1, cfg.threads))
    try:
        return _run(cfg, resume, dinfo, device, on_step, on_progress)
    finally:
        D.teardown(dinfo)


def _run(
    cfg: DetectorTrainConfig,
    resume: bool,
    dinfo: D.DistInfo,
    device: torch.device,
    on_step: StepFn | None,
    on_progress: ProgressFn | None,
) -> TrainResult:
    run = RunDir(cfg.out)
    main = dinfo.is_main
    seed_everything(cfg.seed)
    if main:
        run.save_config(cfg)
        data = prepare_data(cfg, run.path / CROPS_DIR, on_progress)
    D.barrier(dinfo)
    if not main:
        data = prepare_data(cfg, run.path / CROPS_DIR)  # all cache hits now
    state = run.load_state() if resume else None

    model = build_model(cfg).to(device)
    use_cuda = device.type == "cuda"
    if use_cuda:
        model = model.to(memory_format=torch.channels_last)
    preprocess = preprocess_of(cfg)  # validation scores what the scanner will score
    train_preprocess = preprocess_of(cfg, training=True)
    augmenter = Augmenter.from_kwargs(cfg.augment_kwargs) if cfg.augment else None
    train_ds = CropDataset(
        data.train, train_preprocess, augmenter, cfg.seed, cfg.selfblend, cfg.selfblend_crude
    )
    sampler = TwinBatchSampler(
        data.train, cfg.batch_size, cfg.seed, dinfo.world_size, dinfo.rank, cfg.pair_twins
    )
    steps_per_epoch = len(sampler)
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    eval_every = cfg.eval_every or steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, min(200, total_steps // 20))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    scaler = torch.amp.GradScaler("cuda") if (cfg.amp and needs_grad_scaler(device)) else None
    n_real = int((labels_of(data.train) == 0).sum()) * (1.0 - cfg.selfblend)  # as drawn
    n_fake = max(1.0, len(data.train) - n_real)
    pos_weight = torch.tensor(n_real / n_fake, device=device)

    step, epoch, skip, elapsed, images_before = 0, 0, 0, 0.0, 0
    best_ap, best_step, bad = -1.0, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, epoch, skip = int(state["step"]), int(state["epoch"]), int(state["skip"])
        elapsed = float(state["elapsed"])
        images_before = int(state.get("images", 0))
        best_ap, best_step, bad = (
            float(state["best_ap"]),
            int(state["best_step"]),
            int(state["bad"]),
        )
        torch.set_rng_state(state["torch_rng"])
    ema = make_ema(model, cfg.ema)
    if ema is not None and state is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    scored = ema.module if ema is not None else model  # what is validated and exported
    net: torch.nn.Module = model
    if dinfo.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)

    def snapshot() -> dict[str, Any]:
        nonlocal elapsed
        elapsed = wall()
        return {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "epoch": epoch,
            "skip": skip,
            "elapsed": elapsed,
            "images": images_before + session_images,
            "best_ap": best_ap,
            "best_step": best_step,
            "bad": bad,
            "torch_rng": torch.get_rng_state(),
            **({"ema": ema.state_dict()} if ema is not None else {}),
        }

    def validate() -> bool:
        """Rank 0 validates and saves; returns whether patience ran out (on every rank)."""
        nonlocal best_ap, best_step, bad
        stop = False
        if main:
            logits = predict_logits(scored, data.val, preprocess, device, cfg.amp)
            y = labels_of(data.val)
            ap, auc = average_precision(y, logits), roc_auc(y, logits)
            improved = ap > best_ap
            if improved:
                best_ap, best_step, bad = ap, step, 0
            else:
                bad += 1
            stop = bad >= cfg.patience
            record = {
                "kind": "val",
                "step": step,
                "epoch": epoch,
                "val_ap": ap,
                "val_auc": auc,
                "best_ap": best_ap,
                "best_step": best_step,
            }
            run.log(record)
            run.save_state(snapshot(), best=improved)
            if on_step:
                on_step(record)
        return D.broadcast_flag(dinfo, stop, device)

    collate = make_collate(train_preprocess)
    session_images, session_start = 0, time.monotonic()
    elapsed_before = elapsed

    def wall() -> float:
        return elapsed_before + time.monotonic() - session_start

    stop_reason = "epochs"
    last_val_step = step if state is not None else -1
    done = step >= total_steps or (cfg.max_steps is not None and step >= cfg.max_steps)
    if done:
        stop_reason = "max_steps"
    while not done and epoch < cfg.epochs:
        sampler.set_epoch(epoch, skip)
        train_ds.set_epoch(epoch)
        loader = DataLoader(
            train_ds,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=cfg.workers,
            persistent_workers=False,
        )
        net.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if use_cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, cfg.amp):
                out = net(x)
                loss = _loss(out, y, pos_weight, cfg.patch_loss)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if ema is not None:
                ema.update_parameters(model)
            sched.step()
            step += 1
            skip += 1
            n_img = x.shape[0] * dinfo.world_size
            session_images += n_img
            if main:
                record = {
                    "kind": "train",
                    "step": step,
                    "epoch": epoch,
                    "loss": float(loss.detach()),
                    "lr": sched.get_last_lr()[0],
                    "total_steps": total_steps,
                    "images_per_s": session_images / max(1e-9, time.monotonic() - session_start),
                }
                if step % 10 == 0 or step == 1:
                    run.log(record)
                if on_step:
                    on_step(record)
            over_time = cfg.max_minutes is not None and wall() >= cfg.max_minutes * 60.0
            over_time = D.any_flag(dinfo, over_time, device)
            over_steps = cfg.max_steps is not None and step >= cfg.max_steps
            if step % eval_every == 0 or over_time or over_steps:
                last_val_step = step
                if validate():
                    stop_reason, done = "patience", True
            if over_time:
                stop_reason, done = "minutes", True
            if over_steps:
                stop_reason, done = "max_steps", True
            if done:
                break
        if not done:
            epoch, skip = epoch + 1, 0
    if last_val_step != step:
        validate()
    if images_before:  # the whole run: every session's images over every session's time
        images_per_s = (images_before + session_images) / max(1e-9, wall())
    else:
        images_per_s = session_images / max(1e-9, time.monotonic() - session_start)
    D.barrier(dinfo)
    model_path, summary = None, {}
    if main:
        if main and state is None and step == 0:
            run.save_state(snapshot(), best=True)
        best = run.load_state(RunDir.BEST) or snapshot()
        model.load_state_dict(best["model"])
        if ema is not None:
            ema.load_state_dict(best["ema"])
        detector, summary = finalize_model(
            scored, cfg, data, device, _info(cfg, data, best, step, stop_reason, images_per_s)
        )
        model_path = detector.save(run.path / MODEL_FILE)
        if cfg.export:
            Path(cfg.export).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_path, cfg.export)
        run.log({"kind": "final", **{k: v for k, v in summary.items() if k != "counts"}})
        _write_summary(run, summary)
    D.barrier(dinfo)
    return TrainResult(
        model_path, run.path, step, best_step, best_ap, stop_reason, images_per_s, summary
    )


def _loss(
    out: dict[str, torch.Tensor], y: torch.Tensor, pos_weight: torch.Tensor, patch_weight: float
) -> torch.Tensor:
    """Balanced BCE on the image logit, plus the same on every patch logit."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    logit = out["logit"].float()
    loss = bce(logit, y, pos_weight=pos_weight)
    if patch_weight > 0:
        patch = out["patch_logits"].float()
        target = y.view(-1, 1, 1).expand_as(patch)
        loss = loss + patch_weight * bce(patch, target, pos_weight=pos_weight)
    return loss


def _info(
    cfg: DetectorTrainConfig,
    data: PreparedData,
    best: dict[str, Any],
    steps: int,
    stop_reason: str,
    images_per_s: float,
) -> dict[str, Any]:
    return {
        "trainer": "trainers.detector",
        "seed": cfg.seed,
        "config": config_to_dict(cfg),
        "init": init_provenance(cfg.init_weights),
        "data": {
            "real": list(cfg.real),
            "fake": list(cfg.fake),
            "manifest": list(cfg.manifest),
            "holdout_generators": list(cfg.holdout_generators),
        },
        "counts": data.counts,
        "skipped_files": len(data.errors),
        "steps": steps,
        "best_step": int(best["best_step"]),
        "stop_reason": stop_reason,
        "train_images_per_s": round(images_per_s, 2),
        "train_minutes": round(float(best.get("elapsed", 0.0)) / 60.0, 2),
    }


def _write_summary(run: RunDir, summary: dict[str, Any]) -> None:
    import json

    from forensics.checkpoint import atomic_write_bytes

    atomic_write_bytes(
        run.path / "summary.json", json.dumps(summary, indent=2, default=float).encode()
    )


def load_final(run_dir: str | Path, device: str | None = None) -> Detector:
    """The calibrated model a run wrote."""
    return Detector.from_checkpoint(Path(run_dir) / MODEL_FILE, device=device)

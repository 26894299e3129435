"""GAN training loop with exact resume and a NaN/divergence stop.

Hinge loss, spectral-norm D with minibatch-stddev, lazy R1, DiffAugment, an EMA generator and
separate learning rates for G and D.

A run folder (``trainers.common.run.RunDir``) receives ``config.json``, ``metrics.jsonl``,
``last.pt``/``best.pt`` (full training state, atomic), ``generator_last.safetensors`` and
``generator_best.safetensors`` (EMA weights only), ``samples.png`` plus ``samples/`` grids,
and ``faces_<size>.npy`` (the cached training array).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.device import needs_grad_scaler, resolve_device, seed_everything
from trainers.common.run import RunDir, config_to_dict
from trainers.gan.augment import parse_policy
from trainers.gan.config import GanConfig
from trainers.gan.data import FaceData, load_faces
from trainers.gan.evaluate import Evaluator, save_grid
from trainers.gan.export import BEST_NAME, LAST_NAME, export_generator
from trainers.gan.history import collapse_figure, plot_history, read_history
from trainers.gan.models import (
    count_params,
    create_generator,
    discriminator_params,
    generator_param_groups,
    make_discriminator,
)
from trainers.gan.rng import get_rng, keep_rng, set_rng
from trainers.gan.step import train_step

LOSS_LIMIT = 1e4


class TrainingDiverged(RuntimeError):
    """Losses became NaN/inf or exploded; the last good checkpoint is kept."""


@dataclass
class StepInfo:
    """What the trainer reports through ``on_step`` (the CLI renders it).

    Attributes:
        event: ``data`` (loading faces), ``start``, ``step``, ``eval`` or ``done``.
        step: Steps completed.
        total_steps: The step limit, if any.
        losses: Recent mean losses.
        images_per_s: Recent training throughput.
        elapsed_s: Wall-clock seconds since this invocation started.
        eta_s: Estimated seconds left (from the step or time budget), if known.
        metrics: Evaluation results (``eval``) or data/model facts (``start``).

    """

    event: str
    step: int = 0
    total_steps: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    step: int
    stopped: str
    best_score: float
    last_metrics: dict[str, Any]
    generator: Path
    skipped: list[tuple[str, str]]


def train(
    config: GanConfig,
    out: str | os.PathLike,
    resume: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train (or resume) a GAN run in the folder ``out``.

    Args:
        config: The run's config. With ``resume`` only ``steps``, ``minutes``, ``device``
            and ``threads`` are taken from it; the rest comes from the saved ``config.json``.
        out: The run folder.
        resume: Continue from ``out/last.pt`` exactly where it stopped.
        on_step: Progress callback, called with a :class:`StepInfo`.

    Raises:
        ValueError: Bad config, no data, or ``out`` already holds a run without ``resume``.
        TrainingDiverged: Losses became NaN/inf or exploded.

    """
    t0 = time.monotonic()
    report = on_step or (lambda info: None)
    run = RunDir(out)
    state = None
    if resume:
        state = run.load_state()
        if state is None:
            raise ValueError(f"nothing to resume: {run.path / RunDir.LAST} does not exist")
        saved = run.load_config(GanConfig)
        for name in ("steps", "minutes", "device", "threads"):
            setattr(saved, name, getattr(config, name))
        config = saved
    elif (run.path / RunDir.LAST).exists():
        raise ValueError(f"{run.path} already holds a run; pass --resume or choose another --out")
    config.validate()
    run.save_config(config)
    cfg = config
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    policy = parse_policy(cfg.diffaug)

    report(StepInfo("data", elapsed_s=time.monotonic() - t0))
    data = load_faces(cfg.data, cfg.size, cfg.crop, run.path, cfg.max_images, cfg.device)
    if data.skipped:
        lines = [f"{f}\t{why}" for f, why in data.skipped]
        (run.path / "skipped.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_idx, hold_idx = _split(len(data.images), cfg.holdout, cfg.seed)
    images = torch.from_numpy(data.images[train_idx]).to(device)  # uint8 NHWC
    holdout = data.images[hold_idx] if len(hold_idx) else data.images[train_idx[:256]]

    G = create_generator(cfg.family, **cfg.model_kwargs()).to(device)
    D = make_discriminator(cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(generator_param_groups(G, cfg.lr_g), betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(discriminator_params(D), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    use_amp = cfg.amp and device.type == "cuda"
    scaler_g = torch.amp.GradScaler("cuda", enabled=use_amp and needs_grad_scaler(device))
    scaler_d = torch.amp.GradScaler("cuda", enabled=use_amp and needs_grad_scaler(device))

    step, best_score, train_s = 0, -1.0, 0.0
    last_metrics: dict[str, Any] = {}
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        G_ema.load_state_dict(state["G_ema"])
        if len(state["opt_g"]["param_groups"]) != len(opt_g.param_groups):
            raise ValueError(
                f"{run.path} was trained before stylegan_lite's modulated weights got their own "
                "learning rate; it cannot be resumed by this version (start a new run)"
            )
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step, best_score = int(state["step"]), float(state["best_score"])
        train_s = float(state.get("train_s", 0.0))
        last_metrics = dict(state.get("last_metrics", {}))
        set_rng(state["rng"])

    evaluator = Evaluator(cfg, holdout, device)
    provenance = _provenance(cfg, data, len(train_idx))
    report(
        StepInfo(
            "start",
            step=step,
            total_steps=cfg.steps or None,
            elapsed_s=time.monotonic() - t0,
            metrics={
                "images": len(train_idx),
                "holdout": len(holdout),
                "skipped": len(data.skipped),
                "crop_mode": data.mode,
                "g_params": count_params(G),
                "d_params": count_params(D),
                "device": str(device),
            },
        )
    )

    def save(best: bool) -> None:
        st = {
            "G": G.state_dict(),
            "D": D.state_dict(),
            "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "step": step,
            "best_score": best_score,
            "train_s": train_s,
            "last_metrics": last_metrics,
            "rng": get_rng(),
            "config": config_to_dict(cfg),
        }
        run.save_state(st, best=best)
        meta = {
            "family": cfg.family,
            "kwargs": cfg.model_kwargs(),
            "size": cfg.size,
            "seed": cfg.seed,
            "step": step,
            "data": provenance,
            "metrics": last_metrics,
            "train_config": config_to_dict(cfg),
        }
        export_generator(run.path / LAST_NAME, G_ema, meta)
        if best:
            export_generator(run.path / BEST_NAME, G_ema, meta)

    def refit_prior() -> None:
        if getattr(G, "autoencoder", False):  # ae_gan samples from a mixture of its codes
            from trainers.gan.aegan import fit_prior

            with keep_rng():
                fit_prior([G_ema, G], images, cfg.seed)

    def evaluate() -> bool:
        nonlocal best_score, last_metrics
        refit_prior()
        with keep_rng():  # building MTCNN draws random init weights: keep training exact
            last_metrics = {"step": step, **evaluator(G_ema)}
        run.log({"event": "eval", **last_metrics})
        with keep_rng():
            plot_history(read_history(run.path), run.path / "history.png")
        improved = last_metrics["score"] > best_score
        if improved:
            best_score = last_metrics["score"]
        return improved

    stopped, sums, count, win_t = "steps", {}, 0, time.monotonic()
    last_eval = last_ckpt = step
    n_train = images.shape[0]
    try:
        while True:
            if cfg.steps and step >= cfg.steps:
                stopped = "steps"
                break
            if cfg.minutes and time.monotonic() - t0 >= cfg.minutes * 60:
                stopped = "minutes"
                break
            ts = time.monotonic()
            losses = train_step(
                cfg, step, G, D, opt_g, opt_d, scaler_g, scaler_d, images, n_train, policy,
                device, use_amp,
            )  # fmt: skip
            step += 1
            _update_ema(G_ema, G, 0.0 if step <= cfg.ema_start else cfg.ema_decay)
            train_s += time.monotonic() - ts
            bad = {k: v for k, v in losses.items() if not math.isfinite(v) or abs(v) > LOSS_LIMIT}
            if bad:
                what = ", ".join(f"{k}={v:g}" for k, v in bad.items())
                raise TrainingDiverged(
                    f"training diverged at step {step}: {what}. "
                    f"The last good checkpoint is {run.path / RunDir.LAST} (step {last_ckpt}); "
                    "lower --lr-d/--lr-g or raise --r1-gamma, then --resume."
                )
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            elapsed = time.monotonic() - t0
            ips = count * cfg.batch / max(time.monotonic() - win_t, 1e-9)
            means = {k: v / count for k, v in sums.items()}
            report(
                StepInfo("step", step, cfg.steps or None, means, ips, elapsed,
                         _eta(cfg, step, elapsed, count / max(time.monotonic() - win_t, 1e-9)))
            )  # fmt: skip
            if step % cfg.log_every == 0:
                run.log({"event": "train", "step": step, "images_per_s": ips, **means})
                sums, count, win_t = {}, 0, time.monotonic()
            if step % cfg.checkpoint_every == 0 and step % cfg.eval_every:
                refit_prior()
            if step % cfg.sample_every == 0:
                save_grid(evaluator.grid(G_ema), run.path, step)
            improved = False
            if step % cfg.eval_every == 0:
                improved = evaluate()
                last_eval = step
                report(StepInfo("eval", step, cfg.steps or None, metrics=last_metrics))
            if step % cfg.checkpoint_every == 0 or improved:
                save(best=improved)
                last_ckpt = step
            if step == last_eval and cfg.stop_on_collapse:
                fell = _collapsing(run.path, cfg)
                if fell:
                    stopped = "collapse"
                    run.log({"event": "collapse", "step": step, "figure": fell})
                    break
    except KeyboardInterrupt:
        stopped = "interrupted"
    if step != last_eval:
        improved = evaluate()
        report(StepInfo("eval", step, cfg.steps or None, metrics=last_metrics))
    else:
        improved = False
    if step != last_ckpt or improved or not (run.path / LAST_NAME).exists():
        save(best=improved or not (run.path / BEST_NAME).exists())
        save_grid(evaluator.grid(G_ema), run.path, step)
    run.log({"event": "stop", "step": step, "stopped": stopped, "train_s": train_s})
    report(StepInfo("done", step, cfg.steps or None, elapsed_s=time.monotonic() - t0,
                    metrics=last_metrics))  # fmt: skip
    return TrainResult(
        run.path, step, stopped, best_score, last_metrics, run.path / BEST_NAME, data.skipped
    )


def _collapsing(run_path: Path, cfg: GanConfig) -> str | None:
    """The ``--stop-on-collapse`` rule on the run's evaluations so far: the figure that fell."""
    evals = read_history(run_path)["eval"]
    return collapse_figure(evals, cfg.collapse_drop, cfg.collapse_patience)


def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def _eta(cfg: GanConfig, step: int, elapsed: float, steps_per_s: float) -> float | None:
    etas = []
    if cfg.steps:
        etas.append(max(0, cfg.steps - step) / max(steps_per_s, 1e-9))
    if cfg.minutes:
        etas.append(max(0.0, cfg.minutes * 60 - elapsed))
    return min(etas) if etas else None


def _split(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split into training and held-back indices (at most a fifth is held back)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = min(holdout, n // 5)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _provenance(cfg: GanConfig, data: FaceData, n_train: int) -> dict[str, Any]:
    return {
        "folders": [str(Path(p).resolve()) for p in cfg.data],
        "files": len(data.files),
        "train_images": n_train,
        "skipped": len(data.skipped),
        "crop_mode": data.mode,
    }

"""``forensics detector``: train, calibrate and evaluate the real-vs-fake face detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from forensics.cli.common import (
    DeviceOpt,
    FakeOpt,
    OutputFormat,
    RealOpt,
    console,
    err_console,
    fail,
    fmt_metric,
    make_progress,
)
from forensics.cli.detector_eval import eval_

app = typer.Typer(
    no_args_is_help=True,
    help="Train the real-vs-fake face detector on your data and measure it honestly.",
)


@app.command(no_args_is_help=True)
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (created).")],
    real: RealOpt = None,
    fake: FakeOpt = None,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(
            help="CSV/JSONL manifest; columns path, label, source, optional group (repeatable)."
        ),
    ] = None,
    holdout_generator: Annotated[
        list[str] | None,
        typer.Option(help="Fake source left out of training, evaluated at the end (repeatable)."),
    ] = None,
    max_per_source: Annotated[
        int, typer.Option(help="At most this many photos per source (0 = all).")
    ] = 0,
    arch: Annotated[str, typer.Option(help="Detector architecture.")] = "patch_resnet",
    arch_kwargs: Annotated[
        str, typer.Option(help="Architecture kwargs as JSON, e.g. '{\"stage\": 2}'.")
    ] = "",
    input_size: Annotated[int, typer.Option(help="Model input side in pixels.")] = 128,
    fit: Annotated[
        str,
        typer.Option(
            help="How a face crop becomes the input: 'resize' it, or cut a 'center' window "
            "of native pixels (the spectral_* models need it)."
        ),
    ] = "resize",
    score_size: Annotated[
        int,
        typer.Option(
            help="With --fit center: side of the centre window scored at validation and scan "
            "time (0 = --input-size); training still uses --input-size windows. Larger "
            "windows average more evidence per face; smaller crops are scored whole."
        ),
    ] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per step (per process).")] = 32,
    epochs: Annotated[int, typer.Option(help="Maximum passes over the training data.")] = 20,
    max_steps: Annotated[int, typer.Option(help="Stop at this total step count (0 = none).")] = 0,
    minutes: Annotated[
        float,
        typer.Option(
            help="Training wall-clock budget in minutes, then calibrate and save (0 = none)."
        ),
    ] = 0.0,
    eval_every: Annotated[int, typer.Option(help="Validate every N steps (0 = per epoch).")] = 0,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = 1e-3,
    ema: Annotated[
        float,
        typer.Option(
            help="Validate and export an exponential moving average of the weights with this "
            "decay, e.g. 0.995 (0 = off)."
        ),
    ] = 0.0,
    patch_loss: Annotated[
        float,
        typer.Option(
            help="Weight of the per-patch loss (every patch of a fake is called fake); 0 for "
            "fakes only part of whose face is altered, e.g. self-blended images."
        ),
    ] = 0.5,
    patience: Annotated[
        int, typer.Option(help="Validations without a better AP before stopping.")
    ] = 5,
    target_fpr: Annotated[
        float, typer.Option(help="False-positive rate on real validation photos for the threshold.")
    ] = 0.01,
    band_fpr: Annotated[
        float, typer.Option(help="Uncertainty band from this FPR's threshold (0 = no band).")
    ] = 0.0,
    val_fraction: Annotated[
        float, typer.Option(help="Share of groups used for validation.")
    ] = 0.15,
    cache_side: Annotated[
        int, typer.Option(help="Cached crops shrunk to this side (0 = native).")
    ] = 256,
    augment: Annotated[bool, typer.Option(help="Shared augmentations on both classes.")] = True,
    augment_kwargs: Annotated[
        str,
        typer.Option(
            help="Augmenter overrides as JSON, e.g. "
            '\'{"p_blur": 0.05, "jpeg_quality": [55, 100]}\'.'
        ),
    ] = "",
    pair_twins: Annotated[
        bool, typer.Option(help="Batch each re-synthesised fake with its real twin.")
    ] = True,
    selfblend: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="Share of real training crops turned into self-blended fakes as they are "
            "drawn, a new blend each epoch (face-swap traces without a swap model); validation "
            "scores one fixed blend of that share of its reals. With it, --real alone will do.",
        ),
    ] = 0.0,
    selfblend_crude: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the self-blends that imitate a classical 3-D-model face swap: a "
            "wider, sharper-edged mask and another skin tone and lighting inside it.",
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of everything.")] = 0,
    data_seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the data choice only (cap and validation split; default: --seed). "
            "Runs sharing it can be combined with `forensics detector ensemble`."
        ),
    ] = None,
    device: DeviceOpt = "auto",
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch CPU threads (0 = default).")] = 0,
    backbone: Annotated[
        str | None,
        typer.Option(
            help="timm backbone of a patch architecture (sets arch kwarg 'backbone'), e.g. "
            "mobilenetv2_100 with --arch patch_mobilenet."
        ),
    ] = None,
    init_weights: Annotated[
        str | None,
        typer.Option(
            "--init",
            "--init-weights",
            help="Pretrained start: a local weights file (safetensors or torch state dict, "
            "matched by name and shape), or 'timm' for timm's own weights (needs a network). "
            "Its source and sha256 are recorded in the model.",
        ),
    ] = None,
    augment_preset: Annotated[
        str,
        typer.Option(
            help="Named augmentation chain shared by both classes: 'default', or 'heavy' "
            "(random crop, resize to 96-256 px with a random filter, blur, noise, JPEG 40-95 "
            "once or twice) to bury each data set's own encoding. --augment-kwargs overrides it."
        ),
    ] = "default",
    score_resize: Annotated[
        int,
        typer.Option(help="At scoring, shrink face crops to this shorter side first (0 = off)."),
    ] = 0,
    score_jpeg: Annotated[
        int,
        typer.Option(help="At scoring, JPEG round trip at this quality first (0 = off)."),
    ] = 0,
    export: Annotated[Path | None, typer.Option(help="Also copy the final model here.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out with its stored config.")
    ] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table or json summary.")] = (
        OutputFormat.table
    ),
) -> None:
    r"""Train a detector, calibrate it on validation, write OUT/model.safetensors.

    Faces are cut from the --real and --fake folders (or a --manifest) as the scanner cuts
    them and split into training and validation by group (person, seed, twin pair). The run
    folder keeps the resolved config, a checkpoint every --eval-every steps (--resume goes
    on from the last) and the metrics. Uses a GPU when there is one, and several under
    torchrun.

    Examples:
      forensics detector train -o runs/det --real reals/ \
          --fake fakes/resynth --fake fakes/dcgan --minutes 45

      torchrun --nproc_per_node 2 $(which forensics) detector train \
          -o runs/det ...

      forensics detector train -o runs/det --resume --minutes 20

      # the spectral branch's recipe
      forensics detector train -o runs/spec --manifest dev_train.csv \
          --real REAL --fake FAKES --arch spectral_multiscale \
          --arch-kwargs '{"features": ["radial", "quadrant"]}' \
          --fit center --score-size 256 --ema 0.995

      # a pretrained start (see MODEL_CARD.md)
      forensics detector train -o runs/v2 --manifest runs/v2_train.csv \
          --arch patch_mobilenet --init weights/mobilenetv2.safetensors \
          --input-size 224 --augment-preset heavy

    """
    from trainers.detector.augment import Augmenter
    from trainers.detector.config import DetectorTrainConfig, default_arch_kwargs

    kwargs: dict[str, Any] = default_arch_kwargs() if arch == "patch_resnet" else {}
    if arch_kwargs:
        kwargs = _json_option("--arch-kwargs", arch_kwargs)
    if backbone:
        kwargs["backbone"] = backbone
    try:
        aug_kwargs = Augmenter.preset(augment_preset)
    except ValueError as exc:
        fail(str(exc))
    aug_kwargs.update(_json_option("--augment-kwargs", augment_kwargs))
    cfg = DetectorTrainConfig(
        out=str(out),
        real=tuple(map(str, real or ())),
        fake=tuple(map(str, fake or ())),
        manifest=tuple(map(str, manifest or ())),
        holdout_generators=tuple(holdout_generator or ()),
        max_per_source=max_per_source or None,
        arch=arch,
        arch_kwargs=kwargs,
        input_size=input_size,
        fit=fit,
        score_size=score_size,
        cache_side=cache_side,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=max_steps or None,
        max_minutes=minutes or None,
        eval_every=eval_every or None,
        lr=lr,
        ema=ema,
        patch_loss=patch_loss,
        patience=patience,
        target_fpr=target_fpr,
        band_fpr=band_fpr or None,
        val_fraction=val_fraction,
        augment=augment,
        augment_kwargs=aug_kwargs,
        pair_twins=pair_twins,
        selfblend=selfblend,
        selfblend_crude=selfblend_crude,
        seed=seed,
        data_seed=data_seed,
        device=device,
        workers=workers,
        threads=threads or None,
        init_weights=init_weights or None,
        score_resize=score_resize,
        score_jpeg=score_jpeg,
        export=str(export) if export else None,
    )
    _run_training(cfg, resume, fmt)


def _run_training(cfg, resume: bool, fmt: OutputFormat) -> None:
    from forensics.checkpoint import CheckpointError
    from trainers.detector.distributed import dist_from_env
    from trainers.detector.train import resume_config, train_detector

    if resume:
        try:
            cfg = resume_config(cfg.out, cfg)
        except FileNotFoundError as exc:
            fail(str(exc))
    else:
        try:
            cfg.validate()
        except ValueError as exc:
            fail(str(exc))
    main = dist_from_env().is_main
    with make_progress(transient=False) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task("face crops", total=total, status="")
            progress.update(tasks[stage], completed=done)

        def on_step(rec: dict[str, Any]) -> None:
            if rec["kind"] == "val":
                err_console.print(
                    f"step {rec['step']}: val AP {rec['val_ap']:.4f} AUC {rec['val_auc']:.4f} "
                    f"(best {rec['best_ap']:.4f} @ {rec['best_step']})",
                    highlight=False,
                )
                return
            if "train" not in tasks:
                tasks["train"] = progress.add_task("train", total=rec["total_steps"], status="")
            status = f"loss {rec['loss']:.3f} {rec['images_per_s']:.1f} img/s"
            progress.update(tasks["train"], completed=rec["step"], status=status)

        try:
            result = train_detector(
                cfg,
                resume=resume,
                on_step=on_step if main else None,
                on_progress=on_progress if main else None,
            )
        except (ValueError, CheckpointError) as exc:
            fail(str(exc))
    if not main:
        return
    summary = {"model": str(result.model_path), "run": str(result.run_dir), **result.summary}
    steps = (
        f"steps {result.steps} (best {result.best_step}, stopped: {result.stop_reason}), "
        f"{result.images_per_s:.1f} images/s"
    )
    print_model_summary(summary, fmt, steps)


def print_model_summary(summary: dict[str, Any], fmt: OutputFormat, note: str) -> None:
    """Render a finalised model's summary (the JSON itself with ``--format json``)."""
    if fmt == OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2, default=float))
        return
    pooled = summary["metrics"]["val"]["pooled"]
    cal = summary["calibration"]
    console.print(f"model: {summary['model']}", highlight=False)
    console.print(note, highlight=False)
    console.print(
        f"validation: AUC {fmt_metric(pooled['auc'])} AP {fmt_metric(pooled['ap'])} "
        f"TPR@1%FPR {fmt_metric(pooled['tpr_at_1fpr'])}; "
        f"at threshold {cal['threshold']:.4f}: "
        f"FPR {fmt_metric(pooled['fpr'])} TPR {fmt_metric(pooled['tpr'])} "
        f"ECE {fmt_metric(pooled['ece'])}",
        highlight=False,
    )


def _json_option(flag: str, text: str) -> dict[str, Any]:
    """Parse a JSON-object option, failing with a usage error that names the flag."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{flag} is not JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{flag} must be a JSON object, e.g. '{{\"key\": 1}}'")
    return value


# ``detector eval`` lives in forensics.cli.detector_eval; registered here, after ``train``.
app.command("eval", no_args_is_help=True)(eval_)


# Commands that make a checkpoint from trained ones register themselves on this app.
from forensics.cli import detector_models as _detector_models  # noqa: E402, F401

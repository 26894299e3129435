"""``forensics gan``: train face generators and regenerate folders of fake faces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import (
    DeviceOpt,
    OutputFormat,
    console,
    err_console,
    fail,
    print_summary,
)
from forensics.cli.gan_sample import sample

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Train GAN face generators on your own real faces and sample fake faces from them "
        "(the detector's training data)."
    ),
)


FeaturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--features",
        exists=True,
        dir_okay=False,
        help="MobileNetV2 ImageNet weights (timm mobilenetv2_100, safetensors): measure "
        "mode collapse in its feature space (Fréchet distance, precision/recall, "
        "density/coverage, CrossLID). Without them those figures are unavailable.",
    ),
]


@app.command(no_args_is_help=True)
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (created).")],
    family: Annotated[
        str,
        typer.Option(
            help="dcgan, resize_conv, stylegan_lite, resynth, or ae_gan (an adversarial "
            "autoencoder sampled from a mixture fitted to its codes: no mode collapse)."
        ),
    ] = "resize_conv",
    decoder: Annotated[
        str,
        typer.Option(
            help="ae_gan: whose generator decodes (resize_conv, dcgan or stylegan_lite); "
            "its upsampling is the trace the samples carry."
        ),
    ] = "resize_conv",
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="Folder of real face photos (repeatable)."),
    ] = None,
    size: Annotated[int, typer.Option(help="Image side in pixels: 64 (default) or 128.")] = 64,
    minutes: Annotated[
        float, typer.Option(help="Wall-clock budget of this invocation (0 = none).")
    ] = 0.0,
    steps: Annotated[int, typer.Option(help="Stop at this total step count (0 = none).")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    width: Annotated[int, typer.Option(help="Base channel width of G and D.")] = 16,
    z_dim: Annotated[
        int, typer.Option("--z-dim", min=2, help="Latent size (ae_gan: code size + 1).")
    ] = 128,
    batch: Annotated[int, typer.Option(help="Images per step.")] = 32,
    lr_g: Annotated[float, typer.Option("--lr-g", help="Generator learning rate.")] = 2e-4,
    lr_d: Annotated[float, typer.Option("--lr-d", help="Discriminator learning rate.")] = 2e-4,
    r1_gamma: Annotated[
        float, typer.Option("--r1-gamma", help="R1 penalty weight (0: off).")
    ] = 0.1,
    beta1: Annotated[float, typer.Option("--beta1", help="Adam beta1 of G and D.")] = 0.5,
    rec_weight: Annotated[
        float,
        typer.Option(
            "--rec-weight",
            help="resynth/ae_gan: weight of the L1 reconstruction loss against the "
            "adversarial loss (lower: sharper, looser reconstructions).",
        ),
    ] = 10.0,
    ema_decay: Annotated[
        float, typer.Option("--ema-decay", help="EMA of G used for sampling (0: off).")
    ] = 0.995,
    no_spectral_norm: Annotated[
        bool, typer.Option("--no-spectral-norm", help="No spectral norm in D.")
    ] = False,
    no_mbstd: Annotated[
        bool, typer.Option("--no-mbstd", help="No minibatch-stddev feature in D.")
    ] = False,
    disc: Annotated[
        str,
        typer.Option(
            help="conv: D learnt from pixels. projected: small heads on the frozen "
            "MobileNetV2 of --features (Projected GAN; converges faster, drops fewer modes).",
        ),
    ] = "conv",
    disc_side: Annotated[
        int, typer.Option("--disc-side", help="Projected D: resize images to this side.")
    ] = 64,
    features: FeaturesOpt = None,
    stop_on_collapse: Annotated[
        bool,
        typer.Option(
            "--stop-on-collapse",
            help="End the run when coverage (feature or pixel) or diversity falls below half "
            "its best and stays there for 3 evaluations.",
        ),
    ] = False,
    eval_n: Annotated[int, typer.Option("--eval-n", min=8, help="Samples per evaluation.")] = 64,
    upsample: Annotated[
        str,
        typer.Option(help="auto, nearest, bilinear (resize_conv/resynth) or transposed (resynth)."),
    ] = "auto",
    crop: Annotated[
        str, typer.Option(help="auto: detect whether files are face crops; none; mtcnn.")
    ] = "auto",
    max_images: Annotated[int, typer.Option(help="Use at most this many photos (0 = all).")] = 0,
    eval_every: Annotated[int, typer.Option(help="Face rate / diversity every N steps.")] = 250,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    sample_every: Annotated[int, typer.Option(help="Sample grid PNG every N steps.")] = 250,
    diffaug: Annotated[
        str, typer.Option(help="DiffAugment policy: comma list of color, translation, cutout.")
    ] = "color,translation",
    seed: Annotated[int, typer.Option(help="Seed of everything.")] = 0,
    device: DeviceOpt = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = default).")] = 0,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Summary format.")
    ] = OutputFormat.table,
) -> None:
    r"""Train a generator on real face photos; checkpoints, grids and metrics go to --out.

    Every --eval-every steps the EMA generator is measured into metrics.jsonl:
    face rate, pixel-space diversity and coverage, and with --features also
    MobileNetV2-space coverage, density and CrossLID. history.png plots them
    with the losses; `forensics gan eval RUN --real DIR` prints the history.

    Examples:
        forensics gan train --family resize_conv --data reals/ \
            --out runs/gan_rc --minutes 30

        forensics gan train --out runs/gan_rc --resume --minutes 30

    """
    from trainers.gan.config import GanConfig
    from trainers.gan.train import TrainingDiverged
    from trainers.gan.train import train as run_training

    cfg = GanConfig(
        family=family,
        data=tuple(str(p) for p in data or ()),
        size=size,
        width=width,
        z_dim=z_dim,
        batch=batch,
        lr_g=lr_g,
        lr_d=lr_d,
        r1_gamma=r1_gamma,
        beta1=beta1,
        rec_weight=rec_weight,
        decoder=decoder,
        ema_decay=ema_decay,
        spectral_norm=not no_spectral_norm,
        mbstd=not no_mbstd,
        disc=disc,
        disc_side=disc_side,
        features=str(features) if features is not None else None,
        stop_on_collapse=stop_on_collapse,
        eval_n=eval_n,
        upsample=upsample,
        crop=crop,
        max_images=max_images,
        steps=steps,
        minutes=minutes,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        sample_every=sample_every,
        diffaug=diffaug,
        seed=seed,
        device=device,
        threads=threads or None,
    )
    progress, on_step = _train_progress(steps or None)
    try:
        with progress:
            result = run_training(cfg, out, resume=resume, on_step=on_step)
    except TrainingDiverged as exc:
        fail(str(exc), code=1)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    summary = {
        "run": str(result.run_dir),
        "step": result.step,
        "stopped": result.stopped,
        "generator": str(result.generator),
        "skipped_files": len(result.skipped),
        **{k: v for k, v in result.last_metrics.items() if k != "step"},
    }
    print_summary(summary, fmt)


def _train_progress(total: int | None):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    )
    task = progress.add_task("loading faces", total=total, status="")

    def on_step(info) -> None:
        if info.event == "start":
            m = info.metrics
            progress.update(task, description="training", completed=info.step)
            err_console.print(
                f"{m['images']} training faces ({m['skipped']} skipped, crop={m['crop_mode']}), "
                f"G {m['g_params'] / 1e6:.2f}M params, D {m['d_params'] / 1e6:.2f}M, {m['device']}"
            )
        elif info.event == "step":
            loss = " ".join(
                f"{k}={v:.3f}"
                for k, v in info.losses.items()
                if k in ("d_loss", "g_loss", "rec_l1")
            )
            eta = f" ETA {info.eta_s / 60:.1f} min" if info.eta_s is not None else ""
            status = f"step {info.step} {loss} {info.images_per_s:.0f} img/s{eta}"
            progress.update(task, completed=info.step, status=status)
            if progress.disable and info.step % 100 == 0:
                err_console.print(status, highlight=False)
        elif info.event == "eval":
            m = info.metrics
            err_console.print(
                f"step {info.step}: face rate {m['face_rate']:.3f}, "
                f"diversity {m['diversity']:.3f}, "
                f"precision {m.get('precision', float('nan')):.3f}, "
                f"coverage {m.get('coverage', float('nan')):.3f}"
            )

    return progress, on_step


# ``gan sample`` lives in forensics.cli.gan_sample; registered here, after ``train``.
app.command()(sample)


@app.command("eval", no_args_is_help=True)
def eval_(
    real: Annotated[Path, typer.Option("--real", help="Folder of real face photos (reference).")],
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Generator .safetensors or GAN run folder (default: the shipped one)."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Samples (and at most this many reals).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the latents.")] = 0,
    device: DeviceOpt = "auto",
    features: FeaturesOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """Measure a generator: face rate, diversity and, with --features, mode collapse.

    Face rate: MTCNN p>0.95. Diversity, precision and coverage in a 16-px
    pixel space. With --features: Fréchet distance, precision, recall,
    density, coverage (k=5) and CrossLID (k=20, lower is better) in
    MobileNetV2 feature space, for the samples against --n real photos and,
    as the reference line, for those photos against --n others. A run folder
    also shows its training history.

    Examples:
        forensics gan eval runs/gan_rc --real reals/ --features mnv2.safetensors

        forensics gan eval gen.safetensors --real reals/ --format json

    """
    from forensics.checkpoint import CheckpointError
    from trainers.gan.evaluate import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(
            checkpoint, real, n=n, seed=seed, device=device, features=features
        )
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if fmt is not OutputFormat.table:
        print_summary(result, fmt)
        return
    metrics, history = result.pop("feature_metrics"), result.pop("history", None)
    print_summary({k: v for k, v in result.items() if v is not None}, fmt)
    if metrics is not None:
        _print_feature_table(metrics)
    if history:
        _print_history(history)


def _print_history(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="training history (metrics.jsonl)")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)


def _print_feature_table(metrics: dict) -> None:
    from rich.table import Table

    table = Table(title="MobileNetV2 feature space")
    table.add_column("figure")
    table.add_column("samples vs real")
    table.add_column(f"real vs {metrics['n_reference']} other real")
    for key, value in metrics["samples"].items():
        ref = metrics["reference"][key]
        table.add_row(key, f"{value:.3f}", f"{ref:.3f}")
    console.print(table)

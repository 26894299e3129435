"""``forensics gan``: train face generators and regenerate folders of fake faces."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import DeviceOpt, OutputFormat, console, err_console, fail

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Train GAN face generators on your own real faces and sample fake faces from them "
        "(the detector's training data)."
    ),
)


@app.command(no_args_is_help=True)
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (created).")],
    family: Annotated[
        str, typer.Option(help="dcgan, resize_conv, stylegan_lite or resynth.")
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
    batch: Annotated[int, typer.Option(help="Images per step.")] = 32,
    lr_g: Annotated[float, typer.Option("--lr-g", help="Generator learning rate.")] = 2e-4,
    lr_d: Annotated[float, typer.Option("--lr-d", help="Discriminator learning rate.")] = 2e-4,
    r1_gamma: Annotated[float, typer.Option("--r1-gamma", help="R1 penalty weight.")] = 0.1,
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
    """Train a generator on real face photos; checkpoints, grids and metrics go to --out.

    Examples:
        forensics gan train --family resize_conv --data reals/
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
        batch=batch,
        lr_g=lr_g,
        lr_d=lr_d,
        r1_gamma=r1_gamma,
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
    _print_summary(summary, fmt)


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


def _print_summary(summary: dict, fmt: OutputFormat) -> None:
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        console.print_json(json.dumps(summary, default=str)) if fmt is OutputFormat.json else print(
            json.dumps(summary, default=str)
        )
        return
    if fmt is OutputFormat.csv:
        print(",".join(summary))
        print(",".join(str(v) for v in summary.values()))
        return
    from rich.table import Table

    table = Table(show_header=False)
    for k, v in summary.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)


class ImageFormat(enum.StrEnum):
    """How ``gan sample`` encodes the images it writes."""

    png = "png"
    jpeg = "jpeg"


@app.command()
def sample(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Generator .safetensors or GAN run folder (default: the shipped one)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("fakes"),
    n: Annotated[
        int, typer.Option("--n", help="Number of images (resynth: at most, 0 = all).")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Same seed, same images.")] = 0,
    image_fmt: Annotated[
        ImageFormat, typer.Option("--image-format", help="How the images are encoded.")
    ] = ImageFormat.png,
    quality: Annotated[int, typer.Option(help="JPEG quality for --image-format jpeg.")] = 95,
    match_codec: Annotated[
        Path | None,
        typer.Option("--match-codec", help="Copy the codec/JPEG-quality mix of these real photos."),
    ] = None,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Real photos to re-synthesise (resynth only).")
    ] = None,
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="resynth only: re-render each --from photo at its own size and codec.",
        ),
    ] = False,
    max_side: Annotated[
        int, typer.Option(help="--native: skip photos with a longer side above this.")
    ] = 512,
    device: DeviceOpt = "auto",
    batch: Annotated[int, typer.Option(help="Images per forward pass.")] = 64,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Summary format.")
    ] = OutputFormat.table,
    old_fmt: Annotated[
        OutputFormat | None,
        typer.Option("--output-format", hidden=True, help="Old name of --format."),
    ] = None,
) -> None:
    """Generate fake faces plus manifest.jsonl (file, family, checkpoint sha256, seed).

    Examples:
        forensics gan sample runs/gan_rc --n 1000 --out fakes/rc --match-codec
        reals/

        forensics gan sample runs/gan_resynth --from reals/ --n 500
        --out fakes/resynth --match-codec reals/

        forensics gan sample runs/gan_resynth --from reals/ --native
        --out fakes/resynth_native

    """
    from forensics.checkpoint import CheckpointError
    from forensics.cli.common import make_progress
    from trainers.gan.sample import sample_images

    progress = make_progress()
    task = progress.add_task("sampling", total=None, status="")
    if native and from_dir is None:
        fail("--native re-synthesises real photos: pass --from DIR")
    try:
        with progress:
            if native:
                from trainers.gan.native import resynth_folder

                records = resynth_folder(
                    checkpoint, from_dir, out, n=n, seed=seed, max_side=max_side, device=device,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )  # fmt: skip
            else:
                records = sample_images(
                    checkpoint, n, out, seed=seed, fmt=image_fmt.value, quality=quality,
                    match_codec=match_codec, from_dir=from_dir, device=device, batch=batch,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )  # fmt: skip
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    formats: dict[str, int] = {}
    for r in records:
        formats[r["format"]] = formats.get(r["format"], 0) + 1
    summary = {
        "out": str(out),
        "images": len(records),
        "family": records[0]["family"] if records else None,
        "checkpoint": records[0]["checkpoint"] if records else None,
        "seed": seed,
        "formats": formats,
        "manifest": str(Path(out) / "manifest.jsonl"),
    }
    _print_summary(summary, old_fmt if old_fmt is not None else fmt)


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
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """Measure a generator: face rate (MTCNN p>0.95), diversity, precision, coverage.

    Examples:
        forensics gan eval runs/gan_rc --real reals/ --n 256

    """
    from forensics.checkpoint import CheckpointError
    from trainers.gan.evaluate import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(checkpoint, real, n=n, seed=seed, device=device)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    _print_summary(result, fmt)

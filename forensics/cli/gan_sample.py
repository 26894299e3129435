"""``forensics gan sample``: write fake faces from a trained generator, with a manifest."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import (
    DeviceOpt,
    Engine,
    OutputFormat,
    fail,
    make_progress,
    print_summary,
)


class ImageFormat(enum.StrEnum):
    """How ``gan sample`` encodes the images it writes."""

    png = "png"
    jpeg = "jpeg"


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
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local, or ray: shards of --batch images on Ray workers (pip install "
            "'forensics\\[ray]'); the same files whatever the worker count. Not with --native.",
        ),
    ] = Engine.local,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="--engine ray: tasks at once (default: all CPUs)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="--engine ray: a Ray cluster to join (default: local)."),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Summary format.")
    ] = OutputFormat.table,
    old_fmt: Annotated[
        OutputFormat | None,
        typer.Option("--output-format", hidden=True, help="Old name of --format."),
    ] = None,
) -> None:
    r"""Generate fake faces plus manifest.jsonl (file, family, checkpoint sha256, seed).

    The same checkpoint, --seed and --n give the same images. A resynth generator
    re-renders the real photos given with --from instead (one fake twin each, named in the
    manifest). --match-codec saves the fakes with the encodings of a folder of real photos,
    so that a detector cannot tell the classes apart by how the files were saved.

    Examples:
        forensics gan sample runs/gan_rc --n 1000 --out fakes/rc \
            --match-codec reals/

        forensics gan sample runs/gan_resynth --from reals/ --n 500 \
            --out fakes/resynth --match-codec reals/

        forensics gan sample runs/gan_resynth --from reals/ --native \
            --out fakes/resynth_native

        forensics gan sample runs/gan_rc --n 100000 --out fakes/rc \
            --engine ray

    """
    from forensics.checkpoint import CheckpointError
    from trainers.gan.sample import sample_images

    progress = make_progress()
    task = progress.add_task("sampling", total=None, status="")
    if native and from_dir is None:
        fail("--native re-synthesises real photos: pass --from DIR")
    if engine is Engine.local and (workers is not None or address is not None):
        fail("--workers and --address need --engine ray")
    engine_errors: tuple[type[Exception], ...] = ()
    if engine is Engine.ray:
        if native:
            fail("--native runs on the local engine only")
        from rich.markup import escape

        try:
            from forensics.scan_ray import EngineError, import_ray

            import_ray()
        except ImportError as exc:
            fail(escape(str(exc)))
        engine_errors = (EngineError,)
    try:
        with progress:
            if native:
                from trainers.gan.native import resynth_folder

                records = resynth_folder(
                    checkpoint, from_dir, out, n=n, seed=seed, max_side=max_side, device=device,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )  # fmt: skip
            elif engine is Engine.ray:
                from trainers.gan.sample_ray import sample_images_ray

                records = sample_images_ray(
                    checkpoint, n, out, seed=seed, fmt=image_fmt.value, quality=quality,
                    match_codec=match_codec, from_dir=from_dir, device=device, batch=batch,
                    workers=workers, address=address,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )  # fmt: skip
            else:
                records = sample_images(
                    checkpoint, n, out, seed=seed, fmt=image_fmt.value, quality=quality,
                    match_codec=match_codec, from_dir=from_dir, device=device, batch=batch,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )  # fmt: skip
    except (CheckpointError, ValueError, *engine_errors) as exc:
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
    print_summary(summary, old_fmt if old_fmt is not None else fmt)

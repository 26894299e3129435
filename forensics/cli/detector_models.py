"""``forensics detector ensemble``, ``fuse`` and ``threshold``: checkpoints from trained ones."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import (
    DeviceOpt,
    OutputFormat,
    console,
    fail,
    make_progress,
    print_summary,
)
from forensics.cli.detector import app, print_model_summary

FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table or json summary.")]


@app.command(no_args_is_help=True)
def ensemble(
    members: Annotated[
        list[Path], typer.Argument(help="Two or more detector checkpoints with one preprocessing.")
    ],
    calibrate_on: Annotated[
        Path,
        typer.Option(
            help="Run folder whose validation split calibrates the ensemble; the members "
            "must not have trained on it (train them with the same --data-seed)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Ensemble checkpoint to write.")],
    device: DeviceOpt = "auto",
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    r"""Average several trained detectors into one calibrated checkpoint.

    The members' logits are averaged (each face's errors partly cancel), then temperature,
    bias and threshold are fitted on the run's validation split as training does.

    Examples:
      # a second model of the same recipe, then their average
      forensics detector train -o runs/det_s1 --seed 1 --data-seed 0 ...
      forensics detector ensemble runs/det/model.safetensors \
          runs/det_s1/model.safetensors --calibrate-on runs/det \
          -o ensemble.safetensors

    """
    from forensics.checkpoint import CheckpointError
    from trainers.detector.ensemble import build_ensemble

    with make_progress(transient=True) as progress:
        task = progress.add_task("face crops", total=None, status="")

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            detector, summary = build_ensemble(members, calibrate_on, device, on_progress)
        except (ValueError, FileNotFoundError, CheckpointError) as exc:
            fail(str(exc))
    path = detector.save(out)
    print_model_summary({"model": str(path), **summary}, fmt, f"{len(members)} members averaged")


class Combine(enum.StrEnum):
    """How a fusion combines its branches' calibrated logits."""

    max = "max"
    mean = "mean"


@app.command(no_args_is_help=True)
def fuse(
    branches: Annotated[
        list[Path],
        typer.Argument(help="Two or more detector checkpoints; each keeps its preprocessing."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fused checkpoint to write.")],
    combine: Annotated[
        Combine,
        typer.Option(
            help="max: a face is as suspicious as its most suspicious branch; mean: the mean "
            "of the branches' calibrated logits."
        ),
    ] = Combine.max,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="Branch names, one per checkpoint in order (repeatable; default: the file "
            "names). Scan output gives each face's probability per branch under them.",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    r"""Fuse detectors that read faces differently (e.g. native-pixel spectra + resized crops).

    Unlike `ensemble`, branches may preprocess faces differently: each keeps its own input
    side, fit and calibration, and the fusion combines their calibrated logits. The fused
    threshold starts at the strictest branch's; set it for your real photos with `threshold`.

    Examples:
      forensics detector fuse spectral.safetensors runs/swap/model.safetensors \
          --name spectral --name face_swap -o fused.safetensors
      forensics detector threshold fused.safetensors --real unused_reals \
          -o fused_floor.safetensors

    """
    from forensics.checkpoint import CheckpointError
    from forensics.scoring import Detector
    from trainers.detector.fusion import fuse_detectors

    try:
        detectors = [Detector.from_checkpoint(p, device=device) for p in branches]
        fused = fuse_detectors(detectors, combine.value, name or None)
    except (ValueError, CheckpointError) as exc:
        fail(str(exc))
    path = fused.save(out)
    summary = {
        "model": str(path),
        "combine": combine.value,
        "threshold": fused.calibration.threshold,
        "branches": [
            {"file": str(p), "arch": d.spec.arch, "threshold": d.calibration.threshold}
            for p, d in zip(branches, detectors, strict=True)
        ],
    }
    if fmt == OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(
        f"{path}: {len(branches)} branches, combine {combine.value}, "
        f"threshold {summary['threshold']:.4f}",
        highlight=False,
    )
    for b in summary["branches"]:
        console.print(
            f"  {b['file']}: {b['arch']} (threshold {b['threshold']:.4f})", highlight=False
        )


@app.command(no_args_is_help=True)
def branch(
    fused: Annotated[Path, typer.Argument(help="Fused detector checkpoint.")],
    name: Annotated[str, typer.Option("--name", help="The branch to take out.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write.")],
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    r"""Take one branch out of a fused detector, as a checkpoint of its own.

    The branch keeps its weights, preprocessing, calibration and threshold, so it can be
    evaluated alone or fused again with other branches (`fuse`).

    Examples:
      forensics detector branch fused.safetensors --name gan_diffusion \
          -o gan_diffusion.safetensors
      forensics detector fuse gan_diffusion.safetensors runs/swap/model.safetensors \
          --name gan_diffusion --name face_swap -o refused.safetensors

    """
    from forensics.checkpoint import CheckpointError
    from forensics.scoring import Detector
    from trainers.detector.fusion import branch_detector

    try:
        detector = branch_detector(Detector.from_checkpoint(fused, device="cpu"), name)
    except (ValueError, CheckpointError) as exc:
        fail(str(exc))
    path = detector.save(out)
    summary = {
        "model": str(path),
        "branch": name,
        "arch": detector.spec.arch,
        "threshold": detector.calibration.threshold,
    }
    print_summary(summary, fmt)


@app.command(no_args_is_help=True)
def threshold(
    model: Annotated[Path, typer.Argument(help="Detector checkpoint to copy.")],
    real: Annotated[
        list[Path],
        typer.Option(
            "--real",
            "-r",
            help="Folder of real photos the model never trained on (repeatable); each is a "
            "source whose flagged share is capped.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write.")],
    max_fpr: Annotated[
        float,
        typer.Option(min=0.0001, max=0.9999, help="Largest share of any folder's photos flagged."),
    ] = 0.05,
    keep_threshold: Annotated[
        bool,
        typer.Option("--keep-threshold", help="Leave the threshold as it is (with --band-fpr)."),
    ] = False,
    band_fpr: Annotated[
        float | None,
        typer.Option(
            "--band-fpr",
            min=0.0001,
            max=0.9999,
            help="Refit the uncertainty band: from the score this share of each folder's "
            "photos reaches, up to the threshold; scores inside it read 'uncertain'.",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    r"""Raise a model's threshold so no real folder has more than --max-fpr of it flagged.

    The calibrated threshold holds its FPR on the pooled validation reals; a hard real source
    inside that pool (heavily processed photos) can still be flagged far more often. The copy
    keeps the weights, temperature and bias, and records both thresholds and each folder's
    rates in its header. The threshold is never lowered. --band-fpr also fits the
    uncertainty band on the folders (--keep-threshold: only that).

    Examples:
      forensics detector threshold runs/det/model.safetensors \
          --real unused/facemask --real unused/utkface --max-fpr 0.05 \
          -o runs/det/model_floor.safetensors

      forensics detector threshold model.safetensors --real unused/utkface \
          --band-fpr 0.05 --keep-threshold -o model_band.safetensors

    """
    from forensics.checkpoint import CheckpointError
    from forensics.scoring import Detector
    from trainers.detector.floor import apply_floor

    try:
        detector = Detector.from_checkpoint(model, device=device)
        with make_progress(transient=True) as progress:
            progress.add_task("scoring real photos", total=None, status="")
            floored, summary = apply_floor(
                detector, real, None if keep_threshold else max_fpr, band_fpr
            )
    except (ValueError, CheckpointError) as exc:
        fail(str(exc))
    path = floored.save(out)
    summary = {"model": str(path), **summary}
    if fmt == OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(
        f"{path}: threshold {summary['threshold_before']:.4f} -> {summary['threshold']:.4f}",
        highlight=False,
    )
    if summary["band"] is not None:
        low, high = summary["band"]
        console.print(f"uncertainty band [{low:.4f}, {high:.4f})", highlight=False)
    for name, m in summary["sources"].items():
        console.print(
            f"  {name}: {m['n']} photos, flagged {m['fpr_before']:.2%} -> {m['fpr_after']:.2%}"
            f", uncertain {m['in_band']:.2%}",
            highlight=False,
        )

"""``forensics detector eval``: measure a detector per fake source, pooled and reprocessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from forensics.cli.common import (
    DeviceOpt,
    FakeOpt,
    OutputFormat,
    PrecisionOpt,
    RealOpt,
    console,
    err_console,
    fail,
    fmt_metric,
    make_progress,
)


def eval_(
    model: Annotated[
        Path | None, typer.Argument(help="Detector checkpoint (default: the shipped model).")
    ] = None,
    real: RealOpt = None,
    fake: FakeOpt = None,
    split: Annotated[
        Path | None,
        typer.Option(
            help="A folder with real/ and fake/ subfolders, one per source (e.g. "
            "data/dev); adds them all to --real and --fake."
        ),
    ] = None,
    reprocess: Annotated[
        bool,
        typer.Option(
            "--reprocess",
            help="Also score every photo after (a) 2x box downscale + JPEG 90, (b) resize to "
            "256 px + JPEG 75, (c) half size + JPEG 70 and (d) 2x upscale + JPEG 90, applied "
            "to both classes alike; prints sources x variants.",
        ),
    ] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = (
        OutputFormat.table
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write roc.png, reliability.png and results.json here (and invariance.json "
            "with --reprocess).",
        ),
    ] = None,
    max_per_source: Annotated[
        int, typer.Option(help="At most this many photos per folder (0 = all).")
    ] = 0,
    batch: Annotated[int, typer.Option(help="Photos per face-detection batch.")] = 16,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "fp32",
) -> None:
    r"""Measure a detector per fake source and pooled, with the scanner's exact scores.

    Reports ROC AUC, AP, EER, TPR at 1% FPR, accuracy/FPR/TPR at the stored threshold and
    ECE; each real folder's FPR at the threshold. A fake source is compared with the real
    folder of the same name when there is one (stylegan3r256 with ffhq256), else with all reals.

    Examples:
      forensics detector eval runs/det/model.safetensors --real reals/ffhq \
          --fake fakes/stylegan3 --out eval/ --format json

      # the processing-invariance table (sources x re-processings)
      forensics detector eval --split data/dev --reprocess

    """
    if fmt not in (OutputFormat.table, OutputFormat.json):
        fail("--format must be table or json")
    real, fake = list(real or []), list(fake or [])
    if split is not None:
        if not (split / "real").is_dir() or not (split / "fake").is_dir():
            fail(f"--split needs real/ and fake/ subfolders: {split}")
        real += sorted(p for p in (split / "real").iterdir() if p.is_dir())
        fake += sorted(p for p in (split / "fake").iterdir() if p.is_dir())
    if not real or not fake:
        fail("give at least one --real and one --fake folder (or --split)")
    for folder in [*real, *fake]:
        if not folder.exists():
            fail(f"not found: {folder}")
    from forensics.checkpoint import CheckpointError
    from forensics.scoring import Detector
    from trainers.detector.evaluate import (
        collect_eval_samples,
        evaluate_variants,
        invariance_table,
        write_eval_outputs,
    )
    from trainers.detector.reprocess import PUBLISHED, VARIANTS

    try:
        detector = Detector.load(model, device=device, precision=precision)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    samples = collect_eval_samples(
        [str(p) for p in real], [str(p) for p in fake], max_per_source or None
    )
    variants = [PUBLISHED, *VARIANTS] if reprocess else [PUBLISHED]
    with make_progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"scoring {name}", total=total, status="")
            progress.update(tasks[name], completed=done)

        results = evaluate_variants(detector, samples, variants, batch, on_progress)
    result = results[PUBLISHED]
    table = invariance_table(results) if reprocess else None
    if out is not None:
        write_eval_outputs(result, out)
        if table is not None:
            (out / "invariance.json").write_text(json.dumps(table, indent=2, default=float))
    if fmt == OutputFormat.json:
        data = result.to_json()
        if table is not None:
            data["invariance"] = table
        typer.echo(json.dumps(data, indent=2, default=float))
    else:
        _print_eval_table(result.to_json())
        if table is not None:
            _print_invariance(table)


def _print_invariance(table: dict[str, Any]) -> None:
    from rich.table import Table

    for key, title in (("auc", "ROC AUC"), ("tpr", "fakes caught at the threshold")):
        out = Table(title=f"{title} per source and processing")
        out.add_column("fake source", overflow="fold")
        out.add_column("vs real", overflow="fold")
        for name in table["variants"]:
            out.add_column(name.replace("_", " "), justify="right")
        for src, cells in table["sources"].items():
            pair = next(iter(cells.values()))["real"] or "all"
            out.add_row(src, pair, *[fmt_metric(c[key], 3) for c in cells.values()])
        if key == "auc":
            out.add_row("mean AUC", "", *[fmt_metric(v, 3) for v in table["mean_auc"].values()])
        else:
            for src, fprs in table["reals"].items():
                out.add_row(
                    f"{src} (real, flagged)", "", *[fmt_metric(v, 3) for v in fprs.values()]
                )
        console.print(out)


def _print_eval_table(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{data['model']} (threshold {data['threshold']:.4f})")
    columns = [*data["sources"].items(), ("pooled", data["pooled"])]
    table.add_column("metric", no_wrap=True)
    for name, _ in columns:
        table.add_column(name, justify="right", overflow="fold")
    labels = {"n_real": "real photos", "n_fake": "fake photos", "auc": "ROC AUC", "ap": "AP",
              "eer": "EER", "tpr_at_1fpr": "TPR @ 1% FPR", "accuracy": "accuracy @ thr",
              "fpr": "FPR @ thr", "tpr": "TPR @ thr", "ece": "ECE"}  # fmt: skip
    for key, label in labels.items():
        cells = [str(m[key]) if key.startswith("n_") else fmt_metric(m[key], 3) for _, m in columns]
        table.add_row(label, *cells)
    console.print(table)
    reals = Table(title="real folders at the stored threshold")
    reals.add_column("source", overflow="fold")
    for col in ("n", "FPR", "mean score"):
        reals.add_column(col, justify="right", no_wrap=True)
    for name, m in data["reals"].items():
        reals.add_row(name, str(m["n"]), fmt_metric(m["fpr"]), fmt_metric(m["mean_score"]))
    console.print(reals)
    if data["errors"]:
        err_console.print(f"{len(data['errors'])} unreadable file(s) skipped", highlight=False)

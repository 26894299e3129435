"""``forensics scan``: score every face in photos, videos and folders, and show the evidence."""

from __future__ import annotations

import csv
import gc
import io
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import (
    DeviceOpt,
    ModelOpt,
    OutputFormat,
    PrecisionOpt,
    console,
    err_console,
    fail,
    make_progress,
)


def scan(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Photos, videos or folders (walked recursively).", show_default=False),
    ],
    model: ModelOpt = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            "-t",
            min=0.0,
            max=1.0,
            help="Flag files whose score is at least this (overrides the checkpoint's "
            "threshold and uncertainty band).",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How results are printed on stdout.")
    ] = OutputFormat.table,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for results.jsonl, heatmaps/, timelines/, thumbs/ and report.html. "
            "Without it nothing is written.",
        ),
    ] = None,
    fps: Annotated[
        float, typer.Option("--fps", min=0.01, help="Video frames sampled per second.")
    ] = 2.0,
    max_frames: Annotated[
        int, typer.Option("--max-frames", min=1, help="At most this many frames per video.")
    ] = 64,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "fp32",
    max_faces: Annotated[
        int, typer.Option("--max-faces", min=1, help="Score at most this many faces per photo.")
    ] = 16,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1024, help="Photos per batch.")
    ] = 16,
    detect_side: Annotated[
        int,
        typer.Option(
            "--detect-side",
            min=64,
            help="Look for faces on a copy shrunk to this side; raise it for small faces "
            "in group photos (slower).",
        ),
    ] = 256,
) -> None:
    """Scan photos, videos and folders for GAN-made or face-swapped faces.

    Every face is found (MTCNN), cropped and scored. A photo's score is its highest face
    score (no face: the whole image is scored, and the record says so). A video's score is
    the mean of its top 25% frame scores, sampled at --fps. Each input file gets one record;
    unreadable files get an error record and the scan goes on; other files are skipped.

    Exit code: 0 nothing flagged, 1 a file was flagged fake, 2 usage error, 3 some input
    could not be processed (wins over 1).

    Examples:
      forensics scan photo.jpg

      forensics scan photos/ clips/ --out results/    (heatmaps + report.html)

      forensics scan folder/ --format jsonl --model det.safetensors > scores.jsonl

      forensics scan clip.mp4 --fps 4 --max-frames 200 --threshold 0.7

    """
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    # FFmpeg (inside OpenCV) would print raw demuxer noise for every broken video; the
    # records already say what went wrong.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

    from forensics.checkpoint import CheckpointError
    from forensics.scan import (
        ScanConfig,
        Scanner,
        channels_last,
        collect_inputs,
        make_face_detector,
    )

    files = collect_inputs(paths, exclude=out)
    if not files:
        fail("no files to scan")

    from forensics.analysis import Analyzer
    from forensics.scoring import Detector

    try:
        detector = Detector.load(model, device=device, precision=precision)
    except CheckpointError as exc:
        fail(f"cannot load the detector: {exc}")
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    channels_last(detector)
    faces = make_face_detector(detector.device, detect_side=detect_side)
    # The libraries above leave ~10^6 long-lived objects; freezing them keeps the garbage
    # collector from walking them again during the scan and at exit (~0.7 s saved).
    gc.freeze()
    config = ScanConfig(
        fps=fps,
        max_frames=max_frames,
        max_faces=max_faces,
        batch_size=batch_size,
        threshold=threshold,
    )
    scanner = Scanner(Analyzer(detector, faces, max_faces=max_faces), config, out_dir=out)

    from forensics.records import ScanSummary

    summary = ScanSummary()
    renderer = _Renderer(fmt)
    progress = make_progress()
    with progress:
        task = progress.add_task("scanning", total=len(files), status="")

        def on_record(done: int, total: int, record) -> None:
            progress.update(task, completed=done, status=record.verdict or record.status)

        for rec in scanner.scan(files, on_record=on_record):
            summary.add(rec)
            renderer.add(rec.to_dict())
    renderer.close()

    report = None
    if out is not None:
        from forensics.report import write_report

        report = write_report(out, title=f"forensics scan ({summary.total} files)")
    v = summary.verdicts
    err_console.print(
        f"{summary.total} files: fake {v.get('fake', 0)}, uncertain {v.get('uncertain', 0)}, "
        f"real {v.get('real', 0)}, errors {summary.errors}, skipped {summary.skipped}"
        + (f"; report: {report}" if report is not None else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(summary.exit_code)


class _Renderer:
    """Prints records as they come (jsonl, csv, json) or as one table at the end."""

    def __init__(self, fmt: OutputFormat) -> None:
        self.fmt = fmt
        self.rows: list[dict] = []
        self.first = True
        self.csv_writer = None

    def add(self, rec: dict) -> None:
        from forensics.records import CSV_FIELDS, csv_row

        if self.fmt is OutputFormat.jsonl:
            typer.echo(json.dumps(rec, ensure_ascii=False))
        elif self.fmt is OutputFormat.json:
            typer.echo(("[\n" if self.first else ",\n") + json.dumps(rec, ensure_ascii=False),
                       nl=False)  # fmt: skip
        elif self.fmt is OutputFormat.csv:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
            if self.first:
                writer.writeheader()
            writer.writerow(csv_row(rec))
            typer.echo(buf.getvalue(), nl=False)
        else:
            self.rows.append(_table_row(rec))
        self.first = False

    def close(self) -> None:
        if self.fmt is OutputFormat.json:
            typer.echo("[]" if self.first else "\n]")
        elif self.fmt is OutputFormat.table:
            from rich.table import Table
            from rich.text import Text

            table = Table()
            for col in ("file", "kind", "verdict", "score", "faces", "note"):
                table.add_column(col, overflow="fold")
            for r in self.rows:
                table.add_row(*(Text(c, style=s) for c, s in r))
            console.print(table)


_STYLE = {"fake": "bold red", "uncertain": "yellow", "real": "green", "error": "red"}


def _table_row(rec: dict) -> list[tuple[str, str]]:
    """Cells as ``(text, style)``; rendered as rich Text so file names are never markup."""
    label = rec["verdict"] if rec["status"] == "ok" else rec["status"]
    score = "-" if rec["score"] is None else f"{rec['score']:.3f}"
    if rec["status"] != "ok":
        faces, note = "-", rec["error"] or rec.get("note") or ""
    elif rec["whole_image"]:
        faces, note = "0", "no face: whole image scored"
    else:
        faces, note = str(rec["n_faces"]), ""
    if rec["kind"] == "video" and rec["status"] == "ok":
        note = f"{len(rec['frames'])} frames, top-25% mean" + (f"; {note}" if note else "")
    return [
        (rec["path"], ""),
        (rec["kind"], ""),
        (label or "", _STYLE.get(label or "", "dim")),
        (score, ""),
        (faces, ""),
        (note, "dim"),
    ]

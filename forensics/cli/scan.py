"""``forensics scan``: score every face in photos, videos and folders, and show the evidence."""

from __future__ import annotations

import enum
import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from forensics.cli.common import (
    DeviceOpt,
    Engine,
    ModelOpt,
    OutputFormat,
    PrecisionOpt,
    err_console,
    fail,
    make_progress,
)
from forensics.cli.scan_render import Renderer

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from forensics.scan import FrameFn, Scanner
    from forensics.scan_ray import RayScanner
    from forensics.scan_setup import ScanConfig

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""


class SortOrder(enum.StrEnum):
    """Order of the records printed on stdout (``results.jsonl`` keeps arrival order)."""

    arrival = "arrival"
    path = "path"


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
    per_face: Annotated[
        bool,
        typer.Option("--per-face", help="With --format csv: one row per face, not per file."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for results.jsonl, heatmaps/, timelines/, thumbs/ and report.html "
            "(a new scan first removes what an earlier one wrote there). Without it nothing "
            "is written.",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the scan in --out: files recorded there with the same path, size, "
            "mtime and model are kept, the rest are scanned and appended.",
        ),
    ] = False,
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
    ignore_provenance: Annotated[
        bool,
        typer.Option(
            "--ignore-provenance",
            help="Report C2PA manifests and generator metadata, but let only the pixels "
            "decide the verdict.",
        ),
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local: this process; ray: a pool of Ray actors, each with its own detector "
            "(needs pip install 'forensics\\[ray]'; records arrive in any order).",
        ),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="--engine ray: the Ray cluster to join (e.g. auto, or head:6379); without "
            "it a local Ray instance is started. Inputs, --model and --out must then be at "
            "the same paths on every node.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="--engine ray: number of actors (default: one per CPU of the cluster, or "
            "per GPU with --device cuda).",
        ),
    ] = None,
    sort: Annotated[
        SortOrder,
        typer.Option(
            "--sort",
            help="path: print the records sorted by path at the end (results.jsonl stays in "
            "arrival order).",
        ),
    ] = SortOrder.arrival,
) -> None:
    """Scan photos, videos and folders for GAN-made or face-swapped faces.

    Every face is found (MTCNN), cropped and scored. A photo's score is its highest face
    score (no face: the whole image is scored, and the record says so). A video's faces are
    followed across frames sampled at --fps; its score is its most suspicious face track's
    (the mean of the track's top 25% face scores). Each input file gets one record;
    unreadable files get an error record and the scan goes on; other files are skipped.

    Each photo's provenance is read beside its pixels: a validly signed C2PA manifest, or
    generator settings left in the file, that declare AI generation make the verdict fake
    whatever the score (the record says verdict_source: provenance). Other findings
    (invalid manifests, editor or camera tags, JPEG tables) are listed as claims only.

    Exit code: 0 nothing flagged, 1 a file was flagged fake, 2 usage error, 3 some input
    could not be processed (wins over 1), 130 interrupted (Ctrl-C; with --out, report.html
    shows the files done so far and --resume continues).

    Examples:
      forensics scan photo.jpg

      forensics scan photos/ clips/ --out results/    (heatmaps + report.html)

      forensics scan photos/ clips/ --out results/ --resume    (after Ctrl-C or a crash)

      forensics scan folder/ --format jsonl --model det.safetensors > scores.jsonl

      forensics scan clip.mp4 --fps 4 --max-frames 200 --threshold 0.7

      forensics scan photos/ --out results/ --engine ray --workers 8 --sort path

    """
    if per_face and fmt is not OutputFormat.csv:
        fail("--per-face needs --format csv")
    if resume and out is None:
        fail("--resume needs --out: the folder of the scan to continue")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    if engine is Engine.local and (address is not None or workers is not None):
        fail("--address and --workers need --engine ray")
    engine_errors: tuple[type[Exception], ...] = ()
    if engine is Engine.ray:
        from rich.markup import escape

        try:
            from forensics.scan_ray import EngineError, import_ray

            import_ray()
        except ImportError as exc:
            fail(escape(str(exc)))
        engine_errors = (EngineError,)
    # FFmpeg (inside OpenCV) would print raw demuxer noise for every broken video; the
    # records already say what went wrong.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

    from forensics.scan_inputs import collect_inputs
    from forensics.scan_setup import ScanConfig

    files = collect_inputs(paths, exclude=out)
    if not files:
        fail("no files to scan")
    config = ScanConfig(
        fps=fps,
        max_frames=max_frames,
        max_faces=max_faces,
        batch_size=batch_size,
        threshold=threshold,
        provenance_rule=not ignore_provenance,
    )

    from forensics.records import ScanSummary
    from forensics.scan_resume import ResumeError, ScanRun

    summary = ScanSummary()
    root = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
    renderer = Renderer(fmt, per_face, root)
    renderer.by_path = sort is SortOrder.path
    run = None
    try:
        scanner = _make_scanner(model, device, precision, detect_side, config, out)
        if engine is Engine.ray:
            scanner = _ray_scanner(scanner, model, device, precision, detect_side, out, address,
                                   workers)  # fmt: skip
        renderer.branches = list(getattr(scanner.analyzer.detector.model, "branch_names", []))
        run = ScanRun(scanner, files, resume=resume)
        progress = make_progress()
        with progress:
            task = progress.add_task("scanning", total=len(files), status="")
            frames = progress.add_task("frames", total=None, visible=False, status="")
            if engine is Engine.local:  # a video's frames done / to sample, with an ETA
                scanner.on_frames = _frame_progress(progress, frames)

            def on_record(done: int, total: int, record) -> None:
                progress.update(task, completed=done, status=record.verdict or record.status)
                progress.update(frames, visible=False)

            for rec in run.records(on_record):
                summary.add(rec)
                renderer.add(rec.to_dict())
    except ResumeError as exc:
        fail(f"cannot resume: {exc}")
    except engine_errors as exc:
        fail(escape(str(exc)))
    except KeyboardInterrupt:
        renderer.close()
        _interrupted(out if run is not None else None, run.done if run else 0, len(files))
    renderer.close()

    report = None
    if out is not None:
        from forensics.report import write_report

        report = write_report(out, title=f"forensics scan ({summary.total} files)")
    v = summary.verdicts
    kept = f" ({run.resumed} already recorded)" if resume else ""
    err_console.print(
        f"{summary.total} files{kept}: fake {v.get('fake', 0)}, "
        f"uncertain {v.get('uncertain', 0)}, real {v.get('real', 0)}, "
        f"errors {summary.errors}, skipped {summary.skipped}"
        + (f"; report: {report}" if report is not None else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(summary.exit_code)


def _frame_progress(progress: Progress, task: TaskID) -> FrameFn:
    """A :data:`forensics.scan.FrameFn` that shows one video's frames on ``task``."""
    from rich.markup import escape

    from forensics.record_views import printable, truncate

    def on_frames(path: Path, done: int, total: int) -> None:
        if done == 0:  # a new video: start over, so the time estimate is this video's
            name = escape(truncate(printable(path.name), 32, middle=True))
            progress.reset(task, total=total, description=name, visible=True, status="frames")
        else:
            progress.update(task, completed=done, total=total)

    return on_frames


def _make_scanner(
    model: Path | None,
    device: str,
    precision: str,
    detect_side: int,
    config: ScanConfig,
    out: Path | None,
) -> Scanner:
    """Load the detector and MTCNN (a bad checkpoint or device exits 2); set up the scanner."""
    from forensics.analysis import Analyzer
    from forensics.checkpoint import CheckpointError
    from forensics.scan import Scanner
    from forensics.scan_setup import channels_last, make_face_detector
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
    analyzer = Analyzer(detector, faces, max_faces=config.max_faces)
    return Scanner(analyzer, config, out_dir=out)


def _ray_scanner(
    scanner: Scanner,
    model: Path | None,
    device: str,
    precision: str,
    detect_side: int,
    out: Path | None,
    address: str | None,
    workers: int | None,
) -> RayScanner:
    """Wrap the driver's checked scanner in a Ray actor pool that builds the same one."""
    from forensics.scan_ray import RayScanner, WorkerSpec

    spec = WorkerSpec(
        model=None if model is None else str(model.resolve()),
        device=device,
        precision=precision,
        detect_side=detect_side,
        config=scanner.config,
        out=None if out is None else str(out.resolve()),
        cwd=os.getcwd(),
    )
    return RayScanner(scanner, spec, address=address, workers=workers)


def _interrupted(out: Path | None, done: int, total: int) -> NoReturn:
    """After Ctrl-C: report what was done (``out``: the folder holds partial results); exit 130."""
    where = ""
    if out is not None:
        from forensics.report import RESULTS_NAME, write_report
        from forensics.scan_resume import drop_torn_tail

        if (out / RESULTS_NAME).is_file():
            drop_torn_tail(out / RESULTS_NAME)  # whole records only, even if cut mid-write
            write_report(out, title=f"forensics scan (interrupted: {done} of {total} files)")
        where = f", partial results in {out}"
    err_console.print(
        f"interrupted: {done} of {total} files scanned{where}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_INTERRUPTED)

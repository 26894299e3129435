"""``forensics verify-ids``: batch-check identity photos with reasons, reports and resume."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from forensics.cli.common import (
    DeviceOpt,
    ModelOpt,
    OutputFormat,
    console,
    err_console,
    fail,
    make_progress,
)


def verify_ids(
    source: Annotated[
        Path,
        typer.Argument(
            help="A folder of photos (recursive) or a CSV manifest: path[,applicant_id].",
            show_default=False,
        ),
    ],
    policy: Annotated[
        Path | None,
        typer.Option("--policy", "-p", help="TOML policy file (an example is in docs/)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for results.jsonl, summary.json, report.html and thumbs/ "
            "(enables resume). Without it nothing is written.",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How results are printed on stdout.")
    ] = OutputFormat.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1024, help="Photos per batch.")
    ] = 16,
    no_thumbnails: Annotated[
        bool,
        typer.Option("--no-thumbnails", help="Privacy: no previews on disk or in the report."),
    ] = False,
) -> None:
    """Batch-check identity photos: one real, usable face, not synthetic, not a re-submission.

    Each photo gets accept, review or reject with reason codes: unreadable, no_face,
    multiple_faces, face_too_small, blurry, bad_exposure, pose, synthetic, duplicate
    (metadata is a hint). Re-running with the same --out skips photos already recorded, so
    a killed batch simply resumes. Exit code: 0 all accepted, 1 any review or reject, 2 usage
    error.

    Examples:
      forensics verify-ids photos/ --out runs/batch1

      forensics verify-ids manifest.csv --policy policy.toml --out runs/b1 --format jsonl

      forensics verify-ids photos/ --out runs/b1 --no-thumbnails --model det.safetensors

    """
    from forensics.checkpoint import CheckpointError
    from forensics.verify.inputs import InputError, load_items
    from forensics.verify.policy import PolicyError, load_policy
    from forensics.verify.store import StoreError

    try:
        pol = load_policy(policy)
    except PolicyError as exc:
        fail(str(exc))
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    try:
        items = load_items(source, exclude=out)
    except InputError as exc:
        fail(str(exc))
    if not items:
        fail(
            f"no files found: {source} exists but is a folder with no files to check "
            "(hidden files and the --out folder are left out)"
            if source.is_dir()
            else f"no photos listed in {source}"
        )

    from forensics.analysis import Analyzer
    from forensics.faces import FaceDetector
    from forensics.scoring import Detector
    from forensics.verify.runner import run_verification

    try:
        detector = Detector.load(model, device=device)
    except CheckpointError as exc:
        fail(f"cannot load the detector: {exc}")
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    analyzer = Analyzer(detector, FaceDetector(device=detector.device))
    progress = make_progress()
    try:
        with progress:
            task = progress.add_task("verifying", total=len(items), status="")

            def on_progress(done: int, total: int, record: dict) -> None:
                progress.update(task, completed=done, status=record["decision"])

            result = run_verification(
                items,
                analyzer,
                pol,
                out_dir=out,
                batch_size=batch_size,
                thumbnails=not no_thumbnails,
                on_progress=on_progress,
            )
    except StoreError as exc:
        fail(str(exc))
    _render(result.records, fmt)
    d = result.summary["decisions"]
    err_console.print(
        f"{len(result.records)} photos ({result.resumed} already recorded): "
        f"accept {d['accept']}, review {d['review']}, reject {d['reject']}"
        + (f"; report: {result.files['report']}" if "report" in result.files else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(0 if result.all_accepted else 1)


_CSV_FIELDS = ["path", "applicant_id", "decision", "reasons", "hints", "synthetic_score"]


def _render(records: list[dict], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        console.print_json(json.dumps(records))
    elif fmt is OutputFormat.jsonl:
        for r in records:
            console.out(json.dumps(r, ensure_ascii=False), highlight=False)
    elif fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS + ["scores"], lineterminator="\n")
        writer.writeheader()
        for r in records:
            row = {k: r.get(k) for k in _CSV_FIELDS}
            row["reasons"] = ";".join(r.get("reasons", []))
            row["hints"] = ";".join(r.get("hints", []))
            row["scores"] = json.dumps(r.get("scores", {}), ensure_ascii=False)
            writer.writerow(row)
        console.out(buf.getvalue().rstrip("\n"), highlight=False)
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for col in ("photo", "applicant", "decision", "reasons", "synthetic"):
            table.add_column(col, overflow="fold")
        for r in records:
            syn = r.get("synthetic_score")
            table.add_row(
                Text(r["path"]),
                Text(r.get("applicant_id") or ""),
                f"[{_STYLE[r['decision']]}]{r['decision']}[/]",
                ", ".join(r.get("reasons", [])) or "-",  # fixed codes, no markup
                "-" if syn is None else f"{syn:.3f}",
            )
        console.print(table)


_STYLE = {"accept": "green", "review": "yellow", "reject": "bold red"}

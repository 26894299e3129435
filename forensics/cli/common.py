"""Shared CLI plumbing: consoles, output formats, errors on stderr, progress bars on stderr."""

from __future__ import annotations

import enum
import inspect
import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
"""Results go to stdout."""
err_console = Console(stderr=True)
"""Progress, warnings and errors go to stderr, so stdout stays parseable."""

EXIT_USAGE = 2

DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
"""``--device``: where models run (``auto`` picks CUDA when present)."""
PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="fp32 (exact), or bf16: about twice as fast on CPUs with native bfloat16 "
        "(AVX512-BF16/AMX) and on recent GPUs; logits differ in the second decimal."
    ),
]
"""``--precision``: the detector's arithmetic while scoring."""
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Detector checkpoint (default: the shipped model)."),
]
"""``--model``: a detector checkpoint; ``None`` means the shipped default."""
RealOpt = Annotated[
    list[Path] | None,
    typer.Option("--real", "-r", help="Folder of real photos (repeatable: --real A --real B)."),
]
"""``--real`` of ``detector train`` and ``detector eval``: folders of real photos."""
FakeOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--fake",
        "-f",
        help="Folder of fake photos (repeatable); `forensics gan sample` folders are read "
        "through their manifest.jsonl (generator family, real twin).",
    ),
]
"""``--fake`` of ``detector train`` and ``detector eval``: folders of fake photos."""


class OutputFormat(enum.StrEnum):
    """How results are printed on stdout."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Engine(enum.StrEnum):
    """Where ``scan`` and ``gan sample`` work: this process, or Ray workers (``forensics[ray]``)."""

    local = "local"
    ray = "ray"


def reflow_help(doc: str) -> str:
    """A command docstring made ready for ``--help`` at any terminal width.

    Prose paragraphs become one line each, so the terminal wraps them once instead of breaking
    every source line again; paragraphs with an indented line (examples, lists) are kept line
    by line.

    Args:
        doc: The docstring (indentation as written).

    Returns:
        The help text, paragraphs separated by one blank line.

    """
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    out = []
    for par in paragraphs:
        lines = par.splitlines()
        if par.startswith("Examples:") or any(line[:1].isspace() for line in lines):
            out.append(par)
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def reflow_commands(app: typer.Typer) -> None:
    """Apply :func:`reflow_help` to every command of ``app`` and of its sub-apps, in place."""
    for info in app.registered_commands:
        doc = info.help if info.help is not None else info.callback.__doc__
        if doc:
            info.help = reflow_help(doc)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_commands(group.typer_instance)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def make_progress(transient: bool = True) -> Progress:
    """A rich progress bar on stderr (hidden automatically when stderr is not a terminal)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def fmt_metric(value: float | None, digits: int = 4) -> str:
    """Format a metric with ``digits`` decimals, or ``n/a`` when it is undefined (``None``)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_summary(summary: dict, fmt: OutputFormat) -> None:
    """Print a flat summary dict on stdout as JSON, one JSON line, CSV or a two-column table."""
    if fmt is OutputFormat.json:
        console.print_json(json.dumps(summary, default=str))
        return
    if fmt is OutputFormat.jsonl:
        print(json.dumps(summary, default=str))
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

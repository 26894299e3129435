"""``forensics scan``: placeholder until the scanner lands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def scan(paths: Annotated[list[Path], typer.Argument(help="Files or folders.")]) -> None:
    """Scan photos, videos and folders for synthetic faces."""
    raise typer.Exit(2)

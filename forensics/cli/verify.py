"""``forensics verify-ids``: placeholder until verify-ids lands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def verify_ids(source: Annotated[Path, typer.Argument(help="Folder or CSV.")]) -> None:
    """Batch-check identity photos."""
    raise typer.Exit(2)

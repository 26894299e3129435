"""``forensics gan``: placeholder sub-app."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="gan commands.")


@app.command()
def train() -> None:
    """Train."""
    raise typer.Exit(2)

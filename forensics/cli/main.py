"""Entry point of the ``forensics`` command: the root Typer app and its sub-apps.

Heavy libraries (torch, OpenCV, MTCNN) are imported inside the commands, so ``--help`` and
argument errors answer at once.
"""

from __future__ import annotations

import typer

from forensics import __version__
from forensics.cli import detector, gan, scan, verify
from forensics.cli.common import reflow_commands

app = typer.Typer(
    name="forensics",
    help=(
        "Tell real faces from GAN-made and face-swapped ones, show where the evidence is, "
        "and retrain the detector from data the tool makes itself.\n\n"
        "Start with: forensics scan PATH..."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("scan", no_args_is_help=True)(scan.scan)
app.add_typer(gan.app, name="gan")
app.add_typer(detector.app, name="detector")
app.command("verify-ids", no_args_is_help=True)(verify.verify_ids)
reflow_commands(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forensics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Root options."""


def main() -> None:
    """Console-script entry point."""
    app()

"""How ``forensics scan`` prints its records on stdout: jsonl, json, csv or a table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer

from forensics.cli.common import OutputFormat, console


class Renderer:
    """Prints records as they come (jsonl, csv, json) or as one table at the end.

    Args:
        fmt: The output format.
        per_face: CSV only: one row per face.
        root: The one folder scanned: table paths are shown relative to it.

    """

    def __init__(self, fmt: OutputFormat, per_face: bool = False, root: Path | None = None) -> None:
        self.fmt = fmt
        self.per_face = per_face
        self.root = root
        self.branches: list[str] = []  # the detector's branch names, for CSV columns
        self.rows: list[list[str]] = []
        self.first = True
        self.by_path = False  # --sort path: hold the records, print them sorted on close
        self.held: list[dict] = []

    def add(self, rec: dict) -> None:
        """Print ``rec`` now, or hold it for :meth:`close` when sorting by path."""
        if self.by_path:
            self.held.append(rec)
        else:
            self._print(rec)

    def _print(self, rec: dict) -> None:
        from forensics.record_views import csv_fields, csv_rows, table_row

        if self.fmt is OutputFormat.jsonl:
            typer.echo(json.dumps(rec, ensure_ascii=False))
        elif self.fmt is OutputFormat.json:
            typer.echo(("[\n" if self.first else ",\n") + json.dumps(rec, ensure_ascii=False),
                       nl=False)  # fmt: skip
        elif self.fmt is OutputFormat.csv:
            buf = io.StringIO()
            fields = csv_fields(self.branches, self.per_face)
            writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
            if self.first:
                writer.writeheader()
            writer.writerows(csv_rows(rec, self.branches, self.per_face))
            typer.echo(buf.getvalue(), nl=False)
        else:
            self.rows.append(table_row(rec, self.root))
        self.first = False

    def close(self) -> None:
        """Print the held records, then close the JSON array or print the table."""
        held, self.held = sorted(self.held, key=lambda r: r["path"]), []
        for rec in held:
            self._print(rec)
        if self.fmt is OutputFormat.json:
            typer.echo("[]" if self.first else "\n]")
        elif self.fmt is OutputFormat.table:
            from rich.table import Table
            from rich.text import Text

            from forensics.record_views import TABLE_COLUMNS, fit_table

            header, *rows = fit_table([list(TABLE_COLUMNS), *self.rows], console.width)
            table = Table()
            for col in header:
                table.add_column(col, no_wrap=True, overflow="ellipsis")
            for r in rows:  # rich Text, so file names are never markup
                styles = ["", "", _STYLE.get(r[2], "dim"), "", "", "dim"]
                table.add_row(*(Text(c, style=s) for c, s in zip(r, styles, strict=True)))
            console.print(table)


_STYLE = {"fake": "bold red", "uncertain": "yellow", "real": "green", "error": "red"}

"""What to verify: a folder of photos or a CSV manifest ``path[,applicant_id]``."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from forensics.media import iter_inputs

PATH_HEADERS = frozenset({"path", "file", "filename", "photo", "image"})


class InputError(ValueError):
    """The folder or manifest cannot be used; the message says why."""


@dataclass(frozen=True)
class Item:
    """One photo to verify.

    Attributes:
        path: The photo's path as listed (the record key: a re-run skips recorded paths).
        applicant_id: The case system's id, when the manifest gives one.

    """

    path: str
    applicant_id: str | None = None


def load_items(source: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[Item]:
    """List the photos of a folder (recursive, sorted) or a CSV manifest.

    Hidden files (``.name``) and anything under ``exclude`` (the output folder) are left out
    of a folder listing. In a manifest, relative paths are taken relative to the manifest's
    folder; a first row naming a ``path`` column is a header (an ``applicant_id`` column is
    then found by name), otherwise the columns are ``path,applicant_id``; a path listed twice
    is verified once.

    Raises:
        InputError: Missing or unreadable source (a broken symlink included), unreadable or
            empty manifest.

    """
    src = Path(source)
    _check_exists(src)
    if src.is_dir():
        ex = Path(exclude).resolve() if exclude is not None else None
        items = []
        for p in iter_inputs([src]):
            if any(part.startswith(".") for part in p.relative_to(src).parts):
                continue
            if ex is not None and _is_under(p, ex):
                continue
            items.append(Item(str(p)))
        return items
    if src.suffix.lower() not in (".csv", ".txt"):
        raise InputError(f"{src} is neither a folder nor a CSV manifest (path[,applicant_id])")
    return _read_manifest(src)


def _check_exists(src: Path) -> None:
    """Raise :class:`InputError` unless ``src`` exists and can be looked at."""
    try:
        src.stat()
    except FileNotFoundError:
        if src.is_symlink():
            raise InputError(f"{src} is a broken symlink (its target does not exist)") from None
        raise InputError(f"{src} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {src}: {exc.strerror or exc}") from None


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _read_manifest(src: Path) -> list[Item]:
    try:
        with open(src, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise InputError(f"cannot read manifest {src}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"manifest {src} is not a UTF-8 CSV file: {exc}") from None
    path_col, id_col = 0, 1
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if set(header) & (PATH_HEADERS | {"applicant_id"}):
        rows.pop(0)
        cols = [i for i, c in enumerate(header) if c in PATH_HEADERS]
        if not cols:
            raise InputError(f"manifest {src}: the header has no 'path' column")
        path_col = cols[0]
        id_col = header.index("applicant_id") if "applicant_id" in header else -1
    if not rows:
        raise InputError(f"manifest {src} lists no photos")
    items: dict[str, Item] = {}
    for n, row in enumerate(rows, start=1):
        raw = row[path_col].strip() if len(row) > path_col else ""
        if not raw:
            raise InputError(f"manifest {src}: row {n} has no path")
        p = Path(raw)
        path = str(p if p.is_absolute() else src.parent / p)
        cell = row[id_col].strip() if 0 <= id_col < len(row) else ""
        app_id = cell or None
        items.setdefault(path, Item(path, app_id))
    return list(items.values())

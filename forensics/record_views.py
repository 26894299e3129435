"""Flat views of scan records: CSV rows and terminal-table cells, as pure functions.

They read record dicts (:meth:`forensics.records.ScanRecord.to_dict`, or lines of
``results.jsonl``) and return strings; the CLI only prints them.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from forensics.records import TRACK_RULE, display_path

FILE_FIELDS = [
    "path",
    "kind",
    "status",
    "verdict",
    "verdict_source",
    "score",
    "threshold",
    "aggregate",
    "n_faces",
    "whole_image",
    "n_frames",
    "width",
    "height",
    "duration_s",
    "error",
    "note",
    "provenance",
]
"""CSV columns about the file (repeated on every row of ``--per-face``)."""
FACE_FIELDS = ["x1", "y1", "x2", "y2", "face_score", "face_prob", "frame_index", "track"]
"""CSV columns about one face: its box, score, MTCNN probability and (videos) frame and track."""
CSV_FIELDS = FILE_FIELDS + FACE_FIELDS
"""Columns of ``--format csv`` before the ``branch_<name>`` ones (see :func:`csv_fields`)."""


def csv_fields(branches: Sequence[str] = (), per_face: bool = False) -> list[str]:
    """The CSV header: file columns, ``face`` (per-face only), face columns, branch columns.

    Args:
        branches: The detector's branch names (a fused detector's; none for a plain one).
        per_face: One row per face, with the face's index in the record's ``faces``.

    """
    face = ["face"] if per_face else []
    return FILE_FIELDS + face + FACE_FIELDS + [f"branch_{name}" for name in branches]


def csv_cell(value: Any) -> str:
    """One CSV cell: empty when missing, ``true``/``false`` for booleans, else plain text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def found_faces(record: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(index in faces, face)`` for each face MTCNN found (whole-image scores left out)."""
    if record.get("whole_image"):
        return []
    return [
        (i, face)
        for i, face in enumerate(record.get("faces") or [])
        if "face_prob" not in face or face["face_prob"] is not None  # None: the whole frame
    ]


def csv_rows(
    record: dict[str, Any], branches: Sequence[str] = (), per_face: bool = False
) -> list[dict[str, str]]:
    """Flat CSV rows for one record dict, keyed by :func:`csv_fields`.

    Faces are real faces only: a whole-image score (no face found) leaves the face columns
    empty; the file's ``score`` and ``whole_image`` say what was scored.

    Args:
        record: A record as :meth:`ScanRecord.to_dict` makes it (or a line of results.jsonl).
        branches: Branch names for the ``branch_<name>`` columns.
        per_face: One row per face (a file without faces still gets one row); otherwise one
            row per file holding its top-scoring face.

    """
    ok = record.get("status") == "ok"
    frames = record.get("frames")
    file_cells = {k: record.get(k) for k in FILE_FIELDS}
    file_cells.update(
        n_faces=record.get("n_faces") if ok else None,
        whole_image=record.get("whole_image") if ok else None,
        n_frames=len(frames) if frames is not None else None,
        provenance=" | ".join((record.get("provenance") or {}).get("claims") or []) or None,
    )
    faces = found_faces(record)
    if not per_face and faces:
        faces = [max(faces, key=lambda item: item[1]["score"])]
    rows = []
    for index, face in faces or [(None, {})]:
        row = dict(file_cells)
        if per_face:
            row["face"] = index
        box = face.get("box") or [None] * 4
        row.update(zip(("x1", "y1", "x2", "y2"), box, strict=True))
        row.update(
            face_score=face.get("score"),
            face_prob=face.get("face_prob"),
            frame_index=face.get("frame_index"),
            track=face.get("track"),
        )
        probs = face.get("branches") or {}
        row.update({f"branch_{name}": probs.get(name) for name in branches})
        rows.append({k: csv_cell(v) for k, v in row.items()})
    return rows


def csv_row(record: dict[str, Any], branches: Sequence[str] = ()) -> dict[str, str]:
    """The one CSV row of a record (its top-scoring face): see :func:`csv_rows`."""
    return csv_rows(record, branches)[0]


TABLE_COLUMNS = ("file", "kind", "verdict", "score", "faces", "note")
"""Columns of ``--format table``."""
ELLIPSIS = "\u2026"


def relative_path(path: str, root: str | os.PathLike | None) -> str:
    """``path`` relative to the scanned folder ``root`` (as given when outside it or no root)."""
    if root is None:
        return path
    try:
        rel = PurePath(path).relative_to(PurePath(display_path(root)))
    except ValueError:
        return path
    return str(rel) if rel.parts else path


def printable(text: str) -> str:
    """``text`` on one line: control and format characters become backslash escapes."""
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        else ch
        for ch in text
    )


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes (wide East Asian characters 2, combining marks 0)."""
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def truncate(text: str, width: int, middle: bool = False) -> str:
    """``text`` cut to ``width`` cells with an ellipsis at the end (or in the ``middle``)."""
    if cell_width(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    budget = width - 1
    head_budget = budget // 2 if middle else budget
    head = _take(text, head_budget)
    tail = _take(text[::-1], budget - cell_width(head))[::-1] if middle else ""
    return head + ELLIPSIS + tail


def _take(text: str, width: int) -> str:
    """The longest prefix of ``text`` that fits in ``width`` cells."""
    used = 0
    for i, ch in enumerate(text):
        used += _char_width(ch)
        if used > width:
            return text[:i]
    return text


def table_row(record: dict[str, Any], root: str | os.PathLike | None = None) -> list[str]:
    """The cells of a record's ``--format table`` row (see :data:`TABLE_COLUMNS`).

    Args:
        record: A record dict.
        root: The one folder that was scanned, to show paths relative to it.

    """
    ok = record["status"] == "ok"
    label = record["verdict"] if ok else record["status"]
    score = "-" if record["score"] is None else f"{record['score']:.3f}"
    if not ok:
        faces, note = "-", record["error"] or record.get("note") or ""
    elif record["whole_image"]:
        faces, note = "0", "no face: whole image scored"
    else:
        faces, note = str(record["n_faces"]), ""
    if record["kind"] == "video" and ok:
        how = "top-25% mean"
        if record.get("aggregate") == TRACK_RULE:
            n = len(record.get("tracks") or [])
            how = f"{n} face track{'' if n == 1 else 's'}, top track"
        note = f"{len(record['frames'])} frames, {how}" + (f"; {note}" if note else "")
    prov = record.get("provenance") or {}
    if prov.get("declared") or (prov.get("c2pa") or {}).get("present"):
        said = prov.get("declared") or prov["claims"][0]
        rule = "" if record.get("verdict_source") != "provenance" else "verdict by provenance: "
        note = f"{rule}{said}" + (f"; {note}" if note else "")
    cells = [relative_path(record["path"], root), record["kind"], label or "", score, faces, note]
    return [printable(c) for c in cells]


def fit_table(rows: list[list[str]], width: int, min_file: int = 12) -> list[list[str]]:
    """Rows truncated so the table fits ``width`` cells without wrapping.

    Only ``file`` (truncated in the middle, so the extension stays) and ``note`` (at the end)
    give way; ``note`` first, down to 16 cells, then ``file``, down to ``min_file``. The
    other columns keep their text.

    Args:
        rows: Cells per row (the header included), in :data:`TABLE_COLUMNS` order.
        width: Console width; a bordered table adds 3 cells per column plus 1.
        min_file: ``file`` is never cut below this.

    """
    room = width - 3 * len(TABLE_COLUMNS) - 1
    natural = [max(cell_width(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    left = room - sum(natural[1:-1])
    file_w, note_w = natural[0], natural[-1]
    if file_w + note_w > left:
        note_w = min(note_w, max(16, left - file_w))
        file_w = max(min_file, left - note_w)
        note_w = max(min(note_w, left - file_w), len(TABLE_COLUMNS[-1]))
    return [[truncate(r[0], file_w, middle=True), *r[1:-1], truncate(r[-1], note_w)] for r in rows]

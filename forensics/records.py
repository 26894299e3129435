"""The scan record contract: one JSON object per input file.

Scripts and later checks rely on these fields, so they only ever grow. Every record has
``path``, ``kind`` (``image``|``video``|``other``), ``status`` (``ok``|``error``|``skipped``),
``error`` (a message or ``null``), ``score``, ``verdict`` (``real``|``fake``|``uncertain`` or
``null``), ``faces`` (``[{box, score, heatmap, ...}]``), ``frames`` (videos:
``[{index, time_s, score, n_faces}]``, otherwise ``null``) and ``model`` (``{name, sha256}``),
plus the extras documented on :class:`ScanRecord` (e.g. videos' face ``tracks``). The flat
views of a record (CSV rows and table cells) are built here too, as pure functions; the CLI
only prints them.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import PurePath
from typing import Any

KINDS = ("image", "video", "other")
STATUSES = ("ok", "error", "skipped")

IMAGE_RULE = "max_face"
"""A photo's score is the highest face score (the whole image when no face is found)."""
VIDEO_RULE = "top25_mean"
"""A video's score is the mean of its top k frame scores, k = max(1, ceil(25% of frames)).

Videos use it when no face track may decide (no face found, or only short tracks)."""
TRACK_RULE = "top_track"
"""A video's score is its most suspicious face track's score: the mean of the track's top k
face scores, k = max(1, ceil(25% of its faces)); tracks with fewer than max(2, ceil(10% of
the sampled frames)) faces cannot decide alone (:mod:`forensics.tracks`)."""


def display_path(path: str | os.PathLike) -> str:
    """A path as printable UTF-8 text (undecodable bytes become backslash escapes)."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class FaceResult:
    """One scored face (or the whole image when no face was found).

    Attributes:
        box: ``[x1, y1, x2, y2]`` in pixels of the photo or frame.
        score: Calibrated probability that the face is synthetic.
        heatmap: Overlay PNG (path relative to ``--out``), or ``None`` without ``--out``.
        heatmap_raw: The model's raw patch-logit map as ``.npy`` (relative path) or ``None``.
        face_prob: MTCNN's face probability (``None`` for a whole-image score).
        frame_index: For videos, the frame this face was found in.
        branches: With a fused detector, each branch's calibrated probability by name (the
            face's ``score`` combines them); ``None`` otherwise.
        heatmap_source: What drew the evidence map, in words: the model (for a fused
            detector, the branch that scored the face highest) and how it read the crop,
            e.g. ``"face_swap branch (...): patch logits of patch_resnet (resnet18) on the
            whole 180-px crop resized to 128 px"``.
        crop: The scored crop, zoomed to a fixed side, as JPEG (relative path) or ``None``.
        heatmap_crop: ``crop`` with the evidence overlay (PNG, relative path) or ``None``.
        track: For videos, the id of the face track this face belongs to (see
            :class:`TrackResult`); ``None`` for photos and whole-frame scores.

    """

    box: list[float]
    score: float
    heatmap: str | None = None
    heatmap_raw: str | None = None
    face_prob: float | None = None
    frame_index: int | None = None
    branches: dict[str, float] | None = None
    heatmap_source: str | None = None
    crop: str | None = None
    heatmap_crop: str | None = None
    track: int | None = None


@dataclass
class FrameResult:
    """One sampled video frame: its score is the highest face score in it."""

    index: int
    time_s: float
    score: float
    n_faces: int


@dataclass
class TrackResult:
    """One face followed across a video's sampled frames (:mod:`forensics.tracks`).

    Attributes:
        id: Track id, 0, 1, ... in order of first appearance; faces carry it as ``track``.
        frames: Video frame indices (as in the timeline's ``index``) of the track's faces.
        score: The mean of the track's top k face scores, k = max(1, ceil(25% of its faces)).
        verdict: ``real``, ``fake`` or ``uncertain`` for ``score`` (same threshold and band
            as the file's).
        box_first: The face's box ``[x1, y1, x2, y2]`` in its first frame.
        box_last: The face's box in its last frame.
        short: Too few faces (under max(2, ceil(10% of the sampled frames))) to decide the
            video's score alone; it is reported all the same.

    """

    id: int
    frames: list[int]
    score: float
    verdict: str | None
    box_first: list[float]
    box_last: list[float]
    short: bool = False


@dataclass
class ScanRecord:
    """Everything the scan found about one input file.

    Attributes:
        path: The file as found (printable text).
        kind: ``image``, ``video`` or ``other``.
        status: ``ok``, ``error`` (see ``error``) or ``skipped`` (see ``note``).
        error: What went wrong, or ``None``.
        score: Calibrated probability that the file is synthetic (``None`` unless ok).
        verdict: ``real``, ``fake`` or ``uncertain`` (``None`` unless ok).
        faces: Scored faces; for videos, those of the most suspicious frames.
        frames: Video timeline (``None`` for photos).
        model: ``{"name", "sha256"}`` of the detector checkpoint.
        threshold: Decision threshold used (checkpoint's, or ``--threshold``).
        n_faces: Faces found (photos: in the photo; videos: the most in one frame).
        whole_image: No face was found, so the whole image was scored.
        aggregate: The rule that made ``score``: ``max_face`` (photos), ``top_track``
            (videos with a face track long enough to decide) or ``top25_mean`` (videos
            without one: the frame timeline's rule).
        width: Photo or frame width in pixels.
        height: Photo or frame height in pixels.
        duration_s: Video duration according to its container.
        timeline: Timeline PNG (relative to ``--out``) for videos.
        thumbnail: Small preview JPEG (relative to ``--out``).
        note: Why a file was skipped, or other remarks.
        size: The file's size in bytes when it was scanned (``None``: it could not be read).
        mtime: The file's modification time (seconds since the epoch) when it was scanned;
            with ``size``, ``path`` and the model's sha256 it tells ``--resume`` that a file
            is already done.
        verdict_source: ``pixels`` (the detector's score decided) or ``provenance`` (a valid
            C2PA manifest or embedded generator settings declare AI generation, whatever
            the score); ``None`` unless ok.
        band: ``[low, threshold]``: scores in ``[low, threshold)`` are ``uncertain`` (the
            checkpoint's uncertainty band; ``None`` without one or with ``--threshold``).
        provenance: Photos: ``{c2pa, metadata, claims, declared, errors}`` from
            :func:`forensics.provenance.read_provenance` (``None``: not read).
        tracks: Videos: the faces followed across frames, one :class:`TrackResult` each, by
            id (empty when no face was found; ``None`` for photos and for records written
            before tracks existed).

    """

    path: str
    kind: str
    status: str
    error: str | None = None
    score: float | None = None
    verdict: str | None = None
    faces: list[FaceResult] = field(default_factory=list)
    frames: list[FrameResult] | None = None
    model: dict[str, str | None] | None = None
    threshold: float | None = None
    n_faces: int = 0
    whole_image: bool = False
    aggregate: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    timeline: str | None = None
    thumbnail: str | None = None
    note: str | None = None
    size: int | None = None
    mtime: float | None = None
    verdict_source: str | None = None
    band: list[float] | None = None
    provenance: dict[str, Any] | None = None
    tracks: list[TrackResult] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanRecord:
        """Rebuild a record from its JSON dict (unknown keys, e.g. from newer versions, dropped)."""
        known = {f.name for f in fields(cls)}
        rec = cls(**{k: v for k, v in data.items() if k in known})
        face_keys = {f.name for f in fields(FaceResult)}
        rec.faces = [
            FaceResult(**{k: v for k, v in face.items() if k in face_keys})
            for face in data.get("faces") or []
        ]
        if data.get("frames") is not None:
            frame_keys = {f.name for f in fields(FrameResult)}
            rec.frames = [
                FrameResult(**{k: v for k, v in fr.items() if k in frame_keys})
                for fr in data["frames"]
            ]
        if data.get("tracks") is not None:
            track_keys = {f.name for f in fields(TrackResult)}
            rec.tracks = [
                TrackResult(**{k: v for k, v in t.items() if k in track_keys})
                for t in data["tracks"]
            ]
        return rec

    @property
    def flagged(self) -> bool:
        """Whether the verdict is ``fake``."""
        return self.status == "ok" and self.verdict == "fake"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the record contract)."""
        return asdict(self)

    def to_json(self) -> str:
        """One JSON line (UTF-8, no ASCII escaping)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)


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
FACE_FIELDS = ["x1", "y1", "x2", "y2", "face_score", "face_prob", "frame_index"]
"""CSV columns about one face: its box, score, MTCNN probability and (videos) frame."""
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


@dataclass
class ScanSummary:
    """Running counts over records, and the scan's exit code."""

    total: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)

    def add(self, record: ScanRecord) -> None:
        """Count one record."""
        self.total += 1
        if record.status == "ok":
            self.ok += 1
            key = record.verdict or "none"
            self.verdicts[key] = self.verdicts.get(key, 0) + 1
        elif record.status == "error":
            self.errors += 1
        else:
            self.skipped += 1

    @property
    def exit_code(self) -> int:
        """0: nothing flagged; 1: a file was flagged fake; 3: an input failed (wins over 1)."""
        if self.errors:
            return 3
        return 1 if self.verdicts.get("fake", 0) else 0

"""The scan record contract: one JSON object per input file.

Scripts and later checks rely on these fields, so they only ever grow. Every record has
``path``, ``kind`` (``image``|``video``|``other``), ``status`` (``ok``|``error``|``skipped``),
``error`` (a message or ``null``), ``score``, ``verdict`` (``real``|``fake``|``uncertain`` or
``null``), ``faces`` (``[{box, score, heatmap, ...}]``), ``frames`` (videos:
``[{index, time_s, score, n_faces}]``, otherwise ``null``) and ``model`` (``{name, sha256}``),
plus the extras documented on :class:`ScanRecord` (e.g. videos' face ``tracks``). The flat
views of a record (CSV rows and table cells) are in :mod:`forensics.record_views`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
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
        scores: Its face scores, one per entry of ``frames`` (``None`` in records written
            before they were kept).
        strip: With ``--out``, the report's face strip: up to 12 faces evenly spread over the
            track, its peak (highest face score, earliest on ties) always among them, each
            ``{"frame", "time_s", "score", "image"}`` (``image``: a zoomed crop JPEG relative
            to ``--out``), in frame order; ``None`` without ``--out`` or in older records.
        curve: With ``--out``, a PNG of ``scores`` over time with the threshold, the band
            and the peak marked (relative to ``--out``); ``None`` otherwise.

    """

    id: int
    frames: list[int]
    score: float
    verdict: str | None
    box_first: list[float]
    box_last: list[float]
    short: bool = False
    scores: list[float] | None = None
    strip: list[dict[str, Any]] | None = None
    curve: str | None = None


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
        sampling: Videos: ``{"fps", "max_frames"}``, how frames were sampled (a resumed scan
            rescans a video sampled otherwise; ``None`` for photos and older records).

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
    sampling: dict[str, float] | None = None

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

"""Face tracks in a video: link the faces of sampled frames, score each track over time.

Pure functions on boxes, small appearance vectors and scores (no model, no I/O), used by
:meth:`forensics.scan.Scanner._video`.

* **Linking** (:func:`link_faces`): frame by frame, every open track is paired greedily,
  best pair first, with the faces of the new frame. A pair needs box IoU >= ``min_iou``
  with the track's last box or with its prediction (the last box moved at the last
  velocity), or, for a face that moved further between samples, a centre within
  ``max_shift`` face sizes of either and appearance similarity >= ``min_similarity``; pairs
  rank by IoU + 2 x similarity, so two crossing faces keep their identities when they look
  different. The appearance cue (:func:`appearance`) is the correlation of 16x16 colour
  thumbnails of the face boxes. A track may skip ``max_gap`` sampled frames (a missed
  detection, a turned head); faces left unpaired start new tracks. Ids count from 0 in
  order of first appearance.
* **Scoring** (:func:`summarize_tracks`): a track's score is the video rule applied to its
  own faces, :func:`top_k_mean` (mean of its top k face scores, k = max(1, ceil(25%))).
* **Deciding** (:func:`decide`): tracks with fewer than :func:`min_track_faces` faces
  (``max(2, ceil(10% of the sampled frames))``, at most the number of sampled frames) are
  ``short``: they are reported but cannot decide alone. The video's score is the highest
  score among the other tracks; with none (no face, or only short tracks) the caller keeps
  the frame rule (the top-25% mean of the frame timeline, whole frames where no face was
  found). One face per frame, all in one track: the same score as the frame rule, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from forensics.records import TrackResult

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in pixels."""

APPEARANCE_SIDE = 16
"""Side of the colour thumbnail that :func:`appearance` compares."""
APPEARANCE_WEIGHT = 2.0
"""Pairs rank by IoU + this x similarity: a face's look outweighs a box that fits better."""


def top_k_mean(scores: Sequence[float], fraction: float = 0.25) -> float:
    """Mean of the ``max(1, ceil(fraction * n))`` highest scores (the video rule).

    Raises:
        ValueError: ``scores`` is empty.

    """
    if len(scores) == 0:
        raise ValueError("no scores to aggregate")
    k = max(1, math.ceil(fraction * len(scores)))
    return float(np.mean(sorted(scores, reverse=True)[:k]))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when either is empty)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def appearance(rgb: np.ndarray, box: Sequence[float], side: int = APPEARANCE_SIDE) -> np.ndarray:
    """A face's appearance: its box as a ``side`` x ``side`` colour thumbnail, zero-mean, unit-norm.

    The dot product of two of these is their correlation (see :func:`similarity`). Costs a
    resize of the box, so it is cheap next to detection.
    """
    import cv2

    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, max(x1 + 1, math.ceil(box[2]))), min(h, max(y1 + 1, math.ceil(box[3])))
    crop = rgb[y1:y2, x1:x2] if x1 < w and y1 < h else rgb
    thumb = cv2.resize(np.ascontiguousarray(crop), (side, side), interpolation=cv2.INTER_AREA)
    vec = thumb.astype(np.float32).reshape(-1, 3)
    vec = (vec - vec.mean(axis=0)).reshape(-1)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Correlation of two :func:`appearance` vectors, clipped to ``[0, 1]`` (0: one is missing)."""
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float(min(1.0, max(0.0, float(np.dot(a, b)))))


@dataclass(frozen=True)
class Observation:
    """One face in one sampled frame, as the linker sees it.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the frame.
        feature: Its :func:`appearance` vector, or ``None`` (then only boxes link it).
        score: Its calibrated score (for :func:`summarize_tracks`; linking ignores it).

    """

    box: Box
    feature: np.ndarray | None = None
    score: float = 0.0


@dataclass
class _Open:
    """A track while linking: where and how its face was last seen."""

    id: int
    step: int
    box: Box
    feature: np.ndarray | None
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per sampled frame

    def predict(self, step: int) -> Box:
        dx, dy = (v * (step - self.step) for v in self.velocity)
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def link_faces(
    frames: Sequence[Sequence[Observation]],
    max_gap: int = 2,
    min_iou: float = 0.2,
    min_similarity: float = 0.6,
    max_shift: float = 1.5,
) -> list[list[int]]:
    """Link faces across sampled frames into tracks (see the module's rules).

    Args:
        frames: The faces of each sampled frame, in time order.
        max_gap: A track may skip this many sampled frames and still continue.
        min_iou: Box IoU with the track's last or predicted box that links a face alone.
        min_similarity: Appearance similarity that links a face farther away than that...
        max_shift: ...when its centre is within this many face sizes of either box.

    Returns:
        For each frame, the track id of each of its faces (same order as ``frames``).

    """
    open_tracks: list[_Open] = []
    next_id = 0
    ids: list[list[int]] = []
    for step, faces in enumerate(frames):
        open_tracks = [t for t in open_tracks if step - t.step <= max_gap + 1]
        pairs: list[tuple[float, int, int]] = []
        for ti, track in enumerate(open_tracks):
            where = (track.box, track.predict(step))  # where it was, where it is heading
            size = max(track.box[2] - track.box[0], track.box[3] - track.box[1], 1.0)
            for fi, face in enumerate(faces):
                iou = max(box_iou(b, face.box) for b in where)
                sim = similarity(track.feature, face.feature)
                fx, fy = _centre(face.box)
                shift = min(math.hypot(fx - cx, fy - cy) for cx, cy in map(_centre, where))
                if iou >= min_iou or (shift <= max_shift * size and sim >= min_similarity):
                    pairs.append((iou + APPEARANCE_WEIGHT * sim, ti, fi))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        frame_ids: list[int | None] = [None] * len(faces)
        taken: set[int] = set()
        for _aff, ti, fi in pairs:
            if ti in taken or frame_ids[fi] is not None:
                continue
            taken.add(ti)
            track, face = open_tracks[ti], faces[fi]
            gap = step - track.step
            (ox, oy), (nx, ny) = _centre(track.box), _centre(face.box)
            track.velocity = ((nx - ox) / gap, (ny - oy) / gap)
            track.step, track.box = step, tuple(face.box)
            track.feature = face.feature if face.feature is not None else track.feature
            frame_ids[fi] = track.id
        for fi, face in enumerate(faces):
            if frame_ids[fi] is None:
                open_tracks.append(_Open(next_id, step, tuple(face.box), face.feature))
                frame_ids[fi] = next_id
                next_id += 1
        ids.append([int(i) for i in frame_ids if i is not None])
    return ids


@dataclass(frozen=True)
class TrackSummary:
    """One face track, scored over time.

    Attributes:
        id: Track id (0, 1, ... in order of first appearance).
        steps: Positions of its faces among the sampled frames.
        scores: Its face scores, one per step.
        boxes: Its face boxes, one per step.
        score: :func:`top_k_mean` of ``scores``.
        short: Fewer faces than :func:`min_track_faces`: it cannot decide the video alone.

    """

    id: int
    steps: list[int]
    scores: list[float]
    boxes: list[Box]
    score: float
    short: bool


def min_track_faces(n_frames: int, fraction: float = 0.10, floor: int = 2) -> int:
    """Faces a track needs to decide a video: ``max(floor, ceil(fraction * n))``, at most ``n``."""
    return max(1, min(n_frames, max(floor, math.ceil(fraction * n_frames))))


def summarize_tracks(
    frames: Sequence[Sequence[Observation]], ids: Sequence[Sequence[int]]
) -> list[TrackSummary]:
    """Group faces by track id and score each track; sorted by id.

    Args:
        frames: The faces of each sampled frame, with their scores.
        ids: Per sampled frame, the track id of each face (:func:`link_faces`).

    """
    grouped: dict[int, tuple[list[int], list[float], list[Box]]] = {}
    for step, (faces, fids) in enumerate(zip(frames, ids, strict=True)):
        for face, tid in zip(faces, fids, strict=True):
            st, ss, bs = grouped.setdefault(tid, ([], [], []))
            st.append(step)
            ss.append(float(face.score))
            bs.append(tuple(face.box))
    need = min_track_faces(len(frames))
    return [
        TrackSummary(tid, st, ss, bs, top_k_mean(ss), short=len(st) < need)
        for tid, (st, ss, bs) in sorted(grouped.items())
    ]


def decide(tracks: Sequence[TrackSummary]) -> TrackSummary | None:
    """The most suspicious track that may decide (not ``short``); ``None`` when there is none.

    Ties go to the earlier track.
    """
    long = [t for t in tracks if not t.short]
    return max(long, key=lambda t: (t.score, -t.id)) if long else None


def track_faces(
    frames: Sequence[Sequence[Observation]],
) -> tuple[list[list[int]], list[TrackSummary], TrackSummary | None]:
    """:func:`link_faces`, :func:`summarize_tracks` and :func:`decide` with their defaults.

    Returns:
        ``(ids, tracks, decider)``: each face's track id per frame, the scored tracks, and
        the track that decides the video (``None``: the frame rule decides).

    """
    ids = link_faces(frames)
    tracks = summarize_tracks(frames, ids)
    return ids, tracks, decide(tracks)


def track_results(
    tracks: Sequence[TrackSummary], frame_indices: Sequence[int], verdict: Callable[[float], str]
) -> list[TrackResult]:
    """The record's view of the tracks (``ScanRecord.tracks``), boxes rounded to 0.1 px.

    Args:
        tracks: From :func:`summarize_tracks`.
        frame_indices: The video frame index of each sampled frame (step).
        verdict: Maps a score to ``real``/``fake``/``uncertain`` (the scanner's rule).

    """

    def box(b: Box) -> list[float]:
        return [round(float(v), 1) for v in b]

    return [
        TrackResult(
            id=t.id,
            frames=[int(frame_indices[i]) for i in t.steps],
            score=float(t.score),
            verdict=verdict(t.score),
            box_first=box(t.boxes[0]),
            box_last=box(t.boxes[-1]),
            short=t.short,
            scores=[float(s) for s in t.scores],
        )
        for t in tracks
    ]


def peak_step(scores: Sequence[float]) -> int:
    """Position of a track's peak: its highest face score, the earliest on ties.

    Raises:
        ValueError: ``scores`` is empty.

    """
    if len(scores) == 0:
        raise ValueError("an empty track has no peak")
    return max(range(len(scores)), key=lambda i: (float(scores[i]), -i))


def strip_steps(n: int, peak: int, limit: int = 12) -> list[int]:
    """Which of a track's ``n`` faces its face strip shows: all, or ``limit`` spread evenly.

    Long tracks are thinned evenly from the first face to the last; the ``peak`` is always
    kept (it replaces the nearest evenly picked face when it was not picked).

    Args:
        n: The track's faces.
        peak: Position of its peak (:func:`peak_step`), ``0 <= peak < n``.
        limit: At most this many faces (at least 1).

    Returns:
        Sorted, distinct positions in ``range(n)``; ``min(n, limit)`` of them, ``peak`` among them.

    """
    limit = max(1, int(limit))
    if n <= limit:
        return list(range(n))
    picked = sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})
    if peak not in picked:
        nearest = min(picked, key=lambda s: (abs(s - peak), s))
        picked[picked.index(nearest)] = peak
    return sorted(picked)

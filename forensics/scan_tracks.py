"""A video's face strips and track score curves, written at scan time for the report.

While it samples a video, the scanner keeps a small zoomed copy of every face it finds
(:func:`strip_crops`: at most ``max_frames`` x ``max_faces`` crops of
:data:`~forensics.report.STRIP_SIDE` px, about 28 MB at the defaults). Once the faces are
linked into tracks, :func:`write_track_views` saves each track's face strip (up to
:data:`STRIP_LIMIT` faces spread evenly over it, its peak always among them) and its score
curve, and stores their paths in the track's record, so the report never decodes the video.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from forensics.tracks import peak_step, strip_steps

if TYPE_CHECKING:
    from forensics.records import FrameResult, TrackResult
    from forensics.report import Artifacts

STRIP_LIMIT = 12
"""At most this many faces in a track's strip."""


def strip_crops(
    rgb: np.ndarray, boxes: Sequence[Sequence[float]], margin: float
) -> list[np.ndarray]:
    """Zoomed copies of the faces of one frame, cut like the scored crops.

    Args:
        rgb: The frame (RGB ``uint8``, not modified).
        boxes: The faces' ``(x1, y1, x2, y2)`` boxes.
        margin: The detector's crop margin (:func:`forensics.faces.square_box`).

    Returns:
        One RGB ``uint8`` crop per box, its longer side :data:`~forensics.report.STRIP_SIDE`.

    """
    from forensics.faces import square_box
    from forensics.heatmaps import zoom_crop
    from forensics.report import STRIP_SIDE

    h, w = rgb.shape[:2]
    return [zoom_crop(rgb, square_box(box, margin, w, h), STRIP_SIDE) for box in boxes]


def write_track_views(
    artifacts: Artifacts,
    stem: str,
    tracks: Sequence[TrackResult],
    frames: Sequence[FrameResult],
    ids: Sequence[Sequence[int]],
    crops: Sequence[Sequence[np.ndarray]],
    threshold: float,
    band_low: float | None = None,
    limit: int = STRIP_LIMIT,
) -> None:
    """Write each track's face strip and score curve; fill in its ``strip`` and ``curve``.

    Args:
        artifacts: Where pictures go (``--out``).
        stem: The video's file stem (:func:`forensics.report.artifact_stem`).
        tracks: The record's tracks, with ``frames`` and ``scores`` (updated in place).
        frames: The video's timeline, one entry per sampled frame.
        ids: Per sampled frame, the track id of each of its faces.
        crops: Per sampled frame, :func:`strip_crops` of its faces (same order as ``ids``).
        threshold: Decision threshold (drawn on the curve).
        band_low: Start of the uncertainty band (shaded on the curve), or ``None``.
        limit: At most this many faces per strip.

    """
    step_of = {fr.index: step for step, fr in enumerate(frames)}
    for track in tracks:
        if not track.frames or not track.scores:
            continue
        steps = [step_of[f] for f in track.frames]
        times = [float(frames[s].time_s) for s in steps]
        strip = []
        for i in strip_steps(len(steps), peak_step(track.scores), limit):
            step, frame = steps[i], track.frames[i]
            crop = crops[step][list(ids[step]).index(track.id)]
            image = artifacts.strip_face(f"{stem}_t{track.id}_f{frame}", crop)
            strip.append(
                {"frame": frame, "time_s": times[i], "score": track.scores[i], "image": image}
            )
        track.strip = strip
        track.curve = artifacts.track_curve(
            f"{stem}_t{track.id}", times, track.scores, threshold, band_low, f"track {track.id}"
        )

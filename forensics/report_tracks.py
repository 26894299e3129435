"""A video's face tracks in the scan report: a line each, its face strip and its score curve.

Each track gets a line (faces, frames, score, verdict), where its score peaks (the highest
face score, earliest on ties: :func:`forensics.tracks.peak_step`), then, for records scanned
with ``--out``, its face strip (zoomed faces spread evenly over the track, each with its time,
frame and score; the peak's outlined) beside its score curve, with the threshold, the band and
the peak marked. The pictures are written at scan time (:mod:`forensics.scan_tracks`); older
records, without them, show the lines alone. Functions here return strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forensics.html import esc, fmt3
from forensics.report_faces import img_link
from forensics.tracks import peak_step

TRACK_STYLE = """
.tracks ul{padding-left:1.2rem;margin:.2rem 0}.track{margin-bottom:.5rem}
.track-peak{font-size:.85em;color:#555}
.track-views{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:flex-start;margin-top:.2rem}
.strip{display:flex;gap:.2rem;overflow-x:auto;max-width:100%}.strip figure{margin:0;flex:none}
.strip img{width:64px;height:64px;object-fit:contain;background:#eee;border-radius:3px;
border:2px solid transparent}.strip .peak img{border-color:#b00020}
.strip figcaption{font-size:.7em;color:#555;text-align:center;line-height:1.2}
.strip .peak figcaption{color:#b00020;font-weight:600}
.track-curve img{max-height:170px}
"""
"""CSS for :func:`tracks_html`."""


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN: unknown


def _frame_times(rec: Mapping[str, Any]) -> dict[Any, Any]:
    frames = [fr for fr in rec.get("frames") or [] if isinstance(fr, Mapping)]
    return {fr.get("index"): fr.get("time_s") for fr in frames}


def track_peak(
    track: Mapping[str, Any], times: Mapping[Any, Any] | None = None
) -> dict[str, Any] | None:
    """Where a track's score peaks: ``{"frame", "time_s", "score"}``, or ``None`` when unknown.

    From the track's ``scores`` (one per entry of ``frames``); records without them use the
    scores of its strip. ``time_s`` comes from ``times`` (frame index to time) or the strip,
    and is ``None`` when neither has it.
    """
    strip = [s for s in track.get("strip") or [] if isinstance(s, Mapping)]
    frames, scores = track.get("frames") or [], track.get("scores") or []
    points = list(zip(frames, scores, strict=True)) if len(frames) == len(scores) else []
    if not points:
        points = [(s.get("frame"), s.get("score")) for s in strip]
    points = [(f, v) for f, v in points if isinstance(f, int) and _number(v) is not None]
    if not points:
        return None
    frame, score = points[peak_step([float(v) for _, v in points])]
    time_s = (times or {}).get(frame)
    if time_s is None:
        time_s = next((s.get("time_s") for s in strip if s.get("frame") == frame), None)
    return {"frame": frame, "time_s": _number(time_s), "score": float(score)}


def _where(frame: Any, time_s: float | None) -> str:
    return f"{time_s:.1f} s · frame {frame}" if time_s is not None else f"frame {frame}"


def strip_html(strip: Sequence[Mapping[str, Any]], peak_frame: Any, label: str) -> str:
    """A track's face strip: one zoomed face per entry, in order, the peak's outlined.

    Args:
        strip: The track's ``strip`` entries (``{"frame", "time_s", "score", "image"}``).
        peak_frame: Frame index of the track's peak (its face gets class ``peak``).
        label: What the strip shows, for screen readers (escaped here).

    Returns:
        A ``<div class='strip'>`` (empty string without entries).

    """
    shown = []
    for s in strip:
        if not isinstance(s, Mapping) or not s.get("image"):
            continue
        frame, score = s.get("frame"), fmt3(s.get("score"))
        peak = frame == peak_frame
        where = _where(frame, _number(s.get("time_s")))
        alt = f"{label}, {where}, score {score}{', peak' if peak else ''}"
        shown.append(
            f"<figure class='thumb{' peak' if peak else ''}' data-frame='{esc(str(frame))}'>"
            f"{img_link(str(s['image']), alt)}<figcaption>{esc(where)}<br>"
            f"{'peak ' if peak else ''}{score}</figcaption></figure>"
        )
    if not shown:
        return ""
    return f"<div class='strip' role='group' aria-label='{esc(label)}'>{''.join(shown)}</div>"


def track_html(track: Mapping[str, Any], times: Mapping[Any, Any] | None = None) -> str:
    """One track: its line, where it peaks, its face strip and its score curve.

    Args:
        track: The track as stored in the record (``TrackResult`` fields; ``scores``,
            ``strip`` and ``curve`` are optional).
        times: The video's frame index to time (seconds), from its timeline.

    Returns:
        An ``<li class='track'>``.

    """
    tid = esc(str(track.get("id")))
    frames = [f for f in track.get("frames") or [] if isinstance(f, int)]
    n = len(frames)
    span = f", frames {frames[0]}–{frames[-1]}" if frames else ""
    short = " · too short to decide alone" if track.get("short") else ""
    verdict = str(track.get("verdict") or "")
    parts = [
        f"track {tid}: {n} face{'' if n == 1 else 's'}{esc(span)}, "
        f"score <b>{fmt3(track.get('score'))}</b> <span class='{esc(verdict)}'>{esc(verdict)}"
        f"</span>{short}"
    ]
    peak = track_peak(track, times)
    if peak is not None:
        parts.append(
            f"<div class='track-peak'>peaks at {esc(_where(peak['frame'], peak['time_s']))}: "
            f"<b>{fmt3(peak['score'])}</b></div>"
        )
    strip = strip_html(
        track.get("strip") or [], None if peak is None else peak["frame"], f"track {tid} faces"
    )
    curve = img_link(track.get("curve"), f"track {track.get('id')} face scores over time")
    if strip or curve:
        curve = f"<div class='track-curve'>{curve}</div>" if curve else ""
        parts.append(f"<div class='track-views'>{strip}{curve}</div>")
    return f"<li class='track' data-track='{tid}'>{''.join(parts)}</li>"


def tracks_html(rec: Mapping[str, Any]) -> str:
    """A video's face tracks (empty for photos and records without tracks)."""
    tracks = [t for t in rec.get("tracks") or [] if isinstance(t, Mapping)]
    if not tracks:
        return ""
    times = _frame_times(rec)
    items = "".join(track_html(t, times) for t in tracks)
    strips = any(t.get("strip") for t in tracks)
    note = "; each: its faces over time, the peak outlined, and its score curve" if strips else ""
    return (
        "<div class='tracks'>face tracks (the video's score is its most suspicious track's)"
        f"{note}:<ul>{items}</ul></div>"
    )

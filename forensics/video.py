"""Video I/O: probing, sampling and decoding video frames, and writing videos, with OpenCV.

Every frame leaves this module as an RGB ``uint8`` array of shape ``(H, W, 3)``; OpenCV's BGR
order is converted here, as :mod:`forensics.media` does for still images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.media import MediaError


@dataclass(frozen=True)
class VideoFrame:
    """One decoded video frame: its index in the stream, its time and its RGB pixels."""

    index: int
    time_s: float
    rgb: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about itself."""

    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        """Duration in seconds (0 when unknown)."""
        return self.frame_count / self.fps if self.fps > 0 and self.frame_count > 0 else 0.0


def _open_video(path: str | os.PathLike):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError("cannot open video (unsupported codec, corrupt or not a video)")
    return cap


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's fps, frame count and size without decoding frames."""
    import cv2

    cap = _open_video(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return VideoInfo(
            fps=fps if math.isfinite(fps) and fps > 0 else 0.0,
            frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        cap.release()


def sample_frame_indices(
    frame_count: int, fps: float, per_second: float, max_frames: int
) -> list[int]:
    """Pick frame indices at ``per_second`` frames per second, evenly thinned to ``max_frames``.

    Pure function: ``sample_frame_indices(300, 30, 2, 64)`` gives every 15th frame.
    """
    if frame_count <= 0 or max_frames <= 0:
        return []
    step = max(1.0, fps / per_second) if fps > 0 and per_second > 0 else 1.0
    idx = np.arange(0.0, frame_count, step).astype(int)
    if idx.size > max_frames:
        idx = idx[np.linspace(0, idx.size - 1, max_frames).round().astype(int)]
    return sorted({int(i) for i in idx})


def iter_video_frames(
    path: str | os.PathLike, per_second: float = 2.0, max_frames: int = 64
) -> Iterator[VideoFrame]:
    """Decode frames sampled at ``per_second`` (at most ``max_frames``) as RGB.

    Frames between samples are skipped with ``grab()`` (no colour conversion), so memory
    stays bounded by one frame.

    Raises:
        MediaError: The video cannot be opened or holds no decodable frame.

    """
    import cv2

    info = probe_video(path)
    wanted = sample_frame_indices(info.frame_count, info.fps, per_second, max_frames)
    if not wanted and info.frame_count <= 0:
        wanted = list(range(max_frames))  # unknown length: take the first frames
    fps = info.fps or 25.0
    cap = _open_video(path)
    yielded = 0
    try:
        pos = 0
        targets = iter(wanted)
        target = next(targets, None)
        while target is not None:
            if not cap.grab():
                break
            if pos == target:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yielded += 1
                    yield VideoFrame(index=pos, time_s=pos / fps, rgb=rgb)
                target = next(targets, None)
            pos += 1
    finally:
        cap.release()
    if yielded == 0:
        raise MediaError("video has no decodable frames")


def write_video(
    path: str | os.PathLike, frames: Sequence[np.ndarray] | Iterable[np.ndarray], fps: float = 25.0
) -> Path:
    """Write RGB frames to an ``.mp4`` (mp4v) or ``.avi`` (MJPG) file with OpenCV."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = None
    try:
        for rgb in frames:
            if writer is None:
                h, w = rgb.shape[:2]
                writer = cv2.VideoWriter(str(path), fourcc, float(fps), (w, h))
                if not writer.isOpened():
                    raise MediaError(f"cannot open a video writer for {path}")
            writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise MediaError("no frames to write")
    return path

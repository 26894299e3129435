"""Face crops prepared once, with exactly the scanner's path, and cached losslessly.

Every training photo goes through the scanner's own MTCNN set-up
(:func:`forensics.scan_setup.make_face_detector`) and :func:`forensics.faces.crop_face` with the
model's crop margin; a photo without a face (or too small to hold one) is used whole, as
:class:`forensics.analysis.Analyzer` and ``forensics scan`` do. The crop is stored as PNG
(lossless, so the cache adds no artefact of its own) under ``<run>/crops/``, indexed by the
source file's path, size and modification time, so re-runs and ``--resume`` skip work done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.checkpoint import atomic_write_bytes
from forensics.faces import Face, FaceDetector, crop_face, square_box
from forensics.media import MediaError, load_image, save_image, shrink_to
from forensics.scan_setup import make_face_detector

from .data import Sample

ProgressFn = Callable[[int, int], None]
INDEX = "index.json"


@dataclass(frozen=True)
class CachedCrop:
    """A sample with its cached crop.

    Attributes:
        sample: The photo it came from.
        crop_path: The PNG crop.
        face: Whether MTCNN found a face (``False``: the whole photo was used).
        landmarks: The face's five MTCNN landmarks in the cached crop's pixels (``None``
            without a face, or for entries cached before landmarks were stored).

    """

    sample: Sample
    crop_path: str
    face: bool
    landmarks: tuple[tuple[float, float], ...] | None = None


def _lm(entry: dict) -> tuple[tuple[float, float], ...] | None:
    points = entry.get("landmarks")
    return tuple((float(x), float(y)) for x, y in points) if points else None


def detect_like_scan(face_detector: FaceDetector, images: Sequence[np.ndarray]) -> list[list]:
    """Faces per image exactly as ``forensics scan`` finds them (tiny images skip MTCNN)."""
    big = [i for i, im in enumerate(images) if min(im.shape[:2]) >= face_detector.min_face_px]
    found = face_detector.detect_many([images[i] for i in big]) if big else []
    out: list[list] = [[] for _ in images]
    for i, faces in zip(big, found, strict=True):
        out[i] = faces
    return out


def crop_landmarks(
    face: Face, margin: float, shape: tuple[int, ...], cached_side: int
) -> tuple[tuple[float, float], ...]:
    """A face's landmarks moved into its crop (``crop_face``) and scaled to the cached side."""
    h, w = shape[:2]
    x1, y1, x2, y2 = square_box(face.box, margin, w, h)
    scale = cached_side / max(1, x2 - x1)
    return tuple(((x - x1) * scale, (y - y1) * scale) for x, y in face.landmarks)


def _file_id(path: str) -> str:
    st = os.stat(path)
    return f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"


def prepare_crops(
    samples: Sequence[Sample],
    cache_dir: str | os.PathLike,
    margin: float,
    cache_side: int = 0,
    face_detector: FaceDetector | None = None,
    batch: int = 32,
    on_progress: ProgressFn | None = None,
    need_landmarks: bool = False,
) -> tuple[list[CachedCrop], list[tuple[str, str]]]:
    """Crop the most confident face of every sample (once) and cache it as PNG.

    Args:
        samples: Photos to prepare.
        cache_dir: Folder of the PNG crops and their ``index.json``.
        margin: Crop margin of the model's :class:`forensics.preprocess.Preprocess`.
        cache_side: Shrink cached crops larger than this (0: keep native size).
        face_detector: MTCNN facade (the scanner's set-up on CPU when ``None`` and needed).
        batch: Photos per MTCNN call (same-sized photos are batched together).
        on_progress: Called with ``(done, total)``.
        need_landmarks: Cut again the cached crops stored before landmarks were kept.

    Returns:
        ``(crops, errors)``: crops in the order of ``samples`` (unreadable files skipped) and
        ``(path, reason)`` for each skipped file.

    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    index_file = cache / INDEX
    index: dict[str, dict] = json.loads(index_file.read_text()) if index_file.is_file() else {}
    params = {"margin": margin, "cache_side": cache_side}
    out: dict[int, CachedCrop] = {}
    errors: list[tuple[str, str]] = []
    todo: list[tuple[int, str]] = []
    for i, s in enumerate(samples):
        try:
            fid = _file_id(s.path)
        except OSError as exc:
            errors.append((s.path, exc.strerror or str(exc)))
            continue
        hit = index.get(fid)
        stale = need_landmarks and hit is not None and "landmarks" not in hit
        if hit and not stale and hit.get("params") == params and (cache / hit["crop"]).is_file():
            out[i] = CachedCrop(s, str(cache / hit["crop"]), bool(hit["face"]), _lm(hit))
        else:
            todo.append((i, fid))
    total, done = len(samples), len(samples) - len(todo)
    if on_progress:
        on_progress(done, total)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        images: list[np.ndarray] = []
        kept: list[tuple[int, str]] = []
        for i, fid in chunk:
            try:
                images.append(load_image(samples[i].path))
                kept.append((i, fid))
            except MediaError as exc:
                errors.append((samples[i].path, str(exc)))
        if images:
            face_detector = face_detector or make_face_detector("cpu")
            detections = detect_like_scan(face_detector, images)
            for (i, fid), rgb, faces in zip(kept, images, detections, strict=True):
                crop = crop_face(rgb, faces[0].box, margin) if faces else rgb
                name = hashlib.sha1(fid.encode()).hexdigest()[:20] + ".png"
                cached = shrink_to(crop, cache_side)
                save_image(cache / name, cached)
                lm = crop_landmarks(faces[0], margin, rgb.shape, cached.shape[1]) if faces else None
                index[fid] = {"crop": name, "face": bool(faces), "params": params, "landmarks": lm}
                out[i] = CachedCrop(samples[i], str(cache / name), bool(faces), lm)
        done += len(chunk)
        if on_progress:
            on_progress(done, total)
        if start // batch % 20 == 19:
            atomic_write_bytes(index_file, json.dumps(index).encode())
    atomic_write_bytes(index_file, json.dumps(index).encode())
    return [out[i] for i in sorted(out)], errors

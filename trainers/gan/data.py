"""Real faces for GAN training: find, crop (when needed), resize and cache them.

Files that are already face crops (such as UTKFace's 200 px aligned crops) are only resized.
Other photos are aligned and cropped with MTCNN. Unreadable files, and photos without a face,
are reported and skipped; one bad file never stops a run. The result is a ``uint8`` array
``(N, size, size, 3)`` that can be cached as ``.npy`` in the run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensics.media import MediaError, iter_inputs, load_image, media_kind, resize_rgb

ProgressFn = Callable[[int, int], None]


@dataclass
class FaceData:
    """Real face images ready for training.

    Attributes:
        images: ``(N, size, size, 3)`` RGB uint8.
        files: Source file of each image (same order).
        skipped: ``(file, reason)`` for each file that was left out.
        mode: ``none`` (files were crops, only resized) or ``mtcnn`` (detected and aligned).

    """

    images: np.ndarray
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    mode: str = "none"


def list_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """All image files under ``paths`` (recursive, sorted).

    Raises:
        ValueError: A path does not exist or holds no image.

    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise ValueError(f"data path not found: {p}")
    files = [f for f in iter_inputs(paths) if media_kind(f) == "image"]
    if not files:
        raise ValueError(f"no images found in {', '.join(map(str, paths))}")
    return files


def looks_like_crops(images: Sequence[np.ndarray], detector, min_share: float = 0.4) -> bool:
    """Whether photos are already face crops: square-ish, with one face spanning much of them.

    Args:
        images: A few RGB photos from the data set.
        detector: A :class:`forensics.faces.FaceDetector`.
        min_share: A face box must be at least this share of the photo's width.

    """
    votes = 0
    for rgb in images:
        h, w = rgb.shape[:2]
        if not 0.8 <= w / h <= 1.25:
            continue
        faces = detector.detect(rgb)
        if faces and faces[0].width >= min_share * w:
            votes += 1
    return votes * 2 > len(images)


def _cache_key(files: Sequence[Path], size: int, crop: str) -> str:
    digest = hashlib.sha256(f"{size}|{crop}".encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


def load_faces(
    paths: Iterable[str | os.PathLike],
    size: int,
    crop: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    max_images: int = 0,
    device: str | None = None,
    on_progress: ProgressFn | None = None,
) -> FaceData:
    """Load real face photos as a ``(N, size, size, 3)`` uint8 array.

    Args:
        paths: Folders or files of photos.
        size: Output side in pixels.
        crop: ``auto`` (decide from a sample of files), ``none`` (files are crops: just
            resize) or ``mtcnn`` (detect, align and crop every photo).
        cache_dir: If given, the array is cached there as ``faces_<size>.npy`` (reused while
            the file list, sizes and modification times are unchanged).
        max_images: Keep at most this many files (evenly spread; 0 = all).
        device: Device for MTCNN.
        on_progress: Called as ``on_progress(done, total)`` while decoding.

    Raises:
        ValueError: No usable image was found.

    """
    files = list_images(paths)
    if max_images and len(files) > max_images:
        idx = np.linspace(0, len(files) - 1, max_images).round().astype(int)
        files = [files[i] for i in sorted(set(idx.tolist()))]
    key = _cache_key(files, size, crop)
    cache_npy = cache_meta = None
    if cache_dir is not None:
        cache_npy = Path(cache_dir) / f"faces_{size}.npy"
        cache_meta = cache_npy.with_suffix(".json")
        if cache_npy.is_file() and cache_meta.is_file():
            meta = json.loads(cache_meta.read_text())
            if meta.get("key") == key:
                images = np.load(cache_npy)
                skipped = [tuple(s) for s in meta["skipped"]]
                return FaceData(images, meta["files"], skipped, meta["mode"])  # type: ignore[arg-type]

    detector = None
    mode = crop
    if crop in ("auto", "mtcnn"):
        from forensics.faces import FaceDetector

        detector = FaceDetector(device=device)
    if crop == "auto":
        probe = []
        for f in files[:: max(1, len(files) // 16)][:16]:
            try:
                probe.append(load_image(f))
            except MediaError:
                continue
        mode = "none" if probe and looks_like_crops(probe, detector) else "mtcnn"

    images, kept, skipped = [], [], []
    for i, f in enumerate(files):
        try:
            rgb = load_image(f)
            face = _prepare(rgb, size, mode, detector)
        except (MediaError, ValueError) as exc:
            skipped.append((str(f), str(exc)))
        else:
            images.append(face)
            kept.append(str(f))
        if on_progress is not None and (i % 64 == 63 or i == len(files) - 1):
            on_progress(i + 1, len(files))
    if not images:
        raise ValueError(f"none of the {len(files)} files gave a usable face")
    array = np.stack(images)
    if cache_npy is not None and cache_meta is not None:
        cache_npy.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_npy.with_name(f".{cache_npy.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, array)
        os.replace(tmp, cache_npy)
        cache_meta.write_text(
            json.dumps({"key": key, "files": kept, "skipped": skipped, "mode": mode})
        )
    return FaceData(array, kept, [tuple(s) for s in skipped], mode)  # type: ignore[misc]


def _prepare(rgb: np.ndarray, size: int, mode: str, detector) -> np.ndarray:
    if mode == "none":
        h, w = rgb.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return resize_rgb(rgb[top : top + side, left : left + side], (size, size))
    from forensics.faces import align_face

    faces = detector.detect(rgb)
    if not faces:
        raise ValueError("no face found")
    return align_face(rgb, faces[0].landmarks, size)


def to_tensor(images: np.ndarray):
    """uint8 ``(N, H, W, 3)`` -> float tensor ``(N, 3, H, W)`` in ``[-1, 1]``."""
    import torch

    array = np.array(images, dtype=np.uint8, copy=True)  # writable, never aliasing the input
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
    """Float tensor ``(N, 3, H, W)`` in ``[-1, 1]`` -> uint8 ``(N, H, W, 3)`` (a NumPy copy)."""
    import torch

    with torch.no_grad():
        y = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy().copy()

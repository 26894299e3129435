"""The scanner's input side: which files to scan, and reading each one once.

:func:`collect_inputs` expands files and folders; :func:`read_input` reads one file into
photo pixels (or a finished ``error``/``skipped`` record, or ``None`` for a video) plus its
provenance, from a single read of the file's bytes; :func:`prefetch` runs those reads a few
files ahead in a background thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from forensics.media import (
    DEFAULT_MAX_PIXELS,
    MediaError,
    check_readable_file,
    iter_inputs,
    load_image,
    media_kind,
)
from forensics.provenance import read_provenance, read_video_provenance
from forensics.records import ScanRecord, display_path

MAX_PROVENANCE_BYTES = 256 * 2**20
"""Photos larger than this are decoded from disk and get no provenance."""

Loaded = np.ndarray | ScanRecord | None
"""Photo pixels (RGB ``uint8``), a finished error/skipped record, or ``None`` (a video)."""


def collect_inputs(
    paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> list[Path]:
    """Expand files and folders into the files to scan (sorted per folder, symlink-loop safe).

    Args:
        paths: Files and folders (folders are walked recursively).
        exclude: A folder to leave out (the scan's own ``--out``).

    """
    skip = Path(exclude).resolve() if exclude is not None else None
    out = []
    for p in iter_inputs(paths):
        if skip is not None:
            try:
                if p.resolve().is_relative_to(skip):
                    continue
            except (OSError, RuntimeError):  # loops cannot be resolved: keep and report them
                pass
        out.append(p)
    return out


def read_input(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, provenance: bool = True
) -> tuple[Loaded, dict[str, Any] | None]:
    """:func:`load_input` and the file's provenance (photos and videos), reading it once.

    A photo's bytes are read once, then decoded and searched for provenance from memory;
    a video's C2PA manifest is streamed from disk. Provenance is ``None`` when not read.
    """
    kind = media_kind(path) if provenance else "other"
    if kind == "video":
        loaded = load_input(path, max_pixels)
        return loaded, (read_video_provenance(path) if loaded is None else None)
    if kind != "image":
        return load_input(path, max_pixels), None
    try:
        if not path.is_file() or path.stat().st_size > MAX_PROVENANCE_BYTES:
            return load_input(path, max_pixels), None
        data = path.read_bytes()
    except OSError:  # load_input says what is wrong with the file
        return load_input(path, max_pixels), None
    return load_input(path, max_pixels, data), (read_provenance(data) if data else None)


def load_input(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None
) -> Loaded:
    """Photo pixels, a finished (error/skipped) record, or ``None`` for a video.

    Args:
        path: The input file.
        max_pixels: Photos with more pixels are refused (decompression bombs).
        data: The file's bytes when already read (decoded from memory, not read again).

    """
    kind = media_kind(path)
    shown = display_path(path)
    if kind == "other":
        if path.is_symlink() and path.is_dir():
            return ScanRecord(shown, kind, "skipped", note="symlinked folder, not followed")
        if path.is_file():
            return ScanRecord(shown, kind, "skipped", note=f"not a photo or video "
                              f"({path.suffix.lower() or 'no extension'})")  # fmt: skip
    try:
        check_readable_file(path)
        if kind == "other":
            return ScanRecord(shown, kind, "skipped", note="not a regular file")
        if kind == "image":
            return load_image(path if data is None else data, max_pixels=max_pixels)
    except MediaError as exc:
        return ScanRecord(shown, kind, "error", error=str(exc))
    except Exception as exc:  # never let one file stop the scan
        return ScanRecord(shown, kind, "error", error=f"{type(exc).__name__}: {exc}")
    return None


def prefetch(
    files: Sequence[Path], load: Callable[[Path], object], pool: ThreadPoolExecutor, ahead: int
) -> Iterator[tuple[int, Path, object]]:
    """Yield ``(seq, path, load(path))`` in order, running up to ``ahead`` loads in advance."""
    queue: deque[tuple[int, Path, Future]] = deque()
    it = iter(enumerate(files))
    for seq, path in it:
        queue.append((seq, path, pool.submit(load, path)))
        if len(queue) >= ahead:
            break
    while queue:
        seq, path, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt[0], nxt[1], pool.submit(load, nxt[1])))
        yield seq, path, fut.result()

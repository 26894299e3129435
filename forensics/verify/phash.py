"""Perceptual hashes for re-submission detection, and an index to look them up fast.

The hash is the classic DCT pHash: grey, 32x32 (area filter), 2-D DCT, the 8x8 lowest
frequencies without the DC term (63 bits), each bit = above the median. It survives resizing
and re-encoding. Two hashes are kept per photo:

- the **face** hash, of the face aligned on its five landmarks
  (:func:`forensics.faces.align_face`), so a re-cropped or re-framed copy still matches;
- the **image** hash, of the whole photo, which is steadier for a plain resized copy
  (landmark jitter moves the aligned face by a pixel or two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forensics.faces import align_face
from forensics.verify.checks import luminance

ALIGN_SIDE = 64
HASH_BITS = 63


def dct_hash(rgb: np.ndarray) -> int:
    """63-bit DCT perceptual hash of an RGB ``uint8`` image, as an ``int``."""
    import cv2

    grey = cv2.resize(luminance(rgb), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(grey)[:8, :8].flatten()[1:]
    bits = low > np.median(low)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def face_hash(rgb: np.ndarray, landmarks: Sequence[tuple[float, float]]) -> int | None:
    """Hash of the landmark-aligned face; ``None`` when the landmarks are degenerate."""
    try:
        return dct_hash(align_face(rgb, landmarks, ALIGN_SIDE))
    except ValueError:
        return None


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()


def to_hex(h: int | None) -> str | None:
    """A hash as 16 hex digits (``None`` stays ``None``)."""
    return None if h is None else f"{h:016x}"


def from_hex(s: str | None) -> int | None:
    """Inverse of :func:`to_hex`."""
    return None if not s else int(s, 16)


@dataclass(frozen=True)
class Match:
    """The closest earlier photo: its key and the Hamming distances found."""

    key: str
    face_distance: int | None
    image_distance: int | None


class HashIndex:
    """Earlier photos' hashes, searched with vectorised XOR + popcount.

    Photos are added in processing order; :meth:`find` only sees what was added before.
    """

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._hashes = np.full((1024, 2), -1, dtype=np.int64)  # grows by doubling

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, face: int | None, image: int | None) -> None:
        """Remember a photo (missing hashes never match)."""
        n = len(self._keys)
        if n == len(self._hashes):
            grown = np.full((2 * n, 2), -1, dtype=np.int64)
            grown[:n] = self._hashes
            self._hashes = grown
        self._hashes[n] = (-1 if face is None else face, -1 if image is None else image)
        self._keys.append(key)

    def find(
        self,
        face: int | None,
        image: int | None,
        max_face: int,
        max_image: int,
        max_face_with_image: int,
    ) -> Match | None:
        """The earliest earlier photo that matches, or ``None``.

        A match is a face hash within ``max_face``, or an image hash within ``max_image``
        whose face hash is also within ``max_face_with_image`` (so two different people in
        front of the same plain background do not match on the background alone).
        """
        if not self._keys:
            return None
        faces = self._hashes[: len(self._keys), 0]
        images = self._hashes[: len(self._keys), 1]
        big = 1 << 62  # distance stand-in for a missing hash
        fd = _distances(faces, face) if face is not None else np.full(len(faces), big)
        idist = _distances(images, image) if image is not None else np.full(len(images), big)
        hit = np.flatnonzero(
            (fd <= max_face) | ((idist <= max_image) & (fd <= max_face_with_image))
        )
        if hit.size == 0:
            return None
        i = int(hit[0])
        return Match(
            key=self._keys[i],
            face_distance=int(fd[i]) if fd[i] < big else None,
            image_distance=int(idist[i]) if idist[i] < big else None,
        )


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x).astype(np.int64)
    return _BYTE_BITS[x.view(np.uint8).reshape(len(x), 8)].sum(axis=1)


def _distances(stored: np.ndarray, query: int) -> np.ndarray:
    d = _popcount(np.bitwise_xor(stored, np.int64(query)))
    d[stored < 0] = 1 << 62
    return d

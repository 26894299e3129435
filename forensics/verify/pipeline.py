"""Verify identity photos in batches: load, find faces, score, check, decide, record.

Faces are found with :meth:`forensics.faces.FaceDetector.detect_many` and scored with
:meth:`forensics.analysis.Analyzer.score_detections`, so a photo's ``synthetic_score`` is the
score ``forensics scan`` gives it. (One exception, by design: when MTCNN finds no face,
detection is retried on a contrast-stretched copy of a badly exposed photo, and then at a
larger working size that finds faces down to half the policy's ``min_face_px``, so a tiny face
in a large photo is ``face_too_small``, not ``no_face``; a face found so is scored on the
original pixels, where scan would score the whole image.)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.analysis import Analyzer, ImageScore
from forensics.faces import Face
from forensics.media import MediaError, check_readable_file, load_image, media_kind
from forensics.provenance import read_provenance
from forensics.verify import checks, phash
from forensics.verify.inputs import Item
from forensics.verify.policy import REASONS, Policy

ProgressFn = Callable[[int, int, dict[str, Any]], None]
"""``on_progress(done, total, record)`` after each photo."""

SMALL_FACE_SHARE = 0.5
"""When no face is found at the detector's usual working size, detection is retried at a
size that finds faces down to this share of ``Policy.min_face_px`` (a margin under the limit,
so every face that is too small by pixels, or by its share of a large photo, is found and
reported as ``face_too_small``)."""

RETRY_MAX_FACE = 2.0
"""The small-face retry keeps only faces under this multiple of the smallest face the batched
pass looks for: a larger face would have been found there, and at the retry's larger size
MTCNN now and then takes background texture for a large face."""

MAX_RETRY_SIDE = 3072
"""The small-face retry never detects on a copy whose longer side exceeds this, bounding its
time and memory on very large photos (there, faces a little larger than the margin above
are still found: above ``longer side * detector.min_face_px / MAX_RETRY_SIDE`` pixels)."""


@dataclass
class Outcome:
    """One verified photo: its record plus what the report needs to draw it.

    Attributes:
        record: The JSON-ready result (``path``, ``decision``, ``reasons``, ``scores``...).
        rgb: The decoded photo (``None`` when unreadable).
        faces: The faces found.
        image_score: The detector's scores (``None`` when unreadable).

    """

    record: dict[str, Any]
    rgb: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)
    image_score: ImageScore | None = None


def load_photo(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode one photo and read its provenance from one read of the file.

    Raises:
        MediaError: A clear message for anything unusable.

    """
    p = Path(path)
    check_readable_file(p)
    kind = media_kind(p)
    if kind != "image":
        raise MediaError(f"not a photo file ({kind}: {p.suffix or 'no extension'})")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc.strerror or exc}") from None
    return load_image(data), read_provenance(data)


def stretch_contrast(rgb: np.ndarray) -> np.ndarray:
    """Map the 1st-99th luminance percentiles to 0-255 (a copy; for face finding only)."""
    y = checks.luminance(rgb)
    lo, hi = np.percentile(y, [1.0, 99.0])
    scale = 255.0 / max(float(hi - lo), 1.0)
    return np.clip((rgb.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)


def small_face_side(shape: tuple[int, ...], detector_min_px: float, smallest_face_px: float) -> int:
    """Working side (longer side, px) at which MTCNN finds faces of ``smallest_face_px``.

    Args:
        shape: The photo's shape, ``(height, width, ...)``.
        detector_min_px: The smallest face MTCNN looks for, in working-copy pixels
            (``FaceDetector.min_face_px``).
        smallest_face_px: The smallest face to be found, in photo pixels.

    Returns:
        The side, never above the photo's longer side (no upscaling) or ``MAX_RETRY_SIDE``.

    """
    long = max(int(shape[0]), int(shape[1]))
    cap = min(long, MAX_RETRY_SIDE)
    if smallest_face_px <= 0:
        return cap
    return min(cap, math.ceil(long * detector_min_px / smallest_face_px))


class Verifier:
    """Apply a policy to batches of photos.

    Args:
        analyzer: Face finding and synthetic scoring (shared with ``scan``).
        policy: Thresholds and actions.
        index: Hashes of earlier photos (this run and earlier runs in the same ``--out``).

    """

    def __init__(self, analyzer: Analyzer, policy: Policy, index: phash.HashIndex) -> None:
        self.analyzer = analyzer
        self.policy = policy
        self.index = index
        threshold = policy.synthetic_threshold
        self.synthetic_threshold = (
            float(threshold)
            if threshold is not None
            else float(analyzer.detector.calibration.threshold)
        )

    def verify_batch(self, items: Sequence[Item], skip: set[str] | None = None) -> list[Outcome]:
        """Verify ``items`` in order; items whose path is in ``skip`` are computed, not returned.

        Computing the skipped ones keeps batch composition (and so every number) identical to
        an uninterrupted run when a run resumes in the middle of a batch.
        """
        skip = skip or set()
        photos: list[tuple[np.ndarray, dict[str, Any]] | MediaError] = []
        for it in items:
            try:
                photos.append(load_photo(it.path))
            except MediaError as exc:
                photos.append(exc)
        readable = [i for i, p in enumerate(photos) if not isinstance(p, MediaError)]
        images = [photos[i][0] for i in readable]  # type: ignore[index]
        detections = self.analyzer.face_detector.detect_many(images) if images else []
        detections = [
            self._retry_no_face(rgb, faces) for rgb, faces in zip(images, detections, strict=True)
        ]
        scored = self.analyzer.score_detections(images, detections) if images else []
        by_item = {
            i: (images[k], detections[k], scored[k], photos[i][1])  # type: ignore[index]
            for k, i in enumerate(readable)
        }
        out: list[Outcome] = []
        for i, it in enumerate(items):
            photo = photos[i]
            if it.path in skip:
                continue
            if isinstance(photo, MediaError):
                outcome = Outcome(self._record(it, ["unreadable"], {"error": str(photo)}, None))
            else:
                outcome = self._verify_one(it, *by_item[i])
            out.append(outcome)
        return out

    def _retry_no_face(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces found by the batched pass, or, where it found none, by the retries.

        A badly exposed photo is retried on a contrast-stretched copy; then (on that copy when
        the photo is badly exposed) a photo larger than the detector's working size is retried
        at :func:`small_face_side`, keeping faces under ``RETRY_MAX_FACE`` times the smallest
        face the batched pass looks for. Both only run on photos where no face was found, so
        photos with a face cost nothing extra.
        """
        if faces:
            return faces
        detector = self.analyzer.face_detector
        if checks.badly_exposed(checks.exposure_stats(rgb), self.policy):
            rgb = stretch_contrast(rgb)
            faces = detector.detect(rgb)
            if faces:
                return faces
        side = small_face_side(
            rgb.shape, detector.min_face_px, self.policy.min_face_px * SMALL_FACE_SHARE
        )
        if side <= detector.detect_side:
            return faces  # the batched pass already looked at this size
        larger = copy.copy(detector)  # same MTCNN and settings, a larger working size
        larger.detect_side = side
        seen = detector.min_face_px * max(rgb.shape[:2]) / detector.detect_side
        return [f for f in larger.detect(rgb) if max(f.width, f.height) < RETRY_MAX_FACE * seen]

    def _verify_one(
        self, item: Item, rgb: np.ndarray, faces: list[Face], score: ImageScore, prov: dict
    ) -> Outcome:
        res = checks.count_faces(faces, self.policy)
        res.scores.update({"width": int(rgb.shape[1]), "height": int(rgb.shape[0])})
        main = checks.main_face(faces)
        face_h = image_h = None
        if main is not None:
            res.add(checks.face_checks(rgb, main, self.policy))
            if score.score >= self.synthetic_threshold:
                res.reasons.append("synthetic")
            face_h = phash.face_hash(rgb, main.landmarks)
            image_h = phash.dct_hash(rgb)
            match = self.index.find(
                face_h,
                image_h,
                self.policy.max_face_hash_distance,
                self.policy.max_image_hash_distance,
                self.policy.max_face_hash_distance_with_image,
            )
            if match is not None:
                res.reasons.append("duplicate")
                res.scores.update(
                    duplicate_of=match.key,
                    duplicate_face_distance=match.face_distance,
                    duplicate_image_distance=match.image_distance,
                )
            self.index.add(item.path, face_h, image_h)
        else:
            # No face: scan's whole-image score is kept as a measurement, but it is not a
            # face's synthetic score (a plain gradient can score high), so none is reported.
            res.scores["whole_image_score"] = round(float(score.score), 6)
        res.add(checks.metadata(checks.read_text_tags(item.path), self.policy))
        res.add(checks.provenance(prov))
        synthetic = score.score if main is not None else None
        record = self._record(item, res.reasons, res.scores, synthetic)
        record["provenance"] = prov
        if main is not None:
            record["face_box"] = [round(v, 1) for v in main.box]
            record["phash"] = {"face": phash.to_hex(face_h), "image": phash.to_hex(image_h)}
        return Outcome(record, rgb, list(faces), score)

    def _record(
        self, item: Item, reasons: list[str], scores: dict[str, Any], synthetic: float | None
    ) -> dict[str, Any]:
        ordered = sorted(set(reasons), key=REASONS.index)
        flags = [r for r in ordered if self.policy.action(r) != "hint"]
        record: dict[str, Any] = {"path": item.path}
        if item.applicant_id is not None:
            record["applicant_id"] = item.applicant_id
        record.update(
            decision=self.policy.decide(flags),
            reasons=flags,
            hints=[r for r in ordered if r not in flags],
            synthetic_score=None if synthetic is None else round(float(synthetic), 6),
            scores=scores,
        )
        return record


def preload_index(records: Sequence[dict[str, Any]]) -> phash.HashIndex:
    """A hash index holding the photos of earlier records, in their recorded order."""
    index = phash.HashIndex()
    for r in records:
        h = r.get("phash") or {}
        if h.get("face") or h.get("image"):
            index.add(r["path"], phash.from_hex(h.get("face")), phash.from_hex(h.get("image")))
    return index


def iter_batches(
    items: Sequence[Item], batch_size: int, done: set[str]
) -> Iterator[Sequence[Item]]:
    """Fixed chunks of ``items`` that still hold an unrecorded photo.

    Chunks do not depend on what was recorded, so a resumed run batches (and computes)
    exactly as an uninterrupted one.
    """
    size = max(1, int(batch_size))
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        if any(it.path not in done for it in chunk):
            yield chunk

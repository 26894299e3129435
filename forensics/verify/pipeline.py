"""Verify identity photos in batches: load, find faces, score, check, decide, record.

Faces are found with :meth:`forensics.faces.FaceDetector.detect_many` and scored with
:meth:`forensics.analysis.Analyzer.score_detections`, so a photo's ``synthetic_score`` is the
score ``forensics scan`` gives it. (One exception, by design: when MTCNN finds no face in a
badly exposed photo, detection is retried on a contrast-stretched copy; the face found is
then scored on the original pixels, where scan would score the whole image.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.analysis import Analyzer, ImageScore
from forensics.faces import Face
from forensics.media import MediaError, check_readable_file, load_image, media_kind
from forensics.verify import checks, phash
from forensics.verify.inputs import Item
from forensics.verify.policy import REASONS, Policy

ProgressFn = Callable[[int, int, dict[str, Any]], None]
"""``on_progress(done, total, record)`` after each photo."""


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


def load_photo(path: str) -> np.ndarray:
    """Decode one photo, with a clear :class:`MediaError` for anything unusable."""
    p = Path(path)
    check_readable_file(p)
    kind = media_kind(p)
    if kind != "image":
        raise MediaError(f"not a photo file ({kind}: {p.suffix or 'no extension'})")
    return load_image(p)


def stretch_contrast(rgb: np.ndarray) -> np.ndarray:
    """Map the 1st-99th luminance percentiles to 0-255 (a copy; for face finding only)."""
    y = checks.luminance(rgb)
    lo, hi = np.percentile(y, [1.0, 99.0])
    scale = 255.0 / max(float(hi - lo), 1.0)
    return np.clip((rgb.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)


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
        photos: list[np.ndarray | MediaError] = []
        for it in items:
            try:
                photos.append(load_photo(it.path))
            except MediaError as exc:
                photos.append(exc)
        readable = [i for i, p in enumerate(photos) if isinstance(p, np.ndarray)]
        images = [photos[i] for i in readable]
        detections = self.analyzer.face_detector.detect_many(images) if images else []
        detections = [
            self._retry_dark(rgb, faces) for rgb, faces in zip(images, detections, strict=True)
        ]
        scored = self.analyzer.score_detections(images, detections) if images else []
        by_item = {i: (images[k], detections[k], scored[k]) for k, i in enumerate(readable)}
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

    def _retry_dark(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        if faces or not checks.badly_exposed(checks.exposure_stats(rgb), self.policy):
            return faces
        return self.analyzer.face_detector.detect(stretch_contrast(rgb))

    def _verify_one(
        self, item: Item, rgb: np.ndarray, faces: list[Face], score: ImageScore
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
        synthetic = score.score if main is not None else None
        record = self._record(item, res.reasons, res.scores, synthetic)
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

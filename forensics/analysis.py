"""From pixels to per-face scores: the one path shared by scan, detector eval and verify-ids.

Rule: a photo's score is the highest calibrated score among its faces. A photo with no
detected face is scored on the whole image, and the result says so (``whole_image=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forensics.faces import Box, Face, FaceDetector, crop_face
from forensics.scoring import Detector, Prediction


@dataclass(frozen=True)
class ScoredFace:
    """One scored region of a photo.

    Attributes:
        box: ``(x1, y1, x2, y2)`` of the face (the whole image when no face was found).
        face: The MTCNN detection, or ``None`` for a whole-image score.
        crop: The RGB crop that was scored.
        prediction: The detector's calibrated output.

    """

    box: Box
    face: Face | None
    crop: np.ndarray
    prediction: Prediction

    @property
    def score(self) -> float:
        """Calibrated probability that this face is synthetic."""
        return self.prediction.prob


@dataclass(frozen=True)
class ImageScore:
    """All scored faces of one photo, plus the photo-level score (max over faces)."""

    faces: list[ScoredFace]
    whole_image: bool

    @property
    def score(self) -> float:
        """The photo's score: the highest face score."""
        return max(f.score for f in self.faces)

    @property
    def top(self) -> ScoredFace:
        """The most suspicious face."""
        return max(self.faces, key=lambda f: f.score)


class Analyzer:
    """Find faces, crop them and score the crops in one detector batch.

    Args:
        detector: The calibrated scorer.
        face_detector: The MTCNN facade; created on the detector's device when ``None``.
        max_faces: Score at most this many faces per photo (most confident first).

    """

    def __init__(
        self,
        detector: Detector,
        face_detector: FaceDetector | None = None,
        max_faces: int = 16,
    ) -> None:
        self.detector = detector
        self.face_detector = face_detector or FaceDetector(device=detector.device)
        self.max_faces = max_faces

    def score_images(self, images: Sequence[np.ndarray]) -> list[ImageScore]:
        """Score RGB ``uint8`` photos (not modified); faces are batched through the detector."""
        detections = self.face_detector.detect_many(images)
        return self.score_detections(images, detections)

    def score_detections(
        self, images: Sequence[np.ndarray], detections: Sequence[Sequence[Face]]
    ) -> list[ImageScore]:
        """Score photos whose faces were already found (e.g. by a caller that checks them)."""
        margin = self.detector.preprocess.crop_margin
        plan: list[tuple[int, Box, Face | None, np.ndarray]] = []
        for i, (rgb, faces) in enumerate(zip(images, detections, strict=True)):
            chosen = list(faces)[: self.max_faces]
            if chosen:
                plan.extend((i, f.box, f, crop_face(rgb, f.box, margin)) for f in chosen)
            else:
                h, w = rgb.shape[:2]
                plan.append((i, (0.0, 0.0, float(w), float(h)), None, rgb))
        preds = self.detector.predict([p[3] for p in plan])
        grouped: list[list[ScoredFace]] = [[] for _ in images]
        for (i, box, face, crop), pred in zip(plan, preds, strict=True):
            grouped[i].append(ScoredFace(box=box, face=face, crop=crop, prediction=pred))
        return [ImageScore(faces=g, whole_image=g[0].face is None) for g in grouped]

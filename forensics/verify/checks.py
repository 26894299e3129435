"""Photo-quality checks: pure functions over RGB ``uint8`` arrays and MTCNN faces.

Each check returns its measured values (what goes into a record's ``scores``) and whether it
failed under a :class:`~forensics.verify.policy.Policy`. Nothing here reads files except
:func:`read_text_tags`, which reads image headers (never pixels).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensics.faces import Face, crop_face
from forensics.verify.policy import Policy

SHARPNESS_SIDE = 48
"""The grey face crop is resized to this square side for the fine-detail Laplacian, so the
same face gives the same sharpness at any photo size. It is under the default
``min_face_px`` (64), so a face that passes the size check is only ever shrunk here: upscaling
would add interpolation blur that is not in the photo."""

SHARPNESS_CONTRAST_SIDE = 16
"""...and to this side for the coarse Laplacian (eyes, brows, mouth, face outline) that
:func:`sharpness` divides by: it tracks the face's contrast and is barely touched by blur."""

EXPOSURE_INSET = 0.2
"""Exposure is measured on the face box shrunk by this share of its side on each side."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class CheckResult:
    """Failed reason codes and the measured values behind all checks."""

    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)

    def add(self, other: CheckResult) -> None:
        """Merge another result into this one."""
        self.reasons.extend(r for r in other.reasons if r not in self.reasons)
        self.scores.update(other.scores)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB array as float32 ``(H, W)`` in [0, 255]."""
    return rgb.astype(np.float32) @ _LUMA


def main_face(faces: Sequence[Face]) -> Face | None:
    """The largest face (the applicant's), or ``None``."""
    return max(faces, key=lambda f: f.width * f.height) if faces else None


def count_faces(faces: Sequence[Face], policy: Policy) -> CheckResult:
    """``no_face`` / ``multiple_faces``: other faces count when not much smaller than the main."""
    main = main_face(faces)
    if main is None:
        return CheckResult(["no_face"], {"faces": 0})
    side = max(main.width, main.height)
    big = [f for f in faces if max(f.width, f.height) >= policy.secondary_face_ratio * side]
    res = CheckResult([], {"faces": len(big), "faces_detected": len(faces)})
    if len(big) > 1:
        res.reasons.append("multiple_faces")
    return res


def face_too_small(face: Face, image_shape: tuple[int, ...], policy: Policy) -> CheckResult:
    """``face_too_small``: under a share of the frame or under a pixel size."""
    h, w = image_shape[:2]
    share = max(face.width, face.height) / max(1, min(h, w))
    px = min(face.width, face.height)
    res = CheckResult([], {"face_share": round(share, 4), "face_px": round(px, 1)})
    if share < policy.min_face_share or px < policy.min_face_px:
        res.reasons.append("face_too_small")
    return res


def _grey_square(grey: np.ndarray, side: int) -> np.ndarray:
    """``grey`` resized to ``side`` x ``side``: area filter down, bilinear up."""
    import cv2

    shrink = side * side < grey.shape[0] * grey.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(grey, (side, side), interpolation=interp)


def sharpness(rgb: np.ndarray, face: Face) -> float:
    """Fine detail of the face relative to its contrast; comparable across photo sizes.

    The grey face crop (the box, no margin) is resized to ``SHARPNESS_SIDE`` and to
    ``SHARPNESS_CONTRAST_SIDE``; the value is the variance of the Laplacian of the first
    divided by the standard deviation of the Laplacian of the second (+1 under the root, so
    a flat crop gives 0, not 0/0). Both sides are fixed shares of the face, so a blur of a
    given share of the face height gives the same value at any resolution. Dividing by the
    coarse term takes out much of the face's contrast (a plain Laplacian variance grows with
    its square, so a high-contrast blurred face can out-score a sharp low-contrast one);
    dividing by its root only, not by the variance itself, keeps heavy blur low even when
    sensor noise or JPEG blocks are left on an otherwise featureless face.

    Args:
        rgb: The photo, RGB ``uint8``.
        face: The face whose box is measured.

    Returns:
        The sharpness, >= 0 (see ``Policy.min_sharpness`` for the measured ranges).

    """
    import cv2

    grey = luminance(crop_face(rgb, face.box, 0.0))
    fine = cv2.Laplacian(_grey_square(grey, SHARPNESS_SIDE), cv2.CV_32F).var()
    coarse = cv2.Laplacian(_grey_square(grey, SHARPNESS_CONTRAST_SIDE), cv2.CV_32F).var()
    return float(fine / math.sqrt(float(coarse) + 1.0))


def blurry(rgb: np.ndarray, face: Face, policy: Policy) -> CheckResult:
    """``blurry``: the face crop's sharpness is under ``policy.min_sharpness``."""
    s = sharpness(rgb, face)
    return CheckResult(["blurry"] if s < policy.min_sharpness else [], {"sharpness": round(s, 3)})


def exposure_stats(rgb: np.ndarray) -> dict[str, float]:
    """Mean luminance and the shares of crushed (<= 5) and blown (>= 250) pixels."""
    y = luminance(rgb)
    return {
        "luma_mean": round(float(y.mean()), 2),
        "luma_dark_share": round(float((y <= 5).mean()), 4),
        "luma_bright_share": round(float((y >= 250).mean()), 4),
    }


def badly_exposed(stats: dict[str, float], policy: Policy) -> bool:
    """Whether :func:`exposure_stats` values break the policy's exposure limits."""
    return (
        stats["luma_mean"] < policy.min_luma
        or stats["luma_mean"] > policy.max_luma
        or stats["luma_dark_share"] > policy.max_clipped
        or stats["luma_bright_share"] > policy.max_clipped
    )


def bad_exposure(rgb: np.ndarray, face: Face, policy: Policy) -> CheckResult:
    """``bad_exposure``: a dark, crushed or blown-out face centre.

    The centre is the box shrunk by ``EXPOSURE_INSET`` on each side (mostly skin, little
    hair or background).
    """
    stats = exposure_stats(crop_face(rgb, face.box, -EXPOSURE_INSET))
    return CheckResult(["bad_exposure"] if badly_exposed(stats, policy) else [], stats)


def head_pose(landmarks: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(yaw, roll_deg)`` from MTCNN's five landmarks.

    Roll is the eye line's angle. Yaw is the nose's horizontal offset from the eyes'
    midpoint, in the eye-aligned frame, divided by half the eye distance: about 0 for a
    frontal face, growing towards +-1 as the head turns to profile.
    """
    le, re, nose = (np.asarray(p, np.float64) for p in landmarks[:3])
    d = re - le
    roll = math.atan2(d[1], d[0])
    c, s = math.cos(-roll), math.sin(-roll)
    v = nose - (le + re) / 2.0
    x = c * v[0] - s * v[1]
    half = max(float(np.hypot(*d)) / 2.0, 1e-6)
    return float(x / half), math.degrees(roll)


def pose(face: Face, policy: Policy) -> CheckResult:
    """``pose``: a strong turn (yaw) or tilt (roll)."""
    yaw, roll = head_pose(face.landmarks)
    bad = abs(yaw) > policy.max_yaw or abs(roll) > policy.max_roll_deg
    return CheckResult(["pose"] if bad else [], {"yaw": round(yaw, 3), "roll_deg": round(roll, 2)})


def read_text_tags(path: str | os.PathLike) -> dict[str, str]:
    """Text tags of an image file: EXIF Software/Artist/Description and PNG/WebP text chunks.

    Reads headers only (no pixel decoding); returns ``{}`` for anything unreadable.
    """
    from PIL import Image

    tags: dict[str, str] = {}
    try:
        with Image.open(path) as im:
            for key, value in (im.info or {}).items():
                if isinstance(value, str) and key.lower() not in ("icc_profile", "exif"):
                    tags[str(key)] = value[:500]
            exif = im.getexif()
            for tag_id, name in ((0x0131, "Software"), (0x013B, "Artist"), (0x010E, "Desc")):
                value = exif.get(tag_id)
                if isinstance(value, (str, bytes)):
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                    tags[f"EXIF:{name}"] = text[:500]
    except Exception:  # noqa: BLE001 - metadata is a hint; an odd header must not stop a batch
        return {}
    return tags


def metadata(tags: dict[str, str], policy: Policy) -> CheckResult:
    """``metadata``: an editing or generator keyword in a text tag (a hint, never proof)."""
    hits = sorted(
        {
            f"{key}: {kw}"
            for key, value in tags.items()
            for kw in policy.metadata_keywords
            if kw in f"{key} {value}".lower()
        }
    )
    return CheckResult(["metadata"] if hits else [], {"metadata": hits} if hits else {})


def provenance(prov: dict[str, Any]) -> CheckResult:
    """``declared_synthetic`` and ``metadata`` from :func:`forensics.provenance.read_provenance`.

    ``declared_synthetic``: a valid C2PA manifest or embedded generator settings declare AI
    generation. ``metadata`` (a hint or review, per policy): a C2PA manifest that fails
    validation, an XMP source type, or a Software tag naming an editor or generator.
    """
    findings: list[str] = []
    c2pa = prov.get("c2pa") or {}
    if c2pa.get("present") and not c2pa.get("valid"):
        findings.append("c2pa: manifest fails validation")
    meta = prov.get("metadata") or {}
    dst = (meta.get("xmp") or {}).get("digital_source_type")
    if dst:
        findings.append(f"xmp: DigitalSourceType {dst.rsplit('/', 1)[-1]}")
    if meta.get("software"):
        findings.append(f"software: {meta['software']}")
    reasons = (["declared_synthetic"] if prov.get("declared") else []) + (
        ["metadata"] if findings else []
    )
    scores: dict[str, Any] = {"provenance": findings} if findings else {}
    if prov.get("declared"):
        scores["declared"] = prov["declared"]
    return CheckResult(reasons, scores)


def face_checks(rgb: np.ndarray, face: Face, policy: Policy) -> CheckResult:
    """Size, sharpness, exposure and pose of the main face, merged."""
    res = CheckResult()
    for part in (
        face_too_small(face, rgb.shape, policy),
        blurry(rgb, face, policy),
        bad_exposure(rgb, face, policy),
        pose(face, policy),
    ):
        res.add(part)
    return res

"""Mixed identity-photo batches built at test time (never stored in the repo).

Sources: a handful of real photos READ from ../shared/data/train/real and the public-domain
portraits in samples/, plus transformed copies (blur, near-black, tiny face in a big frame,
two people side by side, resized re-encoded re-submissions, corrupt files). Every
transformed copy comes from a different source photo, so no two cases share a face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def picked(folder: Path, pattern: str, n: int, stride: int) -> list[Path]:
    """``n`` files of ``folder`` matching ``pattern``, every ``stride``-th in sorted order."""
    picks = sorted(folder.glob(pattern))[::stride][:n]
    if len(picks) < n:
        pytest.skip(f"need {n} photos matching {pattern} in {folder}")
    return picks


def utk_paths(shared: Path, n: int, stride: int = 37) -> list[Path]:
    """``n`` adult UTKFace photos, every ``stride``-th in sorted order (deterministic)."""
    return picked(shared / "train" / "real" / "utkface", "[2-5][0-9]_*.jpg", n, stride)


def ffhq_paths(shared: Path, n: int, stride: int = 23) -> list[Path]:
    """``n`` FFHQ portraits (256 px), every ``stride``-th in sorted order (deterministic)."""
    return picked(shared / "train" / "real" / "ffhq_140k", "*.jpg", n, stride)


def at_face_height(
    rgb: np.ndarray, box: tuple[float, ...], face_h: int, blur: float = 0.0, quality: int = 85
) -> tuple[np.ndarray, tuple[float, ...]]:
    """The whole photo resized so the face ``box`` is ``face_h`` px tall, blurred (Gaussian,
    sigma ``blur`` x ``face_h``) and JPEG-encoded; returns it and the box in its pixels."""
    import cv2

    from forensics.media import encode_jpeg, load_image, resize_rgb

    s = face_h / (box[3] - box[1])
    img = resize_rgb(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)))
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur * face_h)
    return load_image(encode_jpeg(img, quality)), tuple(v * s for v in box)


def tiny_face_photo(face: np.ndarray, size: tuple[int, int], side: int, seed: int) -> np.ndarray:
    """``face`` (a head crop) shrunk to ``side`` px wide, pasted into a plain ``size`` frame."""
    from forensics.media import resize_rgb

    w, h = size
    canvas = gradient_noise(w, h, seed)
    small = resize_rgb(face, (side, max(1, round(side * face.shape[0] / face.shape[1]))))
    y, x = h * 2 // 5, w * 3 // 5
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def gradient_noise(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth colour gradient with mild noise: a photo-like scene with no face."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 200 + 30, yy / h * 180 + 40, (xx + yy) / (w + h) * 150 + 60], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def build_mixed_batch(root: Path, shared: Path) -> dict[str, tuple[str, str | None]]:
    """Write the mixed batch into ``root``; returns file name -> (decision, reason)."""
    import cv2

    from forensics.media import encode_jpeg, load_image, resize_rgb, save_image

    root.mkdir(parents=True, exist_ok=True)
    src = [load_image(p) for p in utk_paths(shared, 14)]
    samples = [load_image(SAMPLES / n) for n in ("real_grace_hopper.jpg",)]
    expected: dict[str, tuple[str, str | None]] = {}

    def put(name: str, rgb: np.ndarray, decision: str, reason: str | None) -> None:
        save_image(root / name, rgb, quality=92)
        expected[name] = (decision, reason)

    reals = src[:5] + samples
    for i, rgb in enumerate(reals):
        put(f"a_real_{i}.jpg", rgb, "accept", None)
    # Re-submissions of the first two real photos: 70 % size, JPEG quality 70.
    for i in range(2):
        h, w = reals[i].shape[:2]
        small = resize_rgb(reals[i], (round(w * 0.7), round(h * 0.7)))
        (root / f"b_resubmit_{i}.jpg").write_bytes(encode_jpeg(small, 70))
        expected[f"b_resubmit_{i}.jpg"] = ("review", "duplicate")
    put("c_noface_gradient.png", gradient_noise(480, 360, 0), "reject", "no_face")
    hopper = samples[0]
    put("c_noface_crop.jpg", hopper[-160:, -200:].copy(), "reject", "no_face")
    put("d_two_people.jpg", np.concatenate([src[5], src[6]], axis=1), "reject", "multiple_faces")
    for i, rgb in enumerate(src[7:9]):
        sigma = max(rgb.shape[:2]) / 40
        put(f"e_blurry_{i}.jpg", cv2.GaussianBlur(rgb, (0, 0), sigma), "review", "blurry")
    for i, rgb in enumerate(src[9:11]):
        dark = (rgb.astype(np.float32) * 0.08).round().astype(np.uint8)
        put(f"f_dark_{i}.png", dark, "review", "bad_exposure")
    for i, rgb in enumerate(src[11:13]):
        canvas = gradient_noise(1600, 1200, 10 + i)
        canvas[500:600, 700:800] = resize_rgb(rgb, (100, 100))
        put(f"g_tiny_face_{i}.jpg", canvas, "reject", "face_too_small")
    (root / "h_empty.jpg").write_bytes(b"")
    good = encode_jpeg(src[13], 90)
    (root / "h_truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "h_not_an_image.png").write_bytes(b"this is not a picture\n" * 20)
    for name in ("h_empty.jpg", "h_truncated.jpg", "h_not_an_image.png"):
        expected[name] = ("reject", "unreadable")
    return expected


def score_batch(records: list[dict], expected: dict[str, tuple[str, str | None]]) -> list[str]:
    """Names whose record misses the expected decision or reason."""
    by_name = {Path(r["path"]).name: r for r in records}
    wrong = []
    for name, (decision, reason) in expected.items():
        r = by_name[name]
        ok = r["decision"] == decision and (
            r["reasons"] == [] if reason is None else reason in r["reasons"]
        )
        if not ok:
            wrong.append(f"{name}: got {r['decision']} {r['reasons']}, want {decision} {reason}")
    return wrong

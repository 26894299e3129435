"""Self-blended images: face-swap-like fakes made from real photos, with no swap model.

A face swap pastes a re-rendered face into a real frame, and the paste leaves traces: a
blending boundary, a colour or sharpness mismatch between the inner face and its
surroundings, a slight misalignment. Shiohara & Yamasaki (CVPR 2022, *Detecting Deepfakes
with Self-Blended Images*) showed that these traces can be learnt without any swap model:
blend a photo with a slightly altered copy of itself inside a face-shaped mask. The result
has only the traces, so a detector trained on it cannot latch onto one generator's identity
or texture.

The pure functions here take RGB ``uint8`` arrays and an ``np.random.Generator`` (same seed,
same image); :func:`selfblend_folder` writes a fake folder with a ``manifest.jsonl`` that names
each fake's real twin, so ``forensics detector train --fake OUT`` groups every blend with the
photo it came from (same split, same batch).

Run ``python -m trainers.detector.selfblend REAL... OUT [--max-per-source N --cap-seed S]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from forensics.checkpoint import atomic_write_bytes
from forensics.faces import FaceDetector
from forensics.media import MediaError, load_image, save_image

from .crops import CachedCrop, detect_like_scan
from .data import Sample, cap_per_source, collect_samples

FAMILY = "selfblend"
Landmarks = Sequence[tuple[float, float]]


def blend_mask(
    shape: tuple[int, ...], landmarks: Landmarks, rng: np.random.Generator, crude: bool = False
) -> np.ndarray:
    """A soft face-shaped mask ``(H, W, 1)`` in ``[0, 1]``, drawn around the five landmarks.

    An ellipse over the eyes, nose and mouth (size, centre and roundness drawn at random),
    sometimes eroded or dilated, then blurred so the blend fades out over a few pixels.
    ``crude`` widens it by 20-50% (forehead, cheeks and jaw, as a 3-D model swap pastes) and
    keeps its edge sharper.
    """
    h, w = shape[:2]
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    left_eye, right_eye = pts[0], pts[1]
    eye_d = max(float(np.linalg.norm(right_eye - left_eye)), 4.0)
    centre = pts[[0, 1, 3, 4]].mean(axis=0) + np.array([0.0, rng.uniform(-0.05, 0.15) * eye_d])
    angle = float(np.degrees(np.arctan2(*(right_eye - left_eye)[::-1])))
    axes = (int(eye_d * rng.uniform(0.9, 1.35)), int(eye_d * rng.uniform(1.15, 1.7)))
    if crude:
        grow = rng.uniform(1.2, 1.5)
        axes = (int(axes[0] * grow), int(axes[1] * grow))
        centre = centre - np.array([0.0, (grow - 1.0) * 0.5 * eye_d])  # up towards the forehead
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, angle, 0, 360, 1.0, -1)
    if rng.random() < 0.5:
        k = max(1, int(eye_d * rng.uniform(0.05, 0.2)))
        kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    soft = rng.uniform(0.01, 0.05) if crude else rng.uniform(0.03, 0.15)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, eye_d * soft))
    mask /= max(float(mask.max()), 1e-6)
    if rng.random() < 0.3:
        mask *= rng.uniform(0.5, 1.0)
    return mask[:, :, None]


def blend_source(rgb: np.ndarray, rng: np.random.Generator, crude: bool = False) -> np.ndarray:
    """An altered copy of ``rgb`` (float32): resampled, blurred or sharpened, maybe recoloured.

    Exactly one change of sharpness is always made, so no blend is a no-op; a colour or
    brightness shift and a slight rotation, scaling or shift are drawn at random. These are
    the mismatches a swap model's rendered face has against its target frame. ``crude``
    first gives the copy another skin tone and lighting (per-channel gains 0.75-1.3, a
    brightness shift of up to 30 levels), as a classical swap of another person's face has.
    """
    h, w = rgb.shape[:2]
    src = rgb.astype(np.float32)
    if crude:
        tinted = src * rng.uniform(0.75, 1.3, 3) + rng.uniform(-30, 30)
        rgb = np.clip(tinted, 0, 255).astype(np.uint8)
        src = rgb.astype(np.float32)
    if rng.random() < 0.7:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
        hsv[..., 1:] *= rng.uniform(0.85, 1.15, 2)
        shifted = np.clip(hsv, 0, 255).astype(np.uint8)
        src = cv2.cvtColor(shifted, cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < 0.5:
        src = src * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10)
    kind = rng.random()  # always one change of sharpness, so no blend is a no-op
    if kind < 0.5:  # rendered at a lower resolution, then scaled up
        f = rng.uniform(0.35, 0.8)
        size = (max(1, int(w * f)), max(1, int(h * f)))
        small = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        src = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif kind < 0.75:
        src = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.5, 1.5))
    else:
        src = src + rng.uniform(0.3, 1.0) * (src - cv2.GaussianBlur(src, (0, 0), 1.0))
    if rng.random() < 0.6:  # slight misalignment
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), rng.uniform(0.96, 1.04))
        m[:, 2] += rng.uniform(-0.01, 0.01, 2) * np.array([w, h])
        src = cv2.warpAffine(src, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(src, 0, 255)


def self_blend(
    rgb: np.ndarray, landmarks: Landmarks, rng: np.random.Generator, crude: float = 0.0
) -> np.ndarray:
    """A self-blended fake of one RGB ``uint8`` photo (the input is not modified).

    Pixels outside the mask are exactly the input's; inside, the altered copy shows through.
    With probability ``crude`` the blend imitates a classical (3-D model) face swap instead:
    a wider, sharper-edged mask and a copy of another skin tone and lighting (see
    :func:`blend_mask` and :func:`blend_source`). ``crude=0`` draws exactly as before.
    """
    rough = bool(crude) and rng.random() < crude
    mask = blend_mask(rgb.shape, landmarks, rng, crude=rough)
    mixed = blend_source(rgb, rng, crude=rough) * mask + rgb.astype(np.float32) * (1.0 - mask)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def validation_blends(
    crops: Sequence[CachedCrop], out: str | Path, share: float, seed: int = 0, crude: float = 0.0
) -> list[CachedCrop]:
    """Fixed self-blended twins of validation reals, so validation sees what training makes.

    ``share`` of the real crops that have landmarks (at least one, when ``share`` > 0) get one
    blend each (source ``"selfblend"``, in the real's group), written once as PNG under ``out``.
    Which reals, and each blend's draw, depend on ``seed`` and the crop's file, not on its
    position, so every validation of a run (and a resumed run) scores the same images.
    ``crude`` is :func:`self_blend`'s.

    Returns:
        The blended fakes as cached crops (their landmarks are the real's), in input order.

    """
    eligible = [c for c in crops if c.sample.label == 0 and c.landmarks]
    if share <= 0 or not eligible:
        return []
    keys = {
        c.crop_path: hashlib.sha1(f"{seed}:{c.crop_path}".encode()).hexdigest() for c in eligible
    }
    n = max(1, round(share * len(eligible)))
    chosen = set(sorted(keys.values())[:n])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blends: list[CachedCrop] = []
    for crop in eligible:
        key = keys[crop.crop_path]
        if key not in chosen:
            continue
        path = out / f"val_{key[:16]}.png"
        if not path.is_file():
            rng = np.random.default_rng(int(key[:16], 16))
            save_image(path, self_blend(load_image(crop.crop_path), crop.landmarks, rng, crude))
        real = crop.sample
        sample = Sample(str(path), 1, FAMILY, real.group, twin=real.group)
        blends.append(CachedCrop(sample, str(path), crop.face, crop.landmarks))
    return blends


def selfblend_folder(
    paths: Sequence[str],
    out: str | Path,
    face_detector: FaceDetector,
    per_image: int = 1,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write ``per_image`` self-blended PNGs of each photo's main face, and ``manifest.jsonl``.

    Photos without a face (as ``forensics scan`` finds them) or unreadable ones are skipped.
    Each blend's generator is seeded by ``(seed, index of the photo, k)``, so a re-run writes
    the same files.

    Returns:
        ``{"photos": n, "written": n, "no_face": n, "unreadable": n}``.

    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"photos": len(paths), "written": 0, "no_face": 0, "unreadable": 0}
    rows: list[str] = []
    for i, path in enumerate(paths):
        try:
            rgb = load_image(path)
        except MediaError:
            counts["unreadable"] += 1
            continue
        faces = detect_like_scan(face_detector, [rgb])[0]
        if not faces:
            counts["no_face"] += 1
        for k in range(per_image if faces else 0):
            rng = np.random.default_rng([seed, i, k])
            name = f"{FAMILY}_{i:06d}_{k}.png"
            save_image(out / name, self_blend(rgb, faces[0].landmarks, rng))
            record = {"family": FAMILY, "file": name, "index": i, "seed": seed, "source": path}
            rows.append(json.dumps(record))
            counts["written"] += 1
        if on_progress:
            on_progress(i + 1, len(paths))
    atomic_write_bytes(out / "manifest.jsonl", ("\n".join(rows) + "\n").encode())
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m trainers.detector.selfblend REAL... OUT``: write a self-blended fake folder."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("real", nargs="+", help="real photo folders (the last argument is OUT)")
    ap.add_argument("--per-image", type=int, default=1, help="blends per photo (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the blends (default 0)")
    ap.add_argument(
        "--max-per-source",
        type=int,
        default=None,
        help="blend only the photos `detector train --max-per-source N` keeps",
    )
    ap.add_argument("--cap-seed", type=int, default=0, help="the run's data seed (default 0)")
    args = ap.parse_args(argv)
    if len(args.real) < 2:
        ap.error("give at least one real folder and OUT")
    *folders, out = args.real
    try:
        samples = cap_per_source(collect_samples(real=folders), args.max_per_source, args.cap_seed)
    except ValueError as exc:
        ap.error(str(exc))
    from forensics.scan_setup import make_face_detector

    counts = selfblend_folder(
        [s.path for s in samples],
        out,
        make_face_detector("cpu"),
        per_image=args.per_image,
        seed=args.seed,
        on_progress=lambda d, t: print(f"\r{d}/{t}", end="", flush=True),
    )
    print(f"\n{json.dumps(counts)}")


if __name__ == "__main__":
    main()

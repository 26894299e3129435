"""Throughput of ``forensics verify-ids`` in photos/s on 512-px photos (CPU by default).

Usage:
    python benchmarks/verify_speed.py [--photos 64] [--batch-size 16] [--model CKPT]

Photos are made at run time from the public-domain portraits in samples/ (cropped, flipped
and re-exposed), 512x512 JPEG. They show only two people, so most are flagged as duplicates;
every check runs on every photo either way. Without ``--model``
the shipped default detector is used when present, otherwise a randomly initialised
``patch_resnet`` (the same architecture and cost; its scores mean nothing). Everything is
written to a temporary folder that is deleted afterwards, including thumbnails and report.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, n: int) -> None:
    from forensics.media import load_image, resize_rgb, save_image

    sources = [load_image(REPO / "samples" / name) for name in ("real_grace_hopper.jpg",
               "real_astronaut_eileen_collins.png")]  # fmt: skip
    rng = np.random.default_rng(0)
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        s = min(h, w)
        dy, dx = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        img = resize_rgb(src[dy : dy + s, dx : dx + s], (512, 512))
        if i % 4 >= 2:
            img = img[:, ::-1]
        img = np.clip(img.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
        save_image(folder / f"photo_{i:04d}.jpg", np.ascontiguousarray(img), quality=90)


def load_detector(model: str | None, device: str):
    from forensics.models import create_model
    from forensics.scoring import Detector, DetectorSpec, default_model_path

    if model or default_model_path().is_file():
        return Detector.load(model, device=device), "checkpoint"
    spec = DetectorSpec(arch="patch_resnet")
    return Detector(create_model(spec.arch, **spec.arch_kwargs), spec, device), "random"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from forensics.analysis import Analyzer
    from forensics.faces import FaceDetector
    from forensics.verify.inputs import load_items
    from forensics.verify.policy import Policy
    from forensics.verify.runner import run_verification

    detector, kind = load_detector(args.model, args.device)
    analyzer = Analyzer(detector, FaceDetector(device=detector.device))
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        make_photos(photos, args.photos)
        items = load_items(photos)
        warm = run_verification(items[:2], analyzer, Policy(), None)  # load MTCNN / kernels
        assert len(warm.records) == 2
        t0 = time.perf_counter()
        run = run_verification(items, analyzer, Policy(), Path(tmp) / "out", args.batch_size)
        dt = time.perf_counter() - t0
    d = run.summary["decisions"]
    print(
        f"{len(items)} photos 512x512, batch {args.batch_size}, detector {detector.spec.arch} "
        f"({kind}), device {detector.device}, torch threads {torch.get_num_threads()}: "
        f"{dt:.1f} s, {len(items) / dt:.2f} photos/s (accept {d['accept']}, "
        f"review {d['review']}, reject {d['reject']})"
    )


if __name__ == "__main__":
    main()

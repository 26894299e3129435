"""Tiny labelled photo folders for the detector tests (built from the public-domain portrait).

Reals are JPEG crops of the portrait; fakes are the same crops with a nearest-neighbour
up-sampling grid (a GAN-like trace), written like ``forensics gan sample`` writes a
re-synthesis folder: a ``manifest.jsonl`` naming each fake's family and real twin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def make_folders(root: Path, portrait: np.ndarray, n: int = 8, side: int = 96) -> tuple[Path, Path]:
    """Write ``n`` reals to ``root/real/people`` and ``n`` twin fakes to ``root/fake_resynth``."""
    from forensics.media import resize_rgb, save_image

    real_dir = root / "real" / "people"
    fake_dir = root / "fake_resynth"
    real_dir.mkdir(parents=True, exist_ok=True)
    fake_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = portrait.shape[:2]
    records = []
    for i in range(n):
        s = int(min(h, w) * rng.uniform(0.8, 0.95))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        rgb = resize_rgb(portrait[y : y + s, x : x + s], (side, side))
        real = real_dir / f"person{chr(97 + i)}_{i:04d}.jpg"
        save_image(real, rgb, quality=90)
        small = resize_rgb(rgb, (side // 2, side // 2))
        fake_rgb = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        name = f"resynth_s1_{i:06d}.png"
        save_image(fake_dir / name, fake_rgb)
        records.append({"file": name, "family": "resynth", "seed": 1, "index": i,
                        "checkpoint_sha256": "0" * 64, "source": str(real)})  # fmt: skip
    body = "".join(json.dumps(r) + "\n" for r in records)
    (fake_dir / "manifest.jsonl").write_text(body, encoding="utf-8")
    return real_dir, fake_dir


def tiny_train_args(out: Path, real: Path, fake: Path, steps: int = 4, seed: int = 0) -> list[str]:
    """CLI arguments of a seconds-long ``patch_tiny`` training run."""
    return [
        "detector", "train", "--out", str(out), "--real", str(real), "--fake", str(fake),
        "--arch", "patch_tiny", "--arch-kwargs", '{"width": 4}', "--input-size", "32",
        "--cache-side", "64", "--batch-size", "4", "--max-steps", str(steps),
        "--eval-every", "2", "--val-fraction", "0.25", "--seed", str(seed), "--device", "cpu",
        "--threads", "1",
    ]  # fmt: skip

"""Detector training throughput (images/s), data loading and augmentation included.

Usage: python benchmarks/detector_train.py [--steps 30] [--batch 32] [--arch patch_resnet]
       [--images 64] [--input-size 128] [--threads N] [--device cpu] [--workers 0]
       [--init WEIGHTS] [--augment-preset default|heavy]

The shipped default's recipe (see MODEL_CARD.md):
    python benchmarks/detector_train.py --arch patch_mobilenet --input-size 224 --workers 1
        --init ../shared/weights/mobilenetv2_100_in1k.safetensors --augment-preset heavy

Reals are the first ``--images`` photos of ``../shared/data/train/real/utkface`` (or copies of
the public-domain portrait when that folder is missing); fakes are the same photos pushed
through a 2x nearest-neighbour up-sampling grid. Face crops are prepared once (MTCNN, timed
separately) in a temporary run folder; the training loop then runs ``--steps`` steps with the
shared augmentations. The first steps are a warm-up that the loop's own mean includes, so short
runs understate the steady rate. The machine may be shared: numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "real" / "utkface"
)


def make_data(root: Path, n: int) -> tuple[Path, Path]:
    import matplotlib

    from forensics.media import load_image, resize_rgb, save_image

    real, fake = root / "real", root / "fake"
    real.mkdir(parents=True)
    fake.mkdir(parents=True)
    files = sorted(SHARED.iterdir())[:n] if SHARED.is_dir() else []
    portrait = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    for i in range(n):
        rgb = load_image(files[i] if i < len(files) else portrait)
        rgb = resize_rgb(rgb, (200, 200))
        save_image(real / f"p{i:05d}x.jpg", rgb, quality=90)
        small = resize_rgb(rgb, (100, 100))
        save_image(fake / f"g{i:05d}x.png", np.repeat(np.repeat(small, 2, 0), 2, 1))
    return real, fake


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--arch", default="patch_resnet")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--init", default=None, help="initial weights file (or 'timm')")
    ap.add_argument("--augment-preset", default="default")
    args = ap.parse_args()

    from trainers.detector.augment import Augmenter
    from trainers.detector.config import DetectorTrainConfig, default_arch_kwargs
    from trainers.detector.prepare import prepare_data
    from trainers.detector.train import train_detector

    with tempfile.TemporaryDirectory() as tmp:
        real, fake = make_data(Path(tmp) / "data", args.images)
        cfg = DetectorTrainConfig(
            out=str(Path(tmp) / "run"),
            real=(str(real),),
            fake=(str(fake),),
            arch=args.arch,
            arch_kwargs=default_arch_kwargs() if args.arch == "patch_resnet" else {},
            input_size=args.input_size,
            batch_size=args.batch,
            max_steps=args.steps,
            eval_every=10**9,
            val_fraction=0.1,
            device=args.device,
            threads=args.threads,
            workers=args.workers,
            init_weights=args.init,
            augment_kwargs=Augmenter.preset(args.augment_preset),
        )
        t0 = time.perf_counter()
        data = prepare_data(cfg, Path(cfg.out) / "crops")
        crop_s = time.perf_counter() - t0
        n_photos = len(data.train) + len(data.val)
        t0 = time.perf_counter()
        result = train_detector(cfg)
        total_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "arch": args.arch,
                "batch": args.batch,
                "input_size": args.input_size,
                "augment_preset": args.augment_preset,
                "workers": args.workers,
                "steps": result.steps,
                "images_per_s": round(result.images_per_s, 2),
                "mtcnn_crops_per_s": round(n_photos / crop_s, 2),
                "train_call_s": round(total_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

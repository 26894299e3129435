"""Make "messaging-app" copies of an evaluation folder: resized and JPEG re-encoded.

The robustness check of the shipped detector is the same photos at half size with JPEG
quality 70. Run ``python -m trainers.detector.degrade SRC DST --scale 0.5 --quality 70``
and point ``forensics detector eval`` at ``DST``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from forensics.media import MediaError, iter_inputs, load_image, media_kind, resize_rgb, save_image


def degrade(rgb: np.ndarray, scale: float = 0.5) -> np.ndarray:
    """Resize an RGB ``uint8`` photo by ``scale`` (area filter); the input is not modified."""
    h, w = rgb.shape[:2]
    return resize_rgb(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))


def degrade_folder(src: Path, dst: Path, scale: float = 0.5, quality: int = 70) -> int:
    """Write a resized, JPEG-``quality`` copy of every image under ``src`` into ``dst``.

    Returns:
        The number of images written (unreadable files are skipped).

    """
    dst.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in iter_inputs([src]):
        if media_kind(path) != "image":
            continue
        try:
            rgb = load_image(path)
        except MediaError:
            continue
        save_image(dst / (path.stem + ".jpg"), degrade(rgb, scale), quality=quality)
        written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--quality", type=int, default=70)
    args = parser.parse_args(argv)
    n = degrade_folder(args.src, args.dst, args.scale, args.quality)
    print(f"{n} images written to {args.dst}")


if __name__ == "__main__":
    main()

"""Rebuild the project's own demo files in ``samples/``: videos and generated faces.

Everything written here is made by project code from redistributable inputs: the
public-domain portraits already in ``samples/`` and the shipped default generator. Run it with
``python -m trainers.samples`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from forensics.media import load_image, resize_rgb, write_video


def camera_move_frames(
    rgb: np.ndarray, n_frames: int = 48, out_side: int = 256, zoom: float = 0.12
) -> Iterator[np.ndarray]:
    """Yield frames of a slow pan-and-zoom ("Ken Burns") over a still photo.

    Args:
        rgb: The photo, RGB ``uint8`` ``(H, W, 3)``; it is not modified.
        n_frames: Number of frames.
        out_side: Side of the square output frames.
        zoom: How much tighter the last frame is than the first (fraction of the window).

    Yields:
        RGB ``uint8`` frames of shape ``(out_side, out_side, 3)``.

    """
    h, w = rgb.shape[:2]
    side0 = min(h, w)
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        side = int(round(side0 * (1.0 - zoom * t)))
        x = int(round((w - side) * (0.5 + 0.3 * (t - 0.5)))) if w > side else 0
        y = int(round((h - side) * 0.4 * t)) if h > side else 0
        yield resize_rgb(rgb[y : y + side, x : x + side], (out_side, out_side))


def make_real_video(portrait: Path, out: Path, fps: float = 12.0) -> Path:
    """Write a short video of a real portrait with a slow camera move."""
    rgb = load_image(portrait)
    return write_video(out, camera_move_frames(rgb), fps=fps)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: rebuild the generated files in ``samples/``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, default=Path("samples"))
    args = parser.parse_args(argv)
    out = make_real_video(
        args.samples / "real_grace_hopper.jpg", args.samples / "real_video_grace_hopper.mp4"
    )
    print(out)


if __name__ == "__main__":
    main()

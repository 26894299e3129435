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
import torch

from forensics.media import load_image, resize_rgb, save_image
from forensics.video import write_video


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


def latent_walk_frames(
    generator: torch.nn.Module, n_frames: int = 36, seed: int = 0, out_side: int | None = None
) -> Iterator[np.ndarray]:
    """Yield frames of a slow walk between latents of an unconditional generator.

    The walk follows a great circle through three seeded latents (spherical interpolation
    keeps the latents at a typical norm). Frames keep the generator's native size unless
    ``out_side`` asks for a resize; an upscaled walk hides the generator's pixel-level trace
    (the shipped detector misses a 128-px copy of the 64-px walk, see MODEL_CARD.md).
    """
    from trainers.gan.evaluate import generate

    z_dim = int(generator.z_dim)
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn(3, z_dim, generator=gen)
    keys = torch.cat([keys, keys[:1]])
    per_leg = max(1, n_frames // 3)
    zs = []
    for a, b in zip(keys[:-1], keys[1:], strict=True):
        omega = torch.arccos((a / a.norm()).dot(b / b.norm()).clamp(-1, 1))
        for t in np.linspace(0.0, 1.0, per_leg, endpoint=False):
            w0 = torch.sin((1 - t) * omega) / torch.sin(omega)
            w1 = torch.sin(t * omega) / torch.sin(omega)
            zs.append(w0 * a + w1 * b)
    with torch.inference_mode():
        frames = generate(generator, torch.stack(zs), torch.device("cpu"))
    for rgb in frames:
        yield rgb if out_side is None else resize_rgb(rgb, (out_side, out_side))


def make_gan_faces(samples: Path, generator_path: str | None) -> list[Path]:
    """Write ``fake_gan_face_1.png`` and ``fake_gan_face_2.png`` (seed 2026) into ``samples``."""
    from trainers.gan.evaluate import generate
    from trainers.gan.export import load_generator

    generator, _ = load_generator(generator_path, "cpu")
    gen = torch.Generator().manual_seed(2026)
    with torch.inference_mode():
        faces = generate(generator, torch.randn(2, int(generator.z_dim), generator=gen), "cpu")
    return [save_image(samples / f"fake_gan_face_{i + 1}.png", rgb) for i, rgb in enumerate(faces)]


def make_fakes(samples: Path, generator_path: str | None, resynth_path: str | None) -> list[Path]:
    """Write GAN faces, re-synthesised portraits and a latent-walk video into ``samples``."""
    from trainers.gan.export import RESYNTH_GENERATOR, load_generator
    from trainers.gan.native import resynthesize

    written = make_gan_faces(samples, generator_path)
    generator, _ = load_generator(generator_path, "cpu")
    written.append(
        write_video(samples / "fake_video_gan_latent_walk.mp4", latent_walk_frames(generator), 12)
    )
    resynth, _ = load_generator(resynth_path or RESYNTH_GENERATOR, "cpu")
    for name in ("real_grace_hopper.jpg", "real_astronaut_eileen_collins.png"):
        src = samples / name
        twin = resynthesize(resynth, load_image(src))
        out = samples / ("fake_resynth_" + name.removeprefix("real_").rsplit(".", 1)[0] + ".jpg")
        written.append(save_image(out, twin, quality=90))
    return written


def make_provenance_samples(samples: Path, family: str = "ae_gan") -> list[Path]:
    """Two GAN faces that say what they are: a signed C2PA manifest, and generator settings.

    ``fake_c2pa_gan_face.jpg`` is ``fake_gan_face_1.png`` as JPEG with a C2PA manifest that
    declares ``trainedAlgorithmicMedia``, signed by a throwaway certificate made for it (its
    key is discarded). ``fake_params_gan_face.png`` is ``fake_gan_face_2.png`` with an
    AUTOMATIC1111-style ``parameters`` text chunk naming the project's generator (``family``:
    the family of the generator that made the two faces).
    """
    from PIL import Image, PngImagePlugin

    from forensics.media import encode_jpeg
    from forensics.provenance.signing import sign_image, throwaway_credentials

    signed = sign_image(
        encode_jpeg(load_image(samples / "fake_gan_face_1.png"), 95),
        "image/jpeg",
        throwaway_credentials(signer="forensics sample signer"),
        title="fake_c2pa_gan_face.jpg",
        software=f"forensics gan ({family} default generator)",
    )
    (samples / "fake_c2pa_gan_face.jpg").write_bytes(signed)
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a face\nSteps: 1, Sampler: forensics gan, CFG scale: 1, Seed: 2026, Size: 64x64, "
        f"Model: forensics {family} default generator",
    )
    out = samples / "fake_params_gan_face.png"
    Image.fromarray(load_image(samples / "fake_gan_face_2.png")).save(out, pnginfo=info)
    return [samples / "fake_c2pa_gan_face.jpg", out]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: rebuild the generated files in ``samples/``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, default=Path("samples"))
    parser.add_argument(
        "--generator", default=None, help="unconditional generator (default: the shipped one)"
    )
    parser.add_argument(
        "--resynth",
        default=None,
        help="resynth generator for the re-synthesised twins (default: the shipped one)",
    )
    parser.add_argument(
        "--provenance-only",
        action="store_true",
        help="only rebuild the two files with provenance (from the GAN faces already there)",
    )
    parser.add_argument(
        "--gan-faces-only",
        action="store_true",
        help="only rebuild the two GAN faces and, from them, the two files with provenance",
    )
    args = parser.parse_args(argv)
    from forensics.checkpoint import read_meta
    from trainers.gan.export import resolve_generator_path

    family = str(read_meta(resolve_generator_path(args.generator))["family"])
    if args.gan_faces_only:
        for path in make_gan_faces(args.samples, args.generator):
            print(path)
    if args.provenance_only or args.gan_faces_only:
        for path in make_provenance_samples(args.samples, family):
            print(path)
        return
    written = [
        make_real_video(
            args.samples / "real_grace_hopper.jpg", args.samples / "real_video_grace_hopper.mp4"
        )
    ]
    written += make_fakes(args.samples, args.generator, args.resynth)
    written += make_provenance_samples(args.samples, family)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()

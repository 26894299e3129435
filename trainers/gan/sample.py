"""Regenerate a folder of fake faces from a generator checkpoint, reproducibly, with a manifest.

Every latent comes from one ``torch.Generator`` seeded with ``seed`` and drawn all at once, so
the same checkpoint and seed give identical images whatever the batch size. ``manifest.jsonl``
lists each file with its generator family, the checkpoint's SHA-256, the seed, the codec and,
for ``resynth``, the real photo it re-renders (``source``).

Codec matching (``match_codec``) saves fakes with the codec and JPEG-quality distribution of
the real photos they will be paired with, so a detector cannot learn "PNG means fake".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.checkpoint import atomic_write_bytes, file_sha256
from forensics.device import resolve_device
from forensics.jpeg import jpeg_quality_estimate
from forensics.media import save_image
from trainers.gan.data import list_images, load_faces, to_tensor
from trainers.gan.evaluate import generate
from trainers.gan.export import family_label, load_generator

MANIFEST = "manifest.jsonl"
FORMATS = ("png", "jpeg")


def real_qualities(
    real_dir: str | os.PathLike, max_files: int = 500, seed: int = 0
) -> list[int | None]:
    """Estimated JPEG quality of (up to ``max_files``) real photos; ``None`` marks non-JPEGs."""
    files = list_images([real_dir])
    if len(files) > max_files:
        pick = np.random.default_rng(seed).choice(len(files), max_files, replace=False)
        files = [files[i] for i in sorted(pick)]
    return [jpeg_quality_estimate(f) for f in files]


def sample_images(
    checkpoint: str | os.PathLike | None,
    n: int,
    out: str | os.PathLike,
    seed: int = 0,
    fmt: str = "png",
    quality: int = 95,
    match_codec: str | os.PathLike | None = None,
    from_dir: str | os.PathLike | None = None,
    device: str | None = None,
    batch: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Write ``n`` generated faces and ``manifest.jsonl`` into ``out``.

    Args:
        checkpoint: Generator file, GAN run folder, or ``None`` for the shipped default.
        n: Number of images (for ``resynth``: at most this many of the ``from_dir`` photos;
            0 = all of them).
        out: Output folder (created).
        seed: Seed of the latents and of the codec draws.
        fmt: ``png`` or ``jpeg`` (ignored with ``match_codec``).
        quality: JPEG quality for ``fmt="jpeg"``.
        match_codec: Folder of real photos whose codec/quality distribution is copied. For
            ``resynth`` each fake takes its own source photo's quality when it is a JPEG.
        from_dir: Real photos to re-synthesise (required by ``resynth``, refused otherwise).
        device: ``auto``/``None``, ``cpu`` or ``cuda``.
        batch: Images per forward pass (does not change the images).
        on_progress: Called as ``on_progress(done, total)``.

    Returns:
        The manifest records.

    Raises:
        ValueError: Bad arguments (format, missing ``--from`` for resynth...).
        forensics.checkpoint.CheckpointError: The checkpoint is missing or invalid.

    """
    generator, plan = plan_samples(checkpoint, n, seed, fmt, quality, match_codec, from_dir, device)
    dev = resolve_device(device)
    Path(out).mkdir(parents=True, exist_ok=True)
    records = render_samples(generator, plan, out, 0, plan.total, dev, batch, on_progress)
    write_manifest(out, records)
    return records


@dataclass
class SamplePlan:
    """Everything about the images of one ``gan sample`` run, fixed before any is made.

    Attributes:
        checkpoint: The generator file used.
        family: Its generator family (``ae_gan_dcgan``, ``ae_gan_stylegan_lite`` for an
            ``ae_gan`` with that decoder): names the files and, for the detector, the source.
        size: Image side in pixels.
        sha256: The checkpoint's SHA-256.
        seed: The run's seed.
        inputs: One latent (or, for ``resynth``, one real face in ``[-1, 1]``) per image.
        sources: For ``resynth``, the real photo each image re-renders; else ``None`` each.
        codecs: ``(format, quality)`` of each image.

    """

    checkpoint: str
    family: str
    size: int
    sha256: str
    seed: int
    inputs: torch.Tensor
    sources: list[str | None]
    codecs: list[tuple[str, int | None]]

    @property
    def total(self) -> int:
        """Number of images."""
        return int(self.inputs.shape[0])


def plan_samples(
    checkpoint: str | os.PathLike | None,
    n: int,
    seed: int = 0,
    fmt: str = "png",
    quality: int = 95,
    match_codec: str | os.PathLike | None = None,
    from_dir: str | os.PathLike | None = None,
    device: str | None = None,
) -> tuple[torch.nn.Module, SamplePlan]:
    """Load the generator and draw every image's input and codec (see :func:`sample_images`).

    Returns:
        ``(generator on device, plan)``.

    Raises:
        ValueError: Bad arguments.
        forensics.checkpoint.CheckpointError: The checkpoint is missing or invalid.

    """
    if fmt not in FORMATS:
        raise ValueError(f"--image-format must be png or jpeg, not {fmt!r}")
    if not 1 <= quality <= 100:
        raise ValueError("--quality must be between 1 and 100")
    dev = resolve_device(device)
    generator, meta = load_generator(checkpoint, dev)
    family, size = family_label(meta), int(meta["size"])
    sha = file_sha256(meta["path"])
    sources: list[str | None]
    if getattr(generator, "conditional", False):
        if from_dir is None:
            raise ValueError(f"the {family} generator re-synthesises real photos: pass --from DIR")
        faces = load_faces([from_dir], size, "auto", None, n, device)
        inputs = to_tensor(faces.images)
        sources = list(faces.files)
    else:
        if from_dir is not None:
            raise ValueError(f"--from only applies to resynth generators, not {family}")
        if n < 1:
            raise ValueError("--n must be at least 1")
        gen = torch.Generator().manual_seed(int(seed))
        inputs = torch.randn(n, int(meta["kwargs"].get("z_dim", 128)), generator=gen)
        sources = [None] * n
    codecs = _codecs(inputs.shape[0], fmt, quality, match_codec, sources, seed)
    plan = SamplePlan(str(meta["path"]), family, size, sha, int(seed), inputs, sources, codecs)
    return generator, plan


def render_samples(
    generator: torch.nn.Module,
    plan: SamplePlan,
    out: str | os.PathLike,
    start: int,
    stop: int,
    device: torch.device,
    batch: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate and save images ``start`` to ``stop - 1`` of ``plan`` into ``out``.

    Image ``i`` depends only on ``plan.inputs[i]``; forward passes are cut at multiples of
    ``batch``, so splitting the run at multiples of ``batch`` (e.g. across Ray workers)
    gives the same bytes as one pass.

    Returns:
        The manifest records of these images, in order.

    """
    out = Path(out)
    records = []
    cuts = sorted({start, stop, *range(start - start % batch + batch, stop, batch)})
    for a, b in zip(cuts, cuts[1:], strict=False):
        images = generate(generator, plan.inputs[a:b], device, batch)
        for j, rgb in enumerate(images):
            i = a + j
            kind, q = plan.codecs[i]
            name = f"{plan.family}_s{plan.seed}_{i:06d}.{'jpg' if kind == 'jpeg' else 'png'}"
            save_image(out / name, rgb, quality=q)
            rec: dict[str, Any] = {
                "file": name,
                "family": plan.family,
                "checkpoint": plan.checkpoint,
                "checkpoint_sha256": plan.sha256,
                "seed": plan.seed,
                "index": i,
                "format": kind,
                "quality": q,
                "size": plan.size,
            }
            if plan.sources[i] is not None:
                rec["source"] = plan.sources[i]
            records.append(rec)
        if on_progress is not None:
            on_progress(b, plan.total)
    return records


def write_manifest(out: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Write ``manifest.jsonl`` (atomically), one sorted-key JSON line per image."""
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(Path(out) / MANIFEST, body.encode("utf-8"))


def _codecs(
    n: int,
    fmt: str,
    quality: int,
    match_codec: str | os.PathLike | None,
    sources: list[str | None],
    seed: int,
) -> list[tuple[str, int | None]]:
    """``(format, quality)`` for each output image."""
    if match_codec is None:
        return [(fmt, quality if fmt == "jpeg" else None)] * n
    pool = real_qualities(match_codec, seed=seed)
    rng = np.random.default_rng(seed + 7)
    out: list[tuple[str, int | None]] = []
    for i in range(n):
        own = jpeg_quality_estimate(sources[i]) if sources[i] is not None else None
        q = own if own is not None else pool[int(rng.integers(len(pool)))]
        out.append(("jpeg", int(q)) if q is not None else ("png", None))
    return out

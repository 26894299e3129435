"""Re-synthesise real photos at their native resolution with a ``resynth`` generator.

The ``resynth`` family is fully convolutional (strided-conv encoder, generator upsampling
decoder), so a model trained on 64-px faces can re-render a whole photo of any size. The
output keeps the person, pose, framing and size of the real twin and differs from it only by
the decoder's upsampling traces: the fairest possible fake for a detector, because nothing but
those traces separates the pair (and no "small image means fake" shortcut exists).

``forensics gan sample CHECKPOINT --from DIR --native`` calls :func:`resynth_folder`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forensics.checkpoint import atomic_write_bytes, file_sha256
from forensics.device import resolve_device
from forensics.jpeg import jpeg_quality_estimate
from forensics.media import MediaError, load_image, save_image
from trainers.gan.data import list_images, to_tensor, to_uint8
from trainers.gan.export import load_generator

MANIFEST = "manifest.jsonl"


def resynthesize(
    generator: torch.nn.Module,
    rgb: np.ndarray,
    device: torch.device | str = "cpu",
    multiple: int = 8,
) -> np.ndarray:
    """Re-render one RGB ``uint8`` photo through a resynth generator at its own size.

    The photo is reflect-padded to a multiple of ``multiple`` (the encoder's total stride),
    passed through the generator, and cropped back, so the output has the input's shape.
    The input array is not modified.
    """
    h, w = rgb.shape[:2]
    x = to_tensor(rgb[None]).to(device)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.inference_mode():
        y = generator(x)[:, :, :h, :w]
    return to_uint8(y)[0]


def resynth_folder(
    checkpoint: str | os.PathLike | None,
    from_dir: str | os.PathLike,
    out: str | os.PathLike,
    n: int = 0,
    seed: int = 0,
    max_side: int = 512,
    device: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Re-synthesise up to ``n`` photos of ``from_dir`` at native size into ``out``.

    Each fake is saved with its real twin's codec: a JPEG twin gives a JPEG at the twin's
    estimated quality, anything else a PNG. Photos larger than ``max_side`` are skipped (CPU
    memory), unreadable ones too; both are left out of the manifest.

    Args:
        checkpoint: A ``resynth`` generator file or run folder (``None``: shipped default).
        from_dir: Folder of real photos.
        out: Output folder (created); gets the images and ``manifest.jsonl``.
        n: Maximum number of photos (0: all), chosen with ``seed`` when fewer than all.
        seed: Seed of the choice of photos.
        max_side: Skip photos whose longer side exceeds this.
        device: ``auto``/``None``, ``cpu`` or ``cuda``.
        on_progress: Called as ``on_progress(done, total)``.

    Returns:
        The manifest records (``file, family, checkpoint, checkpoint_sha256, seed, index,
        format, quality, size, source, native``).

    Raises:
        ValueError: The checkpoint is not a re-synthesis generator.

    """
    dev = resolve_device(device)
    generator, meta = load_generator(checkpoint, dev)
    if not getattr(generator, "conditional", False):
        raise ValueError(f"--native needs a resynth generator, not {meta['family']}")
    files = list_images([from_dir])
    if n and n < len(files):
        pick = np.random.default_rng(seed).choice(len(files), n, replace=False)
        files = [files[i] for i in sorted(pick)]
    sha = file_sha256(meta["path"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for i, src in enumerate(files):
        try:
            rgb = load_image(src)
        except MediaError:
            continue
        if max(rgb.shape[:2]) > max_side or min(rgb.shape[:2]) < 16:
            continue
        fake = resynthesize(generator, rgb, dev)
        q = jpeg_quality_estimate(src)
        name = f"{meta['family']}_native_{i:06d}.{'jpg' if q is not None else 'png'}"
        save_image(out / name, fake, quality=q)
        records.append(
            {
                "file": name,
                "family": meta["family"],
                "checkpoint": str(meta["path"]),
                "checkpoint_sha256": sha,
                "seed": int(seed),
                "index": i,
                "format": "jpeg" if q is not None else "png",
                "quality": q,
                "size": [int(rgb.shape[1]), int(rgb.shape[0])],
                "source": str(src),
                "native": True,
            }
        )
        if on_progress is not None:
            on_progress(i + 1, len(files))
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(out / MANIFEST, body.encode("utf-8"))
    return records

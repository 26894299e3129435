"""Generator checkpoints: export an EMA generator, load one back, find the shipped default.

A generator checkpoint is a safetensors file (written by :func:`forensics.checkpoint.
save_checkpoint`) holding only the EMA generator's tensors, with a JSON header of format
``forensics.generator/1``: family, factory kwargs, image size, seed, data provenance, the
training step and the last measured quality metrics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forensics.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint

GENERATOR_FORMAT = "forensics.generator/1"
DEFAULT_GENERATOR = (
    Path(__file__).resolve().parents[2]
    / "forensics"
    / "weights"
    / ("generator_default.safetensors")
)
RESYNTH_GENERATOR = DEFAULT_GENERATOR.with_name("generator_resynth.safetensors")
"""The shipped re-synthesis generator (``--from DIR --native`` twins of real photos)."""
BEST_NAME = "generator_best.safetensors"
LAST_NAME = "generator_last.safetensors"


def family_label(meta: dict[str, Any]) -> str:
    """A generator checkpoint's family, naming ``ae_gan``'s decoder when it is not the default.

    ``ae_gan_dcgan`` and ``ae_gan_stylegan_lite`` carry other upsampling traces than
    ``ae_gan`` (``resize_conv`` decoder), so samples and reports keep them apart.
    """
    family = str(meta["family"])
    decoder = meta.get("kwargs", {}).get("decoder", "resize_conv")
    return f"{family}_{decoder}" if family == "ae_gan" and decoder != "resize_conv" else family


def export_generator(path: str | os.PathLike, generator: nn.Module, meta: dict[str, Any]) -> Path:
    """Save ``generator``'s weights and ``meta`` (family, kwargs, size...) as a checkpoint.

    Args:
        path: Destination ``.safetensors`` file (written atomically).
        generator: The (EMA) generator.
        meta: Must hold ``family``, ``kwargs`` and ``size``; ``format`` is added.

    """
    for key in ("family", "kwargs", "size"):
        if key not in meta:
            raise ValueError(f"generator meta needs {key!r}")
    from forensics import __version__

    state = generator.state_dict()
    if hasattr(generator, "sampling_state"):  # e.g. ae_gan: samples need no encoder
        state, extra = generator.sampling_state()
        meta = {**meta, "kwargs": {**meta["kwargs"], **extra}}
    full = {"format": GENERATOR_FORMAT, "forensics_version": __version__, **meta}
    return save_checkpoint(path, state, full)


def resolve_generator_path(path: str | os.PathLike | None) -> Path:
    """The checkpoint file to use: a file, a run folder (its best, else last), or the default.

    Raises:
        CheckpointError: Nothing usable is found, with a message saying what to do.

    """
    if path is None:
        if not DEFAULT_GENERATOR.is_file():
            raise CheckpointError(
                f"no default generator is installed ({DEFAULT_GENERATOR} is missing); "
                "train one with `forensics gan train` and pass its run folder or "
                f"{BEST_NAME} as CHECKPOINT"
            )
        return DEFAULT_GENERATOR
    p = Path(path)
    if p.is_dir():
        for name in (BEST_NAME, LAST_NAME):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} holds no {BEST_NAME} or {LAST_NAME}; is it a GAN run folder?")
    if not p.is_file():
        raise CheckpointError(f"generator checkpoint not found: {p}")
    return p


def load_generator(
    path: str | os.PathLike | None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a generator checkpoint (or a run folder, or the default when ``None``).

    Returns:
        ``(generator in eval mode on device, meta)``; ``meta["path"]`` is the file used.

    Raises:
        CheckpointError: Missing file, wrong format or mismatched weights.

    """
    from trainers.gan.models import create_generator

    file = resolve_generator_path(path)
    meta = read_meta(file)
    if meta.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(
            f"{file} is not a generator checkpoint (format {meta.get('format')!r}, "
            f"expected {GENERATOR_FORMAT!r})"
        )
    state, meta = load_checkpoint(file, device=device)
    try:
        generator = create_generator(meta["family"], **meta["kwargs"])
        generator.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{file}: cannot rebuild the generator ({exc})") from None
    generator.to(device).eval().requires_grad_(False)
    meta["path"] = str(file)
    return generator, meta

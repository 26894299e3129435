"""Capture and restore every random generator (torch, CUDA, NumPy, Python) for exact resume."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


@contextlib.contextmanager
def keep_rng() -> Iterator[None]:
    """Run a block without disturbing any random generator the training loop uses."""
    saved = get_rng()
    try:
        yield
    finally:
        set_rng(saved)


def get_rng() -> dict[str, Any]:
    """Every random generator's state, as tensors (so ``weights_only`` loading accepts it)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_extra": torch.tensor(
            [float(pos), float(has_gauss), float(gauss)], dtype=torch.float64
        ),
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def set_rng(rng: dict[str, Any]) -> None:
    """Restore the states captured by :func:`get_rng`."""
    torch.set_rng_state(rng["torch"])
    pos, has_gauss, gauss = rng["numpy_extra"].tolist()
    keys = rng["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(pos), int(has_gauss), float(gauss)))
    random.setstate((3, tuple(int(v) for v in rng["python"].tolist()), None))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])

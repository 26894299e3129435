"""Shared fixtures: a real public-domain portrait and tiny randomly initialised checkpoints.

No test uses a stand-in "default" model: the tiny checkpoints here detect nothing and tests
only check plumbing, contracts and invariants with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def portrait_path() -> Path:
    """Grace Hopper's US Navy portrait (public domain), shipped inside matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def portrait_rgb() -> np.ndarray:
    from forensics.media import load_image

    return load_image(portrait_path())


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine more threads only contend."""
    from forensics.device import torch_threads

    with torch_threads(1):
        yield


def make_tiny_checkpoint(path: Path, threshold: float = 0.5, seed: int = 0) -> Path:
    """A randomly initialised ``patch_tiny`` detector saved as a real checkpoint."""
    import torch

    from forensics.models import create_model
    from forensics.preprocess import Preprocess
    from forensics.scoring import Calibration, Detector, DetectorSpec

    torch.manual_seed(seed)
    spec = DetectorSpec(
        arch="patch_tiny",
        arch_kwargs={"width": 4},
        preprocess=Preprocess(input_size=32),
        calibration=Calibration(threshold=threshold),
        info={"note": "random weights for tests; detects nothing"},
    )
    return Detector(create_model(spec.arch, **spec.arch_kwargs), spec).save(path)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def face_detector():
    from forensics.faces import FaceDetector

    return FaceDetector(device="cpu")


def shared_data_or_skip() -> Path:
    """``../shared/data``; CI has it, so this only skips on machines that lack it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="module")
def tiny_faces(tmp_path_factory, portrait_rgb) -> Path:
    """24 small crops of the public-domain portrait, saved as JPEG (quality 60)."""
    from forensics.media import save_image

    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(24):
        y, x = rng.integers(0, 60, 2)
        crop = portrait_rgb[y : y + 300, x : x + 300]
        save_image(folder / f"face_{i:02d}.jpg", crop, quality=60)
    return folder

"""Units of trainers.gan: models, augmentation, losses, data loading, metrics, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_data_or_skip

from forensics.checkpoint import CheckpointError
from trainers.gan.augment import diff_augment, parse_policy
from trainers.gan.config import FAMILIES, GanConfig
from trainers.gan.data import load_faces, looks_like_crops, to_tensor, to_uint8
from trainers.gan.export import export_generator, load_generator
from trainers.gan.losses import d_hinge, g_hinge, r1_penalty
from trainers.gan.metrics import FaceRate, diversity, mean_pairwise_distance, precision_coverage
from trainers.gan.models import (
    EQUALIZED_LR_MULT,
    Discriminator,
    MinibatchStd,
    ModConv,
    count_params,
    create_generator,
    generator_param_groups,
    list_generators,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine more threads only contend."""
    from forensics.device import torch_threads

    with torch_threads(1):
        yield


def _kwargs(family: str, size: int = 16, width: int = 4) -> dict:
    cfg = GanConfig(family=family, data=("x",), size=size, width=width, z_dim=8)
    return cfg.model_kwargs()


@pytest.mark.parametrize("family", FAMILIES)
def test_generator_shapes_and_range(family):
    torch.manual_seed(0)
    g = create_generator(family, **_kwargs(family)).eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1 if g.conditional else torch.randn(3, 8)
    with torch.no_grad():
        y = g(x)
        first = g(x[:1])
    assert y.shape == (3, 3, 16, 16)
    assert float(y.abs().max()) <= 1.0
    # A sample depends only on its own input: no batch statistics (EMA-safe, reproducible).
    assert torch.allclose(first, y[:1], atol=1e-5)


def test_registry_and_families_differ_in_upsampling():
    assert set(FAMILIES) <= set(list_generators())
    with pytest.raises(KeyError, match="unknown generator family"):
        create_generator("nope")
    dc = create_generator("dcgan", size=16, width=4)
    rc = create_generator("resize_conv", size=16, width=4, upsample="bilinear")
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in dc.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in rc.modules())
    assert any(isinstance(m, torch.nn.Upsample) and m.mode == "bilinear" for m in rc.modules())


@pytest.mark.parametrize("family", ["stylegan_lite", "ae_gan", "dcgan"])
def test_equalized_lr_weights_and_only_they_learn_faster(family):
    kwargs = {"decoder": "stylegan_lite", "z_dim": 9} if family == "ae_gan" else {}
    g = create_generator(family, size=16, width=4, **kwargs)
    groups = generator_param_groups(g, 1e-3)
    assert sum(len(grp["params"]) for grp in groups) == len(list(g.parameters()))  # each once
    modconv = {id(m.weight) for m in g.modules() if isinstance(m, ModConv)}
    fast = [p for grp in groups if grp["lr"] > 1e-3 for p in grp["params"]]
    assert {id(p) for p in fast} == modconv
    assert all(grp["lr"] == 1e-3 * EQUALIZED_LR_MULT for grp in groups if grp["lr"] > 1e-3)
    assert (len(groups) == 1) == (family == "dcgan")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_at_128px(family):
    """Issue 17: 128 px is a supported size for every family, ``stylegan_lite`` included."""
    torch.manual_seed(0)
    g = create_generator(family, **_kwargs(family, size=128, width=2)).eval()
    x = torch.rand(2, 3, 128, 128) * 2 - 1 if g.conditional else torch.randn(2, 8)
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 3, 128, 128) and torch.isfinite(y).all()


def test_default_generators_are_small():
    for family in FAMILIES:
        g = create_generator(family, **_kwargs(family, size=64, width=16))
        assert count_params(g) * 4 < 10e6, family


def test_discriminator_and_minibatch_std():
    d = Discriminator(16, 4)
    assert d(torch.randn(4, 3, 16, 16)).shape == (4,)
    x = torch.randn(4, 2, 3, 3)
    y = MinibatchStd()(x)
    assert y.shape == (4, 3, 3, 3)
    assert torch.allclose(y[:, 2], x.std(dim=0, unbiased=False).mean().expand(4, 3, 3), atol=1e-4)
    same = MinibatchStd()(torch.ones(4, 2, 3, 3))
    assert float(same[:, 2].max()) < 1e-3  # collapsed batch -> no spread


def test_diffaugment_shapes_gradients_and_policy():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert diff_augment(x, "") is x
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        parse_policy("color,flip")


def test_losses():
    assert float(d_hinge(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(d_hinge(torch.zeros(4), torch.zeros(4))) == 2.0
    assert float(g_hinge(torch.full((4,), 3.0))) == -3.0
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    logits = (x * 2.0).flatten(1).sum(1)
    assert float(r1_penalty(logits, x)) == pytest.approx(4.0 * 3 * 8 * 8)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown family"):
        GanConfig(family="x", data=("d",)).validate()
    with pytest.raises(ValueError, match="size"):
        GanConfig(data=("d",), size=48).validate()
    with pytest.raises(ValueError, match="no training data"):
        GanConfig().validate()
    with pytest.raises(ValueError, match="upsample"):
        GanConfig(family="dcgan", data=("d",), upsample="transposed").validate()
    assert GanConfig(family="resynth").model_kwargs()["upsample"] == "transposed"


def test_tensor_round_trip_does_not_mutate():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    before = images.copy()
    assert np.array_equal(to_uint8(to_tensor(images)), images)
    assert np.array_equal(images, before)


def test_load_faces_skips_bad_files_and_caches(tmp_path, portrait_rgb):
    from forensics.media import save_image

    data = tmp_path / "data"
    for i in range(3):
        save_image(data / f"ok{i}.png", portrait_rgb[i * 10 : i * 10 + 200, :200])
    (data / "broken.jpg").write_bytes(b"not a jpeg at all")
    faces = load_faces([data], 32, crop="none", cache_dir=tmp_path / "run")
    assert faces.images.shape == (3, 32, 32, 3) and faces.images.dtype == np.uint8
    assert [s[0].endswith("broken.jpg") for s in faces.skipped] == [True]
    assert (tmp_path / "run" / "faces_32.npy").is_file()
    again = load_faces([data], 32, crop="none", cache_dir=tmp_path / "run")
    assert np.array_equal(again.images, faces.images) and again.files == faces.files
    with pytest.raises(ValueError, match="not found"):
        load_faces([tmp_path / "missing"], 32)


def test_load_faces_mtcnn_crops_and_reports_faceless(tmp_path, portrait_rgb):
    from forensics.media import save_image

    save_image(tmp_path / "portrait.png", portrait_rgb)
    save_image(
        tmp_path / "noise.png",
        np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8),
    )
    faces = load_faces([tmp_path], 32, crop="mtcnn", device="cpu")
    assert faces.images.shape == (1, 32, 32, 3) and faces.mode == "mtcnn"
    assert len(faces.skipped) == 1 and "no face" in faces.skipped[0][1]


def test_metrics_known_cases(face_detector):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    rate = FaceRate(device="cpu")
    assert rate(noise) <= 0.1
    same = np.repeat(noise[:1], 8, axis=0)
    assert mean_pairwise_distance(same) == pytest.approx(0.0, abs=1e-3)
    assert diversity(same, noise) < 0.01  # mode collapse
    assert diversity(noise, noise) == pytest.approx(1.0)
    pc = precision_coverage(noise, noise, k=3)
    assert pc == {"precision": 1.0, "coverage": 1.0}
    far = np.zeros_like(noise)
    assert precision_coverage(far, noise, k=3)["precision"] < 0.5


def test_face_rate_of_real_crops_is_high():
    from forensics.media import load_image, resize_rgb

    folder = shared_data_or_skip() / "train" / "real" / "utkface"
    files = sorted(folder.iterdir())[::600][:16]
    crops = np.stack([resize_rgb(load_image(f), (64, 64)) for f in files])
    assert FaceRate(device="cpu")(crops) >= 0.9
    assert looks_like_crops([load_image(f) for f in files[:4]], FaceRate(device="cpu").detector)


def test_export_and_load_generator(tmp_path):
    torch.manual_seed(0)
    g = create_generator("resize_conv", size=16, width=4, z_dim=8).eval()
    meta = {"family": "resize_conv", "kwargs": {"size": 16, "width": 4, "z_dim": 8}, "size": 16}
    path = export_generator(tmp_path / "g.safetensors", g, {**meta, "seed": 3})
    g2, meta2 = load_generator(path)
    z = torch.randn(2, 8)
    assert torch.equal(g(z), g2(z))
    assert meta2["format"] == "forensics.generator/1" and meta2["seed"] == 3
    with pytest.raises(ValueError, match="needs 'size'"):
        export_generator(tmp_path / "x.safetensors", g, {"family": "dcgan", "kwargs": {}})
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="run folder"):
        load_generator(tmp_path)

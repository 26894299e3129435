"""``ae_gan``: codes from an autoencoder, samples from a mixture fitted to them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainers.gan.aegan import GaussianMixturePrior, fit_prior
from trainers.gan.config import GanConfig
from trainers.gan.export import load_generator
from trainers.gan.models import ModConv, create_generator
from trainers.gan.sample import sample_images
from trainers.gan.train import train


def test_an_unfitted_prior_is_the_standard_normal_tail_of_z():
    prior = GaussianMixturePrior(dim=4, components=3)
    z = torch.randn(5, 5)
    assert torch.allclose(prior(z), z[:, 1:])


def test_fitted_prior_reproduces_the_clusters_and_their_weights():
    rng = np.random.default_rng(0)
    a = rng.normal(-5.0, 0.5, (300, 2))
    b = rng.normal(+5.0, 0.5, (100, 2))
    prior = GaussianMixturePrior(dim=2, components=2)
    prior.fit(np.concatenate([a, b]), seed=0)
    z = torch.randn(4000, 3, generator=torch.Generator().manual_seed(1))
    codes = prior(z).numpy()
    right = codes[:, 0] > 0
    assert abs(right.mean() - 0.25) < 0.03  # the weights: 100 of 400 codes
    assert np.allclose(codes[right].mean(0), 5.0, atol=0.1)
    assert np.allclose(codes[~right].std(0), 0.5, atol=0.05)
    assert torch.equal(prior(z[:7]), prior(z)[:7])  # a code depends on its own z only


def test_fit_prior_stores_one_mixture_in_every_copy_and_keeps_images():
    torch.manual_seed(0)
    g = create_generator("ae_gan", size=16, width=4, z_dim=5, components=2)
    ema = create_generator("ae_gan", size=16, width=4, z_dim=5, components=2)
    images = torch.randint(0, 256, (40, 16, 16, 3), dtype=torch.uint8)
    before = images.clone()
    codes = fit_prior([ema, g], images, seed=0)
    assert codes.shape == (40, 4)
    assert torch.equal(images, before)
    assert torch.equal(g.prior.means, ema.prior.means)
    assert not torch.equal(g.prior.means, torch.zeros_like(g.prior.means))


def test_training_fits_the_prior_and_sampling_is_reproducible(tmp_path, tiny_faces):
    cfg = GanConfig(
        family="ae_gan", data=(str(tiny_faces),), size=16, width=4, z_dim=5, batch=4, steps=4,
        holdout=6, eval_every=2, sample_every=2, checkpoint_every=2, eval_n=8, log_every=2, seed=1,
        device="cpu", threads=1,
    )  # fmt: skip
    train(cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert any("rec_l1" in r for r in records if r["event"] == "train")
    g, meta = load_generator(tmp_path / "run")
    assert meta["family"] == "ae_gan" and meta["kwargs"]["z_dim"] == 5
    assert not torch.equal(g.prior.means, torch.zeros_like(g.prior.means))
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(g(z), g(z))
        assert g(z).shape == (6, 3, 16, 16)


def test_exported_checkpoint_drops_the_encoder_and_samples_the_same(tmp_path):
    from trainers.gan.export import export_generator

    torch.manual_seed(0)
    g = create_generator("ae_gan", size=16, width=4, z_dim=5, components=2).eval()
    fit_prior([g], torch.randint(0, 256, (30, 16, 16, 3), dtype=torch.uint8))
    kwargs = {"size": 16, "width": 4, "z_dim": 5, "components": 2}
    path = export_generator(tmp_path / "g.safetensors", g, {"family": "ae_gan", "kwargs": kwargs,
                                                             "size": 16})  # fmt: skip
    loaded, meta = load_generator(path)
    assert meta["kwargs"]["with_encoder"] is False and loaded.encoder is None
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(z), g(z))


@pytest.mark.parametrize(
    ("decoder", "trace"),
    [
        ("dcgan", torch.nn.ConvTranspose2d),
        ("stylegan_lite", ModConv),
        ("resize_conv", torch.nn.Upsample),
    ],
)
def test_another_familys_generator_decodes_and_survives_export(
    tmp_path, tiny_faces, decoder, trace
):
    cfg = GanConfig(
        family="ae_gan", decoder=decoder, data=(str(tiny_faces),), size=16, width=4, z_dim=5,
        batch=4, steps=2, holdout=6, eval_every=2, sample_every=2, checkpoint_every=2, eval_n=8,
        log_every=2, seed=1, device="cpu", threads=1,
    )  # fmt: skip
    train(cfg, tmp_path / "run")
    g, meta = load_generator(tmp_path / "run")
    assert meta["kwargs"].get("decoder", "resize_conv") == decoder
    assert any(isinstance(m, trace) for m in g.decoder.modules())  # the family's upsampling
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(g(z), g(z)) and g(z).shape == (3, 3, 16, 16)
    sample_images(tmp_path / "run", 2, tmp_path / "fakes", seed=0, device="cpu")
    label = "ae_gan" if decoder == "resize_conv" else f"ae_gan_{decoder}"  # the detector's source
    manifest = (tmp_path / "fakes/manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["family"] for x in manifest] == [label, label]


def test_decoder_is_refused_outside_ae_gan_and_unknown_names():
    with pytest.raises(ValueError, match="ae_gan option"):
        GanConfig(family="dcgan", decoder="dcgan", data=("x",)).validate()
    with pytest.raises(ValueError, match="--decoder must be one of"):
        GanConfig(family="ae_gan", decoder="resynth", data=("x",)).validate()

"""Mode-collapse figures (trainers.gan.distribution) on constructed cases, and ``gan eval``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.cli.main import app
from trainers.gan.distribution import (
    MAX_LID,
    cross_lid,
    distribution_metrics,
    frechet_distance,
    frechet_from_moments,
    prdc,
)

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "shared/weights/mobilenetv2_100_in1k.safetensors"
)
runner = CliRunner()


@pytest.fixture(scope="module")
def diverse() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 16))


def test_identical_sets_cover_everything_at_distance_zero(diverse):
    m = distribution_metrics(diverse, diverse.copy())
    assert m["frechet"] == pytest.approx(0.0, abs=1e-6)
    assert m["coverage"] == m["precision"] == m["recall"] == 1.0
    assert m["density"] == pytest.approx(1.0, abs=0.05)


def test_one_image_repeated_is_collapse(diverse):
    rng = np.random.default_rng(1)
    other = rng.normal(size=(300, 16))  # a diverse sample of the same distribution
    collapsed = np.repeat(other[:1], 300, axis=0) + rng.normal(scale=1e-3, size=(300, 16))
    good, bad = prdc(diverse, other), prdc(diverse, collapsed)
    assert bad["coverage"] < 0.1 < 0.8 < good["coverage"]
    assert bad["recall"] < good["recall"]
    assert cross_lid(diverse, collapsed) > 2 * cross_lid(diverse, other)
    assert cross_lid(diverse, np.repeat(other[:1], 300, axis=0)) == pytest.approx(MAX_LID)
    assert frechet_distance(diverse, collapsed) > 5 * frechet_distance(diverse, other)


def test_frechet_matches_the_closed_form_for_known_gaussians():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([0.5, 0.0, -1.0, 3.0])
    s1, s2 = np.array([1.0, 0.5, 2.0, 1.5]), np.array([0.5, 0.5, 1.0, 3.0])  # std devs
    closed = float(((mu1 - mu2) ** 2).sum() + (s1**2 + s2**2 - 2 * s1 * s2).sum())
    assert frechet_from_moments(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(closed)
    a = mu1 + s1 * rng.normal(size=(40_000, 4))
    b = mu2 + s2 * rng.normal(size=(40_000, 4))
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.03)


def test_prdc_agrees_with_the_authors_package(diverse):
    reference = pytest.importorskip("prdc")
    fake = np.random.default_rng(3).normal(loc=0.4, size=(250, 16))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        theirs = reference.compute_prdc(diverse, fake, nearest_k=5)
    ours = prdc(diverse, fake, k=5)
    assert ours == pytest.approx({k: float(v) for k, v in theirs.items()})


def test_too_few_images_is_an_error(diverse):
    with pytest.raises(ValueError, match="more than k=5"):
        prdc(diverse[:5], diverse)


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="no ../shared/weights")
def test_mobilenet_features_are_deterministic_and_do_not_mutate(portrait_rgb):
    from trainers.gan.distribution import MobileNetFeatures

    embed = MobileNetFeatures(SHARED_WEIGHTS, device="cpu")
    images = [portrait_rgb[:256, :256].copy(), portrait_rgb[100:300, 50:250].copy()]
    before = [im.copy() for im in images]
    a, b = embed(images), embed(images)
    assert a.shape == (2, 1280) and np.array_equal(a, b) and np.isfinite(a).all()
    assert all(np.array_equal(x, y) for x, y in zip(images, before, strict=True))
    assert np.linalg.norm(a[0] - a[1]) > 0


def test_gan_eval_without_features_says_they_are_unavailable(tiny_faces):
    base = ["gan", "eval", "--real", str(tiny_faces), "--n", "8", "--device", "cpu"]
    res = runner.invoke(app, [*base, "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["feature_metrics"] is None and "unavailable" in out["feature_note"]
    res = runner.invoke(app, ["gan", "eval", "--real", str(tiny_faces), "--features", "missing.st"])
    assert res.exit_code == 2


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="no ../shared/weights")
def test_gan_eval_reports_samples_and_the_real_reference_line(tiny_faces):
    base = ["gan", "eval", "--real", str(tiny_faces), "--n", "8", "--device", "cpu"]
    res = runner.invoke(app, [*base, "--features", str(SHARED_WEIGHTS), "--format", "json"])
    assert res.exit_code == 0, res.output
    fm = json.loads(res.stdout)["feature_metrics"]
    assert fm["n_reference"] == 8
    for line in ("samples", "reference"):
        assert set(fm[line]) == {"frechet", "precision", "recall", "density", "coverage",
                                 "cross_lid"}  # fmt: skip
    # crops of one portrait cover each other far better than 64-px GAN faces cover them
    assert fm["reference"]["coverage"] > fm["samples"]["coverage"]
    table = runner.invoke(app, ["gan", "eval", "--real", str(tiny_faces), "--n", "8", "--device",
                                "cpu", "--features", str(SHARED_WEIGHTS)])  # fmt: skip
    assert "MobileNetV2 feature space" in table.stdout and "cross_lid" in table.stdout

"""Detector trainer units: calibration known answers, splits, twin pairing, safety, CLI errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from forensics.checkpoint import CheckpointError
from forensics.cli.main import app
from trainers.detector.augment import Augmenter, unsharp_mask, upscale
from trainers.detector.calibrate import calibrate, fit_temperature, threshold_for_fpr
from trainers.detector.crops import CachedCrop
from trainers.detector.data import Sample, samples_from_folder, split_train_val
from trainers.detector.dataset import TwinBatchSampler
from trainers.detector.metrics import equal_error_rate, expected_calibration_error, report

runner = CliRunner()
TRAIN_AB = ["detector", "train", "--out", "x", "--real", "a", "--fake", "b"]


def test_calibration_known_answer_on_gaussian_scores():
    rng = np.random.default_rng(0)
    n = 20000
    # Equal-variance Gaussians N(0,1) real / N(2,1) fake: log-odds = 2z - 2 exactly, so
    # Platt scaling must find temperature 1/2 and bias 1.
    z = np.concatenate([rng.normal(0, 1, n), rng.normal(2, 1, n)])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    temperature, bias = fit_temperature(z, y)
    assert temperature == pytest.approx(0.5, rel=0.05) and bias == pytest.approx(1.0, abs=0.05)
    for target in (0.01, 0.05):
        cal = calibrate(z, y, target_fpr=target, band_fpr=0.2)
        assert cal.target_fpr == target
        # On the calibration reals themselves the FPR never exceeds the target...
        assert (cal.prob(z[y == 0]) >= cal.threshold).mean() <= target
        # ...and on fresh reals from the same distribution it is the target within noise.
        fresh = rng.normal(0, 1, 200000)
        assert (cal.prob(fresh) >= cal.threshold).mean() == pytest.approx(target, abs=0.003)
        # The analytic threshold: the (1 - target) quantile of N(0,1) mapped by the calibration.
        q = {0.01: 2.3263, 0.05: 1.6449}[target]
        assert cal.threshold == pytest.approx(float(cal.prob(q)), abs=0.01)
        assert cal.band is not None and cal.band[0] < cal.band[1] == cal.threshold
        assert cal.verdict(cal.threshold) == "fake" and cal.verdict(cal.band[0]) == "uncertain"


def test_threshold_for_fpr_counts_exactly():
    scores = np.arange(100, dtype=float)
    t = threshold_for_fpr(scores, 0.05)
    assert (scores >= t).sum() == 5
    assert (scores >= threshold_for_fpr(scores, 0.0)).sum() == 0
    assert fit_temperature(np.ones(4), np.zeros(4)) == (1.0, 0.0)


def test_metrics_known_answers():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    perfect = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    r = report(y, perfect, threshold=0.5)
    assert r["auc"] == 1.0 and r["ap"] == 1.0 and r["eer"] == 0.0 and r["tpr_at_1fpr"] == 1.0
    assert r["accuracy"] == 1.0 and r["fpr"] == 0.0 and r["tpr"] == 1.0
    assert expected_calibration_error(y, y.astype(float)) == 0.0
    assert equal_error_rate(y, -perfect) == 1.0
    assert report(np.zeros(3, int), np.zeros(3), 0.5)["auc"] is None


def _write(folder: Path, names: list[str]) -> list[Path]:
    from forensics.media import save_image

    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.full((24, 24, 3), 128, np.uint8)
    return [save_image(folder / n, rgb) or folder / n for n in names]


def test_gan_manifest_twins_share_groups_and_never_cross_the_split(tmp_path):
    reals = _write(tmp_path / "utkface", [f"{a}_0_1_2017{a}.jpg.chip.jpg" for a in range(20, 40)])
    fake_dir = tmp_path / "fakes"
    _write(fake_dir, [f"resynth_{i:06d}.jpg" for i in range(20)] + ["dc_0.png", "dc_1.png"])
    recs = [
        {
            "file": f"resynth_{i:06d}.jpg",
            "family": "resynth",
            "seed": 1,
            "checkpoint_sha256": "0" * 64,
            "source": str(reals[i]),
        }
        for i in range(20)
    ]
    recs += [{"file": f"dc_{i}.png", "family": "dcgan", "seed": i,
              "checkpoint_sha256": "1" * 64} for i in range(2)]  # fmt: skip
    (fake_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    real_s = samples_from_folder(tmp_path / "utkface", 0)
    fake_s = samples_from_folder(fake_dir, 1)
    assert {s.source for s in fake_s} == {"resynth", "dcgan"}
    twins = [s for s in fake_s if s.source == "resynth"]
    assert {s.group for s in twins} == {s.group for s in real_s}
    assert all(s.twin == s.group for s in twins)
    for seed in range(5):
        train, val = split_train_val(real_s + fake_s, 0.25, seed)
        assert {s.group for s in train}.isdisjoint({s.group for s in val})
        assert {s.label for s in val} == {0, 1} and len(val) < len(train)
        # A split is by group, so moving the seed moves whole twin pairs.
        for s in val:
            if s.twin:
                assert any(r.group == s.twin for r in val if r.label == 0)


def test_twin_batches_hold_both_members_and_cover_every_item(tmp_path):
    items = []
    for i in range(10):
        items.append(CachedCrop(Sample(f"r{i}", 0, "real", f"g{i}"), f"r{i}.png", True))
        items.append(CachedCrop(Sample(f"f{i}", 1, "resynth", f"g{i}", twin=f"g{i}"), "f", True))
    sampler = TwinBatchSampler(items, batch_size=4, seed=3)
    batches = sampler.epoch_batches()
    seen = [i for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 20
    where = {i: k for k, b in enumerate(batches) for i in b}
    for i in range(10):
        assert where[2 * i] == where[2 * i + 1]  # real twin and its fake in one batch
    again = TwinBatchSampler(items, batch_size=4, seed=3)
    assert again.epoch_batches() == batches
    sampler.set_epoch(1)
    assert sampler.epoch_batches() != batches
    even = items[:16]  # 4 batches: 2 per rank, no padding repeat
    shards = [TwinBatchSampler(even, 4, 3, num_replicas=2, rank=r).epoch_batches() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 2
    flat = [{i for b in s for i in b} for s in shards]
    assert flat[0].isdisjoint(flat[1]) and len(flat[0] | flat[1]) == 16


def test_augmenter_is_seeded_and_does_not_mutate(portrait_rgb):
    rgb = portrait_rgb[:160, :160].copy()
    before = rgb.copy()
    aug = Augmenter(p_jpeg=1.0, p_downscale=1.0, p_blur=1.0, p_grey=1.0, p_jitter=1.0)
    a = aug(rgb, np.random.default_rng(5))
    b = aug(rgb, np.random.default_rng(5))
    assert np.array_equal(rgb, before) and np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a[..., 0], a[..., 1])  # grey kept as three equal channels


def test_disabled_later_steps_keep_the_random_stream(portrait_rgb):
    # Runs configured before upscale/sharpen existed must replay exactly on resume.
    rgb = portrait_rgb[:160, :160].copy()
    off = Augmenter(upscale=(1.9, 2.0), sharpen=(2.0, 2.5))
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(Augmenter()(rgb, rng_a), off(rgb, rng_b))
    assert rng_a.random() == rng_b.random()
    only = {"p_crop": 0, "p_flip": 0, "p_jitter": 0, "p_grey": 0, "p_blur": 0, "p_jpeg": 0}
    on = Augmenter(**only, p_downscale=0, p_upscale=1.0, upscale=(1.5, 1.5), p_sharpen=1.0)
    out = on(rgb, np.random.default_rng(3))
    assert out.shape == (240, 240, 3) and out.dtype == np.uint8


def test_unsharp_mask_adds_detail_and_upscale_removes_it(portrait_rgb):
    import cv2

    rgb = portrait_rgb[:160, :160].copy()
    before = rgb.copy()

    def detail(x: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    sharp = unsharp_mask(rgb, 1.0, 1.0)
    big = upscale(rgb, 2.0)
    assert np.array_equal(rgb, before)
    assert detail(sharp) > 1.5 * detail(rgb) and np.array_equal(unsharp_mask(rgb, 0.0, 1.0), rgb)
    assert big.shape == (320, 320, 3) and detail(big) < 0.5 * detail(rgb)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_checkpoint_carrying_code_is_refused(tmp_path):
    from forensics.scoring import Detector

    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"state_dict": {}, "meta": {}, "x": _Evil(marker)}, fh)
    torch.save({"state_dict": {"w": _Evil(marker)}}, tmp_path / "evil2.pt")
    for path in (bad, tmp_path / "evil2.pt"):
        with pytest.raises(CheckpointError):
            Detector.from_checkpoint(path)
        res = runner.invoke(app, ["detector", "eval", str(path), "--real", str(tmp_path),
                                  "--fake", str(tmp_path)])  # fmt: skip
        assert res.exit_code == 2 and "error" in res.output.lower()
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["detector", "train", "--out", "x"],
        ["detector", "train", "--out", "x", "--real", "a", "--arch-kwargs", "{bad"],
        ["detector", "train", "--out", "x", "--real", "a", "--fake", "b", "--target-fpr", "2"],
        ["detector", "train", "--out", "/nonexistent/run", "--resume"],
        ["detector", "eval", "--real", "a"],
        ["detector", "eval", "m.safetensors", "--real", "nope", "--fake", "nope"],
        ["detector", "eval", "--real", ".", "--fake", ".", "--format", "csv"],
        ["detector", "train", "--bogus"],
        [*TRAIN_AB, "--fit", "stretch"],
        [*TRAIN_AB, "--augment-kwargs", "[1]"],
        [*TRAIN_AB, "--augment-kwargs", '{"p_jpeg": 3}'],
        [*TRAIN_AB, "--augment-kwargs", '{"p_nothing": 0.1}'],
    ],
)
def test_cli_usage_errors_exit_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output


def test_eval_without_default_model_explains(tmp_path, monkeypatch):
    import forensics.scoring

    monkeypatch.setattr(forensics.scoring, "default_model_path", lambda: tmp_path / "none")
    (tmp_path / "r").mkdir()
    res = runner.invoke(app, ["detector", "eval", "--real", str(tmp_path / "r"),
                              "--fake", str(tmp_path / "r")])  # fmt: skip
    assert res.exit_code == 2 and "default detector" in res.output


def test_augmenter_overrides_from_json():
    aug = Augmenter.from_kwargs({"p_blur": 0.0, "jpeg_quality": [55, 100]})
    assert aug.p_blur == 0.0 and aug.jpeg_quality == (55, 100) and aug.p_flip == Augmenter().p_flip
    with pytest.raises(ValueError, match="range"):
        Augmenter.from_kwargs({"jpeg_quality": [90, 50]})
    with pytest.raises(TypeError):
        Augmenter.from_kwargs({"p_unknown": 0.5})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fit", "stretch"], "fit must be"),
        (["--score-size", "256"], "score_size needs fit 'center'"),
        (["--ema", "1.5"], "ema must be"),
        (["--patch-loss", "-1"], "patch_loss must be"),
        (["--fit", "center", "--score-size", "8"], "at least input_size"),
        (["--augment-kwargs", '{"p_jpeg": 3}'], "p_jpeg must be between 0 and 1"),
        (["--augment-kwargs", '{"p_nothing": 0.1}'], "p_nothing"),
        (["--augment-kwargs", "[1]"], "must be a JSON object"),
    ],
)
def test_bad_training_options_are_named(extra, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*TRAIN_AB, *extra])
    assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "x").exists()  # nothing written before the config is valid

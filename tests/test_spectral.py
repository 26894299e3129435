"""Native-resolution scoring: spectral features, the spectral detectors, ``fit="center"``.

The physics is checked with synthetic images whose answer is known: blurring removes
high-frequency power, a period-2 pattern (a transposed-convolution checkerboard) adds corner
Nyquist power. The ``center`` preprocessing must keep pixels untouched, never mutate its input,
and map the evidence back onto the crop it came from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensics.models import create_model, list_models
from forensics.preprocess import Preprocess
from forensics.scoring import Calibration, Detector, DetectorSpec
from forensics.spectral import (
    feature_count,
    quadrant_feature_count,
    radial_index,
    window_quadrant_spectra,
    window_spectra,
)


def _noise(seed: int = 0, size: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _pixels(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float()


def test_radial_index_is_symmetric_and_clipped():
    r = radial_index(32)
    assert r[0, 0] == 0 and int(r.max()) == 16
    assert torch.equal(r, r.T) and r[0, 1] == r[0, 31] == 1  # negative frequencies wrap


def test_window_spectra_shape_and_blur_removes_high_frequencies():
    import cv2

    sharp = _noise()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    f_sharp = window_spectra(_pixels(sharp))
    f_blur = window_spectra(_pixels(blurred))
    assert f_sharp.shape == (1, feature_count(32), 7, 7)
    top_band = slice(12, 16)  # luma radial bins 13..16
    assert (f_blur[:, top_band] < f_sharp[:, top_band] - 1.0).all()
    low_band = slice(0, 2)
    assert (f_blur[:, top_band].mean() - f_sharp[:, top_band].mean()) < (
        f_blur[:, low_band].mean() - f_sharp[:, low_band].mean()
    )


def test_checkerboard_raises_corner_nyquist_power():
    import cv2

    base = cv2.GaussianBlur(_noise(1), (0, 0), 2.0).astype(np.int16)
    yy, xx = np.indices(base.shape[:2])
    board = np.where((yy + xx) % 2 == 0, 6, -6)[..., None]
    with_board = np.clip(base + board, 0, 255).astype(np.uint8)
    corner = feature_count(32) - 1
    clean = window_spectra(_pixels(base.astype(np.uint8)))[:, corner]
    checked = window_spectra(_pixels(with_board))[:, corner]
    assert (checked > clean + 3.0).all()


@pytest.mark.parametrize(("window", "stride"), [(32, 16), (64, 32)])
def test_one_sided_spectra_equal_the_full_fft_definition(window, stride):
    """The fast path (rfft2 + a radial-mean matrix) against the textbook full-plane sums."""
    x = torch.from_numpy(_noise(20, 128)).permute(2, 0, 1)[None].float()
    fast = window_spectra(x, window, stride)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    tiles = luma.unfold(1, window, stride).unfold(2, window, stride)
    tiles = tiles - tiles.mean(dim=(-1, -2), keepdim=True)
    hann = torch.hann_window(window, periodic=False)
    power = torch.fft.fft2(tiles * (hann[:, None] * hann[None, :])).abs().pow(2)
    r = radial_index(window)
    for radius in (1, window // 4, window // 2):
        expected = torch.log1p(power[..., r == radius].mean(dim=-1))[0]
        assert torch.allclose(fast[0, radius - 1], expected, rtol=1e-4, atol=1e-4)


def _wave(fy: int, fx: int, size: int = 64) -> np.ndarray:
    yy, xx = np.indices((size, size))
    wave = 128 + 100 * np.cos(2 * np.pi * (fy * yy + fx * xx) / size)
    return np.repeat(wave[..., None], 3, axis=2).astype(np.uint8)


def test_quadrant_spectra_keep_the_orientation_that_radial_means_lose():
    """A wave at (vertical 24, horizontal 8) and its transpose have the same radial spectrum
    but transposed 2-D features; the peak lands in the pooled block of its frequencies."""
    a = window_quadrant_spectra(_pixels(_wave(24, 8)), 64, 32, pool=4)
    b = window_quadrant_spectra(_pixels(_wave(8, 24)), 64, 32, pool=4)
    assert a.shape == (1, quadrant_feature_count(64, 4), 1, 1) == (1, 64, 1, 1)
    grid_a, grid_b = a[0, :, 0, 0].view(8, 8), b[0, :, 0, 0].view(8, 8)
    assert int(grid_a.argmax()) == (24 - 1) // 4 * 8 + (8 - 1) // 4  # block row 5, column 1
    assert torch.allclose(grid_a, grid_b.T, atol=1e-3)
    radial_a = window_spectra(_pixels(_wave(24, 8)), 64, 32)
    radial_b = window_spectra(_pixels(_wave(8, 24)), 64, 32)
    assert torch.allclose(radial_a[:, :32], radial_b[:, :32], atol=1e-3)


def test_quadrant_spectra_ignore_mirroring_and_check_pool():
    x = _noise(5, 64)
    feats = window_quadrant_spectra(_pixels(x), 64, 32)
    for flipped in (x[::-1], x[:, ::-1]):
        mirrored = window_quadrant_spectra(_pixels(np.ascontiguousarray(flipped)), 64, 32)
        assert torch.allclose(feats, mirrored, atol=1e-3)
    with pytest.raises(ValueError, match="pool"):
        window_quadrant_spectra(_pixels(x), 64, 32, pool=3)


@pytest.mark.parametrize(
    ("arch", "grid", "kwargs"),
    [
        ("spectral_patch", 7, {}),
        ("spectral_patch", 3, {"window": 64, "stride": 32, "features": "quadrant"}),
        ("spectral_hybrid", 7, {}),
        ("spectral_multiscale", 3, {}),
        ("spectral_multiscale", 3, {"features": ["radial", "quadrant"]}),  # as JSON gives it
    ],
)
def test_spectral_models_keep_the_patch_contract(arch, grid, kwargs):
    assert arch in list_models()
    torch.manual_seed(0)
    model = create_model(arch, hidden=8, **kwargs).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 128, 128) * 2 - 1)
        tiny = model(torch.rand(1, 3, 20, 24) * 2 - 1)  # smaller than one window: padded
    assert out["logit"].shape == (2,) and out["patch_logits"].shape == (2, grid, grid)
    assert torch.allclose(out["logit"], out["patch_logits"].mean(dim=(1, 2)), atol=1e-5)
    assert tiny["patch_logits"].shape == (1, 1, 1)
    with pytest.raises(ValueError):
        create_model("spectral_patch", window=7)
    with pytest.raises(ValueError, match="fine < coarse"):
        create_model("spectral_multiscale", windows=(64, 32))
    with pytest.raises(ValueError, match="unknown spectral features"):
        create_model("spectral_multiscale", features=("radial", "cepstral"))
    with pytest.raises(ValueError, match="pool"):
        create_model("spectral_patch", window=64, features="quadrant", pool=5)


def test_center_fit_keeps_native_pixels_and_does_not_mutate():
    pre = Preprocess(input_size=64, fit="center")
    crop = _noise(2, 100)[:, :90].copy()
    before = crop.copy()
    out = pre.fit_crop(crop)
    assert out.shape == (64, 64, 3) and np.array_equal(crop, before)
    y, x = pre.window(crop.shape)
    assert np.array_equal(out, crop[y : y + 64, x : x + 64])  # no resampling at all
    rng = np.random.default_rng(0)
    ys, xs = zip(*(pre.window(crop.shape, rng) for _ in range(50)), strict=True)
    assert len(set(ys)) > 1 and 0 <= min(ys) and max(ys) <= 100 - 64 and max(xs) <= 90 - 64


def test_center_fit_pads_small_crops_around_their_pixels():
    pre = Preprocess(input_size=64, fit="center")
    small = _noise(3, 40)[:, :31].copy()
    out = pre.fit_crop(small)
    y, x = pre.window(small.shape)
    assert out.shape == (64, 64, 3) and y < 0 and x < 0
    assert np.array_equal(out[-y : -y + 40, -x : -x + 31], small)


def test_min_size_scores_mid_size_crops_whole_instead_of_padding():
    pre = Preprocess(input_size=96, fit="center", min_size=48)
    assert [pre.side(s) for s in ((200, 150), (80, 70), (30, 100))] == [96, 70, 48]
    mid = _noise(9, 100)[:, :70].copy()
    out = pre.fit_crop(mid)
    assert out.shape == (70, 70, 3) and np.array_equal(out, mid[15:85])  # no mirrored pixels
    placed = pre.evidence_in_crop(np.zeros((3, 3), np.float32), mid.shape)
    assert placed.shape == (4, 3)  # ~23-px cells of the 70-px window over the 100x70 crop
    assert np.isnan(placed[0]).all() and np.isfinite(placed[1:3]).all()  # top rows unscored
    with pytest.raises(ValueError, match="min_size"):
        Preprocess(input_size=64, min_size=32)  # resize fit has no window


def test_mixed_crop_sides_are_batched_by_side_and_scored_as_one_by_one():
    torch.manual_seed(0)
    spec = DetectorSpec(
        arch="spectral_patch",
        arch_kwargs={"hidden": 8},
        preprocess=Preprocess(input_size=96, fit="center", min_size=48),
        calibration=Calibration(),
    )
    detector = Detector(create_model(spec.arch, **spec.arch_kwargs), spec, device="cpu")
    crops = [_noise(10, 120), _noise(11, 60), _noise(12, 30), _noise(13, 130), _noise(14, 60)]
    sides = [[detector.preprocess.side(crops[i].shape) for i in idx] for idx, _ in
             detector.preprocess.batches(crops, batch_size=2)]  # fmt: skip
    assert all(len(set(group)) == 1 for group in sides) and sum(map(len, sides)) == 5
    together, maps = detector.logits(crops, batch_size=2)
    for crop, z, m in zip(crops, together, maps, strict=True):
        alone, (alone_map,) = detector.logits([crop])
        assert z == pytest.approx(alone[0], abs=1e-5) and m.shape == alone_map.shape


def test_evidence_is_placed_where_the_window_was():
    pre = Preprocess(input_size=64, fit="center")
    evidence = np.arange(16, dtype=np.float32).reshape(4, 4)
    placed = pre.evidence_in_crop(evidence, (128, 96, 3))
    assert placed.shape == (8, 6)  # same 16-px cells over the whole crop
    assert np.isnan(placed[0, 0]) and np.isnan(placed[-1, -1])
    assert np.nanmin(placed) == 0 and np.nanmax(placed) == 15
    assert np.isfinite(placed).sum() == 16
    resize = Preprocess(input_size=64)
    assert resize.evidence_in_crop(evidence, (128, 96, 3)) is evidence
    with pytest.raises(ValueError, match="fit"):
        Preprocess(fit="stretch")


def test_spectral_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    spec = DetectorSpec(
        arch="spectral_patch",
        arch_kwargs={"hidden": 8},
        preprocess=Preprocess(input_size=64, fit="center"),
        calibration=Calibration(temperature=2.0, bias=0.5, threshold=0.4),
    )
    model = create_model(spec.arch, **spec.arch_kwargs)
    with torch.no_grad():  # non-trivial normalisation statistics must survive the round trip
        model.norm.running_mean.uniform_(-1, 1)
        model.norm.running_var.uniform_(0.5, 2)
    path = Detector(model, spec).save(tmp_path / "spec.safetensors")
    loaded = Detector.load(path, device="cpu")
    assert loaded.preprocess.fit == "center" and loaded.preprocess.input_size == 64
    crops = [_noise(4, 100), _noise(5, 50)]
    a = Detector(model, spec, device="cpu").predict(crops)
    b = loaded.predict(crops)
    for p, q, c in zip(a, b, crops, strict=True):
        assert p.prob == pytest.approx(q.prob, abs=1e-6)
        assert p.evidence.shape == q.evidence.shape
        cells = 3 / 64  # a 3x3 map over the 64-px window
        assert p.evidence.shape == (round(c.shape[0] * cells), round(c.shape[1] * cells))


def test_quadrant_multiscale_checkpoint_round_trip(tmp_path):
    """The shipped default's kind: arch kwargs go through JSON (tuples come back as lists)."""
    torch.manual_seed(1)
    spec = DetectorSpec(
        arch="spectral_multiscale",
        arch_kwargs={"features": ("radial", "quadrant"), "hidden": 8},
        preprocess=Preprocess(input_size=128, fit="center", min_size=64),
    )
    model = create_model(spec.arch, **spec.arch_kwargs)
    path = Detector(model, spec).save(tmp_path / "q.safetensors")
    loaded = Detector.load(path, device="cpu")
    assert loaded.spec.arch_kwargs["features"] == ["radial", "quadrant"]
    assert loaded.model.coarse.features == "quadrant" and loaded.model.fine.features == "radial"
    crops = [_noise(7, 140), _noise(8, 90)]
    a = Detector(model, spec, device="cpu").logits(crops)[0]
    np.testing.assert_allclose(loaded.logits(crops)[0], a, atol=1e-6)


def test_old_checkpoints_without_fit_still_resize(tiny_checkpoint):
    detector = Detector.load(tiny_checkpoint, device="cpu")
    assert detector.preprocess.fit == "resize"
    crop = _noise(6, 100)
    assert detector.preprocess.fit_crop(crop).shape == (32, 32, 3)


def test_trained_spectral_model_seeds_the_hybrids_spectral_branch(tmp_path):
    from forensics.checkpoint import save_checkpoint
    from trainers.detector.export import load_init_weights

    torch.manual_seed(0)
    spectral = create_model("spectral_patch")
    path = save_checkpoint(tmp_path / "s.safetensors", spectral.state_dict(), {"note": "test"})
    hybrid = create_model("spectral_hybrid")
    assert load_init_weights(hybrid, path) == {"loaded": len(spectral.state_dict()), "skipped": 0}
    for key, value in spectral.state_dict().items():
        assert torch.equal(hybrid.state_dict()[f"spectral.{key}"], value)


def test_unscored_cells_neither_spread_nor_shrink_the_heat():
    from forensics.heatmaps import evidence_to_heat

    evidence = np.full((10, 10), np.nan, np.float32)
    evidence[2:8, 3:9] = 1.0
    heat = evidence_to_heat(evidence, (100, 100))
    scored = np.isfinite(heat)
    assert scored.sum() == 60 * 60 and scored[20:80, 30:90].all()
    assert heat[scored] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_max_side_scores_large_crops_as_the_training_cache_saw_them():
    from forensics.media import shrink_to

    pre = Preprocess(input_size=64, fit="center", max_side=100)
    big = _noise(7, 300)[:, :240].copy()
    assert np.array_equal(pre.fit_crop(big), pre.fit_crop(shrink_to(big, 100)))
    small = _noise(8, 90)
    unlimited = Preprocess(input_size=64, fit="center")
    assert np.array_equal(pre.fit_crop(small), unlimited.fit_crop(small))
    placed = pre.evidence_in_crop(np.zeros((3, 3), np.float32), big.shape)
    # The 3x3 map covers 64x64 of the 100x80 shrunk pixels; the grid spans the whole crop at
    # the map's cell size (a window edge off the cell grid can round one row/column in).
    assert placed.shape == (5, 4) and 9 <= np.isfinite(placed).sum() <= 12
    assert np.isnan(placed).any()

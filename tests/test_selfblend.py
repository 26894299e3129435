"""Self-blended fakes: the pure blend, the fake folder with its twins, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forensics.media import load_image, save_image
from forensics.scan_setup import make_face_detector
from trainers.detector.data import group_key, samples_from_folder
from trainers.detector.selfblend import blend_mask, main, self_blend, selfblend_folder

# Five landmarks of a face centred in a 96x96 image: eyes, nose, mouth corners.
LANDMARKS = ((36.0, 40.0), (60.0, 40.0), (48.0, 52.0), (38.0, 64.0), (58.0, 64.0))


def test_mask_is_soft_and_centred_on_the_face():
    for seed in range(5):
        m = blend_mask((96, 96, 3), LANDMARKS, np.random.default_rng(seed))
        assert m.shape == (96, 96, 1) and m.dtype == np.float32
        assert 0.0 <= m.min() and m.max() <= 1.0 + 1e-6
        assert m[52, 48, 0] > 0.4  # between eyes and mouth
        assert m[:6, :6].max() == 0.0 and m[-6:, -6:].max() == 0.0  # corners untouched
        assert 0.0 < m[m > 0].min() < 0.5  # a soft edge, not a hard paste


def test_blend_is_seeded_local_and_leaves_its_input_alone():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    before = rgb.copy()
    a = self_blend(rgb, LANDMARKS, np.random.default_rng(7))
    b = self_blend(rgb, LANDMARKS, np.random.default_rng(7))
    c = self_blend(rgb, LANDMARKS, np.random.default_rng(8))
    assert np.array_equal(rgb, before)
    assert a.dtype == np.uint8 and a.shape == rgb.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[:6, :6], rgb[:6, :6])  # outside the mask: the photo's own pixels
    assert np.abs(a[44:60, 40:56].astype(int) - rgb[44:60, 40:56]).mean() > 1.0  # inside: altered


def test_crude_blend_reaches_further_with_a_harder_edge_and_another_tone():
    plain = [blend_mask((96, 96, 3), LANDMARKS, np.random.default_rng(s)) for s in range(8)]
    crude = [
        blend_mask((96, 96, 3), LANDMARKS, np.random.default_rng(s), crude=True) for s in range(8)
    ]
    assert np.mean([(m > 0.5).sum() for m in crude]) > 1.3 * np.mean(
        [(m > 0.5).sum() for m in plain]
    )
    soft = [((m > 0.05) & (m < 0.95)).sum() / max((m > 0.5).sum(), 1) for m in plain]
    hard = [((m > 0.05) & (m < 0.95)).sum() / max((m > 0.5).sum(), 1) for m in crude]
    assert np.mean(hard) < np.mean(soft)  # relatively thinner fade: a visible seam
    flat = np.full((96, 96, 3), 120, np.uint8)
    shifts = [
        np.abs(
            self_blend(flat, LANDMARKS, np.random.default_rng(s), crude=1.0)[48, 48] - 120.0
        ).max()
        for s in range(8)
    ]
    assert np.median(shifts) > 8  # another skin tone or lighting inside the mask
    rgb = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    same = self_blend(rgb, LANDMARKS, np.random.default_rng(3))
    assert np.array_equal(same, self_blend(rgb, LANDMARKS, np.random.default_rng(3), crude=0.0))


@pytest.fixture(scope="module")
def reals(tmp_path_factory, portrait_rgb):
    d = tmp_path_factory.mktemp("sb") / "people"
    d.mkdir()
    save_image(d / "anna_0001.jpg", portrait_rgb, quality=92)
    save_image(d / "anna_0002.jpg", portrait_rgb[:, ::-1], quality=92)
    save_image(d / "blank_0001.png", np.full((96, 96, 3), 128, np.uint8))
    return d


def test_folder_names_each_fakes_twin_and_is_reproducible(reals, tmp_path):
    paths = sorted(str(p) for p in reals.iterdir())
    fd = make_face_detector("cpu")
    counts = selfblend_folder(paths, tmp_path / "a", fd, per_image=2, seed=3)
    assert counts == {"photos": 3, "written": 4, "no_face": 1, "unreadable": 0}
    again = selfblend_folder(paths, tmp_path / "b", fd, per_image=2, seed=3)
    assert again == counts
    for name in ("selfblend_000000_0.png", "selfblend_000001_1.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    fakes = samples_from_folder(tmp_path / "a", label=1)
    assert len(fakes) == 4 and {s.source for s in fakes} == {"selfblend"}
    real_groups = {group_key(p) for p in paths}
    assert {s.twin for s in fakes} <= real_groups and all(s.group == s.twin for s in fakes)
    fake = load_image(tmp_path / "a" / "selfblend_000000_0.png")
    real = load_image(paths[0])
    assert fake.shape == real.shape and not np.array_equal(fake, real)


def test_cli_caps_like_the_trainer(reals, tmp_path, capsys):
    out = tmp_path / "cli"
    main([str(reals), str(out), "--max-per-source", "2", "--seed", "1"])
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["photos"] == 2
    rows = (out / "manifest.jsonl").read_text().splitlines()
    assert len(rows) == counts["written"] and all(json.loads(r)["seed"] == 1 for r in rows)
    with pytest.raises(SystemExit):
        main([str(out)])


def test_cached_crops_keep_landmarks_and_blend_on_the_fly(tmp_path, portrait_rgb):
    """Landmarks follow the face into its cached crop; reals become fresh blends per epoch."""
    from detector_data import make_folders

    from forensics.preprocess import Preprocess
    from trainers.detector.crops import prepare_crops
    from trainers.detector.data import collect_samples
    from trainers.detector.dataset import CropDataset

    real, _ = make_folders(tmp_path / "data", portrait_rgb, n=3)
    samples = collect_samples(real=[real])
    cache = tmp_path / "crops"
    crops, errors = prepare_crops(samples, cache, 0.25, cache_side=64)
    assert not errors and all(c.face and c.landmarks for c in crops)
    for c in crops:
        side = load_image(c.crop_path).shape[0]
        pts = np.array(c.landmarks)
        assert pts.shape == (5, 2) and (pts > 0).all() and (pts < side).all()
        assert pts[0, 0] < pts[1, 0] and pts[2, 1] < pts[3, 1]  # eyes left-right, mouth below

    # An entry cached before landmarks were kept is cut again only when they are needed.
    index = json.loads((cache / "index.json").read_text())
    for entry in index.values():
        del entry["landmarks"]
    (cache / "index.json").write_text(json.dumps(index))
    old, _ = prepare_crops(samples, cache, 0.25, cache_side=64)
    assert all(c.landmarks is None for c in old)
    again, _ = prepare_crops(samples, cache, 0.25, cache_side=64, need_landmarks=True)
    assert [c.landmarks for c in again] == [c.landmarks for c in crops]

    pre = Preprocess(input_size=48)
    plain = CropDataset(crops, pre, seed=0)
    blended = CropDataset(crops, pre, seed=0, selfblend=0.99)
    no_marks = CropDataset(old, pre, seed=0, selfblend=0.99)
    for i in range(len(crops)):
        x0, y0 = plain[i]
        x1, y1 = blended[i]
        assert (y0, y1, no_marks[i][1]) == (0, 1, 0)
        assert not np.array_equal(x0, x1) and np.array_equal(x1, blended[i][0])
    first = blended[0][0]
    blended.set_epoch(1)
    assert blended[0][1] == 1 and not np.array_equal(blended[0][0], first)  # a new blend


def test_a_blend_always_changes_the_face():
    rgb = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    for seed in range(60):
        out = self_blend(rgb, LANDMARKS, np.random.default_rng(seed))
        assert np.abs(out[44:60, 40:56].astype(int) - rgb[44:60, 40:56]).mean() > 1.0, seed


def test_train_cli_blends_on_the_fly(tmp_path, portrait_rgb):
    from detector_data import make_folders, tiny_train_args
    from typer.testing import CliRunner

    from forensics.cli.main import app
    from trainers.common.run import RunDir
    from trainers.detector.config import DetectorTrainConfig

    real, fake = make_folders(tmp_path / "data", portrait_rgb)
    out = tmp_path / "run"
    args = [*tiny_train_args(out, real, fake), "--selfblend", "0.5", "--patch-loss", "0"]
    res = CliRunner().invoke(app, [*args, "--selfblend-crude", "0.25"])
    assert res.exit_code == 0, res.output
    cfg = RunDir(out).load_config(DetectorTrainConfig)
    assert (cfg.selfblend, cfg.selfblend_crude, cfg.patch_loss) == (0.5, 0.25, 0.0)
    index = json.loads((out / "crops" / "index.json").read_text())
    assert all(len(e["landmarks"]) == 5 for e in index.values() if e["face"])
    bad = CliRunner().invoke(
        app, [*tiny_train_args(tmp_path / "x", real, fake), "--selfblend", "1"]
    )
    assert bad.exit_code == 2


def test_validation_blends_are_fixed_twins_of_validation_reals(tmp_path, portrait_rgb):
    from detector_data import make_folders

    from trainers.detector.crops import prepare_crops
    from trainers.detector.data import collect_samples
    from trainers.detector.selfblend import validation_blends

    real, fake = make_folders(tmp_path / "data", portrait_rgb, n=4)
    samples = collect_samples(real=[real], fake=[fake])
    crops, _ = prepare_crops(samples, tmp_path / "crops", 0.25, cache_side=64, need_landmarks=True)
    reals = [c for c in crops if c.sample.label == 0]
    before = [load_image(c.crop_path) for c in reals]
    blends = validation_blends(crops, tmp_path / "val", share=0.99, seed=2)
    assert len(blends) == len(reals)  # one per real with a face; the fakes are left alone
    assert {(b.sample.label, b.sample.source) for b in blends} == {(1, "selfblend")}
    assert [b.sample.group for b in blends] == [c.sample.group for c in reals]
    assert [b.sample.twin for b in blends] == [c.sample.group for c in reals]
    for b, c, rgb in zip(blends, reals, before, strict=True):
        assert np.array_equal(load_image(c.crop_path), rgb)  # the real crop is untouched
        out = load_image(b.crop_path)
        assert out.shape == rgb.shape and not np.array_equal(out, rgb)
    # Every validation (and a resumed run) scores the same images; another seed, other ones.
    again = validation_blends(list(reversed(crops)), tmp_path / "again", share=0.99, seed=2)
    pixels = {Path(b.crop_path).name: load_image(b.crop_path) for b in blends}
    assert all(
        np.array_equal(pixels[Path(b.crop_path).name], load_image(b.crop_path)) for b in again
    )
    other = validation_blends(crops, tmp_path / "other", share=0.99, seed=3)
    assert not np.array_equal(load_image(other[0].crop_path), load_image(blends[0].crop_path))
    assert validation_blends(crops, tmp_path / "none", share=0.0) == []
    # The share is kept exactly, and a small validation split still gets a blend.
    half = validation_blends(crops, tmp_path / "half", share=0.5, seed=2)
    assert len(half) == 2 and len(validation_blends(crops, tmp_path / "few", share=0.01)) == 1
    assert {b.sample.group for b in half} <= {c.sample.group for c in reals}


def test_train_on_reals_alone_validates_on_blends(tmp_path, portrait_rgb):
    from detector_data import make_folders, tiny_train_args
    from typer.testing import CliRunner

    from forensics.cli.main import app

    real, fake = make_folders(tmp_path / "data", portrait_rgb)
    out = tmp_path / "run"
    args = tiny_train_args(out, real, fake)
    i = args.index("--fake")
    del args[i : i + 2]  # no fake folder: the fakes are blended from the reals
    res = CliRunner().invoke(app, [*args, "--selfblend", "0.5", "--format", "json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["val"]["fake"] == {
        "selfblend": len(list((out / "crops" / "selfblend_val").glob("*.png")))
    }
    assert summary["counts"]["val"]["fake"]["selfblend"] >= 1
    assert "fake" not in summary["counts"]["train"] or not summary["counts"]["train"]["fake"]
    plain = CliRunner().invoke(app, args)  # no blending: no fakes at all
    assert plain.exit_code != 0 and "no fake photos" in plain.output

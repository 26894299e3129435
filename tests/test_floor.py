"""Per-source false-positive ceilings: the pure rule, the checkpoint copy and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_tiny_checkpoint
from typer.testing import CliRunner

from forensics.checkpoint import load_checkpoint
from forensics.cli.main import app
from forensics.media import resize_rgb, save_image
from forensics.scoring import Detector
from trainers.detector.floor import apply_floor, floor_threshold

runner = CliRunner()


def test_floor_raises_only_as_far_as_the_worst_source_needs():
    easy = np.linspace(0.0, 0.5, 100)
    hard = np.linspace(0.0, 1.0, 100)  # 10% of it at or above 0.9
    new, rep = floor_threshold(0.6, {"easy": easy, "hard": hard}, max_fpr=0.05)
    assert 0.9 < new <= 0.96
    assert rep["hard"]["fpr_before"] == pytest.approx(0.40) and rep["hard"]["fpr_after"] <= 0.05
    assert rep["easy"]["fpr_before"] == 0.0 and rep["easy"]["n"] == 100
    assert np.mean(hard >= new) <= 0.05 and np.mean(hard >= np.nextafter(new, 0) - 0.011) > 0.05


def test_floor_never_lowers_and_checks_its_inputs():
    new, rep = floor_threshold(0.8, {"a": np.array([0.1, 0.2])}, max_fpr=0.05)
    assert new == 0.8 and rep["a"]["fpr_after"] == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        floor_threshold(0.5, {"a": np.array([0.1])}, max_fpr=0.0)
    with pytest.raises(ValueError, match="no scored photos"):
        floor_threshold(0.5, {"a": np.array([])}, max_fpr=0.1)


@pytest.fixture(scope="module")
def reals(tmp_path_factory, portrait_rgb):
    root = tmp_path_factory.mktemp("reals")
    rng = np.random.default_rng(0)
    h, w = portrait_rgb.shape[:2]
    for name in ("one", "two"):
        (root / name).mkdir()
        for i in range(5):
            s = int(min(h, w) * rng.uniform(0.75, 0.95))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            save_image(
                root / name / f"{i}.jpg", resize_rgb(portrait_rgb[y : y + s, x : x + s], (96, 96))
            )
    return root


def test_apply_floor_copies_the_model_with_a_higher_threshold(tiny_checkpoint, reals, tmp_path):
    before = tiny_checkpoint.read_bytes()
    det = Detector.from_checkpoint(tiny_checkpoint, device="cpu")
    low = det.calibration.threshold
    floored, summary = apply_floor(det, [reals / "one", reals / "two"], max_fpr=0.2)
    assert det.calibration.threshold == low  # the input detector is untouched
    assert floored.calibration.threshold >= low
    assert floored.calibration.temperature == det.calibration.temperature
    assert set(summary["sources"]) == {"one", "two"}
    assert all(m["n"] == 5 and m["fpr_after"] <= 0.2 for m in summary["sources"].values())
    path = floored.save(tmp_path / "f.safetensors")
    w0, _ = load_checkpoint(tiny_checkpoint)
    w1, meta = load_checkpoint(path)
    assert all(np.array_equal(w0[k].numpy(), w1[k].numpy()) for k in w0)
    assert meta["calibration"]["threshold"] == summary["threshold"]
    assert meta["info"]["threshold_floor"]["threshold_before"] == low
    assert tiny_checkpoint.read_bytes() == before


def test_folders_with_one_name_stay_apart(tiny_checkpoint, reals, tmp_path):
    twin = tmp_path / "other" / "one"  # symlinks, as a folder of picked photos often is
    twin.mkdir(parents=True)
    for f in sorted((reals / "one").iterdir())[1:]:
        (twin / f.name).symlink_to(f)
    det = Detector.from_checkpoint(tiny_checkpoint, device="cpu")
    _, summary = apply_floor(det, [reals / "one", twin], max_fpr=0.2)
    assert sorted(m["n"] for m in summary["sources"].values()) == [4, 5]
    assert str(twin) in summary["sources"]


def test_threshold_cli(tiny_checkpoint, reals, tmp_path):
    out = tmp_path / "t.safetensors"
    args = ["detector", "threshold", str(tiny_checkpoint), "--real", str(reals / "one"),
            "-o", str(out), "--max-fpr", "0.2", "--device", "cpu"]  # fmt: skip
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["model"] == str(out) and data["sources"]["one"]["n"] == 5
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "threshold" in table.stdout and "one: 5 photos" in table.stdout
    missing = runner.invoke(
        app, ["detector", "threshold", str(tiny_checkpoint), "--real", str(tmp_path / "nope"),
              "-o", str(tmp_path / "x.safetensors")],
    )  # fmt: skip
    assert missing.exit_code == 2 and "not a folder" in missing.stderr
    bad = runner.invoke(app, [*args, "--max-fpr", "1.5"])
    assert bad.exit_code == 2
    assert not (tmp_path / "x.safetensors").exists()


def test_band_low_is_the_score_each_source_reaches_at_band_fpr():
    from trainers.detector.floor import band_low

    a, b = np.linspace(0.0, 0.5, 100), np.linspace(0.0, 0.8, 100)
    low = band_low({"a": a, "b": b}, band_fpr=0.1)
    assert np.mean(b >= low) <= 0.1 and np.mean(a >= low) == 0.0  # the harder source sets it
    with pytest.raises(ValueError, match="between 0 and 1"):
        band_low({"a": a}, band_fpr=1.0)


def test_band_only_keeps_the_threshold_and_makes_scores_uncertain(reals, tmp_path):
    ckpt = make_tiny_checkpoint(tmp_path / "strict.safetensors", threshold=0.99)
    det = Detector.from_checkpoint(ckpt, device="cpu")
    banded, summary = apply_floor(det, [reals / "one", reals / "two"], None, band_fpr=0.4)
    cal = banded.calibration
    assert cal.threshold == det.calibration.threshold == summary["threshold"] == 0.99
    assert cal.band is not None and summary["band"] == (cal.band[0], 0.99)
    assert cal.verdict((cal.band[0] + 0.99) / 2) == "uncertain" and cal.verdict(0.99) == "fake"
    assert cal.verdict(cal.band[0] - 1e-6) == "real"
    assert all(0.0 < m["in_band"] <= 0.4 for m in summary["sources"].values())
    args = ["detector", "threshold", str(ckpt), "--real", str(reals / "one"),
            "-o", str(tmp_path / "b.safetensors"), "--keep-threshold", "--band-fpr", "0.4",
            "--device", "cpu", "--format", "json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["threshold"] == 0.99

"""Fusions: branches with their own preprocessing, `forensics detector fuse`, and scanning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from forensics.checkpoint import load_checkpoint
from forensics.cli.main import app
from forensics.fusion import fusion_specs
from forensics.media import save_image
from forensics.models import create_model
from forensics.preprocess import Preprocess
from forensics.scoring import Calibration, Detector, DetectorSpec
from trainers.detector.fusion import fuse_detectors

runner = CliRunner()


def _branch(path: Path, arch: str, preprocess: Preprocess, calibration: Calibration) -> Path:
    torch.manual_seed(len(arch))
    kwargs = {"width": 4} if arch == "patch_tiny" else {}
    spec = DetectorSpec(arch, kwargs, preprocess, calibration, info={"seed": 0, "steps": 3})
    return Detector(create_model(arch, **kwargs), spec, device="cpu").save(path)


@pytest.fixture(scope="module")
def branches(tmp_path_factory) -> tuple[Path, Path]:
    """A resized-crop branch and a native-pixel spectral branch, calibrated differently."""
    root = tmp_path_factory.mktemp("fusion")
    resized = _branch(
        root / "resized.safetensors",
        "patch_tiny",
        Preprocess(input_size=32),
        Calibration(temperature=2.0, bias=0.3, threshold=0.6),
    )
    native = _branch(
        root / "native.safetensors",
        "spectral_patch",
        Preprocess(input_size=64, fit="center", min_size=48),
        Calibration(temperature=0.5, bias=-0.2, threshold=0.8, target_fpr=0.02),
    )
    return resized, native


def _crops(portrait_rgb: np.ndarray) -> list[np.ndarray]:
    return [portrait_rgb[:120, :100].copy(), portrait_rgb[-56:, -60:].copy()]


def _calibrated(detector: Detector, crops: list[np.ndarray]) -> np.ndarray:
    z, _ = detector.logits(crops)
    cal = detector.calibration
    return (z.astype(np.float64) - cal.bias) / cal.temperature


@pytest.mark.parametrize("combine", ["max", "mean"])
def test_fused_logit_combines_calibrated_branch_logits(branches, portrait_rgb, combine):
    parts = [Detector.from_checkpoint(p, device="cpu") for p in branches]
    fused = fuse_detectors(parts, combine)
    crops = _crops(portrait_rgb)
    before = [c.copy() for c in crops]
    z, maps = fused.logits(crops)
    each = np.stack([_calibrated(p, crops) for p in parts])
    expected = each.max(axis=0) if combine == "max" else each.mean(axis=0)
    np.testing.assert_allclose(z, expected, atol=1e-5)
    assert not np.allclose(each[0], each[1])  # the branches really differ
    assert all(np.array_equal(a, b) for a, b in zip(crops, before, strict=True))
    # The evidence is the top branch's map, placed over the crop like that branch does.
    preds = fused.predict(crops)
    for i, (p, m) in enumerate(zip(preds, maps, strict=True)):
        top = parts[int(each[:, i].argmax())]
        assert p.evidence.shape == top.predict([crops[i]])[0].evidence.shape == m.shape
        assert p.prob == pytest.approx(1 / (1 + math.exp(-expected[i])), abs=1e-5)
        # Each branch's own calibrated probability comes with the fused one, by branch name.
        assert list(p.branches) == [b.name for b in branches]
        for name, part in zip(p.branches, parts, strict=True):
            assert p.branches[name] == pytest.approx(part.predict([crops[i]])[0].prob, abs=1e-5)
        if combine == "max":
            assert p.prob == pytest.approx(max(p.branches.values()), abs=1e-5)
    assert all(p.branches is None for p in parts[0].predict(crops))  # a plain model has none


def test_branch_names_are_one_distinct_name_per_branch(branches):
    parts = [Detector.from_checkpoint(p, device="cpu") for p in branches]
    named = fuse_detectors(parts, names=["swap", "spectral"])
    assert named.model.branch_names == ["swap", "spectral"]
    for bad in (["only_one"], ["same", "same"], ["", "x"]):
        with pytest.raises(ValueError, match="name"):
            fuse_detectors(parts, names=bad)


def test_fuse_cli_round_trip_and_threshold(branches, portrait_rgb, tmp_path):
    out = tmp_path / "fused.safetensors"
    res = runner.invoke(
        app, ["detector", "fuse", *map(str, branches), "-o", str(out), "--format", "json",
              "--device", "cpu", "--name", "texture", "--name", "spectrum"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["threshold"] == pytest.approx(0.8)  # the strictest branch's
    assert [b["arch"] for b in summary["branches"]] == ["patch_tiny", "spectral_patch"]
    _, meta = load_checkpoint(out)
    assert meta["arch"] == "fusion" and meta["arch_kwargs"]["combine"] == "max"
    assert meta["calibration"]["target_fpr"] == 0.02  # the strictest branch's, with its threshold
    assert meta["info"]["steps"] == 6 and meta["info"]["branch_thresholds"] == [0.6, 0.8]
    assert meta["info"]["seed"] == [0, 0] and len(meta["info"]["data"]) == 2
    members = meta["arch_kwargs"]["members"]
    assert [m["preprocess"]["fit"] for m in members] == ["resize", "center"]
    assert [m["name"] for m in members] == ["texture", "spectrum"]
    bad = runner.invoke(
        app, ["detector", "fuse", *map(str, branches), "-o", str(tmp_path / "x.safetensors"),
              "--name", "one"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "name" in bad.stderr and not (tmp_path / "x.safetensors").exists()

    crops = _crops(portrait_rgb)
    loaded = Detector.from_checkpoint(out, device="cpu")
    direct = fuse_detectors([Detector.from_checkpoint(p, device="cpu") for p in branches])
    np.testing.assert_allclose(loaded.logits(crops)[0], direct.logits(crops)[0], atol=1e-6)

    # A fused model goes through `detector threshold` like any other.
    reals = tmp_path / "reals"
    reals.mkdir()
    for i in range(4):
        save_image(reals / f"r{i}.png", np.roll(portrait_rgb, 9 * i, axis=1))
    floored = tmp_path / "floored.safetensors"
    res = runner.invoke(
        app, ["detector", "threshold", str(out), "--real", str(reals), "-o", str(floored),
              "--max-fpr", "0.25", "--format", "json", "--device", "cpu"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    floor = json.loads(res.stdout)
    assert floor["threshold"] >= 0.8
    assert Detector.from_checkpoint(floored).spec.arch == "fusion"


def test_scan_with_a_fused_model_writes_heatmaps(branches, portrait_rgb, tmp_path):
    fused = tmp_path / "fused.safetensors"
    assert (
        runner.invoke(app, ["detector", "fuse", *map(str, branches), "-o", str(fused)]).exit_code
        == 0
    )
    photo = tmp_path / "in" / "portrait.jpg"
    photo.parent.mkdir()
    save_image(photo, portrait_rgb, quality=92)
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["scan", str(photo), "--model", str(fused), "--device", "cpu", "--format", "jsonl",
              "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    (row,) = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert row["status"] == "ok" and row["n_faces"] >= 1 and 0.0 <= row["score"] <= 1.0
    assert row["model"]["name"] == "fused.safetensors"
    assert list(out.rglob("*.png")), "no heatmap written"
    for face in row["faces"]:  # each face says what each branch thought
        assert set(face["branches"]) == {b.name for b in branches}
        assert face["score"] == pytest.approx(max(face["branches"].values()), abs=1e-3)


def test_fusion_errors(branches, tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        fusion_specs([{"arch": "patch_tiny", "preprocess": {}, "calibration": {}}])
    with pytest.raises(ValueError, match="nested"):
        fusion_specs([{"arch": "fusion", "preprocess": {}, "calibration": {}}] * 2)
    with pytest.raises(ValueError, match="needs its 'calibration'"):
        fusion_specs([{"arch": "patch_tiny", "preprocess": {}}] * 2)
    wide = _branch(
        tmp_path / "wide.safetensors",
        "patch_tiny",
        Preprocess(input_size=32, crop_margin=0.4),
        Calibration(),
    )
    res = runner.invoke(app, ["detector", "fuse", str(branches[0]), str(wide), "-o", "x.st"])
    assert res.exit_code == 2 and "one crop margin" in res.stderr
    one = runner.invoke(app, ["detector", "fuse", str(branches[0]), "-o", str(tmp_path / "o")])
    assert one.exit_code == 2 and "at least two" in one.stderr
    with pytest.raises(TypeError, match="score_crops"):
        fuse_detectors([Detector.from_checkpoint(p) for p in branches]).model(
            torch.zeros(1, 3, 8, 8)
        )


def test_branch_taken_out_of_a_fusion_scores_as_before(branches, portrait_rgb, tmp_path):
    resized, native = branches
    fused = tmp_path / "fused.safetensors"
    res = runner.invoke(
        app, ["detector", "fuse", str(resized), str(native), "--name", "r", "--name", "n",
              "-o", str(fused)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "n.safetensors"
    res = runner.invoke(
        app, ["detector", "branch", str(fused), "--name", "n", "-o", str(out), "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["arch"] == "spectral_patch"
    crops = _crops(portrait_rgb)
    original, taken = Detector.from_checkpoint(native), Detector.from_checkpoint(out)
    assert taken.preprocess == original.preprocess and taken.calibration == original.calibration
    np.testing.assert_allclose(
        [p.prob for p in taken.predict(crops)], [p.prob for p in original.predict(crops)], 1e-6
    )
    assert taken.spec.info["taken_from"]["branch"] == "n"
    assert taken.spec.info["steps"] == 3 and taken.spec.info["seed"] == 0  # the branch's own
    bad = runner.invoke(app, ["detector", "branch", str(fused), "--name", "x", "-o", str(out)])
    assert bad.exit_code == 2 and "its branches: ['r', 'n']" in bad.output
    plain = runner.invoke(app, ["detector", "branch", str(native), "--name", "n", "-o", str(out)])
    assert plain.exit_code == 2 and "not a fused detector" in plain.output

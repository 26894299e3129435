"""Ensembles: the averaged architecture, shared data seeds, and `forensics detector ensemble`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from detector_data import make_folders, tiny_train_args
from typer.testing import CliRunner

from forensics.checkpoint import load_checkpoint
from forensics.cli.main import app
from forensics.ensemble import member_specs
from forensics.models import create_model
from forensics.scoring import Detector
from trainers.common.run import RunDir
from trainers.detector.config import DetectorTrainConfig
from trainers.detector.prepare import prepare_data

runner = CliRunner()


def test_ensemble_is_the_mean_of_its_members():
    torch.manual_seed(0)
    a, b = create_model("patch_tiny", width=4), create_model("patch_tiny", width=4)
    ens = create_model("ensemble", members=[{"arch": "patch_tiny", "kwargs": {"width": 4}}] * 2)
    ens.load_state_dict(
        {**{f"members.0.{k}": v for k, v in a.state_dict().items()},
         **{f"members.1.{k}": v for k, v in b.state_dict().items()}}
    )  # fmt: skip
    x = torch.randn(3, 3, 32, 32)
    x_before = x.clone()
    with torch.no_grad():
        out, oa, ob = ens(x), a(x), b(x)
    assert torch.equal(x, x_before)
    assert torch.allclose(out["logit"], (oa["logit"] + ob["logit"]) / 2, atol=1e-6)
    assert torch.allclose(out["patch_logits"], (oa["patch_logits"] + ob["patch_logits"]) / 2)
    assert not torch.allclose(oa["logit"], ob["logit"])  # the members really differ


def test_spectral_members_share_their_window_spectra(monkeypatch):
    """One recipe's spectral members read the same spectra: computed once, same result."""
    import forensics.spectral as spectral

    kwargs = {"features": ["radial", "quadrant"]}
    torch.manual_seed(0)
    members = [create_model("spectral_multiscale", **kwargs).eval() for _ in range(3)]
    ens = create_model("ensemble", members=[{"arch": "spectral_multiscale", "kwargs": kwargs}] * 3)
    ens.load_state_dict(
        {f"members.{i}.{k}": v for i, m in enumerate(members) for k, v in m.state_dict().items()}
    )
    ens.eval()
    calls = {"radial": 0, "quadrant": 0}
    radial, quadrant = spectral.window_spectra, spectral.window_quadrant_spectra

    def count(kind, fn):
        def wrapped(*args, **kw):
            calls[kind] += 1
            return fn(*args, **kw)

        return wrapped

    monkeypatch.setattr(spectral, "window_spectra", count("radial", radial))
    monkeypatch.setattr(spectral, "window_quadrant_spectra", count("quadrant", quadrant))
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        out = ens(x)
        assert calls == {"radial": 1, "quadrant": 1}  # not 3 each
        alone = [m(x) for m in members]
    assert calls == {"radial": 4, "quadrant": 4}  # outside an ensemble nothing is cached
    mean = torch.stack([o["logit"] for o in alone]).mean(0)
    assert torch.allclose(out["logit"], mean, atol=1e-5)
    assert spectral._SHARED.get() is None  # the cache ends with the forward pass


def test_members_with_different_maps_are_resampled_to_the_first():
    ens = create_model(
        "ensemble", members=[{"arch": "patch_tiny"}, {"arch": "spectral_patch", "kwargs": {}}]
    )
    out = ens(torch.randn(2, 3, 64, 64))
    assert out["patch_logits"].shape == (2, 8, 8) and out["logit"].shape == (2,)


@pytest.mark.parametrize(
    "members, message",
    [([], "at least one"), ([{"kwargs": {}}], "must be"), ([{"arch": "ensemble"}], "nested")],
)
def test_member_spec_errors(members, message):
    with pytest.raises(ValueError, match=message):
        member_specs(members)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, portrait_rgb) -> tuple[Path, Path, Path]:
    """Two tiny runs on the same data (seeds 0 and 1, data seed 0) and one of another size."""
    root = tmp_path_factory.mktemp("ens")
    real, fake = make_folders(root / "data", portrait_rgb)
    run0, run1, other = root / "s0", root / "s1", root / "other"
    for out, extra in ((run0, []), (run1, ["--seed", "1", "--data-seed", "0"])):
        res = runner.invoke(app, [*tiny_train_args(out, real, fake), *extra])
        assert res.exit_code == 0, res.output
    args = tiny_train_args(other, real, fake)
    args[args.index("--input-size") + 1] = "48"
    assert runner.invoke(app, args).exit_code == 0
    return run0, run1, other


def test_data_seed_gives_the_same_split_with_another_seed(runs):
    run0, run1, _ = runs
    cfg0 = RunDir(run0).load_config(DetectorTrainConfig)
    cfg1 = RunDir(run1).load_config(DetectorTrainConfig)
    assert (cfg0.seed, cfg1.seed, cfg1.data_seed, cfg1.split_seed) == (0, 1, 0, 0)
    val0 = [c.sample.path for c in prepare_data(cfg0, run0 / "crops").val]
    val1 = [c.sample.path for c in prepare_data(cfg1, run1 / "crops").val]
    assert val0 == val1 and val0
    w0, _ = load_checkpoint(run0 / "model.safetensors")
    w1, _ = load_checkpoint(run1 / "model.safetensors")
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)  # another initialisation


def test_ensemble_cli_writes_a_calibrated_average(runs, portrait_rgb, tmp_path):
    run0, run1, _ = runs
    out = tmp_path / "ens.safetensors"
    members = [str(run0 / "model.safetensors"), str(run1 / "model.safetensors")]
    res = runner.invoke(
        app,
        ["detector", "ensemble", *members, "--calibrate-on", str(run0), "-o", str(out),
         "--format", "json", "--device", "cpu"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model"] == str(out) and 0.0 <= summary["calibration"]["threshold"] <= 1.0
    _, meta = load_checkpoint(out)
    assert meta["arch"] == "ensemble" and len(meta["arch_kwargs"]["members"]) == 2
    assert [m["seed"] for m in meta["info"]["members"]] == [0, 1]
    assert meta["info"]["steps"] == 8 and meta["info"]["stop_reason"] == "ensemble"  # 4 + 4
    assert meta["info"]["calibrated_on"] == str(run0)

    ens = Detector.from_checkpoint(out, device="cpu")
    parts = [Detector.from_checkpoint(m, device="cpu") for m in members]
    crops = [portrait_rgb[:96, :96].copy(), portrait_rgb[-80:, -80:].copy()]
    z, _ = ens.logits(crops)
    mean = np.mean([p.logits(crops)[0] for p in parts], axis=0)
    np.testing.assert_allclose(z, mean, atol=1e-5)
    table = runner.invoke(
        app, ["detector", "ensemble", *members, "--calibrate-on", str(run0), "-o", str(out)]
    )
    assert table.exit_code == 0 and "2 members averaged" in table.stdout


def test_ensemble_cli_errors(runs, tmp_path):
    run0, run1, other = runs
    out = tmp_path / "e.safetensors"
    one = runner.invoke(
        app, ["detector", "ensemble", str(run0 / "model.safetensors"),
              "--calibrate-on", str(run0), "-o", str(out)],
    )  # fmt: skip
    assert one.exit_code == 2 and "at least two" in one.stderr
    mixed = runner.invoke(
        app, ["detector", "ensemble", str(run0 / "model.safetensors"),
              str(other / "model.safetensors"), "--calibrate-on", str(run0), "-o", str(out)],
    )  # fmt: skip
    assert mixed.exit_code == 2 and "preprocesses faces differently" in mixed.stderr
    norun = runner.invoke(
        app, ["detector", "ensemble", str(run0 / "model.safetensors"),
              str(run1 / "model.safetensors"), "--calibrate-on", str(tmp_path), "-o", str(out)],
    )  # fmt: skip
    assert norun.exit_code == 2 and "not a run folder" in norun.stderr
    assert not out.exists()

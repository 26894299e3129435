"""GAN training, exact resume, divergence stop, sampling reproducibility, manifests and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from forensics.checkpoint import file_sha256, read_meta
from forensics.cli.main import app
from forensics.jpeg import jpeg_quality_estimate
from forensics.media import load_image
from trainers.gan.config import FAMILIES, GanConfig
from trainers.gan.sample import sample_images
from trainers.gan.train import StepInfo, TrainingDiverged, train

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(folder, family="resize_conv", **kw) -> GanConfig:
    base = dict(
        family=family, data=(str(folder),), size=16, width=4, z_dim=8, batch=4, crop="none",
        holdout=6, eval_every=100, eval_n=8, sample_every=100, checkpoint_every=2, log_every=1,
        ema_start=2, device="cpu", seed=1,
    )  # fmt: skip
    base.update(kw)
    return GanConfig(**base)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_trains_and_exports(tmp_path, tiny_faces, family):
    events = []
    result = train(_cfg(tiny_faces, family, steps=3), tmp_path / "run", on_step=events.append)
    assert result.step == 3 and result.stopped == "steps"
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "last.pt", "best.pt", "samples.png",
                 "generator_last.safetensors", "generator_best.safetensors"):  # fmt: skip
        assert (run / name).is_file(), name
    meta = read_meta(run / "generator_best.safetensors")
    assert meta["format"] == "forensics.generator/1" and meta["family"] == family
    assert meta["seed"] == 1 and meta["data"]["train_images"] == 20  # 24 - min(6, 24 // 5)
    assert 0.0 <= meta["metrics"]["face_rate"] <= 1.0 and meta["metrics"]["diversity"] >= 0
    kinds = [e.event for e in events]
    assert kinds[0] == "data" and "start" in kinds and kinds[-1] == "done"
    steps = [e for e in events if e.event == "step"]
    assert [e.step for e in steps] == [1, 2, 3] and "d_loss" in steps[0].losses
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["event"] == "eval" and "face_rate" in r for r in records)


def _weights(run) -> dict[str, torch.Tensor]:
    state = torch.load(run / "last.pt", weights_only=True)
    return {f"{k}.{n}": t for k in ("G", "D", "G_ema") for n, t in state[k].items()}


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, tiny_faces):
    train(_cfg(tiny_faces, "stylegan_lite", steps=6), tmp_path / "full")

    def interrupt(info: StepInfo) -> None:
        if info.event == "step" and info.step == 3:
            raise KeyboardInterrupt

    part = train(_cfg(tiny_faces, "stylegan_lite", steps=6), tmp_path / "part", on_step=interrupt)
    assert part.stopped == "interrupted" and part.step == 3
    with pytest.raises(ValueError, match="--resume"):
        train(_cfg(tiny_faces, "stylegan_lite", steps=6), tmp_path / "part")
    done = train(_cfg(tiny_faces, "stylegan_lite", steps=6), tmp_path / "part", resume=True)
    assert done.step == 6
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_a_run_from_before_the_equalized_lr_groups_is_refused_clearly(tmp_path, tiny_faces):
    train(_cfg(tiny_faces, "stylegan_lite", steps=2), tmp_path / "run")
    state = torch.load(tmp_path / "run/last.pt", weights_only=True)
    groups = state["opt_g"]["param_groups"]
    assert len(groups) == 2  # the modulated weights train in their own group
    groups[0]["params"] += groups.pop()["params"]  # what an older version wrote
    torch.save(state, tmp_path / "run/last.pt")
    with pytest.raises(ValueError, match="cannot be resumed by this version"):
        train(_cfg(tiny_faces, "stylegan_lite", steps=4), tmp_path / "run", resume=True)


def test_time_budget_stops_cleanly(tmp_path, tiny_faces):
    result = train(_cfg(tiny_faces, minutes=0.002), tmp_path / "run")
    assert result.stopped == "minutes" and (tmp_path / "run" / "last.pt").is_file()


def test_divergence_stops_with_clear_message(tmp_path, tiny_faces, monkeypatch):
    import trainers.gan.step as step_mod

    calls = {"n": 0}
    real_hinge = step_mod.d_hinge

    def flaky(real, fake):
        calls["n"] += 1
        out = real_hinge(real, fake)
        return out * float("nan") if calls["n"] > 2 else out

    monkeypatch.setattr(step_mod, "d_hinge", flaky)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 3.*d_loss=nan.*step 2"):
        train(_cfg(tiny_faces, steps=10), tmp_path / "run")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_faces):
    root = tmp_path_factory.mktemp("gan")
    train(_cfg(tiny_faces, "resize_conv", steps=2), root / "rc")
    train(_cfg(tiny_faces, "resynth", steps=2), root / "rs")
    return root


def test_same_seed_same_images_and_manifest(tmp_path, trained):
    a = sample_images(trained / "rc", 5, tmp_path / "a", seed=7, batch=2)
    b = sample_images(trained / "rc", 5, tmp_path / "b", seed=7, batch=5)
    c = sample_images(trained / "rc", 5, tmp_path / "c", seed=8)
    for ra, rb in zip(a, b, strict=True):
        assert (tmp_path / "a" / ra["file"]).read_bytes() == (
            tmp_path / "b" / rb["file"]
        ).read_bytes()
    assert any(
        not np.array_equal(
            load_image(tmp_path / "a" / ra["file"]), load_image(tmp_path / "c" / rc["file"])
        )
        for ra, rc in zip(a, c, strict=True)
    )
    lines = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert lines == a and len(lines) == 5
    sha = file_sha256(trained / "rc" / "generator_best.safetensors")
    for i, rec in enumerate(lines):
        assert rec["family"] == "resize_conv" and rec["seed"] == 7 and rec["index"] == i
        assert rec["checkpoint_sha256"] == sha and "source" not in rec
        assert load_image(tmp_path / "a" / rec["file"]).shape == (16, 16, 3)


def test_jpeg_and_codec_matching(tmp_path, trained, tiny_faces):
    recs = sample_images(trained / "rc", 3, tmp_path / "j", fmt="jpeg", quality=80)
    assert all(r["format"] == "jpeg" and r["file"].endswith(".jpg") for r in recs)
    assert jpeg_quality_estimate(tmp_path / "j" / recs[0]["file"]) == 80
    matched = sample_images(trained / "rc", 4, tmp_path / "m", match_codec=tiny_faces)
    for r in matched:
        assert r["format"] == "jpeg" and r["quality"] == jpeg_quality_estimate(
            next(tiny_faces.iterdir())
        )
        assert jpeg_quality_estimate(tmp_path / "m" / r["file"]) == 60
    with pytest.raises(ValueError, match="png or jpeg"):
        sample_images(trained / "rc", 1, tmp_path / "x", fmt="webp")


def test_resynth_sampling_records_sources(tmp_path, trained, tiny_faces):
    with pytest.raises(ValueError, match="--from"):
        sample_images(trained / "rs", 3, tmp_path / "x")
    with pytest.raises(ValueError, match="only applies to resynth"):
        sample_images(trained / "rc", 3, tmp_path / "x", from_dir=tiny_faces)
    recs = sample_images(
        trained / "rs", 4, tmp_path / "r", from_dir=tiny_faces, match_codec=tiny_faces
    )
    assert len(recs) == 4
    sources = {str(p) for p in tiny_faces.iterdir()}
    assert all(r["source"] in sources and r["family"] == "resynth" for r in recs)
    assert len({r["source"] for r in recs}) == 4


def test_cli_train_resume_and_sample(tmp_path, tiny_faces):
    out = tmp_path / "run"
    args = ["gan", "train", "--family", "dcgan", "--data", str(tiny_faces), "--out", str(out),
            "--size", "16", "--width", "4", "--batch", "4", "--steps", "2", "--crop", "none",
            "--device", "cpu", "--format", "json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["step"] == 2
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, ["gan", "train", "--out", str(out), "--resume", "--steps", "3",
                              "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["step"] == 3
    res = runner.invoke(app, ["gan", "sample", str(out), "--n", "3", "--out", str(tmp_path / "s"),
                              "--seed", "4", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == 3
    assert len((tmp_path / "s" / "manifest.jsonl").read_text().splitlines()) == 3


def test_cli_errors(tmp_path, tiny_faces):
    res = runner.invoke(app, ["gan", "train", "--out", str(tmp_path / "r"), "--family", "vae",
                              "--data", str(tiny_faces)])  # fmt: skip
    assert res.exit_code == 2 and "unknown family" in res.output
    res = runner.invoke(app, ["gan", "train", "--out", str(tmp_path / "r2"), "--resume"])
    assert res.exit_code == 2 and "nothing to resume" in res.output
    res = runner.invoke(app, ["gan", "sample", str(tmp_path / "missing.safetensors")])
    assert res.exit_code == 2 and "not found" in res.output


def test_cli_default_generator_missing_is_a_clear_error(tmp_path, monkeypatch):
    import trainers.gan.export as export

    monkeypatch.setattr(export, "DEFAULT_GENERATOR", tmp_path / "none.safetensors")
    res = runner.invoke(app, ["gan", "sample", "--n", "2", "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "no default generator" in res.output


def test_cli_help_is_fast_and_documented():
    res = runner.invoke(app, ["gan", "train", "--help"])
    assert res.exit_code == 0 and "--resume" in res.output and "--minutes" in res.output
    res = runner.invoke(app, ["gan", "sample", "--help"])
    assert res.exit_code == 0 and "--match-codec" in res.output and "--from" in res.output


def test_cli_native_resynth_keeps_size_and_codec(tmp_path, trained, tiny_faces):
    out = tmp_path / "native"
    args = ["gan", "sample", str(trained / "rs"), "--from", str(tiny_faces), "--native"]
    res = runner.invoke(app, [*args, "--n", "2", "--out", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 2
    for r in recs:
        real, fake = load_image(r["source"]), load_image(out / r["file"])
        assert fake.shape == real.shape and r["native"] is True
        assert jpeg_quality_estimate(out / r["file"]) == jpeg_quality_estimate(r["source"]) == 60
    res = runner.invoke(app, ["gan", "sample", str(trained / "rc"), "--native", "--out", str(out)])
    assert res.exit_code == 2 and "--from" in res.output


def test_cli_eval_reports_metrics(trained, tiny_faces):
    res = runner.invoke(app, ["gan", "eval", str(trained / "rc"), "--real", str(tiny_faces),
                              "--n", "8", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n"] == 8 and out["family"] == "resize_conv"
    for key in ("face_rate", "diversity", "precision", "coverage", "real_face_rate"):
        assert 0.0 <= out[key] <= 10.0
    assert out["real_face_rate"] >= 0.5  # the portrait crops do hold a face


def test_eval_of_resynth_rerenders_other_photos_than_its_reference(trained, tiny_faces,
                                                                   monkeypatch):  # fmt: skip
    import trainers.gan.evaluate as evaluate
    from trainers.gan.data import load_faces

    seen = []
    real_generate = evaluate.generate
    monkeypatch.setattr(
        evaluate, "generate", lambda g, x, d: seen.append(x) or real_generate(g, x, d)
    )
    out = evaluate.evaluate_checkpoint(trained / "rs", tiny_faces, n=8, device="cpu")
    assert out["n"] == 8 and out["real"] == 8
    faces = load_faces([tiny_faces], 16, "auto", None, 16, "cpu").images
    assert torch.equal(seen[0], evaluate.to_tensor(faces[8:16]))  # the second half, not the first

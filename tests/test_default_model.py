"""The shipped default detector and generator: regression tests on the bundled samples.

These pin what a new user sees after ``pip install`` and ``forensics scan samples``: every file
in ``samples/`` named ``real_*`` must be passed, every ``fake_*`` file must be flagged except the
known misses below, and each scored face gets a heatmap. They run the real shipped weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.checkpoint import read_meta
from forensics.cli.main import app
from forensics.scoring import default_model_path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
runner = CliRunner()

pytestmark = pytest.mark.skipif(
    not default_model_path().is_file(), reason="no default detector shipped in forensics/weights"
)


# The default detector trained on the faces of the collapsed ``resize_conv`` generator; the two
# faces of the ``ae_gan`` default generator (step 4,300, 2026-12-06) get 0.496 and 0.569 from it,
# under its threshold (MODEL_CARD.md, "Held-out results"). Pinned, so a detector that catches
# them shows here; their provenance copies are flagged by what they declare.
DEFAULT_MISSES = {"fake_gan_face_1.png", "fake_gan_face_2.png"}


def expected_verdicts(path: str) -> set[str]:
    name = Path(path).name
    if name in DEFAULT_MISSES:
        return {"real", "uncertain"}
    return {"fake"} if name.startswith("fake_") else {"real"}


def sample_names() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.name.startswith(("real_", "fake_")))


@pytest.fixture(scope="module")
def scan_out(tmp_path_factory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("scan")
    result = runner.invoke(app, ["scan", str(SAMPLES), "--out", str(out), "--format", "json"])
    return result, out


def test_default_model_is_small_and_self_describing() -> None:
    path = default_model_path()
    assert path.stat().st_size < 30 * 2**20
    meta = read_meta(path)
    assert meta["format"] == "forensics.detector/1"
    assert 0.0 < meta["calibration"]["threshold"] < 1.0
    assert meta["calibration"]["target_fpr"] == pytest.approx(0.01)
    assert "seed" in meta["info"] and meta["info"]["data"]


def test_default_model_has_an_uncertainty_band_below_its_threshold() -> None:
    meta = read_meta(default_model_path())
    low, high = meta["calibration"]["band"]
    assert 0.0 < low < high == meta["calibration"]["threshold"]
    fit = meta["info"]["uncertainty_band"]
    assert fit["band_fpr"] == 0.05 and fit["sources"]["ffhq_140k"]["n"] == 500
    assert meta["info"]["threshold_floor"]["max_fpr"] == 0.05  # the earlier ceiling is kept


def test_scan_samples_records_every_file(scan_out) -> None:
    result, _ = scan_out
    records = json.loads(result.stdout)
    names = {Path(r["path"]).name for r in records if r["status"] == "ok"}
    assert set(sample_names()) <= names
    assert {"real_video_grace_hopper.mp4", "fake_video_gan_latent_walk.mp4"} <= names
    assert result.exit_code == 1  # at least one fake was flagged
    meta = read_meta(default_model_path())
    for rec in records:  # a fused default reports each branch; a single model reports none
        for face in rec["faces"] or []:
            if meta["arch"] == "fusion":
                assert face["score"] == pytest.approx(max(face["branches"].values()), abs=1e-3)
            else:
                assert face["branches"] is None


@pytest.mark.parametrize("name", sample_names())
def test_sample_verdict(scan_out, name: str) -> None:
    result, _ = scan_out
    verdicts = {Path(r["path"]).name: r["verdict"] for r in json.loads(result.stdout)}
    assert verdicts[name] in expected_verdicts(name)


def test_scan_samples_writes_heatmaps_and_report(scan_out) -> None:
    _, out = scan_out
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for rec in records:
        if rec["kind"] == "image":
            assert rec["faces"], rec["path"]
            for face in rec["faces"]:
                assert (out / face["heatmap"]).is_file()
                raw = np.load(out / face["heatmap_raw"])
                assert raw.ndim == 2 and np.isfinite(raw).any()  # NaN: cells not scored
    html = (out / "report.html").read_text()
    assert html.count("<img") >= len(records)


def test_default_generator_samples_reproducibly(tmp_path) -> None:
    pytest.importorskip("trainers.gan.sample")
    from trainers.gan.export import DEFAULT_GENERATOR

    if not Path(DEFAULT_GENERATOR).is_file():
        pytest.skip("no default generator shipped")
    for name in ("a", "b"):
        r = runner.invoke(
            app, ["gan", "sample", "--n", "4", "--seed", "7", "--out", str(tmp_path / name)]
        )
        assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(files) == 4
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_latent_walk_keeps_native_size_unless_asked(tmp_path) -> None:
    pytest.importorskip("trainers.samples")
    from trainers.gan.export import DEFAULT_GENERATOR, load_generator
    from trainers.samples import latent_walk_frames

    if not Path(DEFAULT_GENERATOR).is_file():
        pytest.skip("no default generator shipped")
    generator, _ = load_generator(None, "cpu")
    native = list(latent_walk_frames(generator, n_frames=6, seed=3))
    again = list(latent_walk_frames(generator, n_frames=6, seed=3))
    other = list(latent_walk_frames(generator, n_frames=6, seed=4))
    assert len(native) == 6
    assert all(f.dtype == np.uint8 and f.shape == native[0].shape for f in native)
    assert native[0].shape[:2] == (64, 64)  # the shipped generator's own size, not resized
    assert all(np.array_equal(a, b) for a, b in zip(native, again, strict=True))
    assert not np.array_equal(native[0], other[0])
    assert not np.array_equal(native[0], native[1])  # it walks
    big = list(latent_walk_frames(generator, n_frames=6, seed=3, out_side=96))
    assert big[0].shape == (96, 96, 3)

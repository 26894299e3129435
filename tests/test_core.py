"""Core invariants: checkpoints round-trip and refuse code, media decoding, cropping."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from forensics.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from forensics.faces import crop_face, square_box
from forensics.media import MediaError, load_image
from forensics.models import create_model, npr_residual
from forensics.scoring import Calibration, Detector
from forensics.video import sample_frame_indices


def test_checkpoint_round_trip(tmp_path, tiny_checkpoint):
    det = Detector.from_checkpoint(tiny_checkpoint)
    again = Detector.from_checkpoint(det.save(tmp_path / "again.safetensors"))
    for k, v in det.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    assert again.spec.to_meta()["preprocess"] == det.spec.to_meta()["preprocess"]
    assert read_meta(tiny_checkpoint)["arch"] == "patch_tiny"


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"format": "x"})
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_checkpoint_with_code_is_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"state_dict": {}, "meta": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError):
        Detector.from_checkpoint(bad)


def test_plain_torch_checkpoint_is_accepted(tmp_path):
    ok = tmp_path / "ok.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}, "meta": {"a": 1}}, ok)
    state, meta = load_checkpoint(ok)
    assert meta == {"a": 1} and state["w"].shape == (3,)


def test_predict_does_not_mutate_inputs(tiny_checkpoint):
    det = Detector.from_checkpoint(tiny_checkpoint)
    crops = [np.random.default_rng(0).integers(0, 255, (50, 40, 3), dtype=np.uint8)]
    before = crops[0].copy()
    preds = det.predict(crops)
    assert np.array_equal(crops[0], before)
    assert 0.0 <= preds[0].prob <= 1.0 and preds[0].evidence.ndim == 2


def test_calibration_verdicts():
    cal = Calibration(temperature=2.0, bias=1.0, threshold=0.7, band=(0.4, 0.7))
    assert cal.prob(1.0) == pytest.approx(0.5)
    assert cal.verdict(0.8) == "fake" and cal.verdict(0.5) == "uncertain"
    assert cal.verdict(0.2) == "real" and cal.verdict(0.5, threshold=0.45) == "fake"


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_load_image_modes_become_rgb(tmp_path, mode):
    from PIL import Image

    ext = "tiff" if mode in {"CMYK", "I;16"} else "png"
    path = tmp_path / f"x.{ext}"
    Image.new(mode, (7, 5)).save(path)
    arr = load_image(path)
    assert arr.shape == (5, 7, 3) and arr.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    Image.new("RGB", (40, 20)).save(path, exif=exif)
    assert load_image(path).shape == (40, 20, 3)


def test_decompression_bomb_is_refused(tmp_path):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)
    with pytest.raises(MediaError, match="cap"):
        load_image(path, max_pixels=1_000_000)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_bad_images_raise_media_error(tmp_path, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(MediaError):
        load_image(path)


def test_square_box_stays_inside_image():
    for box in [(0, 0, 10, 10), (90, 90, 100, 100), (-5, 20, 60, 80), (10, 10, 200, 40)]:
        x1, y1, x2, y2 = square_box(box, 0.3, 100, 80)
        assert 0 <= x1 < x2 <= 100 and 0 <= y1 < y2 <= 80


def test_crop_face_is_a_copy(portrait_rgb):
    before = portrait_rgb.copy()
    crop = crop_face(portrait_rgb, (100, 100, 300, 300), 0.25)
    crop[:] = 0
    assert np.array_equal(portrait_rgb, before)


def test_frame_sampling():
    assert sample_frame_indices(300, 30.0, 2.0, 64) == list(range(0, 300, 15))
    assert len(sample_frame_indices(100_000, 30.0, 2.0, 10)) == 10
    assert sample_frame_indices(0, 30.0, 2.0, 10) == []


def test_npr_residual_removes_blocky_content():
    x = torch.rand(1, 3, 8, 8)
    blocky = torch.nn.functional.interpolate(x[..., ::2, ::2], scale_factor=2.0, mode="nearest")
    assert npr_residual(blocky).abs().max() == 0
    assert npr_residual(x).abs().max() > 0


@pytest.mark.parametrize("arch", ["patch_tiny", "patch_resnet"])
def test_models_give_logit_and_evidence(arch):
    out = create_model(arch).eval()(torch.randn(2, 3, 64, 64))
    assert out["logit"].shape == (2,) and out["patch_logits"].ndim == 3

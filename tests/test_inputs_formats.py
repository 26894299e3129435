"""Inputs and formats: every still format Pillow decodes, bomb headers, verify-ids, gan flags."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.media import MediaError, image_extensions, load_image, media_kind

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """A tiny randomly initialised detector (it detects nothing; only plumbing is tested)."""
    from forensics.models import create_model
    from forensics.preprocess import Preprocess
    from forensics.scoring import Detector, DetectorSpec

    spec = DetectorSpec(
        arch="patch_tiny", arch_kwargs={"width": 4}, preprocess=Preprocess(input_size=32)
    )
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    return Detector(create_model("patch_tiny", width=4), spec, "cpu").save(path)


def grey(h: int = 112, w: int = 92, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def write_pnm16(path: Path, values: np.ndarray, maxval: int) -> Path:
    """A binary PGM (2-D) or PPM (3-D) with 16-bit big-endian samples."""
    magic = b"P5" if values.ndim == 2 else b"P6"
    h, w = values.shape[:2]
    path.write_bytes(b"%s\n%d %d\n%d\n" % (magic, w, h, maxval) + values.astype(">u2").tobytes())
    return path


def forged_png(path: Path, width: int, height: int) -> Path:
    """A real 8x8 PNG whose IHDR is patched to claim ``width x height`` (CRC fixed)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize(
    "name", ["a.pgm", "a.PGM", "a.ppm", "a.pbm", "a.pnm", "a.tga", "a.pcx", "a.qoi", "a.tif"]
)
def test_pillow_formats_count_as_images(name):
    assert media_kind(name) == "image"


def test_video_and_other_suffixes_are_unchanged():
    assert media_kind("a.mp4") == media_kind("a.MKV") == "video"
    assert media_kind("a.txt") == media_kind("a.csv") == media_kind("noext") == "other"
    assert media_kind("a.mpg") == "other"  # Pillow identifies MPEG but cannot decode it
    assert media_kind("a.h5") == "other"  # a stub format with no handler installed
    exts = image_extensions()
    assert {".jpg", ".png", ".pgm", ".ppm", ".tiff"} <= exts
    assert not exts & {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg"}


def test_grey_pgm_ppm_and_tiff_decode_to_rgb_uint8(tmp_path):
    g = grey()
    Image.fromarray(g, "L").save(tmp_path / "grey.pgm")
    rgb = np.stack([g, g[::-1], 255 - g], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "colour.ppm")
    Image.fromarray(g, "L").save(tmp_path / "grey.tif")
    for name, want in (("grey.pgm", np.repeat(g[..., None], 3, -1)), ("colour.ppm", rgb),
                       ("grey.tif", np.repeat(g[..., None], 3, -1))):  # fmt: skip
        out = load_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (112, 92, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, want)


def test_16bit_pgm_ppm_and_tiff_scale_from_full_white(tmp_path):
    # A dark 16-bit photo must stay dark: 0..1000 of 65535 is 0..4 in 8 bits.
    dark = np.linspace(0, 1000, 92 * 112).reshape(112, 92).round().astype(np.uint16)
    out = load_image(write_pnm16(tmp_path / "dark16.pgm", dark, 65535))
    assert out.shape == (112, 92, 3) and out.dtype == np.uint8 and out.max() == 4
    # Any maxval deeper than 8 bits: maxval is white.
    ten_bit = np.array([[0, 512, 1023]], dtype=np.uint16)
    out = load_image(write_pnm16(tmp_path / "ten.pgm", ten_bit, 1023))
    np.testing.assert_allclose(out[0, :, 0], [0, 128, 255], atol=1)
    colour = np.random.default_rng(1).integers(0, 65536, (20, 10, 3)).astype(np.uint16)
    out = load_image(write_pnm16(tmp_path / "c16.ppm", colour, 65535))
    assert out.shape == (20, 10, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out, colour / 257.0, atol=1)
    g16 = (grey().astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.tif")
    assert Image.open(tmp_path / "g16.tif").mode == "I;16"
    np.testing.assert_array_equal(load_image(tmp_path / "g16.tif")[..., 0], grey())


def test_float_tiff_in_unit_range_is_not_black(tmp_path):
    f = np.linspace(0.0, 1.0, 200, dtype=np.float32).reshape(20, 10)
    Image.fromarray(f, "F").save(tmp_path / "f.tif")
    out = load_image(tmp_path / "f.tif")
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_forged_huge_header_gives_the_tools_own_message(tmp_path):
    path = forged_png(tmp_path / "huge.png", 100_000, 100_000)
    with pytest.raises(MediaError) as info:
        load_image(path)
    msg = str(info.value)
    assert "10,000,000,000 pixels, over the 64,000,000 cap" in msg
    assert "decompression bomb" in msg and "178956970" not in msg and "DOS" not in msg
    # Under Pillow's own hard limit the size check in load_image answers, with the size.
    with pytest.raises(MediaError, match=r"10000x10000 = 100,000,000 pixels, over the 64,000,000"):
        load_image(forged_png(tmp_path / "big.png", 10_000, 10_000))


def test_scan_scores_pgm_ppm_tiff_and_refuses_a_forged_header(tmp_path, detector):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(grey(), "L").save(folder / "grey.pgm")
    Image.fromarray(np.stack([grey(seed=2)] * 3, -1)).save(folder / "colour.ppm")
    write_pnm16(folder / "deep.pgm", grey().astype(np.uint16) * 257, 65535)
    Image.fromarray(grey().astype(np.uint16) * 257).save(folder / "deep.tif")
    forged_png(folder / "huge.png", 100_000, 100_000)
    res = runner.invoke(
        app, ["scan", str(folder), "--model", str(detector), "--device", "cpu", "-f", "json"]
    )
    assert res.exit_code == 3, res.output  # 3: a file could not be read
    recs = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert set(recs) == {"grey.pgm", "colour.ppm", "deep.pgm", "deep.tif", "huge.png"}
    for name in ("grey.pgm", "colour.ppm", "deep.pgm", "deep.tif"):
        r = recs[name]
        assert (r["kind"], r["status"]) == ("image", "ok"), r
        assert (r["width"], r["height"]) == (92, 112) and 0.0 <= r["score"] <= 1.0
    bomb = recs["huge.png"]
    assert bomb["status"] == "error" and "over the 64,000,000 cap" in bomb["error"]
    assert "178956970" not in res.output and "not a photo" not in res.output


# ---------------------------------------------------------------------------- verify-ids
def test_verify_ids_missing_path_is_a_usage_error_on_stderr(tmp_path):
    res = runner.invoke(app, ["verify-ids", str(tmp_path / "nonexistent")])
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and "no files found" not in res.stderr
    assert res.stdout == ""


def test_verify_ids_broken_symlink_and_empty_folder_say_so(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    res = runner.invoke(app, ["verify-ids", str(tmp_path / "link")])
    assert res.exit_code == 2 and "broken symlink" in res.stderr and res.stdout == ""
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / ".hidden.jpg").write_bytes(b"x")
    res = runner.invoke(app, ["verify-ids", str(empty)])
    assert res.exit_code == 2 and res.stdout == ""
    assert "exists but is a folder with no files" in res.stderr


# ----------------------------------------------------------------------------- gan flags
@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    """A tiny randomly initialised generator checkpoint."""
    import torch

    from trainers.gan.export import export_generator
    from trainers.gan.models import create_generator

    torch.manual_seed(0)
    g = create_generator("resize_conv", size=16, width=4, z_dim=8).eval()
    meta = {"family": "resize_conv", "kwargs": {"size": 16, "width": 4, "z_dim": 8}, "size": 16}
    return export_generator(tmp_path_factory.mktemp("g") / "g.safetensors", g, meta)


def test_gan_sample_image_format_and_summary_format(tmp_path, generator):
    base = ["gan", "sample", str(generator), "--n", "2", "--device", "cpu"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "j"), "--image-format", "jpeg",
                              "--quality", "80", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["images"] == 2 and summary["formats"] == {"jpeg": 2}
    assert sorted(p.suffix for p in (tmp_path / "j").glob("*.jpg")) == [".jpg", ".jpg"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "p"), "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["formats"] == {"png": 2}
    # The old name of --format still works, hidden.
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "o"), "--output-format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == 2


def test_gan_sample_format_is_the_output_format(tmp_path, generator):
    res = runner.invoke(app, ["gan", "sample", str(generator), "--format", "jpeg",
                              "--out", str(tmp_path / "x")])  # fmt: skip
    assert res.exit_code == 2 and not (tmp_path / "x").exists()
    res = runner.invoke(app, ["gan", "sample", str(generator), "--image-format", "gif",
                              "--out", str(tmp_path / "y")])  # fmt: skip
    assert res.exit_code == 2 and not (tmp_path / "y").exists()
    res = runner.invoke(app, ["gan", "sample", "--help"])
    assert res.exit_code == 0 and "--image-format" in res.output and "--format" in res.output
    assert "--output-format" not in res.output

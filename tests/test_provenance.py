"""Provenance beside the pixels: C2PA manifests, generator metadata, EXIF, XMP, JPEG tables.

Every file here is made by the test: signed with a throwaway certificate, or given
metadata with Pillow.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.provenance import read_provenance
from forensics.provenance.signing import sign_image, throwaway_credentials

runner = CliRunner()

A1111 = (
    "portrait photo of a woman\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: sd21"
)
COMFY = json.dumps({
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl.safetensors"}},
})  # fmt: skip
XMP_AI = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
    'trainedAlgorithmicMedia"/></rdf:RDF></x:xmpmeta>'
)


def encode(rgb: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def rgb(portrait_rgb) -> np.ndarray:
    return np.ascontiguousarray(portrait_rgb[40:296, 120:376])


@pytest.fixture(scope="module")
def creds():
    return throwaway_credentials()


@pytest.fixture(scope="module")
def signed_ai_jpeg(rgb, creds) -> bytes:
    return sign_image(encode(rgb, "JPEG", quality=90), "image/jpeg", creds)


@pytest.fixture(scope="module")
def signed_capture_png(rgb, creds) -> bytes:
    return sign_image(encode(rgb, "PNG"), "image/png", creds, "digitalCapture")


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(offset, marker, length)`` of each segment before the scan data."""
    out, i = [], 2
    while data[i + 1] != 0xDA:
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        out.append((i, data[i + 1], length))
        i += 2 + length
    return out


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    return (
        jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]
    )


# ------------------------------------------------------------------------------ C2PA
def test_signed_ai_jpeg_is_valid_and_declared(signed_ai_jpeg):
    prov = read_provenance(signed_ai_jpeg)
    c2pa = prov["c2pa"]
    assert c2pa["present"] and c2pa["valid"] and not c2pa["trusted"]
    assert c2pa["digital_source_type"] == "trainedAlgorithmicMedia"
    assert c2pa["actions"] == ["c2pa.created"] and "forensics test signer" in c2pa["signer"]
    assert prov["declared"] and "trainedAlgorithmicMedia" in prov["declared"]
    assert "(valid; signer not on a trust list)" in prov["claims"][0]
    assert prov["errors"] == []


def test_signed_capture_png_is_valid_but_declares_nothing_synthetic(signed_capture_png):
    prov = read_provenance(signed_capture_png)
    assert prov["c2pa"]["valid"] and prov["c2pa"]["digital_source_type"] == "digitalCapture"
    assert prov["declared"] is None
    assert "declares digitalCapture" in prov["claims"][0]


def test_pixels_changed_after_signing_fail_validation(signed_ai_jpeg):
    start = jpeg_segments(signed_ai_jpeg)[-1]
    scan_data = start[0] + 2 + start[2] + 20  # inside the entropy-coded pixels
    tampered = bytearray(signed_ai_jpeg)
    tampered[scan_data] ^= 0x5A
    prov = read_provenance(bytes(tampered))
    assert prov["c2pa"]["present"] and prov["c2pa"]["valid"] is False
    assert "assertion.dataHash.mismatch" in prov["c2pa"]["failures"]
    assert prov["declared"] is None  # an invalid manifest is evidence, not a verdict
    assert "fails validation: assertion.dataHash.mismatch" in prov["claims"][0]


def test_truncated_manifest_is_a_note(signed_ai_jpeg):
    offset, marker, length = next(s for s in jpeg_segments(signed_ai_jpeg) if s[1] == 0xEB)
    payload = signed_ai_jpeg[offset + 4 : offset + 2 + length]
    half = payload[: len(payload) // 2]
    cut = (signed_ai_jpeg[:offset] + b"\xff\xeb" + struct.pack(">H", len(half) + 2) + half
           + signed_ai_jpeg[offset + 2 + length :])  # fmt: skip
    prov = read_provenance(cut)
    assert prov["c2pa"]["present"] and prov["c2pa"]["state"] == "Unreadable"
    assert prov["declared"] is None and any("C2PA" in e for e in prov["errors"])
    assert "unreadable" in prov["claims"][0]


# ------------------------------------------------------------------- generator metadata
def test_a1111_parameters_chunk_is_declared(rgb):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111)
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    params = prov["metadata"]["generator_params"]
    assert params["tool"] == "AUTOMATIC1111-style" and "Sampler: Euler a" in params["summary"]
    assert prov["declared"].startswith(
        "PNG text chunk 'parameters' holds AUTOMATIC1111-style image"
    )


def test_comfyui_prompt_chunk_is_declared(rgb):
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", COMFY)
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    assert prov["metadata"]["generator_params"]["tool"] == "ComfyUI"
    assert "KSampler" in prov["declared"]


def test_ordinary_text_chunks_declare_nothing(rgb):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "exposure=1/125")  # not a generator's settings line
    info.add_text("prompt", json.dumps({"1": {"class_type": "LoadImage"}}))
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    assert prov["declared"] is None and prov["metadata"]["generator_params"] is None
    assert prov["metadata"]["png_text"]["parameters"] == "exposure=1/125"


def test_a1111_settings_in_jpeg_user_comment(rgb):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[37510] = b"UNICODE\x00" + A1111.encode("utf-16-be")
    prov = read_provenance(encode(rgb, "JPEG", exif=exif))
    assert prov["declared"].startswith("EXIF UserComment holds AUTOMATIC1111-style")


def test_camera_exif_and_editor_software(rgb):
    camera = Image.Exif()
    camera[271], camera[272] = "Canon", "Canon EOS 5D Mark IV"
    prov = read_provenance(encode(rgb, "JPEG", exif=camera, quality=92))
    assert prov["metadata"]["camera"]
    assert "camera EXIF: Canon Canon EOS 5D Mark IV" in prov["claims"]
    assert prov["metadata"]["jpeg"] == {"quality": 92, "standard_tables": True, "tables": 2}
    edited = Image.Exif()
    edited[305] = "Adobe Photoshop 25.0 (Windows)"
    prov = read_provenance(encode(rgb, "JPEG", exif=edited))
    assert prov["metadata"]["software"] == "editor" and not prov["metadata"]["camera"]
    assert "Software tag names an image editor: Adobe Photoshop 25.0 (Windows)" in prov["claims"]
    assert "no camera EXIF" in prov["claims"] and prov["declared"] is None


def test_custom_quantisation_tables_are_not_libjpeg(rgb):
    table = list(range(1, 65))
    prov = read_provenance(encode(rgb, "JPEG", qtables=[table, table]))
    assert prov["metadata"]["jpeg"]["standard_tables"] is False


def test_xmp_source_type_is_reported_not_decided(rgb):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_AI)
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    assert prov["metadata"]["xmp"]["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert prov["declared"] is None  # unsigned metadata is reported beside the score
    assert any("XMP declares IPTC DigitalSourceType trainedAlgorithmicMedia" in c
               for c in prov["claims"])  # fmt: skip


# ----------------------------------------------------------------------- bad input
def test_huge_xmp_packet_is_a_note(rgb):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_AI.replace("<rdf:RDF", "<!--" + "x" * 2_000_000
                                                      + "--><rdf:RDF"))  # fmt: skip
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    assert any("XMP packet of" in e for e in prov["errors"])
    assert prov["metadata"]["xmp"]["digital_source_type"] is None


def test_xml_entity_bomb_in_xmp_is_a_note(rgb):
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            "&b;</x:xmpmeta>")  # fmt: skip
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", bomb)
    prov = read_provenance(encode(rgb, "PNG", pnginfo=info))
    assert any("XMP could not be parsed" in e for e in prov["errors"])


@pytest.mark.parametrize(
    "payload",
    [b"Exif\x00\x00garbage, not a TIFF header",
     b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + b"\xff" * 40],
)  # fmt: skip
def test_malformed_exif_is_a_note(rgb, payload):
    prov = read_provenance(with_segment(encode(rgb, "JPEG"), 0xE1, payload))
    assert any("EXIF" in e for e in prov["errors"]), prov["errors"]
    assert prov["metadata"]["exif"] == {}


def test_not_an_image_and_missing_file_never_raise(tmp_path):
    prov = read_provenance(b"\x00" * 100)
    assert prov["c2pa"]["present"] is False and prov["errors"] and prov["claims"] == []
    assert "could not be read" in read_provenance(tmp_path / "missing.jpg")["errors"][0]


# ------------------------------------------------------------------------ the scan
@pytest.fixture(scope="module")
def folder(tmp_path_factory, rgb, signed_ai_jpeg) -> Path:
    d = tmp_path_factory.mktemp("prov")
    (d / "signed_ai.jpg").write_bytes(signed_ai_jpeg)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111)
    (d / "params.png").write_bytes(encode(rgb, "PNG", pnginfo=info))
    (d / "plain.jpg").write_bytes(encode(rgb, "JPEG", quality=90))
    bad = with_segment(encode(rgb, "JPEG"), 0xE1, b"Exif\x00\x00garbage, not a TIFF header")
    (d / "bad_exif.jpg").write_bytes(bad)
    return d


def scan_records(folder: Path, ckpt: Path, *extra: str) -> dict[str, dict]:
    args = ["scan", str(folder), "--model", str(ckpt), "--device", "cpu", "--format", "jsonl"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code in (0, 1), result.output
    recs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {Path(r["path"]).name: r for r in recs}


def test_scan_applies_the_provenance_rule(folder, tiny_checkpoint):
    recs = scan_records(folder, tiny_checkpoint, "--threshold", "1.0")  # pixels never flag
    for name in ("signed_ai.jpg", "params.png"):
        assert recs[name]["verdict"] == "fake" and recs[name]["verdict_source"] == "provenance"
        assert recs[name]["provenance"]["declared"] in recs[name]["provenance"]["claims"]
    for name in ("plain.jpg", "bad_exif.jpg"):
        assert recs[name]["verdict"] == "real" and recs[name]["verdict_source"] == "pixels"
    assert recs["bad_exif.jpg"]["status"] == "ok" and recs["bad_exif.jpg"]["provenance"]["errors"]
    same = scan_records(folder, tiny_checkpoint, "--threshold", "1.0", "--ignore-provenance")
    assert all(r["verdict"] == "real" and r["verdict_source"] == "pixels" for r in same.values())
    assert same["signed_ai.jpg"]["provenance"]["c2pa"]["valid"]  # still read and reported
    assert {n: r["score"] for n, r in same.items()} == {n: r["score"] for n, r in recs.items()}


def test_report_shows_a_provenance_panel(folder, tiny_checkpoint, tmp_path):
    args = ["scan", str(folder), "--model", str(tiny_checkpoint), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--threshold", "1.0", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output  # flagged by provenance
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data-provenance='declared'") == 2
    assert "verdict fake by declaration" in html and "by provenance" in html
    assert "EXIF block is malformed" in html  # the bad file's note is shown, not hidden


def test_verify_ids_rejects_declared_synthetic(folder, tiny_checkpoint, tmp_path, rgb):
    edited = Image.Exif()
    edited[305] = "Adobe Photoshop 25.0"
    photos = tmp_path / "ids"
    photos.mkdir()
    for name in ("signed_ai.jpg", "params.png", "plain.jpg"):
        (photos / name).write_bytes((folder / name).read_bytes())
    (photos / "edited.jpg").write_bytes(encode(rgb, "JPEG", exif=edited))
    policy = tmp_path / "policy.toml"
    policy.write_text("synthetic_threshold = 1.01\n")  # the tiny model flags nothing itself
    args = ["verify-ids", str(photos), "--model", str(tiny_checkpoint), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--policy", str(policy), "--format", "jsonl"])
    recs = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    for name in ("signed_ai.jpg", "params.png"):
        assert "declared_synthetic" in recs[name]["reasons"] and recs[name]["decision"] == "reject"
        assert recs[name]["scores"]["declared"] == recs[name]["provenance"]["declared"]
    assert "declared_synthetic" not in recs["plain.jpg"]["reasons"] + recs["plain.jpg"]["hints"]
    assert recs["edited.jpg"]["hints"] == ["metadata"]
    assert recs["edited.jpg"]["scores"]["provenance"] == ["software: editor"]


def test_shipped_provenance_samples_declare_what_they_are():
    samples = Path(__file__).resolve().parents[1] / "samples"
    signed = read_provenance(samples / "fake_c2pa_gan_face.jpg")
    assert signed["c2pa"]["valid"] and signed["c2pa"]["signer"].startswith("forensics sample")
    assert "declares trainedAlgorithmicMedia" in signed["declared"]
    params = read_provenance(samples / "fake_params_gan_face.png")
    assert "Model: forensics ae_gan default generator" in params["declared"]
    for real in ("real_grace_hopper.jpg", "real_astronaut_eileen_collins.png"):
        assert read_provenance(samples / real)["declared"] is None


def test_signed_video_is_read_streamed(tmp_path, creds):
    from forensics.provenance import read_video_provenance

    samples = Path(__file__).resolve().parents[1] / "samples"
    video = (samples / "fake_video_gan_latent_walk.mp4").read_bytes()
    (tmp_path / "signed.mp4").write_bytes(sign_image(video, "video/mp4", creds))
    prov = read_video_provenance(tmp_path / "signed.mp4")
    assert prov["c2pa"]["valid"] and prov["declared"] and prov["metadata"] is None
    plain = read_video_provenance(samples / "real_video_grace_hopper.mp4")
    assert plain["c2pa"]["present"] is False and plain["claims"] == [] and plain["errors"] == []
    assert read_video_provenance(tmp_path / "missing.mp4")["errors"]

"""The scan library: record contract, rules, bad inputs, video sampling, artifacts."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_checkpoint

from forensics.media import resize_rgb, save_image
from forensics.video import sample_frame_indices, write_video

FACE_KEYS = {"box", "score", "heatmap"}
CONTRACT = {"path", "kind", "status", "error", "score", "verdict", "faces", "frames", "model"}


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` (a decompression-bomb stand-in)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def make_bad_inputs(folder: Path, portrait: np.ndarray) -> dict[str, str]:
    """Every bad-input kind; returns name -> expected fragment of the error message."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    good = folder / "_good.jpg"
    save_image(good, portrait, quality=90)
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[:2000])
    good.unlink()
    (folder / "text as image.png").write_text("this is not a picture")
    (folder / "not a video.mp4").write_bytes(os.urandom(4096))
    (folder / "empty.mp4").write_bytes(b"")
    import cv2

    writer = cv2.VideoWriter(str(folder / "zero frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                             5.0, (64, 64))  # fmt: skip
    writer.release()  # a valid container holding no frame
    png_header_only(folder / "bomb.png", 30_000, 30_000)
    os.symlink("loop.jpg", folder / "loop.jpg")
    return {
        "empty.jpg": "empty file",
        "truncated.jpg": "truncated",
        "text as image.png": "not a recognised image",
        "not a video.mp4": "cannot open video",
        "empty.mp4": "empty file",
        "zero frames.avi": "no decodable frames",
        "bomb.png": "decompression bomb",
        "loop.jpg": "symlink loop",
    }


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.fixture(scope="module")
def scanner_factory(ckpt, face_detector):
    from forensics.analysis import Analyzer
    from forensics.scan import Scanner
    from forensics.scan_setup import ScanConfig
    from forensics.scoring import Detector

    detector = Detector.load(ckpt, device="cpu")

    def make(out_dir=None, **cfg):
        return Scanner(Analyzer(detector, face_detector), ScanConfig(**cfg), out_dir=out_dir)

    return make


def scan(scanner, *paths):
    from forensics.scan_inputs import collect_inputs

    return [r.to_dict() for r in scanner.scan(collect_inputs(paths))]


def test_top_k_mean_rule():
    from forensics.scan import top_k_mean

    assert top_k_mean([0.2]) == pytest.approx(0.2)
    assert top_k_mean([0.1, 0.9, 0.5, 0.3]) == pytest.approx(0.9)  # k = 1 of 4
    assert top_k_mean([0.1, 0.9, 0.5, 0.3, 0.7]) == pytest.approx(0.8)  # k = 2 of 5
    scores = list(np.random.default_rng(0).random(40))
    assert top_k_mean(scores) == pytest.approx(np.mean(sorted(scores)[-10:]))
    with pytest.raises(ValueError):
        top_k_mean([])


def test_photo_record_contract_and_rule(tmp_path, portrait_rgb, scanner_factory):
    save_image(tmp_path / "portrait.jpg", portrait_rgb, quality=92)
    noise = np.random.default_rng(1).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    save_image(tmp_path / "noise.png", noise)
    (tmp_path / "notes.txt").write_text("hello")
    recs = {Path(r["path"]).name: r for r in scan(scanner_factory(), tmp_path)}
    assert set(recs) == {"portrait.jpg", "noise.png", "notes.txt"}
    for r in recs.values():
        assert CONTRACT <= set(r)
        json.dumps(r)  # JSON-ready
        assert r["model"]["name"] == "tiny.safetensors"
    face = recs["portrait.jpg"]
    assert face["kind"] == "image" and face["status"] == "ok" and face["error"] is None
    assert face["n_faces"] >= 1 and not face["whole_image"]
    assert face["score"] == pytest.approx(max(f["score"] for f in face["faces"]))
    assert face["verdict"] in {"real", "fake", "uncertain"}
    assert all(FACE_KEYS <= set(f) and f["heatmap"] is None for f in face["faces"])
    assert face["frames"] is None and face["aggregate"] == "max_face"
    assert face["model"]["name"] == "tiny.safetensors" and len(face["model"]["sha256"]) == 64
    assert (face["width"], face["height"]) == (portrait_rgb.shape[1], portrait_rgb.shape[0])
    flat = recs["noise.png"]
    assert flat["status"] == "ok" and flat["whole_image"] and flat["n_faces"] == 0
    assert flat["faces"][0]["box"] == [0.0, 0.0, 80.0, 64.0]
    other = recs["notes.txt"]
    assert other["kind"] == "other" and other["status"] == "skipped" and other["score"] is None
    assert ".txt" in other["note"]


def test_threshold_override_forces_verdicts(tmp_path, portrait_rgb, scanner_factory):
    save_image(tmp_path / "p.png", portrait_rgb[::2, ::2])
    assert scan(scanner_factory(threshold=0.0), tmp_path)[0]["verdict"] == "fake"
    assert scan(scanner_factory(threshold=1.0), tmp_path)[0]["verdict"] == "real"


def test_every_bad_input_gets_a_clear_error(tmp_path, portrait_rgb, scanner_factory):
    expected = make_bad_inputs(tmp_path / "bad", portrait_rgb)
    os.symlink(".", tmp_path / "bad" / "again")  # a folder loop: listed, not followed
    odd = tmp_path / "bad" / "ünïcödé name (1).png"
    save_image(odd, portrait_rgb[::3, ::3])
    recs = {Path(r["path"]).name: r for r in scan(scanner_factory(), tmp_path / "bad")}
    assert set(recs) == set(expected) | {"again", odd.name}  # every input appears once
    for name, fragment in expected.items():
        assert recs[name]["status"] == "error", name
        assert fragment in recs[name]["error"], (name, recs[name]["error"])
        assert "Traceback" not in recs[name]["error"]
    assert recs["again"]["status"] == "skipped"
    assert recs[odd.name]["status"] == "ok"


def test_pixel_cap_is_configurable(tmp_path, portrait_rgb, scanner_factory):
    save_image(tmp_path / "p.png", portrait_rgb)
    (rec,) = scan(scanner_factory(max_pixels=10_000), tmp_path)
    assert rec["status"] == "error" and "cap" in rec["error"]


def test_missing_path_is_an_error_record(tmp_path, scanner_factory):
    (rec,) = scan(scanner_factory(), tmp_path / "nope.jpg")
    assert rec["status"] == "error" and rec["error"]


def test_video_sampling_and_rule(tmp_path, portrait_rgb, scanner_factory):
    from forensics.scan import top_k_mean

    small = resize_rgb(portrait_rgb, (128, 150))
    frames = [np.roll(small, 3 * i, axis=1) for i in range(10)]
    video = write_video(tmp_path / "clip.mp4", frames, fps=5)
    (rec,) = scan(scanner_factory(fps=2.0, max_frames=64), video)
    assert rec["kind"] == "video" and rec["status"] == "ok", rec["error"]
    want = sample_frame_indices(10, 5.0, 2.0, 64)
    assert [f["index"] for f in rec["frames"]] == want
    assert [f["time_s"] for f in rec["frames"]] == pytest.approx([i / 5.0 for i in want])
    assert rec["score"] == pytest.approx(top_k_mean([f["score"] for f in rec["frames"]]))
    # one face per frame, followed as one track: the track rule gives the frame rule's score
    assert [f["n_faces"] for f in rec["frames"]] == [1] * len(want)
    assert rec["aggregate"] == "top_track" and rec["duration_s"] == pytest.approx(2.0)
    assert [t["frames"] for t in rec["tracks"]] == [want]
    assert rec["faces"] and all(f["frame_index"] in want for f in rec["faces"])
    assert all(f["track"] == 0 for f in rec["faces"])
    (capped,) = scan(scanner_factory(fps=100.0, max_frames=3), video)
    assert len(capped["frames"]) == 3


def test_artifacts_written_with_out_dir(tmp_path, portrait_rgb, scanner_factory):
    from forensics.media import load_image
    from forensics.report import write_report

    inputs = tmp_path / "in"
    save_image(inputs / "portrait.png", portrait_rgb)
    write_video(inputs / "clip.avi", [portrait_rgb[::4, ::4]] * 6, fps=3)
    out = tmp_path / "out"
    recs = {Path(r["path"]).name: r for r in scan(scanner_factory(out_dir=out), inputs)}
    photo = recs["portrait.png"]
    for face in photo["faces"]:
        overlay = load_image(out / face["heatmap"])
        assert overlay.shape == portrait_rgb.shape  # the overlay is the photo's size
        raw = np.load(out / face["heatmap_raw"])
        assert raw.ndim == 2 and raw.dtype == np.float32
    assert (out / photo["thumbnail"]).is_file()
    clip = recs["clip.avi"]
    assert clip["status"] == "ok" and (out / clip["timeline"]).is_file()
    assert all((out / f["heatmap"]).is_file() for f in clip["faces"])
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["path"] for x in lines] == [r["path"] for r in recs.values()]
    html = write_report(out).read_text(encoding="utf-8")
    assert photo["faces"][0]["heatmap"] in html and clip["timeline"] in html
    # each face track: a strip of zoomed faces (peak outlined) and a score curve, all on disk
    assert clip["tracks"] and html.count("<div class='strip'") == len(clip["tracks"])
    for track in clip["tracks"]:
        assert len(track["scores"]) == len(track["frames"])
        assert [s["frame"] for s in track["strip"]] == track["frames"]  # short: every face
        assert all((out / s["image"]).is_file() and s["image"] in html for s in track["strip"])
        assert (out / track["curve"]).is_file() and track["curve"] in html
    assert html.count("<figure class='thumb peak'") == len(clip["tracks"])


def test_artifacts_do_not_mutate_inputs(tmp_path, portrait_rgb):
    from forensics.plots import video_timeline_png
    from forensics.report import Artifacts

    rgb = portrait_rgb.copy()
    evidence = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    ev_copy = evidence.copy()
    art = Artifacts(tmp_path)
    png, raw = art.face_heatmap("x", rgb, (100, 100, 300, 300), (80, 80, 320, 320), evidence, True)
    art.thumbnail("x", rgb)
    times, scores = [0.0, 0.5, 1.0], [0.1, 0.9, 0.4]
    video_timeline_png(tmp_path / "t.png", times, scores, 0.5, "a $title$ with_odd chars", [0.5])
    assert np.array_equal(rgb, portrait_rgb) and np.array_equal(evidence, ev_copy)
    assert times == [0.0, 0.5, 1.0] and scores == [0.1, 0.9, 0.4]
    assert np.array_equal(np.load(tmp_path / raw), evidence)
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_scan_same_input_same_output(tmp_path, portrait_rgb, scanner_factory):
    save_image(tmp_path / "p.jpg", portrait_rgb, quality=90)
    first, second = scan(scanner_factory(), tmp_path), scan(scanner_factory(), tmp_path)
    assert first == second


def test_bad_photo_in_a_batch_does_not_sink_it(tmp_path, portrait_rgb, scanner_factory):
    for i in range(3):
        save_image(tmp_path / f"p{i}.png", portrait_rgb[::2, ::2])
    save_image(tmp_path / "p1x1.png", portrait_rgb[:1, :1])  # degenerate but valid
    (tmp_path / "p1b.png").write_bytes(b"\x89PNG junk")
    recs = scan(scanner_factory(batch_size=8), tmp_path)
    assert [Path(r["path"]).name for r in recs] == ["p0.png", "p1.png", "p1b.png", "p1x1.png",
                                                     "p2.png"]  # fmt: skip
    status = {Path(r["path"]).name: r["status"] for r in recs}
    assert status == {"p0.png": "ok", "p1.png": "ok", "p1b.png": "error", "p1x1.png": "ok",
                      "p2.png": "ok"}  # fmt: skip


def test_make_tiny_checkpoint_is_not_a_default_model():
    from forensics.scoring import default_model_path

    # The tests never install a stand-in default model.
    assert make_tiny_checkpoint.__doc__ and "random" in make_tiny_checkpoint.__doc__
    if default_model_path().is_file():
        from forensics.checkpoint import read_meta

        meta = read_meta(default_model_path())
        assert meta["arch"] != "patch_tiny" and "detects nothing" not in json.dumps(meta)
        assert meta["info"]["steps"] > 0 and meta["info"]["data"]  # trained, with provenance


def test_channels_last_speedups_keep_results(ckpt, portrait_rgb, face_detector):
    from forensics.faces import FaceDetector
    from forensics.scan_setup import channels_last
    from forensics.scoring import Detector

    fast = FaceDetector(device="cpu", channels_last=True)
    ref_faces, cl_faces = face_detector.detect(portrait_rgb), fast.detect(portrait_rgb)
    assert len(ref_faces) == len(cl_faces) >= 1
    assert np.allclose(ref_faces[0].box, cl_faces[0].box, atol=0.5)
    crops = [portrait_rgb[100:300, 150:350], portrait_rgb[::4, ::4]]
    before = Detector.load(ckpt, device="cpu").predict(crops)
    after = channels_last(Detector.load(ckpt, device="cpu")).predict(crops)
    for a, b in zip(before, after, strict=True):
        assert a.prob == pytest.approx(b.prob, abs=1e-5)
        assert np.allclose(a.evidence, b.evidence, atol=1e-4)

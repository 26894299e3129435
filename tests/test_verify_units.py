"""Unit tests of verify-ids parts: policy, checks, hashes, store and inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forensics.faces import Face
from forensics.verify import checks, phash
from forensics.verify.inputs import InputError, load_items
from forensics.verify.policy import DEFAULT_ACTIONS, Policy, PolicyError, load_policy
from forensics.verify.store import ResultStore, StoreError, read_records


def face_at(box, landmarks=None) -> Face:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    lm = landmarks or (
        (x1 + 0.3 * w, y1 + 0.4 * h),
        (x1 + 0.7 * w, y1 + 0.4 * h),
        (x1 + 0.5 * w, y1 + 0.6 * h),
        (x1 + 0.35 * w, y1 + 0.8 * h),
        (x1 + 0.65 * w, y1 + 0.8 * h),
    )
    return Face(box=box, prob=0.99, landmarks=lm)


# ---- policy -------------------------------------------------------------------------------


def test_default_policy_actions_match_issue():
    p = Policy()
    for r in ("synthetic", "no_face", "multiple_faces", "face_too_small", "unreadable"):
        assert p.action(r) == "reject"
    for r in ("blurry", "bad_exposure", "pose", "duplicate"):
        assert p.action(r) == "review"
    assert p.action("metadata") == "hint"
    assert p.decide([]) == "accept"
    assert p.decide(["blurry"]) == "review"
    assert p.decide(["blurry", "no_face"]) == "reject"


def test_policy_toml_round_trip_and_errors(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('min_sharpness = 30.5\nsynthetic_threshold = 0.7\n[actions]\nblurry = "reject"\n')
    p = load_policy(f)
    assert p.min_sharpness == 30.5 and p.synthetic_threshold == 0.7
    assert p.action("blurry") == "reject" and p.action("pose") == "review"
    f.write_text("min_sharpnes = 3\n")
    with pytest.raises(PolicyError, match="unknown policy key.*min_sharpnes"):
        load_policy(f)
    f.write_text('[actions]\nblurry = "ignore"\n')
    with pytest.raises(PolicyError, match="choose one of"):
        load_policy(f)
    f.write_text('[actions]\nmetadata = "reject"\n')
    with pytest.raises(PolicyError, match="hint only"):
        load_policy(f)
    f.write_text('min_luma = "dark"\n')
    with pytest.raises(PolicyError, match="min_luma must be a number"):
        load_policy(f)
    f.write_text("min_luma = = 3\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(f)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_example_policy_is_the_default():
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "docs" / "policy.example.toml"
    p = load_policy(example)
    assert p.to_dict() == Policy().to_dict()
    assert set(p.actions) == set(DEFAULT_ACTIONS)


# ---- checks -------------------------------------------------------------------------------


def test_pose_from_landmarks():
    frontal = face_at((0, 0, 100, 100))
    yaw, roll = checks.head_pose(frontal.landmarks)
    assert abs(yaw) < 1e-6 and abs(roll) < 1e-6
    turned = face_at((0, 0, 100, 100), ((30, 40), (70, 40), (68, 60), (35, 80), (65, 80)))
    assert checks.head_pose(turned.landmarks)[0] == pytest.approx(0.9)
    assert checks.pose(turned, Policy()).reasons == ["pose"]
    tilted = face_at((0, 0, 100, 100), ((30, 40), (70, 70), (45, 65), (25, 80), (55, 95)))
    assert abs(checks.head_pose(tilted.landmarks)[1]) > 30
    assert checks.pose(tilted, Policy()).reasons == ["pose"]
    assert checks.pose(frontal, Policy()).reasons == []


def test_blur_exposure_and_size_checks(portrait_rgb):
    import cv2

    before = portrait_rgb.copy()
    face = face_at((150, 130, 380, 400))
    p = Policy()
    assert checks.blurry(portrait_rgb, face, p).reasons == []
    soft = cv2.GaussianBlur(portrait_rgb, (0, 0), 8)
    res = checks.blurry(soft, face, p)
    assert res.reasons == ["blurry"] and res.scores["sharpness"] < p.min_sharpness
    assert checks.bad_exposure(portrait_rgb, face, p).reasons == []
    dark = (portrait_rgb * 0.1).astype(np.uint8)
    assert checks.bad_exposure(dark, face, p).reasons == ["bad_exposure"]
    bright = np.full_like(portrait_rgb, 252)
    assert checks.bad_exposure(bright, face, p).reasons == ["bad_exposure"]
    assert checks.face_too_small(face, portrait_rgb.shape, p).reasons == []
    tiny = face_at((10, 10, 50, 50))
    res = checks.face_too_small(tiny, portrait_rgb.shape, p)
    assert res.reasons == ["face_too_small"] and res.scores["face_px"] == 40
    big_frame = (5000, 5000, 3)
    assert checks.face_too_small(face, big_frame, p).reasons == ["face_too_small"]
    np.testing.assert_array_equal(portrait_rgb, before)


PORTRAIT_FACE = (171.0, 111.0, 356.0, 331.0)
"""MTCNN's box of the face in ``portrait_rgb`` (512x600): 185x220 px."""


def portrait_at(rgb: np.ndarray, face_h: int, blur: float = 0.0, noise: float = 0.0, seed=0):
    """The whole portrait resized so its face is ``face_h`` px tall, then blurred (Gaussian,
    sigma ``blur`` x the face height), noised and JPEG-encoded; returns it and the face."""
    import cv2

    from forensics.media import encode_jpeg, load_image, resize_rgb

    s = face_h / (PORTRAIT_FACE[3] - PORTRAIT_FACE[1])
    img = resize_rgb(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)))
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur * face_h)
    if noise:
        img = img + np.random.default_rng(seed).normal(0, noise, img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
    return load_image(encode_jpeg(img, 85)), face_at(tuple(v * s for v in PORTRAIT_FACE))


@pytest.mark.parametrize("face_h", [80, 150, 300, 600])
def test_blurred_faces_are_blurry_and_sharp_ones_not_at_every_size(portrait_rgb, face_h):
    p = Policy()
    sharp, face = portrait_at(portrait_rgb, face_h)
    res = checks.blurry(sharp, face, p)
    assert res.reasons == [] and res.scores["sharpness"] > 2 * p.min_sharpness
    noisy, _ = portrait_at(portrait_rgb, face_h, noise=4.0)
    assert checks.blurry(noisy, face, p).reasons == []
    # A blur of 2 % of the face height is plainly visible; 5 % leaves a smudge. Sensor noise
    # on top must not make a blurred face look sharp.
    for blur in (0.02, 0.05):
        for noise in (0.0, 4.0):
            rgb, _ = portrait_at(portrait_rgb, face_h, blur, noise)
            res = checks.blurry(rgb, face, p)
            assert res.reasons == ["blurry"], (face_h, blur, noise, res.scores)


def test_sharpness_is_comparable_across_photo_sizes(portrait_rgb):
    """The same face at face heights 100-800 px: the old 128-px Laplacian variance of a face
    blurred by 1.5 % of its height passed; here it stays far below the sharp face."""
    sizes = (100, 200, 400, 800)
    sharp = [checks.sharpness(*portrait_at(portrait_rgb, h)) for h in sizes]
    soft = [checks.sharpness(*portrait_at(portrait_rgb, h, blur=0.015)) for h in sizes]
    assert max(sharp) / min(sharp) < 1.5 and max(soft) / min(soft) < 1.5
    assert max(soft) < min(sharp) / 3
    flat = np.full((300, 300, 3), 128, np.uint8)
    assert checks.sharpness(flat, face_at((50, 50, 250, 250))) == 0.0


def test_small_face_retry_side():
    from forensics.verify.pipeline import MAX_RETRY_SIDE, small_face_side

    # MTCNN looks for 20-px faces: 32-px faces in a 2400-px photo need a 1500-px copy.
    assert small_face_side((1800, 2400, 3), 20, 32) == 1500
    assert small_face_side((300, 400, 3), 20, 10) == 400  # never upscaled
    assert small_face_side((6000, 8000, 3), 20, 32) == MAX_RETRY_SIDE
    assert small_face_side((1800, 2400, 3), 20, 0) == 2400


def test_count_faces_ignores_small_background_faces():
    p = Policy()
    main, other = face_at((0, 0, 200, 200)), face_at((300, 0, 340, 40))
    assert checks.count_faces([], p).reasons == ["no_face"]
    assert checks.count_faces([main, other], p).reasons == []
    assert checks.count_faces([main, face_at((300, 0, 450, 150))], p).reasons == ["multiple_faces"]


def test_metadata_tags_are_hints(tmp_path):
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a portrait, Steps: 20, Stable Diffusion v1.5")
    path = tmp_path / "gen.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    res = checks.metadata(checks.read_text_tags(path), Policy())
    assert res.reasons == ["metadata"] and "stable diffusion" in res.scores["metadata"][0]
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert checks.metadata(checks.read_text_tags(plain), Policy()).reasons == []
    assert checks.read_text_tags(tmp_path / "missing.png") == {}


# ---- perceptual hash ----------------------------------------------------------------------


def test_phash_survives_resize_and_reencode(portrait_rgb):
    from forensics.media import encode_jpeg, load_image, resize_rgb

    h, w = portrait_rgb.shape[:2]
    copy = load_image(encode_jpeg(resize_rgb(portrait_rgb, (w * 6 // 10, h * 6 // 10)), 60))
    a, b = phash.dct_hash(portrait_rgb), phash.dct_hash(copy)
    assert phash.hamming(a, b) <= 4
    other = phash.dct_hash(np.ascontiguousarray(portrait_rgb[::-1]))
    assert phash.hamming(a, other) > 12
    assert phash.from_hex(phash.to_hex(a)) == a and a < (1 << 63)


def test_hash_index_finds_earliest_match_only_among_earlier():
    idx = phash.HashIndex()
    assert idx.find(5, 5, 6, 4, 16) is None
    idx.add("a", 0b1111, 0)
    idx.add("b", 0b1111, 0)
    idx.add("c", None, None)
    m = idx.find(0b0111, 1 << 40, 6, 4, 16)
    assert m.key == "a" and m.face_distance == 1
    # image hash alone matches only when the face is not far off
    assert idx.find((1 << 30) - 1, 0, 6, 4, 16) is None
    assert idx.find(0b11111111, 0, 6, 4, 16).image_distance == 0
    for i in range(3000):  # growth keeps earlier entries
        idx.add(f"x{i}", (1 << 50) + i, (1 << 55) + i)
    assert len(idx) == 3003 and idx.find(0b1111, None, 0, 0, 0).key == "a"


# ---- store --------------------------------------------------------------------------------


def test_store_truncates_a_torn_last_line_and_resumes(tmp_path):
    with ResultStore(tmp_path) as s:
        s.append({"path": "a.jpg", "decision": "accept"})
        s.append({"path": "b.jpg", "decision": "reject"})
    f = tmp_path / "results.jsonl"
    good = f.read_bytes()
    f.write_bytes(good + b'{"path": "c.jpg", "deci')  # SIGKILL mid-write
    with ResultStore(tmp_path) as s:
        assert [r["path"] for r in s.records] == ["a.jpg", "b.jpg"]
        assert s.done == {"a.jpg", "b.jpg"}
        assert f.read_bytes() == good
        s.append({"path": "c.jpg", "decision": "review"})
    lines = f.read_bytes().splitlines()
    assert [json.loads(x)["path"] for x in lines] == ["a.jpg", "b.jpg", "c.jpg"]


def test_store_refuses_damage_in_the_middle(tmp_path):
    f = tmp_path / "results.jsonl"
    f.write_bytes(b'{"path": "a"}\nGARBAGE\n{"path": "b"}\n')
    with pytest.raises(StoreError, match="line 2"):
        read_records(f)
    f.write_bytes(b'{"path": "a"}\n\x00\x00\x00\n')  # a terminated but unparsable tail
    assert [r["path"] for r in read_records(f, repair=True)] == ["a"]
    assert f.read_bytes() == b'{"path": "a"}\n'


# ---- inputs -------------------------------------------------------------------------------


def test_folder_listing_skips_hidden_and_output(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.jsonl").write_text("")
    items = load_items(tmp_path, exclude=tmp_path / "out")
    assert [i.path for i in items] == [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]


def test_csv_manifest_with_and_without_header(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("photos/x.jpg,APP-1\n/abs/y.jpg\nphotos/x.jpg,APP-dup\n")
    items = load_items(m)
    assert [(i.path, i.applicant_id) for i in items] == [
        (str(tmp_path / "photos" / "x.jpg"), "APP-1"),
        ("/abs/y.jpg", None),
    ]
    m.write_text("applicant_id,path\nA<1>,z.jpg\n")
    assert [(i.path, i.applicant_id) for i in load_items(m)] == [(str(tmp_path / "z.jpg"), "A<1>")]
    m.write_text("path,applicant_id\n")
    with pytest.raises(InputError, match="no photos"):
        load_items(m)
    with pytest.raises(InputError, match="does not exist"):
        load_items(tmp_path / "nope.csv")

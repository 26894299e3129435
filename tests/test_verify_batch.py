"""verify-ids on a mixed batch: right decisions and reasons, report in a real browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_checkpoint, shared_data_or_skip
from test_verify_data import (
    at_face_height,
    build_mixed_batch,
    ffhq_paths,
    gradient_noise,
    score_batch,
    tiny_face_photo,
    utk_paths,
)

from forensics.verify.inputs import load_items
from forensics.verify.policy import Policy
from forensics.verify.runner import run_verification

NO_SYNTHETIC = Policy(synthetic_threshold=1.01)  # the tiny test model detects nothing
GAN_FACES = 20  # held-out StyleGAN3 faces added to the mixed batch


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    from forensics.analysis import Analyzer
    from forensics.faces import FaceDetector
    from forensics.scoring import Detector

    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("m") / "tiny.safetensors")
    det = Detector.from_checkpoint(ckpt, device="cpu")
    return Analyzer(det, FaceDetector(device="cpu"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, analyzer):
    shared = shared_data_or_skip()
    root = tmp_path_factory.mktemp("mixed")
    expected = build_mixed_batch(root / "photos", shared)
    out = root / "out"
    run = run_verification(load_items(root / "photos"), analyzer, NO_SYNTHETIC, out, 8)
    return root, expected, run


def test_mixed_batch_decisions_and_reasons(mixed):
    _, expected, run = mixed
    wrong = score_batch(run.records, expected)
    right = 1 - len(wrong) / len(expected)
    assert right >= 0.95, wrong
    assert wrong == [], wrong  # every case, not just 95 %
    dup = next(r for r in run.records if Path(r["path"]).name == "b_resubmit_0.jpg")
    assert Path(dup["scores"]["duplicate_of"]).name == "a_real_0.jpg"


def test_outputs_and_summary(mixed):
    import json

    root, expected, run = mixed
    out = root / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["photos"] == len(expected)
    assert summary["decisions"] == run.summary["decisions"]
    assert summary["reasons"]["unreadable"] == 3
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(expected)
    rec = json.loads(lines[0])
    assert {"path", "decision", "reasons", "scores", "synthetic_score"} <= set(rec)
    flagged = [r for r in run.records if r["decision"] != "accept" and r["scores"].get("faces")]
    assert flagged and all((out / t).is_file() for r in flagged for t in r["thumbnails"])


def test_synthetic_scores_equal_scan_path(mixed, analyzer):
    from forensics.media import load_image

    root, _, run = mixed
    rec = next(r for r in run.records if Path(r["path"]).name == "a_real_0.jpg")
    rgb = load_image(rec["path"])
    before = rgb.copy()
    scan_score = analyzer.score_images([rgb])[0].score
    assert rec["synthetic_score"] == pytest.approx(scan_score, abs=1e-6)
    np.testing.assert_array_equal(rgb, before)


def test_synthetic_threshold_forces_reason(mixed, analyzer, tmp_path):
    root, expected, _ = mixed
    items = [i for i in load_items(root / "photos") if "a_real" in i.path]
    run = run_verification(items, analyzer, Policy(synthetic_threshold=0.0), None)
    assert all(r["decision"] == "reject" and "synthetic" in r["reasons"] for r in run.records)
    assert run.files == {} and not list(tmp_path.iterdir())


def test_report_escapes_names_and_opens_in_chromium(analyzer, tmp_path, portrait_rgb):
    from forensics.media import save_image

    photos = tmp_path / "photos"
    save_image(photos / "ok.jpg", portrait_rgb, quality=92)
    evil = "<script>alert(1)<script>.jpg"
    (photos / evil).write_bytes(b"")
    (photos / "dark.png").write_bytes(b"")
    out = tmp_path / "out"
    run_verification(load_items(photos), analyzer, NO_SYNTHETIC, out)
    html = (out / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)" in html
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert dom.count("row row-reject flagged") == 2
    assert dom.count("row row-accept") == 1
    assert dom.index("row-reject") < dom.index("row-accept")  # flagged first
    assert "&lt;script&gt;" in dom and "unreadable" in dom


def test_tiny_face_in_a_large_photo_is_too_small_not_missing(
    analyzer, tmp_path, portrait_rgb, monkeypatch
):
    """Faces that shrink to 7-10 px at the detector's usual working size are found by the
    no-face retry and reported as ``face_too_small``, not ``no_face``; photos where the
    batched pass found a face are never retried."""
    from forensics.faces import FaceDetector
    from forensics.media import save_image

    head = portrait_rgb[60:400, 120:410]  # the face (185x220 px) with hair and collar
    photos = tmp_path / "photos"
    cases = {"tiny_2400.jpg": ((2400, 1800), 70), "tiny_4000.jpg": ((4000, 3000), 90)}
    for i, (name, (size, side)) in enumerate(cases.items()):
        save_image(photos / name, tiny_face_photo(head, size, side, i), quality=92)
    save_image(photos / "none_3000.jpg", gradient_noise(3000, 2000, 7), quality=92)
    save_image(photos / "portrait.jpg", portrait_rgb, quality=92)
    retried: list[tuple[int, ...]] = []
    detect = FaceDetector.detect

    def spy(self, rgb):
        retried.append(rgb.shape[:2])
        return detect(self, rgb)

    monkeypatch.setattr(FaceDetector, "detect", spy)
    run = run_verification(load_items(photos), analyzer, NO_SYNTHETIC, None)
    by_name = {Path(r["path"]).name: r for r in run.records}
    for name, ((w, h), side) in cases.items():
        r = by_name[name]
        assert r["decision"] == "reject" and "face_too_small" in r["reasons"], r
        assert "no_face" not in r["reasons"] and r["scores"]["face_px"] < 64
        x1, y1, x2, y2 = r["face_box"]  # inside the pasted head
        assert w * 3 // 5 - 2 <= x1 < x2 <= w * 3 // 5 + side + 2 and y1 >= h * 2 // 5 - 2
    assert by_name["none_3000.jpg"]["reasons"] == ["no_face"]
    assert by_name["portrait.jpg"]["reasons"] == []
    assert sorted(retried) == [(1800, 2400), (2000, 3000), (3000, 4000)]


def test_blur_is_caught_on_real_photos_at_several_sizes(face_detector):
    """Real portraits (UTKFace, FFHQ) at face heights 80-400 px, JPEG-encoded: every copy
    blurred by 2 % or 4 % of the face height is ``blurry``, and almost no unblurred one is
    (README: 2.5 % false alarms at five sizes, mostly UTKFace crops that are soft already)."""
    from forensics.faces import Face
    from forensics.media import load_image
    from forensics.verify import checks

    shared = shared_data_or_skip()
    policy = Policy()
    sharp_flags, missed = [], []
    for path in utk_paths(shared, 8, stride=101) + ffhq_paths(shared, 8):
        rgb = load_image(path)
        face = checks.main_face(face_detector.detect(rgb))
        assert face is not None, path
        for face_h in (80, 200, 400):
            for blur in (0.0, 0.02, 0.04):
                img, box = at_face_height(rgb, face.box, face_h, blur)
                res = checks.blurry(img, Face(box, face.prob, face.landmarks), policy)
                if blur == 0.0:
                    sharp_flags.append(bool(res.reasons))
                elif not res.reasons:
                    missed.append((path.name, face_h, blur, res.scores))
    assert missed == []
    assert sum(sharp_flags) <= 0.1 * len(sharp_flags), sharp_flags


def heldout_dev(folder: str) -> list[Path]:
    """Photos of a dev folder that the shipped detector never trained on (its held-out half)."""
    from trainers.detector.devsplit import in_train_half

    files = sorted((shared_data_or_skip() / "dev" / folder).glob("*.png"))
    return [p for p in files if not in_train_half(folder, p.name)]


def test_resynthesised_faces_are_rejected_with_the_default_detector(tmp_path):
    """GAN faces the detector never saw: FFHQ portraits re-rendered by the shipped resynth
    generator (the held-out half of ../shared/data/dev/real/ffhq256, never trained on), mixed
    with other, untouched FFHQ portraits of that half."""
    from forensics.scoring import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped default detector")
    from forensics.analysis import Analyzer
    from forensics.media import load_image, save_image
    from forensics.scoring import Detector
    from forensics.verify.inputs import Item
    from trainers.gan.export import RESYNTH_GENERATOR, load_generator
    from trainers.gan.native import resynthesize

    ffhq = heldout_dev("real/ffhq256")[:40]
    if len(ffhq) < 40:
        pytest.skip("needs 40 FFHQ portraits in ../shared/data/dev/real/ffhq256")
    generator, _ = load_generator(RESYNTH_GENERATOR, "cpu")
    items, expected = [], {}
    for i, src in enumerate(ffhq):
        rgb = load_image(src)
        if i % 2:
            out = tmp_path / f"gan_{src.stem}.png"
            save_image(out, resynthesize(generator, rgb))
            expected[str(out)] = ("reject", "synthetic")
        else:
            out = tmp_path / f"real_{src.stem}.png"
            save_image(out, rgb)
            expected[str(out)] = ("accept", None)
        items.append(Item(str(out)))
    analyzer = Analyzer(Detector.load(None, device="cpu"))
    run = run_verification(items, analyzer, Policy(), None)

    def right(r: dict) -> bool:
        decision, reason = expected[r["path"]]
        return r["decision"] == decision and (reason is None or reason in r["reasons"])

    detail = [
        (Path(r["path"]).name, r["decision"], r["reasons"], r["synthetic_score"])
        for r in run.records
    ]
    reals = [r for r in run.records if Path(r["path"]).name.startswith("real_")]
    gans = [r for r in run.records if Path(r["path"]).name.startswith("gan_")]
    # No real portrait is rejected or called synthetic (a turned head may still go to review).
    assert all(r["decision"] != "reject" and "synthetic" not in r["reasons"] for r in reals), detail
    # Measured with the shipped model: 20 of 20 twins rejected as synthetic (the previous
    # default caught 13; see MODEL_CARD.md), no real portrait flagged. Pinned with a margin so a
    # regression shows.
    assert sum(right(r) for r in gans) / len(gans) >= 0.85, detail


@pytest.fixture(scope="module")
def heldout_gan_run(tmp_path_factory):
    """verify-ids with the shipped detector and default policy on the held-out StyleGAN3 faces
    and FFHQ portraits of ../shared/data/dev (the halves the detector never trained on)."""
    from forensics.scoring import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped default detector")
    from forensics.analysis import Analyzer
    from forensics.scoring import Detector
    from forensics.verify.inputs import Item

    fakes, reals = heldout_dev("fake/stylegan3r256"), heldout_dev("real/ffhq256")
    if len(fakes) < 100 or len(reals) < 60:
        pytest.skip("needs the dev StyleGAN3 and FFHQ folders")
    analyzer = Analyzer(Detector.load(None, device="cpu"))
    run = run_verification([Item(str(p)) for p in fakes + reals], analyzer, Policy(), None, 16)
    synthetic = {r["path"]: "synthetic" in r["reasons"] for r in run.records}
    return [synthetic[str(p)] for p in fakes], [synthetic[str(p)] for p in reals]


def test_gan_faces_are_rejected_and_real_portraits_pass(heldout_gan_run):
    fakes, reals = heldout_gan_run
    # Issue 6's line: at least 95% of GAN faces rejected. Measured with the shipped model: 147
    # of 150 held-out StyleGAN3 faces (98%) rejected as synthetic, 0 of 90 FFHQ portraits (the
    # previous default: 141 of 150; see MODEL_CARD.md).
    assert sum(fakes) / len(fakes) >= 0.95
    assert sum(reals) / len(reals) <= 0.03


def test_mixed_batch_with_gan_faces_and_the_default_detector(tmp_path):
    """The issue's mixed batch with every check on (the shipped detector, the default policy)
    plus held-out StyleGAN3 faces: blur, darkness, small faces and re-submissions must not be
    mistaken for synthetic faces, and the GAN faces must be."""
    from forensics.scoring import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped default detector")
    from forensics.analysis import Analyzer
    from forensics.scoring import Detector

    shared = shared_data_or_skip()
    expected = build_mixed_batch(tmp_path / "photos", shared)
    for src in heldout_dev("fake/stylegan3r256")[:GAN_FACES]:
        shutil.copy(src, tmp_path / "photos" / f"i_gan_{src.name}")
        expected[f"i_gan_{src.name}"] = ("reject", "synthetic")
    analyzer = Analyzer(Detector.load(None, device="cpu"))
    run = run_verification(load_items(tmp_path / "photos"), analyzer, Policy(), None, 8)
    wrong = score_batch(run.records, expected)
    assert not [w for w in wrong if not w.startswith("i_gan_")], wrong  # every non-GAN kind
    assert len([w for w in wrong if w.startswith("i_gan_")]) <= GAN_FACES * 0.15, wrong

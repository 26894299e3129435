"""The scan report (report.html): summary first, ordering, filter box, legend, branch bars."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from forensics.media import save_image
from forensics.records import FaceResult, FrameResult, ScanRecord
from forensics.report import RESULTS_NAME, write_report

SHA = "ab12cd34ef56" + "0" * 52
MODEL = {"name": "tiny-detector", "sha256": SHA}
THRESHOLD = 0.51234


def _png(out: Path, name: str) -> str:
    rel = f"heatmaps/{name}.png"
    save_image(out / rel, np.full((8, 8, 3), 128, np.uint8))
    return rel


def _ok(out: Path, name: str, verdict: str, score: float, **face_kw) -> ScanRecord:
    face = FaceResult(box=[0, 0, 8, 8], score=score, heatmap=_png(out, name), **face_kw)
    return ScanRecord(
        path=f"in/{name}.jpg",
        kind="image",
        status="ok",
        score=score,
        verdict=verdict,
        faces=[face],
        model=dict(MODEL),
        threshold=THRESHOLD,
        aggregate="max_face",
        thumbnail=_png(out, f"{name}_thumb"),
    )


def _write(out: Path, records: list[ScanRecord]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r.to_dict(), ensure_ascii=False) for r in records]
    (out / RESULTS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return write_report(out).read_text(encoding="utf-8")


@pytest.fixture
def report(tmp_path) -> str:
    out = tmp_path / "out"
    recs = [  # deliberately out of report order
        _ok(out, "real_low", "real", 0.1),
        ScanRecord("in/skip_a.txt", "other", "skipped", note="not a photo or video"),
        _ok(out, "fake_mid", "fake", 0.91234, branches={"clip": 0.91234, "freq": 0.25}),
        ScanRecord("in/broken.png", "image", "error", error="cannot decode"),
        _ok(out, "unsure", "uncertain", 0.5),
        _ok(out, "real_high", "real", 0.3),
        _ok(out, "fake_top", "fake", 0.97),
        ScanRecord("in/skip_b.bin", "other", "skipped", note="not a regular file"),
    ]
    return _write(out, recs)


def _count(html: str, group: str) -> int:
    m = re.search(rf"id='count-{group}'>(\d+)<", html)
    assert m, group
    return int(m.group(1))


def test_summary_precedes_file_list_with_right_counts(report: str) -> None:
    assert report.index("id='summary'") < report.index("<table")
    assert report.index("id='summary'") < report.index("in/fake_top.jpg")
    counts = {g: _count(report, g) for g in ("fake", "uncertain", "real", "error", "skipped")}
    assert counts == {"fake": 2, "uncertain": 1, "real": 2, "error": 1, "skipped": 2}
    summary = report[report.index("id='summary'") : report.index("</section>")]
    assert "tiny-detector" in summary
    assert f"title='{SHA}'" in summary and ">ab12cd34ef56…<" in summary  # short, full on hover
    assert "threshold: <b>0.512</b>" in summary


def test_threshold_and_scores_have_three_decimals(report: str) -> None:
    assert "0.512" in report and "0.51234" not in report
    assert "0.912" in report and "0.91234" not in report
    assert "threshold 0.512" in report  # per file too
    assert "<td>0.970</td>" in report and "<td>0.100</td>" in report


def test_files_ordered_fake_uncertain_real_errors_skipped(report: str) -> None:
    order = [
        "in/fake_top.jpg",
        "in/fake_mid.jpg",
        "in/unsure.jpg",
        "in/real_high.jpg",
        "in/real_low.jpg",
        "in/broken.png",
        "in/skip_a.txt",  # no score: input order
        "in/skip_b.bin",
    ]
    body = report[report.index("<table") :]
    positions = [body.index(f"<code>{p}</code>") for p in order]
    assert positions == sorted(positions)
    groups = re.findall(r"<tbody class='group' data-group='(\w+)'>", body)
    assert groups == ["fake", "uncertain", "real", "error", "skipped"]


def test_filter_box_works_without_assets_and_page_shows_all_without_js(report: str) -> None:
    assert "<form class='filter' id='filter' hidden>" in report  # revealed by the script
    assert "type='search' id='filter-path'" in report
    for group in ("fake", "uncertain", "real", "error", "skipped"):
        assert f"<input type='checkbox' name='group' value='{group}' checked>" in report
    assert "<script>" in report and "src=" not in report.split("<script>", 1)[1]
    rows = re.findall(r"<tr class='file'[^>]*>", report)
    assert len(rows) == 8 and not any("hidden" in r for r in rows)  # no JS: all visible
    assert "<tbody class='group' data-group='fake' hidden" not in report
    assert "http://" not in report and "https://" not in report
    assert "<link" not in report and "@import" not in report and "url(" not in report


def test_legend_describes_fixed_inferno_scale(report: str) -> None:
    from forensics.heatmaps import colorize

    legend = report[report.index("id='legend'") :]
    legend = legend[: legend.index("</details>")]
    assert "sigmoid" in legend and "fake-logit" in legend and "not stretched per face" in legend
    assert "absolute" in legend and "calibrated like the face score" in legend
    assert "a face that scores low stays dark" in legend
    low, high = colorize(np.array([0.0, 1.0]))
    assert "#{:02x}{:02x}{:02x} 0%".format(*low) in legend
    assert "#{:02x}{:02x}{:02x} 100%".format(*high) in legend
    assert report.index("id='legend'") < report.index("<table")


def test_branch_bars_only_with_branches(report: str) -> None:
    bars = re.findall(r"<div class='bar' title='([^']*)'>", report)
    assert [b for b in bars if not b.startswith("face: ")] == ["clip: 0.912", "freq: 0.250"]
    assert len(bars) == 5 + 2  # a face-score bar for every face, branch bars with branches
    assert "style='width:91.2%'" in report and "style='width:25.0%'" in report
    assert "<span class='bar-fill hi' style='width:91.2%'>" in report  # above the threshold
    assert "<span class='bar-fill' style='width:25.0%'>" in report
    assert "<span class='bar-mark' style='left:51.2%'" in report
    assert report.count("face score <b>") == 5  # every scored face, with or without bars


def test_images_and_escaping(tmp_path) -> None:
    out = tmp_path / "out"
    hostile = _ok(out, "h", "fake", 0.8)
    hostile.path = "in/<script>alert(1)</script>'x.jpg"
    html = _write(out, [hostile, _ok(out, "r", "real", 0.2)])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "data-path='in/&lt;script&gt;alert(1)&lt;/script&gt;&#x27;x.jpg'" in html
    assert html.count("<img") >= 4  # thumbnails and heatmaps


def test_empty_scan(tmp_path) -> None:
    html = _write(tmp_path, [])
    assert "no files" in html and _count(html, "fake") == 0 and "threshold: none" in html


# ------------------------------------------------------------------ faces (issue 19, part 2)
def _face_views(out: Path, name: str, score: float, **kw) -> FaceResult:
    """A face as a scan with ``--out`` records it: overlay, crop and crop overlay."""
    return FaceResult(
        box=[0, 0, 8, 8],
        score=score,
        heatmap=_png(out, name),
        crop=_png(out, f"{name}_crop"),
        heatmap_crop=_png(out, f"{name}_crop_heat"),
        **kw,
    )


def _figures(html: str) -> list[str]:
    return re.findall(r"<figure class='face'>.*?</div></figcaption></figure>", html)


def test_face_shows_crop_overlay_and_bars_side_by_side(tmp_path) -> None:
    out = tmp_path / "out"
    rec = _ok(out, "p", "fake", 0.9)
    source = "spectral branch, which scored the face highest (0.900): patch logits of <x>"
    rec.faces = [_face_views(out, "p", 0.9, branches={"spectral": 0.9, "face_swap": 0.2},
                             heatmap_source=source)]  # fmt: skip
    (fig,) = _figures(_write(out, [rec]))
    views = fig[: fig.index("</div>")]  # the row of pictures
    assert "<div class='face-views'>" in views
    crop = views.index("src='heatmaps/p_crop.png'")
    overlay = views.index("src='heatmaps/p_crop_heat.png'")
    assert crop < overlay  # crop, then overlay, in one row
    assert "href='heatmaps/p.png'" in views  # the overlay opens the whole picture
    assert "src='heatmaps/p.png'" not in fig  # the photo-sized overlay is not inlined
    side = fig[fig.index("</div>") :]  # next to the pictures: bars, score, source line
    titles = re.findall(r"<div class='bar' title='([^']*)'>", side)
    assert titles == ["face: 0.900", "spectral: 0.900", "face_swap: 0.200"]
    assert side.index("<div class='bar'") < side.index("face score <b>0.900</b>")
    assert "map: spectral branch, which scored the face highest (0.900)" in side
    assert "patch logits of &lt;x&gt;" in side and "<x>" not in side  # escaped


def test_face_without_crop_falls_back_to_the_overlay(tmp_path) -> None:
    out = tmp_path / "out"
    (fig,) = _figures(_write(out, [_ok(out, "old", "real", 0.2)]))  # an older record
    assert "src='heatmaps/old.png'" in fig and "map:" not in fig
    assert re.findall(r"<div class='bar' title='([^']*)'>", fig) == ["face: 0.200"]


def _tiny_detector(members: list[dict] | None = None):
    from forensics.models import create_model
    from forensics.preprocess import Preprocess
    from forensics.scoring import Detector, DetectorSpec

    if members is None:
        spec = DetectorSpec("patch_tiny", preprocess=Preprocess(input_size=32))
    else:
        kwargs = {"members": members, "combine": "max"}
        spec = DetectorSpec("fusion", kwargs, preprocess=Preprocess(**members[0]["preprocess"]))
    return Detector(create_model(spec.arch, **spec.arch_kwargs), spec, device="cpu")


def _branch(name: str, bias: float, **pre) -> dict:
    return {"arch": "patch_tiny", "name": name, "preprocess": pre, "calibration": {"bias": bias}}


def _scored(detector, crop: np.ndarray, whole: bool = False):
    from forensics.analysis import ScoredFace
    from forensics.faces import Face

    face = None if whole else Face((0.0, 0.0, 8.0, 8.0), 0.99, ())
    (pred,) = detector.predict([crop])
    return ScoredFace((0.0, 0.0, 8.0, 8.0), face, crop, pred)


def _crop(side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def test_heatmap_source_of_a_plain_model() -> None:
    from forensics.report_faces import describe_heatmap

    det = _tiny_detector()
    text = describe_heatmap(det, _scored(det, _crop(90)))
    assert text == "patch logits of patch_tiny on the whole 90-px crop resized to 32 px"
    whole = describe_heatmap(det, _scored(det, _crop(40), whole=True))
    assert whole.endswith("the whole 40-px image (no face found) resized to 32 px")


@pytest.mark.parametrize(
    ("bias_spectral", "bias_swap", "top"), [(-40.0, 0.0, "spectral"), (0.0, -40.0, "face_swap")]
)
def test_heatmap_source_names_the_branch_that_drew_the_map(
    bias_spectral: float, bias_swap: float, top: str
) -> None:
    from forensics.report_faces import describe_heatmap

    spectral = _branch("spectral", bias_spectral, fit="center", input_size=64, min_size=32)
    det = _tiny_detector([spectral, _branch("face_swap", bias_swap, input_size=32)])
    crop = _crop(90)
    text = describe_heatmap(det, _scored(det, crop))
    assert text.startswith(f"{top} branch, which scored the face highest (")
    if top == "spectral":
        assert text.endswith(
            "patch logits of patch_tiny on the central 64-px window of the 90-px crop, "
            "at native resolution (the rest is not scored)"
        )
    else:
        assert text.endswith("patch logits of patch_tiny on the whole 90-px crop resized to 32 px")
    z, _ = det.model.branch_logits([crop], det.device)  # the fusion's own choice of map
    assert det.model.branch_names[int(z[:, 0].argmax())] == top


def test_heatmap_source_follows_the_fusion_on_random_crops() -> None:
    from forensics.report_faces import describe_heatmap

    spectral = _branch("spectral", 0.0, fit="center", input_size=64, min_size=32)
    det = _tiny_detector([spectral, _branch("face_swap", 0.0, input_size=32)])
    for seed in range(6):
        crop = _crop(40 + 10 * seed, seed)
        z, _ = det.model.branch_logits([crop], det.device)
        top = det.model.branch_names[int(z[:, 0].argmax())]
        assert describe_heatmap(det, _scored(det, crop)).startswith(f"{top} branch,")


def test_heatmap_source_says_when_branches_tie() -> None:
    from forensics.report_faces import describe_heatmap

    spectral = _branch("spectral", -500.0, fit="center", input_size=64, min_size=32)
    det = _tiny_detector([spectral, _branch("face_swap", -500.0, input_size=32)])
    text = describe_heatmap(det, _scored(det, _crop(50)))  # both saturate at 1.0
    assert text.startswith("spectral or face_swap branch (they tie")


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        (64, "the 64-px crop, whole, at native resolution"),
        (48, "the 48-px crop, whole, at native resolution"),  # min_size: scored as it is
        (20, "the 20-px crop mirror-padded to 32 px, at native resolution"),
        (100, "the central 64-px window of the 100-px crop, at native resolution"),
    ],
)
def test_describe_region_of_native_resolution_windows(side: int, expected: str) -> None:
    from forensics.preprocess import Preprocess
    from forensics.report_faces import describe_region

    pre = Preprocess(fit="center", input_size=64, min_size=32)
    assert describe_region(pre, (side, side, 3)).startswith(expected)
    assert describe_region(Preprocess(fit="center", input_size=64), (20, 30, 3)) == (
        "the 30×20-px crop mirror-padded to 64 px, at native resolution"
    )


def test_describe_model_names() -> None:
    from forensics.report_faces import describe_model

    members = [{"arch": "spectral_multiscale", "kwargs": {}}] * 3
    assert (
        describe_model("ensemble", {"members": members}) == "3 spectral_multiscale models averaged"
    )
    assert describe_model("patch_resnet", {"backbone": "resnet18"}) == "patch_resnet (resnet18)"


# ------------------------------------------------- absolute heat scale (issue 19, part 3)
def _luma(path: Path) -> float:
    from forensics.media import load_image

    rgb = load_image(path).astype(np.float32)
    return float((0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).mean())


def test_low_score_face_overlay_is_cooler_than_high_score(tmp_path) -> None:
    from forensics.report import Artifacts

    art = Artifacts(tmp_path)
    grey = np.full((200, 200, 3), 128, np.uint8)
    pattern = np.random.default_rng(0).normal(0.0, 0.5, (8, 8)).astype(np.float32)
    crop_box = (20, 20, 180, 180)
    lumas = {}
    for name, shift in (("low", -3.0), ("high", 3.0)):  # same pattern, different level
        _, overlay = art.face_crop(name, grey, crop_box, pattern + shift)
        lumas[name] = _luma(tmp_path / overlay)
        png, _ = art.face_heatmap(name, grey, (40, 40, 160, 160), crop_box, pattern + shift, False)
        lumas[f"{name}_full"] = _luma(tmp_path / png)
    # Per-face min-max scaling would draw both the same; on the absolute scale the low face
    # stays dark (inferno's lightness rises with the value).
    assert lumas["high"] - lumas["low"] > 40.0
    assert lumas["high_full"] - lumas["low_full"] > 25.0


def test_overlay_cells_are_calibrated_like_the_face_score(tmp_path) -> None:
    from forensics.heatmaps import evidence_to_heat
    from forensics.report import Artifacts
    from forensics.scoring import Calibration

    raw = np.full((4, 4), 1.0, np.float32)  # raw logit +1: 0.73 uncalibrated
    cal = Calibration(temperature=0.5, bias=3.0)  # the face's calibrated logit is -4
    heat = evidence_to_heat(raw, (16, 16), cal.bias, cal.temperature)
    assert np.allclose(heat, cal.prob(1.0), atol=1e-6) and heat.max() < 0.05
    art = Artifacts(tmp_path)
    grey = np.full((64, 64, 3), 128, np.uint8)
    _, plain = art.face_crop("plain", grey, (0, 0, 64, 64), raw)
    _, calibrated = art.face_crop("cal", grey, (0, 0, 64, 64), raw, cal)
    assert _luma(tmp_path / calibrated) < _luma(tmp_path / plain) - 30.0
    assert np.array_equal(np.load(tmp_path / art.face_heatmap(
        "x", grey, (0, 0, 64, 64), (0, 0, 64, 64), raw, False, cal)[1]), raw)  # fmt: skip


def test_face_crop_is_zoomed_to_a_fixed_side(tmp_path) -> None:
    from forensics.media import load_image
    from forensics.report import CROP_SIDE, Artifacts

    art = Artifacts(tmp_path)
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:122, 300:322] = 255  # a 22-px face in a video frame
    crop, overlay = art.face_crop("f", frame, (300, 100, 322, 122), np.zeros((2, 2), np.float32))
    assert load_image(tmp_path / crop).shape == (CROP_SIDE, CROP_SIDE, 3)
    assert load_image(tmp_path / overlay).shape == (CROP_SIDE, CROP_SIDE, 3)
    assert load_image(tmp_path / crop).mean() > 240  # the face itself, not the dark frame
    assert crop.startswith("heatmaps/") and overlay.startswith("heatmaps/")


def test_resume_keeps_the_face_crops() -> None:
    from forensics.scan_resume import _artifacts

    face = {"heatmap": "h/a.png", "heatmap_raw": "h/a.npy", "crop": "h/c.jpg",
            "heatmap_crop": "h/c.png"}  # fmt: skip
    assert set(_artifacts({"faces": [face]})) == set(face.values())


# ----------------------------------------------------------------- videos (issue 19, part 4)
def _video(out: Path) -> ScanRecord:
    frames = [(0, 0.0, 0.2), (6, 0.5, 0.95), (12, 1.0, 0.4), (18, 1.5, 0.9)]
    faces = [
        _face_views(out, "v_f6_face0", 0.95, frame_index=6),
        _face_views(out, "v_f6_face1", 0.30, frame_index=6),
        _face_views(out, "v_f18_face0", 0.9, frame_index=18),
    ]
    return ScanRecord(
        path="in/clip.mp4", kind="video", status="ok", score=0.925, verdict="fake",
        faces=faces, model=dict(MODEL), threshold=THRESHOLD, aggregate="top25_mean",
        frames=[FrameResult(i, t, s, 1) for i, t, s in frames],
        timeline=_png(out, "timeline"), thumbnail=_png(out, "v_thumb"),
    )  # fmt: skip


def test_video_shows_zoomed_faces_of_the_top_frames(tmp_path) -> None:
    out = tmp_path / "out"
    html = _write(out, [_video(out)])
    assert "the 2 most suspicious frames, faces zoomed" in html
    figs = _figures(html)
    assert len(figs) == 3
    assert "#1 · frame 6 · 0.5 s" in figs[0] and "#1 · frame 6 · 0.5 s" in figs[1]
    assert "#2 · frame 18 · 1.5 s" in figs[2]
    for fig, name in zip(figs, ("v_f6_face0", "v_f6_face1", "v_f18_face0"), strict=True):
        assert f"src='heatmaps/{name}_crop.png'" in fig  # zoomed crops, not whole frames
        assert f"src='heatmaps/{name}.png'" not in fig
    assert html.index("<figure class='face'>") < html.index("src='heatmaps/timeline.png'")


def test_timeline_marks_threshold_and_shown_frames_with_legend_off_the_data() -> None:
    from matplotlib.text import Text

    from forensics.plots import shown_frames, video_timeline_figure

    times, scores = [0.0, 0.5, 1.0, 1.5], [0.2, 0.95, 0.4, 0.9]
    assert shown_frames(times, scores, [1.5, 0.5]) == [(1, 0.5, 0.95), (2, 1.5, 0.9)]
    fig = video_timeline_figure(times, scores, 0.8412, "clip $x$", marked=[1.5, 0.5])
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "threshold 0.841" in labels and "frames shown (#n)" in labels
    renderer = fig.canvas.get_renderer()
    box, axes_box = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 >= axes_box.x1  # right of the plot, never over a score
    assert box.x1 <= fig.bbox.x1 + 1  # and inside the picture
    marks = sorted(t.get_text() for t in ax.findobj(Text) if t.get_text().startswith("#"))
    assert marks == ["#1", "#2"]
    assert any(abs(line.get_ydata()[0] - 0.8412) < 1e-9 for line in ax.get_lines())


def test_timeline_png_is_written(tmp_path) -> None:
    from forensics.plots import video_timeline_png

    path = video_timeline_png(tmp_path / "t" / "x.png", [0.0, 1.0], [0.1, 0.2], 0.5, "x", [1.0])
    assert path.stat().st_size > 1000

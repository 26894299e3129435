"""The scan report (report.html): summary first, ordering, filter box, legend, branch bars."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from forensics.media import save_image
from forensics.records import FaceResult, ScanRecord
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
    low, high = colorize(np.array([0.0, 1.0]))
    assert "#{:02x}{:02x}{:02x} 0%".format(*low) in legend
    assert "#{:02x}{:02x}{:02x} 100%".format(*high) in legend
    assert report.index("id='legend'") < report.index("<table")


def test_branch_bars_only_with_branches(report: str) -> None:
    bars = re.findall(r"<div class='bar' title='([^']*)'>", report)
    assert bars == ["clip: 0.912", "freq: 0.250"]
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

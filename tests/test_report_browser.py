"""The scan report of the bundled samples, opened in headless Chromium (issue 19)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = (1280, 900)  # a typical laptop window


def chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return browser


def headless(browser: str, *args: str) -> str:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from forensics.cli.main import app
    from forensics.scoring import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped default detector")
    browser = chromium()  # skip before scanning when there is no browser
    assert browser
    out = tmp_path_factory.mktemp("scan") / "out"
    result = CliRunner().invoke(app, ["scan", str(ROOT / "samples"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output  # 1: some sample was flagged fake
    assert (out / "report.html").is_file()
    return out / "report.html"


def test_scan_report_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    width, height = VIEWPORT
    headless(chromium(), f"--window-size={width},{height}", f"--screenshot={shot}", report.as_uri())
    assert shot.is_file()
    with Image.open(shot) as im:
        assert im.size == VIEWPORT
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert pixels.std() > 10.0  # text, colours and photos, not an empty page
    assert (pixels < 128).mean() > 0.01  # some dark content on the white page


def test_scan_report_dom_has_summary_legend_and_heatmaps(report):
    dom = headless(chromium(), "--dump-dom", report.as_uri())
    summary, legend, table = (dom.find(f'id="{k}"') for k in ("summary", "legend", "files"))
    assert summary >= 0 and legend >= 0 and table >= 0, dom[:2000]
    assert summary < legend < table  # the summary and legend come before the file list
    assert "Heatmap colours" in dom and 'class="scale"' in dom
    heatmaps = re.findall(r'<img src="(heatmaps/[^"]+\.png)"', dom)
    assert heatmaps, "no heatmap image in the report"
    assert all((report.parent / src).is_file() for src in heatmaps), heatmaps
    crops = re.findall(r'<img src="(heatmaps/[^"]+_crop\.(?:jpg|png))"', dom)
    assert crops and all((report.parent / src).is_file() for src in crops), crops
    assert dom.count('class="face-views"') == len(crops) // 2  # crop and overlay per face
    assert dom.count("map: ") == len(crops) // 2  # what drew each map
    assert "most suspicious frames, faces zoomed" in dom  # the sample videos


def test_sample_faces_that_score_low_look_cooler(report):
    """On the samples, every overlay of a face under the threshold is darker than any above it.

    The overlay is half photo, half heat colour, so the colour's lightness is recovered as
    twice the overlay's minus the crop's (inferno's lightness rises with the value).
    """
    import json

    from forensics.media import load_image

    def luma(rel: str) -> np.ndarray:
        rgb = load_image(report.parent / rel).astype(np.float32)
        return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]

    low, high = [], []
    for line in (report.parent / "results.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for face in rec.get("faces") or []:
            heat = float((2.0 * luma(face["heatmap_crop"]) - luma(face["crop"])).mean())
            (high if face["score"] >= rec["threshold"] else low).append(heat)
    assert low and high
    assert max(low) < min(high), (low, high)

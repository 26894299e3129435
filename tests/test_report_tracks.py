"""Face tracks in the scan report (issue 18): each track's face strip, score curve and peak."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from forensics.records import FrameResult, ScanRecord, TrackResult
from forensics.report import RESULTS_NAME, STRIP_SIDE, Artifacts, write_report
from forensics.report_tracks import track_peak, tracks_html
from forensics.scan_tracks import STRIP_LIMIT, strip_crops, write_track_views
from forensics.tracks import peak_step, strip_steps

THRESHOLD = 0.6


def _clip_record(out: Path, rng: np.random.Generator) -> tuple[ScanRecord, list[int]]:
    """A 20-frame video record with a long track (20 faces) and a short one (3 faces).

    Its track pictures are written by the scan-time writer from synthetic frames; returns
    the record and each track's expected peak frame.
    """
    n = 20
    frames = [FrameResult(index=3 * s, time_s=0.5 * s, score=0.0, n_faces=0) for s in range(n)]
    long_scores = rng.uniform(0.0, 0.9, n).round(3).tolist()
    long_scores[13] = 0.97  # the peak: not on the even 12-of-20 grid's every point
    short_scores = [0.2, 0.8, 0.8]  # a tie: the earlier face is the peak
    ids: list[list[int]] = [[0] for _ in range(n)]
    for s in (4, 5, 6):
        ids[s].append(1)
    rgb = np.zeros((120, 200, 3), np.uint8)
    crops = []
    for s in range(n):
        rgb[:] = 10 * s
        crops.append(strip_crops(rgb, [(20, 20, 80, 90), (120, 20, 180, 90)][: len(ids[s])], 0.2))
    tracks = [
        TrackResult(0, [fr.index for fr in frames], 0.9, "fake", [20, 20, 80, 90],
                    [20, 20, 80, 90], False, long_scores),
        TrackResult(1, [frames[s].index for s in (4, 5, 6)], 0.8, "fake", [120, 20, 180, 90],
                    [120, 20, 180, 90], True, short_scores),
    ]  # fmt: skip
    for fr, s in zip(frames, range(n), strict=True):
        fr.score = max(t.scores[t.frames.index(fr.index)] for t in tracks if fr.index in t.frames)
        fr.n_faces = len(ids[s])
    write_track_views(Artifacts(out), "00000_clip", tracks, frames, ids, crops, THRESHOLD, 0.4)
    rec = ScanRecord(
        path="in/clip.mp4", kind="video", status="ok", score=0.9, verdict="fake",
        frames=frames, threshold=THRESHOLD, band=[0.4, THRESHOLD], tracks=tracks,
        aggregate="top_track",
    )  # fmt: skip
    return rec, [frames[13].index, frames[5].index]


def _render(out: Path, records: list[ScanRecord | dict]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r if isinstance(r, dict) else r.to_dict()) for r in records]
    (out / RESULTS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return write_report(out).read_text(encoding="utf-8")


def _tracks(html: str) -> list[str]:
    return re.findall(r"<li class='track'.*?</li>", html, flags=re.S)


def test_two_tracks_render_two_strips_with_their_peaks(tmp_path) -> None:
    from forensics.media import load_image

    out = tmp_path / "out"
    rec, peaks = _clip_record(out, np.random.default_rng(0))
    html = _render(out, [rec])
    items = _tracks(html)
    assert len(items) == 2 and html.count("<div class='strip'") == 2
    for item, track, peak in zip(items, rec.tracks, peaks, strict=True):
        thumbs = re.findall(r"<figure class='thumb( peak)?' data-frame='(\d+)'>", item)
        assert len(thumbs) == min(len(track.frames), STRIP_LIMIT)
        shown = [int(f) for _, f in thumbs]
        assert shown == sorted(shown) and set(shown) <= set(track.frames)  # in frame order
        assert [int(f) for p, f in thumbs if p] == [peak]  # one peak, the right frame
        assert max(track.scores) == track.scores[track.frames.index(peak)]
        t_peak = 0.5 * peak / 3
        assert f"peaks at {t_peak:.1f} s · frame {peak}: <b>" in item
        assert f"src='{track.curve}'" in item and (out / track.curve).is_file()
        for s in track.strip:
            assert f"src='{s['image']}'" in item
            assert load_image(out / s["image"]).shape == (STRIP_SIDE, STRIP_SIDE, 3)
    assert len(rec.tracks[0].strip) == STRIP_LIMIT < len(rec.tracks[0].frames)  # thinned
    # the strip's entries survive the record's JSON round trip
    again = ScanRecord.from_dict(json.loads(rec.to_json()))
    assert again.tracks == rec.tracks


def test_older_records_without_track_pictures_still_render(tmp_path) -> None:
    old = {  # as written before tracks kept their scores, strips and curves
        "path": "in/old.mp4", "kind": "video", "status": "ok", "score": 0.7, "verdict": "fake",
        "faces": [], "frames": [{"index": 0, "time_s": 0.0, "score": 0.7, "n_faces": 1}],
        "threshold": 0.5, "tracks": [{"id": 0, "frames": [0], "score": 0.7, "verdict": "fake",
                                      "box_first": [0, 0, 1, 1], "box_last": [0, 0, 1, 1]}],
    }  # fmt: skip
    older = {k: v for k, v in old.items() if k != "tracks"} | {"path": "in/older.mp4"}
    html = _render(tmp_path / "out", [old, older])
    assert "track 0: 1 face, frames 0–0" in html
    assert "<div class='strip'" not in html and "class='track-curve'" not in html
    assert "peaks at" not in html  # no per-face scores: no peak claimed
    assert ScanRecord.from_dict(old).tracks[0].strip is None
    # scores but no pictures (a scan without --out): the peak is still named
    with_scores = dict(old["tracks"][0], frames=[0, 6], scores=[0.4, 0.7])
    line = tracks_html({"tracks": [with_scores], "frames": old["frames"]})
    assert "peaks at frame 6: <b>0.700</b>" in line and "<div class='strip'" not in line


@pytest.mark.parametrize("seed", range(5))
def test_peak_and_strip_selection_invariants(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 80))
        scores = rng.integers(0, 5, n) / 4  # many ties
        peak = peak_step(scores)
        assert scores[peak] == scores.max() and scores[:peak].max(initial=-1) < scores[peak]
        limit = int(rng.integers(1, 20))
        steps = strip_steps(n, peak, limit)
        assert len(steps) == min(n, limit) and peak in steps
        assert steps == sorted(set(steps)) and 0 <= steps[0] and steps[-1] < n
        if n > limit > 2:  # spread over the whole track, not bunched
            assert max(np.diff(steps)) <= 2 * int(np.ceil((n - 1) / (limit - 1)))
    with pytest.raises(ValueError):
        peak_step([])


def test_track_peak_uses_scores_and_times() -> None:
    track = {"frames": [2, 4, 6], "scores": [0.1, 0.5, 0.5]}
    assert track_peak(track, {4: 1.25}) == {"frame": 4, "time_s": 1.25, "score": 0.5}
    assert track_peak({"frames": [1], "scores": None}) is None


@pytest.mark.parametrize("seed", range(3))
def test_track_curve_marks_the_peak_threshold_and_band(seed: int) -> None:
    from matplotlib.patches import Polygon, Rectangle

    from forensics.plots import track_curve_figure

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    times = np.cumsum(rng.uniform(0.1, 1.0, n)).tolist()
    scores = rng.uniform(0, 1, n).tolist()
    fig, peak = track_curve_figure(times, scores, 0.7, 0.55, "track $0$")
    assert peak == int(np.argmax(scores))
    (ax,) = fig.axes
    (star,) = [c for c in ax.collections if c.get_gid() == "peak"]
    assert np.allclose(star.get_offsets(), [[times[peak], scores[peak]]])
    assert any(abs(line.get_ydata()[0] - 0.7) < 1e-9 for line in ax.get_lines())
    lows = [
        round(p.get_y() if isinstance(p, Rectangle) else float(np.min(p.get_xy()[:, 1])), 6)
        for p in ax.patches
        if isinstance(p, Polygon | Rectangle)
    ]
    assert 0.55 in lows and 0.7 in lows  # the band and the region above the threshold
    fig.canvas.draw()  # draws (title escaped: no mathtext error)
    fig1, peak1 = track_curve_figure([1.0], [0.3], 0.7)  # one face, no band
    assert peak1 == 0 and len(fig1.axes[0].patches) == 1


def test_resume_keeps_the_track_pictures() -> None:
    from forensics.scan_resume import _artifacts

    track = {"curve": "timelines/00001_a_t0.png",
             "strip": [{"frame": 0, "image": "thumbs/00001_a_t0_f0.jpg"}]}  # fmt: skip
    assert {"timelines/00001_a_t0.png", "thumbs/00001_a_t0_f0.jpg"} <= set(
        _artifacts({"tracks": [track, {"id": 1}]})
    )

"""What ``forensics scan --out DIR`` writes: heatmaps, thumbnails, timelines and report.html.

Layout of the output folder::

    results.jsonl          one record per input file (the record contract)
    report.html            thumbnails, overlays, timelines, scores and verdicts
    thumbs/NNNNN_name.jpg  small previews
    heatmaps/NNNNN_name_faceJ.png   colour overlay on the full photo (or frame)
    heatmaps/NNNNN_name_faceJ.npy   the model's raw patch-logit map (float32)
    heatmaps/NNNNN_name_faceJ_crop.jpg      the scored crop, zoomed to CROP_SIDE px
    heatmaps/NNNNN_name_faceJ_crop.png      the same crop with the overlay
    timelines/NNNNN_name.png        per-frame scores of a video
    timelines/NNNNN_name_tK.png     face scores of a video's track K, its peak marked
    thumbs/NNNNN_name_tK_fI.jpg     track K's face in frame I, zoomed (the face strip)

File names start with the input's position in the scan, so odd or duplicate names never
collide; every name shown in the HTML is escaped.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forensics.html import BAR_STYLE, STYLE, esc, fmt3
from forensics.report_faces import FACE_STYLE, faces_html, img_link, legend_html
from forensics.report_filter import FILTER_SCRIPT, filter_form
from forensics.report_provenance import PANEL_STYLE, provenance_panel
from forensics.report_tracks import TRACK_STYLE, tracks_html

if TYPE_CHECKING:
    from forensics.scoring import Calibration

RESULTS_NAME = "results.jsonl"
REPORT_NAME = "report.html"
THUMB_SIDE = 256
CROP_SIDE = 256
"""Longer side of the zoomed face crops (small faces are enlarged, large ones shrunk)."""
STRIP_SIDE = 96
"""Longer side of the zoomed faces in a track's face strip."""


def artifact_stem(seq: int, path: str | os.PathLike) -> str:
    """A safe, unique file stem for input number ``seq`` (ASCII, no spaces, bounded length)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(os.fspath(path)).stem).strip("._")
    return f"{seq:05d}_{name[:40] or 'file'}"


class Artifacts:
    """Writes a scan's pictures into an output folder; returns paths relative to it.

    Args:
        out_dir: The ``--out`` folder (created).

    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.root = Path(out_dir)
        self.root.mkdir(parents=True, exist_ok=True)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def thumbnail(self, stem: str, rgb: np.ndarray) -> str:
        """Save a small JPEG preview of ``rgb`` (not modified)."""
        from forensics.media import resize_rgb, save_image

        h, w = rgb.shape[:2]
        scale = min(1.0, THUMB_SIDE / max(h, w))
        small = rgb if scale >= 1.0 else resize_rgb(rgb, (max(1, round(w * scale)),
                                                           max(1, round(h * scale))))  # fmt: skip
        return self._rel(save_image(self.root / "thumbs" / f"{stem}.jpg", small, quality=85))

    def face_heatmap(
        self,
        stem: str,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        crop_box: tuple[int, int, int, int],
        evidence: np.ndarray,
        fake: bool,
        calibration: Calibration | None = None,
    ) -> tuple[str, str]:
        """Write one face's overlay PNG (photo-sized) and its raw evidence map (``.npy``).

        Args:
            stem: File stem, e.g. ``00003_photo_face0``.
            rgb: The photo or frame (not modified).
            box: The face box, drawn on the overlay.
            crop_box: The region that was scored (the evidence map covers it).
            evidence: The model's patch-logit map ``(h, w)``, saved as it is.
            fake: Draw the box red (fake) or green.
            calibration: The detector's; the overlay's cells are calibrated with it like
                the face score (see :func:`forensics.heatmaps.evidence_to_heat`). ``None``:
                the map is taken as already calibrated.

        Returns:
            ``(overlay_png, raw_npy)`` relative to the output folder.

        """
        from forensics.heatmaps import draw_box, evidence_to_heat, overlay, place_heat
        from forensics.media import save_image

        x1, y1, x2, y2 = crop_box
        heat = evidence_to_heat(evidence, (max(1, x2 - x1), max(1, y2 - y1)), *_cal(calibration))
        full = place_heat(heat, crop_box, rgb.shape)
        picture = draw_box(overlay(rgb, full, 0.5), box, (200, 0, 30) if fake else (30, 140, 60))
        folder = self.root / "heatmaps"
        png = save_image(folder / f"{stem}.png", picture)
        raw = folder / f"{stem}.npy"
        np.save(raw, np.asarray(evidence, dtype=np.float32))
        return self._rel(png), self._rel(raw)

    def face_crop(
        self,
        stem: str,
        rgb: np.ndarray,
        crop_box: tuple[int, int, int, int],
        evidence: np.ndarray,
        calibration: Calibration | None = None,
    ) -> tuple[str, str]:
        """Write the scored crop zoomed to :data:`CROP_SIDE` and the same crop with its overlay.

        Args:
            stem: File stem, as for :meth:`face_heatmap`.
            rgb: The photo or frame (not modified).
            crop_box: The region that was scored (the evidence map covers it).
            evidence: The model's patch-logit map ``(h, w)``.
            calibration: As for :meth:`face_heatmap`.

        Returns:
            ``(crop_jpg, overlay_png)`` relative to the output folder.

        """
        from forensics.heatmaps import evidence_to_heat, overlay, zoom_crop
        from forensics.media import save_image

        crop = zoom_crop(rgb, crop_box, CROP_SIDE)
        heat = evidence_to_heat(evidence, (crop.shape[1], crop.shape[0]), *_cal(calibration))
        folder = self.root / "heatmaps"
        jpg = save_image(folder / f"{stem}_crop.jpg", crop, quality=90)
        png = save_image(folder / f"{stem}_crop.png", overlay(crop, heat, 0.5))
        return self._rel(jpg), self._rel(png)

    def timeline(
        self,
        stem: str,
        times_s: list[float],
        scores: list[float],
        threshold: float,
        title: str,
        marked: list[float],
    ) -> str:
        """Write a video's timeline plot."""
        from forensics.plots import video_timeline_png

        path = self.root / "timelines" / f"{stem}.png"
        return self._rel(video_timeline_png(path, times_s, scores, threshold, title, marked))

    def strip_face(self, stem: str, crop: np.ndarray) -> str:
        """Save one zoomed face of a track's strip (RGB ``uint8``, e.g. ``STRIP_SIDE`` px)."""
        from forensics.media import save_image

        return self._rel(save_image(self.root / "thumbs" / f"{stem}.jpg", crop, quality=85))

    def track_curve(
        self,
        stem: str,
        times_s: list[float],
        scores: list[float],
        threshold: float,
        band_low: float | None,
        title: str,
    ) -> str:
        """Write a face track's score curve (:func:`forensics.plots.track_curve_png`)."""
        from forensics.plots import track_curve_png

        path = self.root / "timelines" / f"{stem}.png"
        return self._rel(track_curve_png(path, times_s, scores, threshold, band_low, title))


def _cal(calibration: Calibration | None) -> tuple[float, float]:
    """``(bias, temperature)`` of a calibration; identity for ``None``."""
    if calibration is None:
        return 0.0, 1.0
    return float(calibration.bias), float(calibration.temperature)


GROUPS = ("fake", "uncertain", "real", "error", "skipped")
"""Report sections, in order: flagged files first, then uncertain, real, errors, skipped."""

GROUP_TITLES = {
    "fake": "Flagged as fake",
    "uncertain": "Uncertain",
    "real": "Real",
    "error": "Errors",
    "skipped": "Skipped",
}

BAND_NOTE = (
    "<div class='band-note'>uncertain: the score is above what 95% of real photos the model "
    "never saw reach, but below the threshold: look closer, it is not a verdict.</div>"
)
"""What the uncertainty band means (shown when the model has one)."""

COUNT_LABELS = {
    "fake": "fake",
    "uncertain": "uncertain",
    "real": "real",
    "error": "errors",
    "skipped": "skipped",
}

REPORT_STYLE = """
.summary{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;margin-bottom:1rem}
.band-note{max-width:30rem;font-size:.85em;color:#555}
.counts{display:flex;gap:.5rem;list-style:none;padding:0;margin:0}
.counts li{border:1px solid #ddd;border-radius:6px;padding:.3rem .7rem;text-align:center}
.counts .n{display:block;font-size:1.4em}
.legend{max-width:52rem;margin:1rem 0;font-size:.9em}
.scale{height:14px;max-width:36rem;border:1px solid #999;border-radius:3px}
.ticks{position:relative;height:1.2em;max-width:36rem;font-size:.8em}
.ticks span{position:absolute;transform:translateX(-50%)}
.ticks span:first-child{transform:none}.ticks span:last-child{transform:translateX(-100%)}
.filter{margin:1rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1rem;align-items:center}
.filter input[type=search]{min-width:18rem}
.grouphead th{background:#fafafa;font-size:1.05em}.timeline img{max-height:220px}
"""


def record_group(rec: dict[str, Any]) -> str:
    """The report section of a record: its verdict when ok, else its status."""
    status = rec.get("status")
    if status == "ok" and rec.get("verdict") in ("fake", "uncertain", "real"):
        return rec["verdict"]
    return str(status or "error")


def _sort_key(group: str, score: Any, seq: int) -> tuple[int, float, int]:
    rank = GROUPS.index(group) if group in GROUPS else len(GROUPS)
    try:
        s = float(score)
    except (TypeError, ValueError):
        s = float("nan")
    return rank, -s if np.isfinite(s) else float("inf"), seq


def write_report(out_dir: str | os.PathLike, title: str = "forensics scan") -> Path:
    """Render ``out_dir/results.jsonl`` as ``out_dir/report.html``.

    The page opens with a summary (counts per verdict, errors and skipped files, the model
    and the threshold), a colour legend for the heatmaps and a filter box; then the files:
    flagged ones first, then uncertain, real, errors and skipped, each group by descending
    score. Each face shows its zoomed crop, its overlay and its probability bars side by
    side (:mod:`forensics.report_faces`); a video's faces are those of its most suspicious
    frames, above its timeline. The records are read twice (a first pass keeps only counts
    and sort keys, the second streams the rows in order), so large scans are not held in
    memory.

    Images are linked relative to the report, so the folder can be moved or zipped as a
    whole. Every file name and message is HTML-escaped; the page loads nothing from outside
    and reads in full without JavaScript.
    """
    root = Path(out_dir)
    source = root / RESULTS_NAME
    target = root / REPORT_NAME
    tmp = root / f".{REPORT_NAME}.{os.getpid()}.tmp"
    counts: dict[str, int] = {}
    models: dict[tuple[str, str], None] = {}
    thresholds: dict[str, None] = {}
    banded = False
    keys: list[tuple[tuple[int, float, int], int, str]] = []
    with open(source, "rb") as src:
        offset = 0
        for seq, line in enumerate(src):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            rec = json.loads(line)
            group = record_group(rec)
            counts[group] = counts.get(group, 0) + 1
            model = rec.get("model") or {}
            if model:
                models[(str(model.get("name") or ""), str(model.get("sha256") or ""))] = None
            if rec.get("threshold") is not None:
                band = rec.get("band")
                inside = f" (uncertain from {fmt3(band[0])})" if band else ""
                banded = banded or bool(band)
                thresholds[fmt3(rec["threshold"]) + inside] = None
            keys.append((_sort_key(group, rec.get("score"), seq), start, group))
        keys.sort()

        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(
                "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{esc(title)}</title><style>{STYLE}{BAR_STYLE}{REPORT_STYLE}"
                f"{FACE_STYLE}{TRACK_STYLE}{PANEL_STYLE}</style>"
                f"</head><body><h1>{esc(title)}</h1>\n"
            )
            fh.write(_summary(counts, list(models), list(thresholds), banded))
            fh.write(legend_html())
            fh.write(filter_form(sorted(counts.items(), key=lambda kv: _sort_key(kv[0], None, 0))))
            if not keys:
                fh.write("<p>no files</p>\n")
            else:
                fh.write(
                    "<table id='files'><thead><tr><th>preview</th><th>file</th><th>verdict</th>"
                    "<th>score</th><th>faces and evidence</th></tr></thead>\n"
                )
                current = None
                for _, start, group in keys:
                    if group != current:
                        if current is not None:
                            fh.write("</tbody>\n")
                        current = group
                        label = GROUP_TITLES.get(group, group)
                        fh.write(
                            f"<tbody class='group' data-group='{esc(group)}'>"
                            f"<tr class='grouphead'><th colspan='5' id='group-{esc(group)}'>"
                            f"{esc(label)} ({counts[group]})</th></tr>\n"
                        )
                    src.seek(start)
                    fh.write(_row(json.loads(src.readline()), group))
                fh.write("</tbody></table>\n")
            fh.write(f"<script>{FILTER_SCRIPT}</script>\n</body></html>\n")
    os.replace(tmp, target)
    return target


def _summary(
    counts: dict[str, int], models: list[tuple[str, str]], thresholds: list[str], band: bool
) -> str:
    total = sum(counts.values())
    items = "".join(
        f"<li class='{esc(g)}'><span class='n' id='count-{esc(g)}'>{counts.get(g, 0)}</span>"
        f"{COUNT_LABELS[g]}</li>"
        for g in GROUPS
    )
    others = "".join(
        f"<li><span class='n' id='count-{esc(g)}'>{n}</span>{esc(g)}</li>"
        for g, n in sorted(counts.items())
        if g not in GROUPS
    )
    if models:
        shown = []
        for name, sha in models:
            short = sha[:12] + "…" if len(sha) > 12 else sha
            digest = f" <code class='sha' title='{esc(sha)}'>{esc(short)}</code>" if sha else ""
            shown.append(f"<code>{esc(name or 'unnamed')}</code>{digest}")
        model = "; ".join(shown)
    else:
        model = "none (no file was scored)"
    threshold = " / ".join(f"<b>{esc(t)}</b>" for t in thresholds) or "none"
    return (
        "<section class='summary' id='summary' aria-label='summary'>"
        f"<ul class='counts'>{items}{others}</ul>"
        f"<div><div>{total} file{'' if total == 1 else 's'}</div>"
        f"<div>model: {model}</div><div>threshold: {threshold}</div>{BAND_NOTE if band else ''}"
        "</div></section>\n"
    )


def _row(rec: dict[str, Any], group: str) -> str:
    status = rec.get("status")
    verdict = rec.get("verdict") if status == "ok" else status
    detail = []
    if rec.get("error"):
        detail.append(f"<div class='error'>error: {esc(str(rec['error']))}</div>")
    if rec.get("note"):
        detail.append(f"<div class='skipped'>{esc(str(rec['note']))}</div>")
    if status == "ok":
        if rec.get("whole_image"):
            detail.append("<div>no face found: the whole image was scored</div>")
        detail.append(tracks_html(rec))
        detail.append(faces_html(rec))
        if rec.get("timeline"):
            detail.append(f"<div class='timeline'>{img_link(rec['timeline'], 'timeline')}</div>")
        detail.append(provenance_panel(rec))
        rule = f"<code>{esc(str(rec['aggregate']))}</code> · " if rec.get("aggregate") else ""
        detail.append(f"<div>{rule}threshold {fmt3(rec.get('threshold'))}</div>")
    by = "<br><small>by provenance</small>" if rec.get("verdict_source") == "provenance" else ""
    return (
        f"<tr class='file' data-group='{esc(group)}' data-path='{esc(str(rec.get('path')))}'>"
        f"<td>{img_link(rec.get('thumbnail'), 'preview')}</td>"
        f"<td><code>{esc(str(rec.get('path')))}</code><br>{esc(str(rec.get('kind') or ''))}</td>"
        f"<td class='{esc(verdict or '')}'>{esc(verdict or '')}{by}</td>"
        f"<td>{fmt3(rec.get('score'))}</td><td>{''.join(detail)}</td></tr>\n"
    )

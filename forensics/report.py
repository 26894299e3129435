"""What ``forensics scan --out DIR`` writes: heatmaps, thumbnails, timelines and report.html.

Layout of the output folder::

    results.jsonl          one record per input file (the record contract)
    report.html            thumbnails, overlays, timelines, scores and verdicts
    thumbs/NNNNN_name.jpg  small previews
    heatmaps/NNNNN_name_faceJ.png   colour overlay on the full photo (or frame)
    heatmaps/NNNNN_name_faceJ.npy   the model's raw patch-logit map (float32)
    timelines/NNNNN_name.png        per-frame scores of a video

File names start with the input's position in the scan, so odd or duplicate names never
collide; every name shown in the HTML is escaped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_NAME = "results.jsonl"
REPORT_NAME = "report.html"
THUMB_SIDE = 256


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
    ) -> tuple[str, str]:
        """Write one face's overlay PNG (photo-sized) and its raw evidence map (``.npy``).

        Args:
            stem: File stem, e.g. ``00003_photo_face0``.
            rgb: The photo or frame (not modified).
            box: The face box, drawn on the overlay.
            crop_box: The region that was scored (the evidence map covers it).
            evidence: The model's patch-logit map ``(h, w)``.
            fake: Draw the box red (fake) or green.

        Returns:
            ``(overlay_png, raw_npy)`` relative to the output folder.

        """
        from forensics.heatmaps import draw_box, evidence_to_heat, overlay, place_heat
        from forensics.media import save_image

        x1, y1, x2, y2 = crop_box
        heat = evidence_to_heat(evidence, (max(1, x2 - x1), max(1, y2 - y1)))
        full = place_heat(heat, crop_box, rgb.shape)
        picture = draw_box(overlay(rgb, full, 0.5), box, (200, 0, 30) if fake else (30, 140, 60))
        folder = self.root / "heatmaps"
        png = save_image(folder / f"{stem}.png", picture)
        raw = folder / f"{stem}.npy"
        np.save(raw, np.asarray(evidence, dtype=np.float32))
        return self._rel(png), self._rel(raw)

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


def read_records(path: str | os.PathLike) -> Iterable[dict[str, Any]]:
    """Stream the records of a ``results.jsonl`` file."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_report(out_dir: str | os.PathLike, title: str = "forensics scan") -> Path:
    """Render ``out_dir/results.jsonl`` as ``out_dir/report.html`` (streamed row by row).

    Images are linked relative to the report, so the folder can be moved or zipped as a
    whole. Every file name and message is HTML-escaped.
    """
    from forensics.html import STYLE, esc

    root = Path(out_dir)
    target = root / REPORT_NAME
    tmp = root / f".{REPORT_NAME}.{os.getpid()}.tmp"
    counts: dict[str, int] = {}
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{STYLE}"
            ".faces img{max-height:120px;margin:0 4px 4px 0}.timeline img{max-height:200px}"
            f"</style></head><body><h1>{esc(title)}</h1>\n"
            "<table><thead><tr><th>preview</th><th>file</th><th>verdict</th><th>score</th>"
            "<th>faces and evidence</th></tr></thead><tbody>\n"
        )
        for rec in read_records(root / RESULTS_NAME):
            key = rec["verdict"] if rec["status"] == "ok" else rec["status"]
            counts[key] = counts.get(key, 0) + 1
            fh.write(_row(rec, esc))
        fh.write("</tbody></table>\n")
        summary = ", ".join(f"{esc(k)}: {v}" for k, v in sorted(counts.items()))
        fh.write(f"<p>{summary or 'no files'}</p>\n</body></html>\n")
    os.replace(tmp, target)
    return target


def _img(src: str | None, esc, alt: str) -> str:
    if not src:
        return ""
    return f"<a href='{esc(src)}'><img src='{esc(src)}' alt='{esc(alt)}' loading='lazy'></a>"


def _row(rec: dict[str, Any], esc) -> str:
    status = rec["status"]
    verdict = rec["verdict"] if status == "ok" else status
    score = "" if rec.get("score") is None else f"{rec['score']:.3f}"
    detail = []
    if rec.get("error"):
        detail.append(f"<div class='error'>error: {esc(rec['error'])}</div>")
    if rec.get("note"):
        detail.append(f"<div class='skipped'>{esc(rec['note'])}</div>")
    if status == "ok":
        if rec.get("whole_image"):
            detail.append("<div>no face found: the whole image was scored</div>")
        faces = []
        for f in rec.get("faces") or []:
            where = "" if f.get("frame_index") is None else f" frame {f['frame_index']}"
            faces.append(_img(f.get("heatmap"), esc, f"face {f['score']:.3f}{where}"))
            if not f.get("heatmap"):
                faces.append(f"<code>{f['score']:.3f}{esc(where)}</code> ")
            if f.get("branches"):  # a fused detector: what each branch thought of this face
                parts = " · ".join(f"{esc(k)} {v:.3f}" for k, v in f["branches"].items())
                faces.append(f"<code>{parts}</code> ")
        detail.append(f"<div class='faces'>{''.join(faces)}</div>")
        if rec.get("timeline"):
            detail.append(f"<div class='timeline'>{_img(rec['timeline'], esc, 'timeline')}</div>")
        detail.append(
            f"<div><code>{esc(str(rec.get('aggregate')))}</code> · threshold "
            f"{rec.get('threshold')}</div>"
        )
    return (
        f"<tr><td>{_img(rec.get('thumbnail'), esc, 'preview')}</td>"
        f"<td><code>{esc(rec['path'])}</code><br>{esc(rec['kind'])}</td>"
        f"<td class='{esc(verdict or '')}'>{esc(verdict or '')}</td><td>{score}</td>"
        f"<td>{''.join(detail)}</td></tr>\n"
    )

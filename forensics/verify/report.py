"""What a reviewer reads: previews, ``summary.json`` and ``report.html``.

Previews show the face boxes and the detector's heatmap; the report lists flagged photos
first, and every name in it is HTML-escaped.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensics.checkpoint import atomic_write_bytes
from forensics.faces import square_box
from forensics.html import esc, page
from forensics.verify.policy import DECISIONS, REASONS

THUMB_DIR = "thumbs"
THUMB_SIDE = 320
_ORDER = {"reject": 0, "review": 1, "accept": 2}


def thumb_id(path: str) -> str:
    """A stable file-name stem for a photo's thumbnails (no user text in file names)."""
    return hashlib.sha1(path.encode("utf-8")).hexdigest()[:20]


def render_previews(
    outcome: Any, margin: float = 0.25, max_side: int = THUMB_SIDE
) -> list[np.ndarray]:
    """The photo with its face boxes, and (when scored) the detector's heatmap over it.

    Args:
        outcome: A :class:`forensics.verify.pipeline.Outcome` with pixels.
        margin: The detector's crop margin (where its heatmap lies around the face box).
        max_side: Longer side of the previews.

    Returns:
        One or two RGB ``uint8`` previews (the input is not modified).

    """
    from forensics.heatmaps import draw_box, evidence_to_heat, overlay, place_heat
    from forensics.media import resize_rgb

    rgb = outcome.rgb
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    small = resize_rgb(rgb, (max(1, round(w * s)), max(1, round(h * s)))) if s < 1 else rgb
    boxed = small
    for f in outcome.faces:
        boxed = draw_box(boxed, tuple(v * s for v in f.box), (230, 40, 40), 2)
    previews = [boxed]
    score = outcome.image_score
    if score is not None:
        top = score.top
        if score.whole_image:
            region = (0, 0, w, h)
        else:
            region = square_box(top.box, margin, w, h)
        rs = tuple(v * s for v in region)
        size = (max(1, round(rs[2] - rs[0])), max(1, round(rs[3] - rs[1])))
        heat = place_heat(evidence_to_heat(top.prediction.evidence, size), rs, small.shape)
        previews.append(overlay(small, heat, 0.45))
    return previews


def write_thumbnails(out_dir: Path, outcome: Any, margin: float = 0.25) -> list[str]:
    """Write an outcome's previews under ``out_dir/thumbs``; returns their relative names."""
    from forensics.media import encode_jpeg

    stem = thumb_id(outcome.record["path"])
    names = []
    for k, preview in enumerate(render_previews(outcome, margin)):
        name = f"{THUMB_DIR}/{stem}{'_heat' if k else ''}.jpg"
        atomic_write_bytes(out_dir / name, encode_jpeg(preview, 85))
        names.append(name)
    return names


def summarize(records: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict:
    """Counts per decision, reason and hint (plus any ``extra`` run information)."""
    decisions = Counter(r["decision"] for r in records)
    reasons = Counter(c for r in records for c in r.get("reasons", []))
    hints = Counter(c for r in records for c in r.get("hints", []))
    return {
        "photos": len(records),
        "decisions": {d: decisions.get(d, 0) for d in DECISIONS},
        "reasons": {c: reasons[c] for c in REASONS if reasons.get(c)},
        "hints": {c: hints[c] for c in REASONS if hints.get(c)},
        **(extra or {}),
    }


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically."""
    path = out_dir / "summary.json"
    atomic_write_bytes(path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return path


def _fmt_scores(scores: dict[str, Any]) -> str:
    parts = []
    for k, v in scores.items():
        if isinstance(v, list):
            v = "; ".join(map(str, v))
        parts.append(f"{esc(str(k))}={esc(str(v))}")
    return "<br>".join(parts)


def render_html(
    records: Sequence[dict[str, Any]], summary: dict[str, Any], thumbnails: bool = True
) -> str:
    """The reviewer's page: summary, then one row per photo, rejects and reviews first."""
    rows = sorted(records, key=lambda r: (_ORDER.get(r["decision"], 3), r["path"]))
    counts = " · ".join(f"{esc(k)}: {v}" for k, v in summary["decisions"].items())
    reasons = ", ".join(f"{esc(k)}: {v}" for k, v in summary["reasons"].items()) or "none"
    body = [
        f"<p><b>{summary['photos']}</b> photos · {counts}</p><p>Reasons: {reasons}</p>",
        "<table><thead><tr><th>Decision</th><th>Photo</th>"
        + ("<th>Preview (face box · heatmap)</th>" if thumbnails else "")
        + "<th>Reasons</th><th>Synthetic score</th><th>Measurements</th></tr></thead><tbody>",
    ]
    for r in rows:
        d = r["decision"]
        flagged = " flagged" if d != "accept" else ""
        imgs = "".join(
            f"<img src='{esc(n)}' alt='preview' loading='lazy'> " for n in r.get("thumbnails", [])
        )
        app = r.get("applicant_id")
        hints = r.get("hints") or []
        syn = r.get("synthetic_score")
        body.append(
            f"<tr class='row row-{esc(d)}{flagged}'><td class='{esc(d)}'>{esc(d)}</td>"
            f"<td><code>{esc(r['path'])}</code>"
            + (f"<br>applicant: <code>{esc(str(app))}</code>" if app is not None else "")
            + "</td>"
            + (f"<td>{imgs}</td>" if thumbnails else "")
            + f"<td class='reasons'>{esc(', '.join(r.get('reasons', [])) or '-')}"
            + (f"<br><small>hints: {esc(', '.join(hints))}</small>" if hints else "")
            + f"</td><td>{'-' if syn is None else f'{syn:.3f}'}</td>"
            f"<td><small>{_fmt_scores(r.get('scores', {}))}</small></td></tr>"
        )
    body.append("</tbody></table>")
    return page("forensics verify-ids report", "\n".join(body))


def write_report(
    out_dir: Path, records: Sequence[dict[str, Any]], summary: dict, thumbnails: bool = True
) -> Path:
    """Write ``report.html`` atomically."""
    path = out_dir / "report.html"
    atomic_write_bytes(path, render_html(records, summary, thumbnails).encode("utf-8"))
    return path

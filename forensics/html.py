"""Small HTML helpers shared by the scan and verify-ids reports (self-contained pages)."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from forensics.media import resize_rgb

esc = html.escape
"""Escape text (file names, messages) for HTML; every user-controlled string goes through it."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-height:160px;border-radius:4px}
.fake,.reject{color:#b00020;font-weight:600}.real,.accept{color:#1b5e20;font-weight:600}
.uncertain,.review{color:#e65100;font-weight:600}.error,.skipped{color:#666}
code{font-size:.85em;word-break:break-all}
"""


def img_data_uri(rgb: np.ndarray, max_side: int = 320, quality: int = 80) -> str:
    """An RGB array as an inline JPEG ``data:`` URI, shrunk so its longer side <= ``max_side``."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        rgb = resize_rgb(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML page (``title`` is escaped, ``body`` is trusted HTML)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def fmt3(value: float | None) -> str:
    """A score or threshold as shown in reports: 3 decimals, or empty when missing or not finite."""
    if value is None:
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{v:.3f}" if np.isfinite(v) else ""


def css_gradient(colours: np.ndarray) -> str:
    """A left-to-right CSS ``linear-gradient`` through evenly spaced RGB ``uint8`` stops."""
    n = len(colours)
    stops = ", ".join(
        f"#{int(r):02x}{int(g):02x}{int(b):02x} {100.0 * i / max(1, n - 1):.0f}%"
        for i, (r, g, b) in enumerate(colours)
    )
    return f"linear-gradient(to right, {stops})"


BAR_STYLE = """
.bar{display:flex;align-items:center;gap:.3rem;font-size:.75em;margin:.1rem 0}
.bar-label{width:5.5em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;line-height:1.4}
.bar-track{position:relative;flex:0 0 80px;height:8px;background:#e6e6e6;border-radius:4px;
overflow:hidden}.bar-fill{position:absolute;left:0;top:0;bottom:0;background:#1b5e20}
.bar-fill.hi{background:#b00020}.bar-mark{position:absolute;top:0;bottom:0;width:2px;
margin-left:-1px;background:#222}
"""
"""CSS for :func:`prob_bar` (pure HTML/CSS bars, no script)."""


def prob_bar(label: str, value: float, mark: float | None = None) -> str:
    """A small inline bar for a probability in ``[0, 1]`` (see :data:`BAR_STYLE`).

    Args:
        label: What the bar is (escaped).
        value: The probability; clamped to ``[0, 1]`` for drawing, shown with 3 decimals.
        mark: Optional tick (e.g. the decision threshold); the bar is red at or above it.

    Returns:
        The bar's HTML.

    """
    v = float(value) if np.isfinite(float(value)) else 0.0
    width = 100.0 * min(1.0, max(0.0, v))
    hot = mark is not None and v >= float(mark)
    tick = ""
    if mark is not None and np.isfinite(float(mark)):
        left = 100.0 * min(1.0, max(0.0, float(mark)))
        tick = f"<span class='bar-mark' style='left:{left:.1f}%' title='threshold'></span>"
    return (
        f"<div class='bar' title='{esc(label)}: {fmt3(value)}'>"
        f"<span class='bar-label'>{esc(label)}</span><span class='bar-track'>"
        f"<span class='bar-fill{' hi' if hot else ''}' style='width:{width:.1f}%'></span>{tick}"
        f"</span><span class='bar-value'>{fmt3(value)}</span></div>"
    )

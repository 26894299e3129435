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

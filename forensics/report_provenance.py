"""The scan report's provenance panel: what a file says about where it came from.

Pure HTML building from a record's ``provenance`` part (see :mod:`forensics.provenance`);
:mod:`forensics.report` places one panel per file.
"""

from __future__ import annotations

from typing import Any

from forensics.html import esc

PANEL_STYLE = """
.prov{margin:.4rem 0;padding:.3rem .6rem;border-left:4px solid #bbb;background:#fafafa;
  font-size:.9em}
.prov.declared{border-color:#c62828;background:#fdecea}.prov.invalid{border-color:#ef6c00}
.prov ul{margin:.2rem 0 .2rem 1.2rem;padding:0}.prov .notes{color:#777}
details.prov summary{cursor:pointer;color:#555}
"""
"""CSS for the panel (added to the report's style sheet)."""


def provenance_panel(record: dict[str, Any]) -> str:
    """The provenance panel of one record (empty when nothing was read or found).

    Args:
        record: A scan record dict with ``provenance`` and ``verdict_source``.

    """
    prov = record.get("provenance")
    if not prov or not (prov.get("claims") or prov.get("errors")):
        return ""
    c2pa = prov.get("c2pa") or {}
    kind = "declared" if prov.get("declared") else ""
    if c2pa.get("present") and not c2pa.get("valid"):
        kind = kind or "invalid"
    head = "provenance"
    if record.get("verdict_source") == "provenance":
        head += ": <b>verdict fake by declaration</b>, whatever the pixel score"
    elif prov.get("declared"):
        head += ": declares AI generation (rule off: --ignore-provenance)"
    items = "".join(f"<li>{esc(c)}</li>" for c in prov.get("claims") or [])
    notes = "".join(f"<li>{esc(e)}</li>" for e in prov.get("errors") or [])
    notes_html = f"<ul class='notes'>{notes}</ul>" if notes else ""
    if not kind and not notes:  # nothing that weighs on the verdict: folded away
        return (
            f"<details class='prov' data-provenance='info'><summary>{head}: "
            f"{esc(str(len(prov.get('claims') or [])))} notes (file metadata)</summary>"
            f"<ul>{items}</ul></details>"
        )
    return (
        f"<div class='prov {kind}' data-provenance='{esc(kind or 'info')}'>{head}"
        f"<ul>{items}</ul>{notes_html}</div>"
    )

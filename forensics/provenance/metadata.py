"""File metadata as evidence: EXIF camera and software tags, XMP, PNG text chunks, JPEG tables.

Everything here reads headers only (Pillow opens a file lazily; no pixel is decoded). The
functions return plain dicts ready for a scan record; what goes wrong while reading one
part (malformed EXIF, a huge or hostile XMP packet) becomes a note in ``errors`` and the
other parts are still read.

Why these libraries: Pillow already parses EXIF, PNG text chunks and JPEG quantisation
tables for decoding; ``defusedxml`` parses the XMP packet without the entity-expansion and
external-entity attacks the standard library's XML parser allows (it is also what Pillow's
own ``getxmp`` uses).
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from PIL import Image

from forensics.jpeg import ijg_quality

MAX_XMP_BYTES = 1_000_000
"""XMP packets over this size are not parsed (noted in ``errors`` instead)."""
MAX_TEXT_CHARS = 300
"""Text chunk values are cut to this many characters in the record."""

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
"""Prefix of IPTC DigitalSourceType codes."""
SYNTHETIC_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"}
)
"""IPTC DigitalSourceType codes that declare (partly) AI- or algorithm-generated media."""

_NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_NS_XMP = "http://ns.adobe.com/xap/1.0/"
_EXIF_IFD = 0x8769
_TAGS = {271: "make", 272: "model", 305: "software", 306: "datetime"}
_EXIF_TAGS = {36867: "datetime_original", 42036: "lens_model"}
_USER_COMMENT = 37510

EDITORS = (
    "photoshop", "lightroom", "gimp", "affinity", "pixelmator", "snapseed", "canva", "picsart",
    "facetune", "faceapp", "meitu", "remini", "luminar", "capture one", "paint.net", "krita",
)  # fmt: skip
"""Lower-case names of image editors: a ``Software`` tag naming one is a review hint."""
GENERATORS = (
    "stable diffusion", "midjourney", "dall-e", "dall·e", "firefly", "novelai", "comfyui",
    "automatic1111", "invokeai", "fooocus", "imagen", "leonardo", "flux", "forensics gan",
)  # fmt: skip
"""Lower-case names of image generators, as they appear in ``Software``/``CreatorTool``."""

_TIFF = re.compile(rb"II\*\x00|MM\x00\*")
_A1111 = re.compile(r"(^|\n)Steps: \d+, Sampler: ", re.M)


def read_metadata(im: Image.Image) -> dict[str, Any]:
    """Read the metadata of an opened (not decoded) image.

    Args:
        im: An image from ``PIL.Image.open``.

    Returns:
        ``{"format", "exif", "camera", "software", "xmp", "png_text", "generator_params",
        "jpeg", "errors"}``: ``exif`` holds camera and software fields found (``{}`` when
        there is no EXIF), ``camera`` is whether a camera make or model is named,
        ``software`` classifies the Software/CreatorTool name (``editor``, ``generator`` or
        ``None``), ``xmp`` has ``digital_source_type`` and ``creator_tool``,
        ``generator_params`` names a generator whose settings are embedded (or ``None``),
        and ``jpeg`` has the estimated ``quality`` and whether the tables are the
        ``standard_tables`` of libjpeg.

    """
    errors: list[str] = []
    exif, user_comment = _exif(im, errors)
    xmp = _xmp(im, errors)
    text = _text_chunks(im)
    params = generator_params(text, user_comment)
    tool = exif.get("software") or xmp.get("creator_tool")
    return {
        "format": im.format,
        "exif": exif,
        "camera": bool(exif.get("make") or exif.get("model")),
        "software": software_kind(tool),
        "xmp": xmp,
        "png_text": {k: _cut(v) for k, v in text.items()},
        "generator_params": params,
        "jpeg": _jpeg(im),
        "errors": errors,
    }


def software_kind(name: str | None) -> str | None:
    """``"generator"``, ``"editor"`` or ``None`` for a Software/CreatorTool name."""
    if not name:
        return None
    low = name.lower()
    if any(g in low for g in GENERATORS):
        return "generator"
    if any(e in low for e in EDITORS):
        return "editor"
    return None


def generator_params(text: dict[str, str], user_comment: str | None = None) -> dict | None:
    """Recognise a generator's embedded settings in PNG text chunks or an EXIF UserComment.

    Args:
        text: Text chunks by key (PNG ``tEXt``/``iTXt``/``zTXt``).
        user_comment: The EXIF UserComment, where AUTOMATIC1111 puts them in JPEG files.

    Returns:
        ``{"tool", "key", "summary"}``, or ``None`` when no known generator's settings are
        present. ``summary`` is the settings line (e.g. ``Steps: 20, Sampler: Euler a``).

    """
    params = text.get("parameters")
    if params is None and user_comment and _A1111.search(user_comment):
        params, key = user_comment, "EXIF UserComment"
    else:
        key = "parameters"
    if params is not None and _A1111.search(params):
        line = next((ln for ln in params.splitlines() if ln.startswith("Steps: ")), "")
        return {"tool": "AUTOMATIC1111-style", "key": key,
                "summary": _cut(line, 160)}  # fmt: skip
    for key in ("prompt", "workflow"):
        nodes = _comfy_nodes(text.get(key))
        if nodes:
            return {"tool": "ComfyUI", "key": key, "summary": ", ".join(nodes[:6])}
    for key in ("invokeai_metadata", "sd-metadata", "Dream"):
        if key in text:
            return {"tool": "InvokeAI", "key": key, "summary": _cut(text[key], 160)}
    if "fooocus_scheme" in text:
        return {"tool": "Fooocus", "key": "fooocus_scheme",
                "summary": _cut(text.get("parameters", ""), 160)}  # fmt: skip
    if text.get("Software", "").lower().startswith("novelai") and "Comment" in text:
        return {"tool": "NovelAI", "key": "Comment", "summary": _cut(text["Comment"], 160)}
    return None


def _comfy_nodes(raw: str | None) -> list[str]:
    """Node class names of a ComfyUI prompt or workflow graph (empty if it is not one)."""
    if not raw:
        return []
    try:
        graph = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    items = nodes if isinstance(nodes, list) else (
        list(graph.values()) if isinstance(graph, dict) else [])  # fmt: skip
    kinds = []
    for node in items:
        if isinstance(node, dict):
            kind = node.get("class_type") or node.get("type")
            if isinstance(kind, str) and kind not in kinds:
                kinds.append(kind)
    return kinds if any("Sampler" in k or "Checkpoint" in k for k in kinds) else []


def _exif(im: Image.Image, errors: list[str]) -> tuple[dict[str, str], str | None]:
    try:
        exif = im.getexif()
        found = {name: _clean(exif.get(tag)) for tag, name in _TAGS.items() if tag in exif}
        sub = exif.get_ifd(_EXIF_IFD)
        found.update({n: _clean(sub.get(t)) for t, n in _EXIF_TAGS.items() if t in sub})
        comment = _user_comment(sub.get(_USER_COMMENT))
    except Exception as exc:  # malformed EXIF is a note, never a crash
        errors.append(f"EXIF could not be read: {type(exc).__name__}: {exc}"[:300])
        return {}, None
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and len(raw) > 6:
        problem = exif_problem(raw)
        if problem:
            errors.append(f"EXIF block is malformed ({problem})")
    return {k: v for k, v in found.items() if v}, comment


def exif_problem(raw: bytes) -> str | None:
    """What is structurally wrong with an EXIF block's header and first IFD, or ``None``.

    A cheap check (TIFF header, IFD0 offset and entry count against the block's length) so
    a damaged block is noted without relying on Pillow's warnings, which are process-global.
    """
    body = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    if not _TIFF.match(body):
        return "no TIFF header"
    order = "<" if body[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", body[4:8])[0] if len(body) >= 8 else len(body)
    if offset + 2 > len(body):
        return "first IFD outside the block"
    count = struct.unpack(order + "H", body[offset : offset + 2])[0]
    if offset + 2 + 12 * count > len(body):
        return f"first IFD claims {count} entries, more than the block holds"
    return None


def _user_comment(raw: Any) -> str | None:
    """Decode an EXIF UserComment (8-byte charset prefix, then text)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    head, body = raw[:8], raw[8:]
    codec = "utf-16-be" if head.startswith(b"UNICODE") else "utf-8"
    if codec == "utf-16-be" and body[:1] != b"\x00" and body[1:2] == b"\x00":
        codec = "utf-16-le"
    return body.decode(codec, errors="replace").strip("\x00 ")


def _xmp(im: Image.Image, errors: list[str]) -> dict[str, str | None]:
    raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if raw is None and hasattr(im, "tag_v2"):
        raw = im.tag_v2.get(700)  # TIFF XMP tag
    out: dict[str, str | None] = {"digital_source_type": None, "creator_tool": None}
    if not raw:
        return out
    if len(raw) > MAX_XMP_BYTES:
        errors.append(f"XMP packet of {len(raw):,} bytes not parsed (over {MAX_XMP_BYTES:,})")
        return out
    try:
        from defusedxml import ElementTree

        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        start = text.find("<x:xmpmeta")
        end = text.rfind("</x:xmpmeta>")
        root = ElementTree.fromstring(text[start : end + 12] if 0 <= start < end else text)
    except Exception as exc:  # hostile or broken XML is a note
        errors.append(f"XMP could not be parsed: {type(exc).__name__}: {exc}"[:300])
        return out
    out["digital_source_type"] = _xmp_value(root, _NS_IPTC_EXT, "DigitalSourceType")
    out["creator_tool"] = _xmp_value(root, _NS_XMP, "CreatorTool")
    return out


def _xmp_value(root: Any, ns: str, name: str) -> str | None:
    """An XMP property written as an attribute or as an element (first found)."""
    tag = f"{{{ns}}}{name}"
    for el in root.iter():
        if tag in el.attrib:
            return el.attrib[tag].strip()
        if el.tag == tag:
            text = "".join(el.itertext()).strip()
            if text:
                return text
    return None


def _text_chunks(im: Image.Image) -> dict[str, str]:
    if im.format != "PNG":
        return {}
    try:
        chunks = dict(getattr(im, "text", {}) or {})
    except Exception:  # a broken later chunk: keep what info already has
        chunks = {}
    for key, value in im.info.items():
        if isinstance(value, str) and key not in chunks:
            chunks[key] = value
    chunks.pop("XML:com.adobe.xmp", None)
    return {str(k): str(v) for k, v in chunks.items()}


def _jpeg(im: Image.Image) -> dict[str, Any] | None:
    tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
    if not tables:
        return None
    fit = ijg_quality(tables.get(0, next(iter(tables.values()))))
    if fit is None:
        return {"quality": None, "standard_tables": False, "tables": len(tables)}
    quality, diff = fit
    return {"quality": quality, "standard_tables": diff == 0.0, "tables": len(tables)}


def _clean(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _cut(str(value).strip("\x00 ").strip(), 120) if value is not None else ""


def _cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

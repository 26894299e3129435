"""Provenance evidence beside the pixels: C2PA manifests, generator metadata, file forensics.

:func:`read_provenance` reads one encoded file (headers only, no pixel decoding) and returns
the record part ``{"c2pa", "metadata", "claims", "declared", "errors"}``. ``claims`` are
plain sentences for people; ``declared`` is the sentence that makes the verdict ``fake``
under the provenance rule (or ``None``):

* a C2PA manifest whose signature and hashes validate and whose actions declare an
  AI-generated digital source type (``trainedAlgorithmicMedia``,
  ``compositeWithTrainedAlgorithmicMedia``, ``algorithmicMedia``), or
* generator settings left in the file (AUTOMATIC1111 ``parameters``, a ComfyUI graph,
  InvokeAI or NovelAI metadata).

Everything else (an invalid manifest, an XMP source type, editor or camera tags, the JPEG
tables) is reported and never changes the verdict; missing metadata is never evidence on
its own. Reading never raises: what cannot be read becomes a note in ``errors``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from forensics.provenance.manifest import empty_c2pa, mime_for, read_c2pa, video_mime
from forensics.provenance.metadata import SYNTHETIC_SOURCE_TYPES, read_metadata

__all__ = ["claims", "declared_synthetic", "read_provenance", "read_video_provenance"]


def read_provenance(source: bytes | str | os.PathLike) -> dict[str, Any]:
    """Read the provenance evidence of one image file.

    Args:
        source: The file's bytes, or its path.

    Returns:
        ``{"c2pa": {present, valid, trusted, state, signer, generator, actions,
        digital_source_type, ingredients, failures}, "metadata": {...}, "claims": [...],
        "declared": str | None, "errors": [...]}`` (see :mod:`forensics.provenance`).

    """
    errors: list[str] = []
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        return _finish(empty_c2pa(), None, [f"file could not be read: {exc.strerror or exc}"])
    meta, fmt = None, None
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            meta = read_metadata(im)
            errors += meta.pop("errors")
    except Exception as exc:  # not an image header Pillow knows: C2PA may still be read
        errors.append(f"metadata could not be read: {type(exc).__name__}")
    return _finish(_guarded_c2pa(data, mime_for(fmt), errors), meta, errors)


def read_video_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The C2PA part of a video's provenance (mp4, mov, avi), streamed from disk.

    Videos have no ``metadata`` part (``None``); the result has the same keys as
    :func:`read_provenance`'s and never raises either.
    """
    errors: list[str] = []
    try:
        with open(path, "rb") as fh:
            return _finish(_guarded_c2pa(fh, video_mime(Path(path).suffix), errors), None, errors)
    except OSError as exc:
        return _finish(empty_c2pa(), None, [f"file could not be read: {exc.strerror or exc}"])


def _guarded_c2pa(data: bytes | BinaryIO, mime: str | None, errors: list[str]) -> dict[str, Any]:
    """:func:`read_c2pa` whose failures become notes in ``errors`` (never an exception)."""
    c2pa = empty_c2pa()
    try:
        c2pa = read_c2pa(data, mime)
    except ValueError as exc:
        c2pa.update(present=True, valid=False, state="Unreadable")
        errors.append(str(exc)[:300])
    except Exception as exc:  # the SDK failing on a hostile file is a note, never a crash
        errors.append(f"C2PA SDK error: {type(exc).__name__}: {exc}"[:300])
    return c2pa


def _finish(c2pa: dict, meta: dict | None, errors: list[str]) -> dict[str, Any]:
    prov = {"c2pa": c2pa, "metadata": meta, "claims": [], "declared": None, "errors": errors}
    prov["declared"] = declared_synthetic(prov)
    prov["claims"] = claims(prov)
    return prov


def declared_synthetic(prov: dict[str, Any]) -> str | None:
    """The sentence that declares the file AI-generated under the provenance rule, or ``None``.

    Only a validating C2PA manifest with an AI digital source type, or generator settings
    left in the file, count (see :mod:`forensics.provenance`).
    """
    c2pa = prov.get("c2pa") or {}
    if c2pa.get("valid") and c2pa.get("digital_source_type") in SYNTHETIC_SOURCE_TYPES:
        return _manifest_claim(c2pa)
    params = (prov.get("metadata") or {}).get("generator_params")
    if params:
        return _params_claim(params)
    return None


def claims(prov: dict[str, Any]) -> list[str]:
    """Plain sentences for everything found, strongest first."""
    out: list[str] = []
    c2pa = prov.get("c2pa") or {}
    if c2pa.get("present"):
        out.append(_manifest_claim(c2pa))
    meta = prov.get("metadata")
    if meta is None:
        return out
    if meta.get("generator_params"):
        out.append(_params_claim(meta["generator_params"]))
    xmp = meta.get("xmp") or {}
    if xmp.get("digital_source_type"):
        dst = xmp["digital_source_type"].rsplit("/", 1)[-1]
        out.append(f"XMP declares IPTC DigitalSourceType {dst} (unsigned metadata)")
    exif = meta.get("exif") or {}
    tool = exif.get("software") or xmp.get("creator_tool")
    if tool and meta.get("software"):
        out.append(f"Software tag names an image {meta['software']}: {tool}")
    if meta.get("camera"):
        camera = " ".join(v for v in (exif.get("make"), exif.get("model")) if v)
        out.append(f"camera EXIF: {camera}")
    elif meta.get("format") in ("JPEG", "TIFF", "HEIF", "WEBP"):
        out.append("no camera EXIF")
    jpeg = meta.get("jpeg")
    if jpeg and jpeg.get("quality") is not None:
        kind = (
            "standard libjpeg tables (Pillow, OpenCV, most generators and web tools)"
            if jpeg["standard_tables"]
            else "tables of a camera's or editor's own"
        )
        out.append(f"JPEG quality about {jpeg['quality']}, {kind}")
    return out


def _manifest_claim(c2pa: dict[str, Any]) -> str:
    who = f"signed by {c2pa['signer']}" if c2pa.get("signer") else "with no signer"
    what = ""
    if c2pa.get("digital_source_type"):
        what = f" declares {c2pa['digital_source_type']}"
    elif c2pa.get("actions"):
        what = f" records {', '.join(c2pa['actions'][:4])}"
    if c2pa.get("generator"):
        what += f" (claim generator: {c2pa['generator']})"
    if c2pa.get("state") == "Unreadable":
        return "C2PA manifest present but unreadable (corrupt or truncated)"
    if not c2pa.get("valid"):
        failed = ", ".join(c2pa.get("failures") or []) or c2pa.get("state") or "invalid"
        return f"C2PA manifest {who}{what} fails validation: {failed}"
    trust = "trusted signer" if c2pa.get("trusted") else "signer not on a trust list"
    return f"C2PA manifest {who}{what} (valid; {trust})"


def _params_claim(params: dict[str, Any]) -> str:
    where = (
        f"EXIF {params['key'].removeprefix('EXIF ')}"
        if params["key"].startswith("EXIF")
        else f"PNG text chunk '{params['key']}'"
    )
    summary = f": {params['summary']}" if params.get("summary") else ""
    return f"{where} holds {params['tool']} image generation settings{summary}"

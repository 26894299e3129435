"""Content Credentials: read and validate a file's C2PA manifest store.

The C2PA SDK (``c2pa-python``, the Content Authenticity Initiative's own Rust library with
Python bindings) parses the JUMBF boxes, checks the claim signature and the hard binding
(the hash of the pixels the claim covers). The project never parses JUMBF itself.

Only manifests embedded in the file are read: a file whose bytes hold no JUMBF box is
answered without calling the SDK, and nothing is fetched from the network (no remote
manifests, no OCSP).
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any, BinaryIO

from forensics.provenance.metadata import IPTC_DST

UNTRUSTED = "signingCredential.untrusted"
"""Status code for a signature by a certificate on no trust list (reported, not a failure)."""

_MIME = {
    "JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
    "GIF": "image/gif", "AVIF": "image/avif", "HEIF": "image/heif",
}  # fmt: skip


_VIDEO_MIME = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
}  # fmt: skip


def mime_for(image_format: str | None) -> str | None:
    """The MIME type the C2PA SDK reads a Pillow format as (``None``: not supported)."""
    return _MIME.get((image_format or "").upper())


def video_mime(suffix: str) -> str | None:
    """The MIME type of a video container the C2PA SDK reads (``None``: mkv, webm, ...)."""
    return _VIDEO_MIME.get(suffix.lower())


def empty_c2pa() -> dict[str, Any]:
    """The record part for a file without a manifest."""
    return {
        "present": False,
        "valid": None,
        "trusted": None,
        "state": None,
        "signer": None,
        "generator": None,
        "actions": [],
        "digital_source_type": None,
        "ingredients": [],
        "failures": [],
    }


def has_jumbf(data: bytes) -> bool:
    """Whether ``data`` may hold an embedded C2PA manifest (a JUMBF superbox)."""
    return b"jumb" in data


def read_c2pa(data: bytes | BinaryIO, mime: str | None) -> dict[str, Any]:
    """Read and validate the embedded C2PA manifest store of an encoded file.

    Args:
        data: The file's bytes, or a binary file opened for reading (a video: it is
            streamed, not loaded; the SDK hashes what the claim covers).
        mime: Its MIME type (see :func:`mime_for`); ``None`` reads nothing.

    Returns:
        ``{"present", "valid", "trusted", "state", "signer", "generator", "actions",
        "digital_source_type", "ingredients", "failures"}``. ``valid`` means the claim
        signature and every hash check passed; ``trusted`` that the signer is also on the
        SDK's trust list (none is configured, so a valid signature from an unknown signer
        is ``valid`` but not ``trusted``). ``failures`` lists the failed status codes.

    Raises:
        ValueError: The manifest store is there but cannot be parsed (truncated, corrupt);
            the message says why.

    """
    out = empty_c2pa()
    if mime is None or (isinstance(data, bytes) and not has_jumbf(data)):
        return out
    import c2pa

    try:
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        reader = c2pa.Reader.try_create(mime, stream, context=_offline_context())
    except c2pa.C2paError as exc:
        raise ValueError(f"C2PA manifest could not be read: {exc}") from None
    if reader is None:
        return out
    with reader:
        state = reader.get_validation_state()
        store = json.loads(reader.json())
    return _summarise(store, state, out)


@functools.cache
def _offline_context() -> Any:
    """SDK settings for reading: never fetch remote manifests or OCSP responses."""
    import c2pa

    return c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})


def _summarise(store: dict[str, Any], state: str | None, out: dict[str, Any]) -> dict[str, Any]:
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    statuses = store.get("validation_status") or []
    failures = sorted({s.get("code", "?") for s in statuses if isinstance(s, dict)} - {UNTRUSTED})
    actions = _actions(active)
    sig = active.get("signature_info") or {}
    signer = sig.get("common_name") or sig.get("issuer")
    if sig.get("issuer") and sig.get("issuer") != signer:
        signer = f"{signer} ({sig['issuer']})"
    out.update(
        present=True,
        state=state,
        valid=state in ("Valid", "Trusted") and not failures,
        trusted=state == "Trusted",
        signer=signer,
        generator=_generator(active),
        actions=[a["action"] for a in actions if isinstance(a.get("action"), str)],
        digital_source_type=next(
            (
                short_source_type(a["digitalSourceType"])
                for a in actions
                if isinstance(a.get("digitalSourceType"), str)
            ),
            None,
        ),  # fmt: skip
        ingredients=[
            str(i.get("title") or i.get("label") or "?") for i in active.get("ingredients") or []
        ],
        failures=failures,
    )
    return out


def short_source_type(value: str) -> str:
    """``trainedAlgorithmicMedia`` for the IPTC URI (or the short code itself)."""
    return value[len(IPTC_DST) :] if value.startswith(IPTC_DST) else value.rsplit("/", 1)[-1]


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            data = assertion.get("data") or {}
            found += [a for a in data.get("actions") or [] if isinstance(a, dict)]
    return found


def _generator(manifest: dict[str, Any]) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos and isinstance(infos[0], dict) and infos[0].get("name"):
        info = infos[0]
        return f"{info['name']} {info.get('version', '')}".strip()
    gen = manifest.get("claim_generator")
    return str(gen) if gen else None

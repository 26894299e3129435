"""Media I/O: still images in and out, and what every kind of input shares.

Decoding and encoding pixels happens here and in :mod:`forensics.video` (video frames) only.
Every image leaves this module as an RGB ``uint8`` array of shape ``(H, W, 3)``; OpenCV's BGR
order is converted in those two I/O modules, once, and nowhere else.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
"""Common photo suffixes, known without loading Pillow's plugins; see :func:`image_extensions`."""
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
DEFAULT_MAX_PIXELS = 64_000_000
"""Images larger than this (width x height) are refused before decoding (decompression bombs)."""

_NOT_STILL_FORMATS = frozenset({"MPEG"})
"""Pillow formats it can identify but not decode, and that are not still images anyway."""
_OPENED_AS = {"MPO": "JPEG"}
"""Formats with no opener of their own: Pillow's JPEG opener reads them."""


class MediaError(Exception):
    """A file could not be read as the media its name promises; the message says why."""


def media_kind(path: str | os.PathLike) -> str:
    """Classify a path by extension: ``"image"``, ``"video"`` or ``"other"``.

    Images are any still format Pillow can decode (:func:`image_extensions`): PGM, PPM,
    TIFF, TGA and the rest, not only the common photo formats.
    """
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in image_extensions():
        return "image"
    return "other"


@functools.cache
def image_extensions() -> frozenset[str]:
    """Every suffix (lower case, with the dot) of a still image format Pillow can decode.

    Built once from ``PIL.Image.registered_extensions()``, keeping formats Pillow can open
    and decode here: stub formats without an installed handler (BUFR, GRIB, HDF5, WMF off
    Windows), MPEG, and EPS/PS without Ghostscript are left out. :data:`IMAGE_EXTS` is
    always included and :data:`VIDEO_EXTS` never is.
    """
    exts = {
        ext.lower()
        for ext, fmt in Image.registered_extensions().items()
        if _can_decode(_OPENED_AS.get(fmt, fmt))
    }
    return frozenset((exts | IMAGE_EXTS) - VIDEO_EXTS)


def _can_decode(fmt: str) -> bool:
    from PIL import ImageFile

    if fmt in _NOT_STILL_FORMATS or fmt not in Image.OPEN:
        return False
    factory = Image.OPEN[fmt][0]
    if isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile):
        return getattr(factory, "_handler", None) is not None
    if fmt == "EPS":
        from PIL import EpsImagePlugin

        return bool(EpsImagePlugin.has_ghostscript())
    return True


def iter_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into file paths.

    Every argument appears in the output: a missing path or a symlink loop is yielded as is,
    so the caller can report it. Symlinked folders are not followed (no loops); symlinked
    files are yielded like files.
    """
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames + [d for d in dirnames if _is_link(dirpath, d)]):
                    yield Path(dirpath) / name
        else:
            yield root


def _is_link(dirpath: str, name: str) -> bool:
    return os.path.islink(os.path.join(dirpath, name))


def check_readable_file(path: Path) -> None:
    """Raise :class:`MediaError` with a clear message unless ``path`` is a non-empty file."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise MediaError("symlink loop") from None
        if not path.exists() and path.is_symlink():
            raise MediaError("broken symlink") from None
        raise MediaError(f"cannot read: {exc.strerror or exc}") from None
    if path.is_dir():
        raise MediaError("is a folder (symlinked folders are not followed)")
    if st.st_size == 0:
        raise MediaError("empty file")


def load_image(path: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into RGB ``uint8`` ``(H, W, 3)``.

    EXIF orientation is applied; grey, palette, CMYK, alpha (composited on white) and
    16-bit or float images become 8-bit RGB; animated GIFs give their first frame.

    Args:
        path: A file path, or the encoded bytes.
        max_pixels: Refuse images with more pixels than this, before decoding them.

    Raises:
        MediaError: The file is empty, truncated, not an image, or too large.

    """
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise MediaError(
                        f"image is {w}x{h} = {w * h:,} pixels, over the {max_pixels:,} cap "
                        "(possible decompression bomb)"
                    )
                # Pillow scales every PGM/PPM deeper than 8 bits to 0..65535 in mode "I".
                max_value = 65535.0 if im.format == "PPM" and im.mode == "I" else None
                frame = (
                    next(ImageSequence.Iterator(im)) if getattr(im, "is_animated", False) else im
                )
                frame = ImageOps.exif_transpose(frame)
                return to_rgb_array(frame, max_value=max_value)
    except MediaError:
        raise
    except UnidentifiedImageError:
        raise MediaError("not a recognised image (wrong extension or corrupt header)") from None
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"cannot decode image: {exc}") from None


_PILLOW_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _bomb_error(exc: Exception, max_pixels: int) -> MediaError:
    """Pillow refused a header before :func:`load_image` saw its size: say it our way."""
    found = _PILLOW_BOMB_PIXELS.search(str(exc))
    pixels = int(found.group(1)) if found else None
    cap = max_pixels
    if pixels is not None and pixels <= max_pixels and Image.MAX_IMAGE_PIXELS:
        cap = 2 * Image.MAX_IMAGE_PIXELS  # under our cap but over Pillow's own hard limit
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return MediaError(f"image is {size}, over the {cap:,} cap (possible decompression bomb)")


def to_rgb_array(im: Image.Image, *, max_value: float | None = None) -> np.ndarray:
    """Convert a PIL image of any mode into RGB ``uint8`` ``(H, W, 3)``.

    Args:
        im: The image, any mode.
        max_value: For ``I`` and ``F`` images, the sample value of full white, when the
            file format says so (16-bit PGM/PPM: 65535). Without it, ``I;16*`` images are
            scaled from 65535, float images within 0..1 from 1, and other ``I``/``F``
            images over 255 are stretched to their own range.

    """
    mode = im.mode
    if mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if max_value:
            arr = arr * (255.0 / max_value)
        elif mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "F" and arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            arr = arr * 255.0
        elif arr.size and arr.max() > 255:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        im = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L")
        mode = "L"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[0] * arr.shape[1] > 0:
        return np.ascontiguousarray(arr)
    raise MediaError(f"image has an unusable shape {arr.shape}")


def save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int | None = None) -> Path:
    """Encode an RGB ``uint8`` array to ``path``; the format follows the suffix.

    Args:
        path: Destination; parent folders are created.
        rgb: ``(H, W, 3)`` uint8 (or ``(H, W)`` grey).
        quality: JPEG/WebP quality (1-100); ignored for lossless formats.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if path.suffix.lower() in {".jpg", ".jpeg", ".webp"} and quality is not None:
        kwargs["quality"] = int(quality)
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, **kwargs)
    return path


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG-encode an RGB array in memory (used for augmentation and codec matching)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB array to ``(width, height)``: area filter down, bilinear up."""
    import cv2

    w, h = size
    shrink = w * h < rgb.shape[0] * rgb.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(rgb, (int(w), int(h)), interpolation=interp)


def shrunk_shape(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    """``(height, width)`` that :func:`shrink_to` gives an image of ``shape``."""
    h, w = shape[:2]
    if not side or max(h, w) <= side:
        return h, w
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def shrink_to(rgb: np.ndarray, side: int) -> np.ndarray:
    """Area-shrink ``rgb`` so its longer side is at most ``side`` (0: unchanged)."""
    h, w = shrunk_shape(rgb.shape, side)
    return rgb if (h, w) == rgb.shape[:2] else resize_rgb(rgb, (w, h))

"""Self-describing checkpoints: safetensors weights plus a JSON header, written atomically.

A checkpoint is one ``.safetensors`` file. Its tensors are the model's ``state_dict``; its
header metadata holds one key, ``"forensics"``, a JSON document describing the model
(architecture and kwargs, preprocessing, threshold, calibration, data provenance, seed,
package version). Nothing is ever unpickled: a legacy ``.pt`` file is only accepted through
``torch.load(weights_only=True)``, which refuses pickles that carry code.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

META_KEY = "forensics"


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or unsafe to load."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` tensors/dicts atomically (for training state, loaded with weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a torch file with ``weights_only=True``; refuse anything that carries code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"refusing to load {path}: not a plain-tensor checkpoint ({type(exc).__name__}). "
            "forensics never unpickles code; convert it to safetensors."
        ) from None


def save_checkpoint(
    path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> Path:
    """Save weights and metadata as one safetensors file, atomically.

    Args:
        path: Destination file (``.safetensors``).
        state_dict: Model tensors; they are made contiguous and moved to CPU.
        meta: JSON-serialisable description of the model.

    Returns:
        The path written.

    """
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    header = {META_KEY: json.dumps(meta, sort_keys=True, default=_json_default)}
    atomic_write_bytes(path, save(tensors, metadata=header))
    return Path(path)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON metadata of a safetensors checkpoint (no tensor is loaded)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is too short to be a checkpoint")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000 or n > path.stat().st_size:
            raise CheckpointError(f"{path} is not a safetensors checkpoint")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path} is not a safetensors checkpoint") from None
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path} has no forensics metadata; it was not written by forensics")
    return json.loads(raw)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(state_dict, meta)`` from a checkpoint without unpickling code.

    Safetensors files are read directly. Other files are tried with
    ``torch.load(weights_only=True)`` and must hold ``{"state_dict": ..., "meta": ...}``.

    Raises:
        CheckpointError: The file is missing, malformed, or carries code.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if _looks_like_safetensors(path):
        from safetensors.torch import load_file

        meta = read_meta(path)
        try:
            tensors = load_file(str(path), device=str(device))
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt safetensors file ({exc})") from None
        return tensors, meta
    obj = safe_torch_load(path, map_location=device)
    if not (isinstance(obj, dict) and "state_dict" in obj and "meta" in obj):
        raise CheckpointError(f"{path}: expected a dict with 'state_dict' and 'meta'")
    return dict(obj["state_dict"]), dict(obj["meta"])


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 0 < n <= path.stat().st_size and head[8:9] == b"{"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")

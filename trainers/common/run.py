"""Resumable run folders shared by the GAN and detector trainers.

A run folder holds:

- ``config.json``: the resolved dataclass config of the run;
- ``metrics.jsonl``: one JSON object per logged step, appended and flushed;
- ``last.pt`` / ``best.pt``: training state (tensors and plain containers only, written
  atomically, loaded with ``weights_only=True``);
- whatever artefacts the trainer adds (sample grids, exported ``.safetensors``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, TypeVar

from forensics.checkpoint import atomic_torch_save, atomic_write_bytes, safe_torch_load

T = TypeVar("T")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a JSON-ready dict (paths become strings, tuples lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass config, ignoring unknown keys and restoring tuple fields."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            continue
        if isinstance(value, list) and "tuple" in str(fields[key].type):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


class RunDir:
    """A training run's folder: config, metrics log and atomic checkpoints.

    Args:
        path: The folder (created if missing).

    """

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    LAST = "last.pt"
    BEST = "best.pt"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def save_config(self, config: Any) -> Path:
        """Write the resolved config as ``config.json`` (atomically)."""
        data = json.dumps(config_to_dict(config), indent=2, sort_keys=True).encode()
        atomic_write_bytes(self.path / self.CONFIG, data)
        return self.path / self.CONFIG

    def load_config(self, cls: type[T]) -> T:
        """Read ``config.json`` back into ``cls``.

        Raises:
            FileNotFoundError: The folder holds no run.

        """
        file = self.path / self.CONFIG
        if not file.is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder (no {self.CONFIG})")
        return config_from_dict(cls, json.loads(file.read_text()))

    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics record (with a wall-clock ``time``) and flush it."""
        line = json.dumps({"time": time.time(), **record}, default=float)
        with open(self.path / self.METRICS, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()

    def metrics(self) -> list[dict[str, Any]]:
        """All complete metrics records logged so far (a torn last line is ignored)."""
        file = self.path / self.METRICS
        if not file.is_file():
            return []
        out = []
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def save_state(self, state: dict[str, Any], best: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt`` when ``best``) atomically."""
        atomic_torch_save(state, self.path / self.LAST)
        if best:
            atomic_torch_save(state, self.path / self.BEST)

    def load_state(self, which: str = LAST) -> dict[str, Any] | None:
        """Load a saved state with ``weights_only=True``, or ``None`` if there is none."""
        file = self.path / which
        return safe_torch_load(file) if file.is_file() else None

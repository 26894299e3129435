"""Crash-safe ``results.jsonl``: one JSON record per photo, appended, flushed and fsynced.

After a crash (even SIGKILL in the middle of a write) the file holds whole records plus at
most one torn last line. Opening the store truncates that torn line away, so a re-run records
each remaining photo exactly once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.jsonl"


class StoreError(RuntimeError):
    """The results file is damaged beyond a torn last line."""


def read_records(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Read every whole record; a torn or unparsable last line is dropped.

    Args:
        path: The ``results.jsonl`` file (missing = no records).
        repair: Truncate the file after the last whole record (when resuming).

    Raises:
        StoreError: A line other than the last is not a JSON object.

    """
    if not path.is_file():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        record = _parse(line) if not last else None  # an unterminated line is torn
        if record is None:
            if not last and i != len(lines) - 2:
                raise StoreError(f"{path}: line {i + 1} is not a JSON record; fix or remove it")
            break
        records.append(record)
        good_end += len(line) + 1
    if repair and good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return records


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "path" in record else None


class ResultStore:
    """Append-only, crash-safe record log in an output folder.

    Args:
        out_dir: The ``--out`` folder (created if missing).

    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / RESULTS_NAME
        self.records: list[dict[str, Any]] = read_records(self.path, repair=True)
        self.done: set[str] = {r["path"] for r in self.records}
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a single line, then flush and fsync it."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._fh.write(line + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records.append(record)
        self.done.add(record["path"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

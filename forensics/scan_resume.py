"""Fresh, resumed and interrupted scans: what ``forensics scan --out DIR`` does with DIR.

* A **fresh** scan first removes what an earlier scan wrote in DIR (``results.jsonl``,
  ``report.html``, ``heatmaps/``, ``timelines/``, ``thumbs/``) and nothing else, so no stale
  picture survives a re-run.
* A **resumed** scan (``--resume``) keeps each record of DIR's ``results.jsonl`` whose file is
  unchanged (same path, size and mtime) and was scored by the same model (same sha256) at the
  same threshold, with its pictures; the other files are scanned and their records appended.
  Records of files that failed (``error``) are retried; records of files outside this scan's
  inputs are kept.
* Records are written whole and flushed one by one (:meth:`forensics.scan.Scanner.scan`), so
  after Ctrl-C or SIGKILL the file holds whole records plus at most one torn last line. Resuming
  cuts that line off (its file is scanned again), drops superseded records, and removes the
  pictures no kept record points to.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensics.records import ScanRecord, display_path
from forensics.report import REPORT_NAME, RESULTS_NAME

if TYPE_CHECKING:
    from forensics.scan import Scanner

OWN_DIRS = ("heatmaps", "timelines", "thumbs")
"""Sub-folders of ``--out`` that belong to the scan (cleared or pruned, never anything else)."""

_SEQ = re.compile(r"^(\d+)_")


class ResumeError(RuntimeError):
    """The ``results.jsonl`` to resume from is damaged beyond a torn last line."""


def file_stat(path: str | os.PathLike) -> tuple[int, float] | None:
    """``(size, mtime)`` of a file (symlinks followed), or ``None`` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return int(st.st_size), float(st.st_mtime)


def clear_outputs(out_dir: str | os.PathLike) -> None:
    """Remove what a scan writes in ``out_dir``, and nothing else.

    Symlinked sub-folders are unlinked, never followed.
    """
    root = Path(out_dir)
    temps = [root / f".{RESULTS_NAME}.tmp", *root.glob(f".{REPORT_NAME}.*.tmp")]
    for path in (root / RESULTS_NAME, root / REPORT_NAME, *temps):
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
    for name in OWN_DIRS:
        folder = root / name
        if folder.is_symlink():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)


def drop_torn_tail(path: str | os.PathLike) -> bool:
    """Cut an unterminated last line (a write cut short) off ``path``; whether one was cut."""
    with open(path, "r+b") as fh:
        end = fh.seek(0, os.SEEK_END)
        if end == 0:
            return False
        fh.seek(end - 1)
        if fh.read(1) == b"\n":
            return False
        keep, pos = 0, end
        while pos > 0:
            start = max(0, pos - 65536)
            fh.seek(start)
            k = fh.read(pos - start).rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        fh.truncate(keep)
        return True


def read_results(path: Path) -> tuple[list[tuple[bytes, dict[str, Any]]], bool]:
    """Whole records of a ``results.jsonl`` with their raw lines, and whether a line was torn.

    An unterminated or unparsable last line is torn (dropped). A missing file has no records.

    Raises:
        ResumeError: A line other than the last is not a scan record.

    """
    if not path.is_file():
        return [], False
    lines = path.read_bytes().split(b"\n")
    torn = bool(lines.pop())  # the file should end with a newline
    entries = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            if i < len(lines) - 1:
                raise ResumeError(f"{path}: line {i + 1} is not a scan record; fix or remove it")
            torn = True
            continue
        entries.append((line, record))
    return entries, torn


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("path"), str)
    return record if ok else None


def _artifacts(record: dict[str, Any]) -> list[str]:
    """Paths (relative to ``--out``) of the pictures a record points to."""
    names = [record.get("thumbnail"), record.get("timeline")]
    for face in record.get("faces") or []:
        if isinstance(face, dict):
            names += [face.get(k) for k in ("heatmap", "heatmap_raw", "crop", "heatmap_crop")]
    for track in record.get("tracks") or []:
        if isinstance(track, dict):
            names.append(track.get("curve"))
            strip = track.get("strip") or []
            names += [s.get("image") for s in strip if isinstance(s, dict)]
    return [n for n in names if isinstance(n, str)]


def _unchanged(
    record: dict[str, Any],
    stat: tuple[int, float] | None,
    sha256: str | None,
    threshold: float | None = None,
    sampling: dict[str, float] | None = None,
) -> bool:
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    decided = record.get("threshold")
    resampled = (
        sampling is not None
        and record.get("kind") == "video"
        and record.get("status") == "ok"
        and record.get("sampling") != sampling
    )
    return (
        stat is not None
        and sha256 is not None
        and record.get("status") != "error"
        and model.get("sha256") == sha256
        and record.get("size") == stat[0]
        and record.get("mtime") == stat[1]
        and (threshold is None or decided is None or abs(float(decided) - threshold) < 1e-12)
        and not resampled
    )


@dataclass
class ResumePlan:
    """What a resumed scan keeps and what it scans.

    Attributes:
        kept: Earlier records of unchanged inputs, by input position.
        seqs: Artifact numbers of the inputs to scan (in order), clear of the kept ones.
        dropped: Records dropped from ``results.jsonl`` (torn, superseded or failed).

    """

    kept: dict[int, ScanRecord]
    seqs: list[int]
    dropped: int


def plan_resume(
    out_dir: str | os.PathLike,
    files: Sequence[Path],
    sha256: str | None,
    threshold: float | None = None,
    sampling: dict[str, float] | None = None,
) -> ResumePlan:
    """Repair ``out_dir`` for resuming a scan of ``files`` by the model ``sha256``.

    With ``threshold``, an ok record decided at another threshold (``--threshold`` changed
    between the runs) is rescanned too, so every verdict of the resumed scan uses one rule.
    With ``sampling`` (``{"fps", "max_frames"}``), so is a video sampled otherwise
    (``--fps`` or ``--max-frames`` changed, or a record older than the field).

    ``results.jsonl`` is rewritten (atomically) without its torn, superseded or failed
    records, then the pictures no kept record points to are removed.

    Raises:
        ResumeError: ``results.jsonl`` is damaged beyond a torn last line.

    """
    root = Path(out_dir)
    results = root / RESULTS_NAME
    entries, torn = read_results(results)
    shown = [display_path(f) for f in files]
    by_path = dict(zip(shown, files, strict=True))
    last = {rec["path"]: j for j, (_, rec) in enumerate(entries)}
    keep: list[tuple[bytes, dict[str, Any]]] = []
    done: dict[str, ScanRecord] = {}
    for j, (line, rec) in enumerate(entries):
        path = rec["path"]
        if path not in by_path:  # not among this scan's inputs: left as it is
            keep.append((line, rec))
        elif last[path] == j and _unchanged(
            rec, file_stat(by_path[path]), sha256, threshold, sampling
        ):
            keep.append((line, rec))
            done[path] = ScanRecord.from_dict(rec)
    if torn or len(keep) < len(entries):
        tmp = root / f".{RESULTS_NAME}.tmp"
        with open(tmp, "wb") as fh:
            fh.writelines(line + b"\n" for line, _ in keep)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, results)
    referenced = {name for _, rec in keep for name in _artifacts(rec)}
    _prune(root, referenced)
    used = {
        int(m.group(1))
        for name in referenced
        if (m := _SEQ.match(name.rsplit("/", 1)[-1])) is not None
    }
    kept = {i: done[p] for i, p in enumerate(shown) if p in done}
    spare = itertools.count(max([len(files) - 1, *used]) + 1)  # numbers no input has
    seqs = [next(spare) if i in used else i for i in range(len(files)) if i not in kept]
    return ResumePlan(kept, seqs, len(entries) - len(keep) + int(torn))


def _prune(root: Path, referenced: set[str]) -> None:
    """Remove files in the scan's own sub-folders that no kept record points to."""
    for path in root.glob(f".{REPORT_NAME}.*.tmp"):
        path.unlink(missing_ok=True)
    for name in OWN_DIRS:
        folder = root / name
        if folder.is_symlink() or not folder.is_dir():
            continue
        for path in folder.iterdir():
            if f"{name}/{path.name}" not in referenced and (path.is_symlink() or path.is_file()):
                path.unlink(missing_ok=True)


class ScanRun:
    """One scan of ``files``, fresh or resumed from the scanner's output folder.

    Creating it prepares the folder: a fresh run clears it (:func:`clear_outputs`) and starts
    an empty ``results.jsonl``; a resumed one repairs it (:func:`plan_resume`).

    Args:
        scanner: Scores the files and writes into its output folder, if it has one.
        files: The inputs, in order.
        resume: Keep the records of unchanged files scored by the same model.

    Attributes:
        total: Number of inputs.
        done: Inputs with a record so far (kept or scanned): what an interrupted run got to.
        resumed: Inputs whose earlier record was kept.

    Raises:
        ResumeError: The results to resume from are damaged beyond a torn last line.

    """

    def __init__(self, scanner: Scanner, files: Sequence[Path], resume: bool = False) -> None:
        self.scanner = scanner
        self.files = list(files)
        self.total = len(self.files)
        self.done = 0
        self.kept: dict[int, ScanRecord] = {}
        self.seqs: list[int] | None = None
        root = scanner.artifacts.root if scanner.artifacts is not None else None
        if root is not None and resume:
            threshold = getattr(scanner, "threshold", None)
            sampling = getattr(scanner, "sampling", None)
            sha = scanner.model.get("sha256")
            plan = plan_resume(root, self.files, sha, threshold, sampling)
            self.kept, self.seqs = plan.kept, plan.seqs
        elif root is not None:
            clear_outputs(root)
            (root / RESULTS_NAME).touch()
        self.resumed = len(self.kept)

    def records(
        self, on_record: Callable[[int, int, ScanRecord], None] | None = None
    ) -> Iterator[ScanRecord]:
        """Yield one record per input, in order: kept ones as they were, the rest scanned.

        Args:
            on_record: Called after each input with ``(done, total, record)``.

        """
        todo = [f for i, f in enumerate(self.files) if i not in self.kept]
        scanned = self.scanner.scan(todo, seqs=self.seqs, append=True)
        try:
            for i in range(self.total):
                rec = self.kept.get(i)
                if rec is None:
                    rec = next(scanned)
                self.done += 1
                if on_record is not None:
                    on_record(self.done, self.total, rec)
                yield rec
        finally:
            scanned.close()

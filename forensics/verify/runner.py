"""Run a whole verification: resume from ``--out``, verify in batches, write the reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.analysis import Analyzer
from forensics.verify.inputs import Item
from forensics.verify.pipeline import ProgressFn, Verifier, iter_batches, preload_index
from forensics.verify.policy import Policy
from forensics.verify.report import summarize, write_report, write_summary, write_thumbnails
from forensics.verify.store import ResultStore


@dataclass
class VerifyRun:
    """What a run produced.

    Attributes:
        records: One record per input photo, in input order (recorded now or earlier).
        processed: Photos verified by this run.
        resumed: Photos skipped because ``--out`` already held their record.
        summary: Counts per decision and reason over ``records``.
        files: Files written in the output folder (empty without one).

    """

    records: list[dict[str, Any]]
    processed: int
    resumed: int
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def all_accepted(self) -> bool:
        """Whether every photo was accepted."""
        return all(r["decision"] == "accept" for r in self.records)


def run_verification(
    items: Sequence[Item],
    analyzer: Analyzer,
    policy: Policy,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    thumbnails: bool = True,
    on_progress: ProgressFn | None = None,
) -> VerifyRun:
    """Verify photos, resuming from and writing into ``out_dir`` when given.

    With ``out_dir``, each record is appended to ``results.jsonl`` (flushed and fsynced)
    right after its photo is verified, previews of flagged photos go to ``thumbs/`` first
    (unless ``thumbnails`` is off), and ``summary.json`` and ``report.html`` are rewritten at
    the end over every record of the folder (this batch and earlier ones). Photos already
    recorded are skipped, and their hashes still catch re-submissions. Without ``out_dir``
    nothing is written anywhere.

    Args:
        items: Photos in processing order.
        analyzer: Face finding and synthetic scoring.
        policy: Thresholds and actions.
        out_dir: Output folder, or ``None``.
        batch_size: Photos per batch (faces of a batch go through the detector together).
        thumbnails: Write previews of flagged photos and show them in the report.
        on_progress: Called after each photo with ``(done, total, record)``.

    """
    out = Path(out_dir) if out_dir is not None else None
    store = ResultStore(out) if out is not None else None
    try:
        earlier = list(store.records) if store is not None else []
        done = set(store.done) if store is not None else set()
        verifier = Verifier(analyzer, policy, preload_index(earlier))
        margin = analyzer.detector.preprocess.crop_margin
        by_path = {r["path"]: r for r in earlier}
        wanted = {it.path for it in items}
        resumed = len(wanted & done)
        count = resumed
        processed = 0
        for chunk in iter_batches(items, batch_size, done):
            for outcome in verifier.verify_batch(chunk, skip=done):
                record = outcome.record
                if store is not None:
                    flagged = record["decision"] != "accept"
                    if thumbnails and flagged and outcome.rgb is not None:
                        record["thumbnails"] = write_thumbnails(out, outcome, margin)
                    store.append(record)
                by_path[record["path"]] = record
                processed += 1
                count += 1
                if on_progress is not None:
                    on_progress(count, len(wanted), record)
        records = [by_path[p] for p in dict.fromkeys(it.path for it in items)]
        extra = {
            "model": analyzer.detector.name,
            "model_sha256": analyzer.detector.sha256,
            "synthetic_threshold": verifier.synthetic_threshold,
            "policy": policy.to_dict(),
        }
        files: dict[str, Path] = {}
        if store is not None:
            all_records = store.records
            summary = summarize(all_records, extra)
            files["results"] = store.path
            files["summary"] = write_summary(out, summary)
            files["report"] = write_report(out, all_records, summary, thumbnails)
        summary = summarize(records, extra)
        return VerifyRun(records, processed, resumed, summary, files)
    finally:
        if store is not None:
            store.close()

"""The model card's held-out table for one checkpoint, in one command.

Every fake folder of a dev split (``python -m trainers.detector.devsplit DEV OUT``) is scored
against its paired real folder, exactly as ``forensics detector eval`` scores them: as
published, after half size + JPEG 70 (``heldout_half_q70``), and after JPEG re-encoding at the
same size. Optional ``--real-check`` folders report the share of real photos flagged at the
stored threshold. The numbers are computed, never typed in::

    python -m trainers.detector.devsplit ../shared/data/dev runs/devsplit
    python -m trainers.detector.card MODEL runs/devsplit --real-check runs/unused/facemask
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forensics.analysis import Analyzer
from forensics.scoring import Detector

from .degrade import degrade_folder
from .evaluate import PAIRED_REAL, evaluate_folders, scan_analyzer

PUBLISHED, HALF_Q70 = "heldout", "heldout_half_q70"


@dataclass(frozen=True)
class CardRow:
    """One line of the table: a fake folder against its real folder, in one copy."""

    copy: str
    fake: str
    real: str
    n_fake: int
    n_real: int
    auc: float
    ap: float
    eer: float
    tpr_at_1fpr: float
    fpr: float
    tpr: float
    ece: float


def pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """``(source, fake_dir, real_dir)`` for every fake folder under ``root`` with a real pair."""
    out = []
    for fake in sorted(p for p in (root / "fake").glob("*") if p.is_dir()):
        real = root / "real" / PAIRED_REAL.get(fake.name, fake.name)
        if real.is_dir():
            out.append((fake.name, fake, real))
    return out


def jpeg_copy(src: Path, split: Path, quality: int) -> Path:
    """Same-size JPEG-``quality`` copy of a held-out folder (written once, then reused)."""
    dst = split / f"heldout_jpeg{quality}" / src.parent.name / src.name
    if not dst.is_dir():
        degrade_folder(src, dst, scale=1.0, quality=quality)
    return dst


def card_rows(
    detector: Detector,
    split: str | Path,
    jpeg: Sequence[int] = (90, 75),
    jpeg_sources: Sequence[str] = ("stylegan3r256",),
    analyzer: Analyzer | None = None,
) -> list[CardRow]:
    """Score every pair of the split in each copy.

    Args:
        detector: The checkpoint to measure.
        split: A dev split folder with ``heldout/{real,fake}/SOURCE``.
        jpeg: Qualities of the same-size re-encoded copies.
        jpeg_sources: Fake folders that get re-encoded copies (with their real pair).
        analyzer: The scanner's face finder and scorer (built once when ``None``).

    Raises:
        ValueError: The split holds no fake folder with a real pair.

    """
    split = Path(split)
    analyzer = analyzer or scan_analyzer(detector)
    todo = [(PUBLISHED, f, r) for _, f, r in pairs(split / PUBLISHED)]
    if not todo:
        raise ValueError(f"{split / PUBLISHED} holds no fake/SOURCE folder with a real pair")
    todo += [(HALF_Q70, f, r) for _, f, r in pairs(split / HALF_Q70)]
    for q in jpeg:
        todo += [
            (f"jpeg{q}", jpeg_copy(f, split, q), jpeg_copy(r, split, q))
            for name, f, r in pairs(split / PUBLISHED)
            if name in jpeg_sources
        ]
    rows = []
    for copy, fake, real in todo:
        res = evaluate_folders(detector, [real], [fake], analyzer=analyzer).to_json()
        m = next(iter(res["sources"].values()))
        metrics = {k: m[k] for k in ("auc", "ap", "eer", "tpr_at_1fpr", "fpr", "tpr", "ece")}
        rows.append(CardRow(copy, fake.name, real.name, m["n_fake"], m["n_real"], **metrics))
    return rows


def summarize(rows: Sequence[CardRow]) -> dict[str, dict[str, float]]:
    """Mean and worst ROC AUC over the sources of each copy."""
    out: dict[str, dict[str, float]] = {}
    for copy in dict.fromkeys(r.copy for r in rows):
        aucs = [r.auc for r in rows if r.copy == copy]
        out[copy] = {"mean_auc": sum(aucs) / len(aucs), "worst_auc": min(aucs), "n": len(aucs)}
    return out


def real_checks(
    detector: Detector, folders: Sequence[str | Path], analyzer: Analyzer | None = None
) -> dict[str, dict[str, Any]]:
    """Per real folder: photos and the share flagged at the stored threshold.

    Keyed by the folder as given, so folders that share a name (``fresh/facemask`` and
    ``fresh_q75/facemask``) are reported apart.
    """
    if not folders:
        return {}
    analyzer = analyzer or scan_analyzer(detector)
    out: dict[str, dict[str, Any]] = {}
    for folder in folders:
        res = evaluate_folders(detector, [folder], [], analyzer=analyzer).to_json()
        n = sum(m["n"] for m in res["reals"].values())
        flagged = sum(m["fpr"] * m["n"] for m in res["reals"].values())
        out[str(folder)] = {"n": n, "fpr": flagged / n if n else 0.0}
    return out


def to_markdown(rows: Sequence[CardRow]) -> str:
    """The rows as the model card's Markdown table."""
    head = (
        "| copy | fake vs real | n fake / real | ROC AUC | AP | EER | TPR @ 1% FPR | FPR @ thr "
        "| TPR @ thr | ECE |"
    )
    lines = [head, "| --- " * 10 + "|"]
    for r in rows:
        lines.append(
            f"| {r.copy} | `{r.fake}` vs `{r.real}` | {r.n_fake} / {r.n_real} | {r.auc:.3f} "
            f"| {r.ap:.3f} | {r.eer:.3f} | {r.tpr_at_1fpr:.3f} | {r.fpr:.3f} | {r.tpr:.3f} "
            f"| {r.ece:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: print the table (and write ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="detector checkpoint")
    parser.add_argument("split", type=Path, help="dev split folder (trainers.detector.devsplit)")
    parser.add_argument("--jpeg", type=int, action="append", help="re-encoded copies (90, 75)")
    parser.add_argument(
        "--real-check",
        type=Path,
        action="append",
        default=[],
        help="real folder whose flagged share is reported (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    detector = Detector.from_checkpoint(args.model, device="cpu")
    analyzer = scan_analyzer(detector)  # MTCNN is set up once for every row and check
    rows = card_rows(detector, args.split, args.jpeg or (90, 75), analyzer=analyzer)
    summary, reals = summarize(rows), real_checks(detector, args.real_check, analyzer)
    print(f"{args.model} (threshold {detector.calibration.threshold:.3f})")
    print(to_markdown(rows))
    for copy, s in summary.items():
        print(
            f"{copy}: mean AUC {s['mean_auc']:.3f}, worst {s['worst_auc']:.3f} ({s['n']} sources)"
        )
    for name, m in reals.items():
        print(f"real check {name}: {m['fpr']:.2%} of {m['n']} flagged")
    if args.json:
        data = {
            "model": str(args.model),
            "threshold": detector.calibration.threshold,
            "rows": [asdict(r) for r in rows],
            "summary": summary,
            "real_checks": reals,
        }
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Evaluating a detector on folders of real and fake photos with the scanner's exact scores.

Every photo goes through the scanner's own set-up: :func:`forensics.scan_setup.make_face_detector`,
:func:`forensics.scan_setup.channels_last`, and :meth:`forensics.analysis.Analyzer.score_detections`
with the same small-image rule (MTCNN, the model's crop margin, max over faces, calibrated
probability), so the numbers here are the numbers ``forensics scan`` prints for the same files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.analysis import Analyzer
from forensics.checkpoint import atomic_write_bytes
from forensics.media import MediaError, load_image
from forensics.scoring import Detector

from .crops import detect_like_scan
from .data import Sample, cap_per_source, samples_from_folder
from .metrics import rates_at_threshold, report

ProgressFn = Callable[[int, int], None]
Transform = Callable[[np.ndarray], np.ndarray]
# Fake folders whose reals live under another name (otherwise a same-named real folder pairs).
PAIRED_REAL = {"stylegan3r256": "ffhq256"}


def paired_real(fake_source: str, real_sources: set[str]) -> str | None:
    """The real source a fake source is compared with (``None``: all reals pooled)."""
    name = PAIRED_REAL.get(fake_source, fake_source)
    return name if name in real_sources else None


@dataclass
class EvalResult:
    """Per-photo scores of an evaluation, and the metrics derived from them.

    Attributes:
        model: The detector's file name.
        sha256: The detector file's SHA-256.
        threshold: The stored decision threshold.
        paths: Scored files.
        labels: 0 real / 1 fake per file.
        sources: Source name per file (folder name or generator family).
        scores: Calibrated photo scores (max over faces), as ``forensics scan`` reports them.
        whole_image: Per file, whether no face was found and the whole photo was scored.
        errors: ``(path, reason)`` of files that could not be read.

    """

    model: str
    sha256: str | None
    threshold: float
    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    whole_image: list[bool] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, scores, sources)`` as arrays."""
        return (
            np.asarray(self.labels, dtype=int),
            np.asarray(self.scores, dtype=np.float64),
            np.asarray(self.sources, dtype=object),
        )

    def source_masks(self) -> dict[str, tuple[np.ndarray, str | None]]:
        """Per fake source: the files it is measured on, and its paired real source.

        A fake source is compared with the real source of the same name (or the one in
        :data:`PAIRED_REAL`) when the evaluation has it, like with like; otherwise with every
        real photo.
        """
        y, _, src = self.arrays()
        reals = set(src[y == 0])
        out = {}
        for name in sorted(set(src[y == 1])):
            pair = paired_real(name, reals)
            real_keep = (y == 0) & (src == pair) if pair else (y == 0)
            out[name] = (real_keep | ((y == 1) & (src == name)), pair)
        return out

    def to_json(self) -> dict[str, Any]:
        """Pooled metrics at top level, a ``sources`` map per fake source, and ``reals``.

        Each ``sources`` entry names the ``real`` source it was paired with (``None``: all).
        """
        y, s, src = self.arrays()
        pooled = report(y, s, self.threshold)
        per_fake = {}
        for name, (keep, pair) in self.source_masks().items():
            per_fake[name] = {**report(y[keep], s[keep], self.threshold), "real": pair}
        reals = {}
        for name in sorted(set(src[y == 0])):
            keep = (y == 0) & (src == name)
            rates = rates_at_threshold(y[keep], s[keep], self.threshold)
            reals[name] = {
                "n": int(keep.sum()),
                "fpr": rates["fpr"],
                "mean_score": float(s[keep].mean()),
            }
        return {
            "model": self.model,
            "sha256": self.sha256,
            "threshold": self.threshold,
            **pooled,
            "pooled": pooled,
            "sources": per_fake,
            "reals": reals,
            "no_face": int(sum(self.whole_image)),
            "errors": [{"path": p, "error": e} for p, e in self.errors],
            "files": [
                {"path": p, "label": int(lab), "source": so, "score": sc}
                for p, lab, so, sc in zip(
                    self.paths, self.labels, self.sources, self.scores, strict=True
                )
            ],
        }


def collect_eval_samples(
    real: Sequence[str | os.PathLike],
    fake: Sequence[str | os.PathLike],
    max_per_source: int | None = None,
    seed: int = 0,
) -> list[Sample]:
    """Samples of the given folders (a ``gan sample`` folder per generator family)."""
    samples = [s for f in real for s in samples_from_folder(f, 0)]
    samples += [s for f in fake for s in samples_from_folder(f, 1)]
    return cap_per_source(samples, max_per_source, seed)


def scan_analyzer(detector: Detector, max_faces: int = 16) -> Analyzer:
    """The analyzer ``forensics scan`` builds with its default options."""
    from forensics.scan_setup import channels_last, make_face_detector

    channels_last(detector)
    return Analyzer(detector, make_face_detector(detector.device), max_faces=max_faces)


def evaluate_samples(
    detector: Detector,
    samples: Sequence[Sample],
    analyzer: Analyzer | None = None,
    batch: int = 16,
    on_progress: ProgressFn | None = None,
    transform: Transform | None = None,
) -> EvalResult:
    """Score ``samples`` exactly as ``forensics scan`` does (see :func:`scan_analyzer`).

    ``transform`` (e.g. a :mod:`trainers.detector.reprocess` variant) is applied to every
    decoded photo of both classes before it is scanned.
    """
    analyzer = analyzer or scan_analyzer(detector)
    result = EvalResult(
        model=detector.name, sha256=detector.sha256, threshold=detector.calibration.threshold
    )
    total = len(samples)
    for start in range(0, total, batch):
        chunk, images = [], []
        for s in samples[start : start + batch]:
            try:
                rgb = load_image(s.path)
                images.append(transform(rgb) if transform else rgb)
                chunk.append(s)
            except MediaError as exc:
                result.errors.append((s.path, str(exc)))
        found = detect_like_scan(analyzer.face_detector, images) if images else []
        scored_all = analyzer.score_detections(images, found) if images else []
        for s, scored in zip(chunk, scored_all, strict=True):
            result.paths.append(s.path)
            result.labels.append(s.label)
            result.sources.append(s.source)
            result.scores.append(float(scored.score))
            result.whole_image.append(bool(scored.whole_image))
        if on_progress:
            on_progress(min(start + batch, total), total)
    return result


def evaluate_folders(
    detector: Detector,
    real: Sequence[str | os.PathLike],
    fake: Sequence[str | os.PathLike],
    max_per_source: int | None = None,
    batch: int = 16,
    analyzer: Analyzer | None = None,
    on_progress: ProgressFn | None = None,
    transform: Transform | None = None,
) -> EvalResult:
    """Evaluate ``detector`` on real and fake folders (see :func:`evaluate_samples`)."""
    samples = collect_eval_samples(real, fake, max_per_source)
    return evaluate_samples(detector, samples, analyzer, batch, on_progress, transform)


def evaluate_variants(
    detector: Detector,
    samples: Sequence[Sample],
    variants: Sequence[str],
    batch: int = 16,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, EvalResult]:
    """Evaluate the same samples once per processing variant (``published`` included).

    Returns:
        ``{variant: EvalResult}`` in the order given.

    Raises:
        ValueError: Unknown variant name.

    """
    from .reprocess import variant

    transforms = {name: variant(name) for name in variants}  # fail before any work
    analyzer = scan_analyzer(detector)
    out = {}
    for name, fn in transforms.items():
        progress = (lambda d, t, n=name: on_progress(n, d, t)) if on_progress else None
        out[name] = evaluate_samples(detector, samples, analyzer, batch, progress, fn)
    return out


def invariance_table(results: dict[str, EvalResult]) -> dict[str, Any]:
    """Sources x variants: ROC AUC and TPR at the threshold, plus each variant's mean AUC.

    Returns:
        ``{"variants": [...], "sources": {source: {variant: {"auc", "tpr", "real"}}},
        "mean_auc": {variant: float}, "reals": {source: {variant: fpr}}}``.

    """
    table: dict[str, Any] = {"variants": list(results), "sources": {}, "mean_auc": {}, "reals": {}}
    for name, res in results.items():
        data = res.to_json()
        aucs = []
        for src, m in data["sources"].items():
            cell = {"auc": m["auc"], "tpr": m["tpr"], "real": m["real"]}
            table["sources"].setdefault(src, {})[name] = cell
            if m["auc"] is not None:
                aucs.append(m["auc"])
        table["mean_auc"][name] = float(np.mean(aucs)) if aucs else None
        for src, m in data["reals"].items():
            table["reals"].setdefault(src, {})[name] = m["fpr"]
    return table


def write_eval_outputs(result: EvalResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``roc.png`` and ``reliability.png`` into ``out``."""
    from .plots import reliability_png, roc_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    y, s, src = result.arrays()
    curves = {"pooled": (y, s)}
    for name in sorted(set(src[y == 1])):
        keep = (y == 0) | ((y == 1) & (src == name))
        curves[name] = (y[keep], s[keep])
    results = out / "results.json"
    atomic_write_bytes(results, json.dumps(result.to_json(), indent=2, default=float).encode())
    return {
        "results": results,
        "roc": roc_png(out / "roc.png", curves, title=result.model),
        "reliability": reliability_png(out / "reliability.png", y, s, title=result.model),
    }

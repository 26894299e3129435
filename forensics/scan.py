"""Scan photos, videos and folders: one :class:`~forensics.records.ScanRecord` per input file.

Rules:

* **Photo**: every face found by MTCNN (at most ``max_faces``) is cropped with the model's
  margin and scored; the photo's score is the **highest face score**. With no face, the
  whole image is scored and the record says so (``whole_image=True``, ``n_faces=0``).
* **Video**: frames are sampled at ``fps`` per second (evenly thinned to ``max_frames``);
  a frame's score is its highest face score; the video's score is the **mean of the top k
  frame scores, k = max(1, ceil(25% of the sampled frames))**: robust to a single noisy
  frame, yet a swap in a quarter of the clip is enough to flag it. The per-frame timeline is
  kept, and heatmaps are written for the ``top_frames`` most suspicious frames.
* **Verdict**: :meth:`forensics.scoring.Calibration.verdict` with the checkpoint's threshold
  and uncertainty band, or ``threshold`` when given (then no band).

A bad file never stops a scan: it gets an ``error`` record with a clear message. Files that
are neither photos nor videos get a ``skipped`` record. Records are produced one at a time
(photos in batches of ``batch_size``), so memory stays bounded whatever the number of files.
"""

from __future__ import annotations

import heapq
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.analysis import Analyzer, ImageScore
from forensics.faces import FaceDetector, square_box
from forensics.media import (
    DEFAULT_MAX_PIXELS,
    MediaError,
    check_readable_file,
    iter_inputs,
    iter_video_frames,
    load_image,
    media_kind,
    probe_video,
)
from forensics.provenance import read_provenance, read_video_provenance
from forensics.records import (
    IMAGE_RULE,
    VIDEO_RULE,
    FaceResult,
    FrameResult,
    ScanRecord,
    display_path,
)
from forensics.report import RESULTS_NAME, Artifacts, artifact_stem
from forensics.report_faces import describe_heatmap
from forensics.scan_resume import clear_outputs, file_stat
from forensics.scoring import Detector

MAX_PROVENANCE_BYTES = 256 * 2**20
"""Photos larger than this are decoded from disk and get no provenance."""
DETECT_SIDE = 256
"""Faces are looked for on a copy whose longer side is at most this (boxes map back)."""

PREFETCH = 4
"""Photos decoded ahead of the one being batched (in a background thread)."""
BATCH_PIXELS = 100_000_000
"""A photo batch is also cut when its pixels reach this, so memory stays bounded."""

RecordFn = Callable[[int, int, ScanRecord], None]
"""Progress callback: ``(done, total, record)`` after each input file."""


@dataclass(frozen=True)
class ScanConfig:
    """How a scan samples, batches and decides.

    Attributes:
        fps: Video frames sampled per second.
        max_frames: At most this many frames per video (evenly spread).
        max_faces: Score at most this many faces per photo or frame.
        batch_size: Photos (or frames) per detector batch.
        threshold: Overrides the checkpoint's decision threshold (``None``: keep it).
        top_frames: Heatmaps are written for this many most suspicious video frames.
        max_pixels: Photos with more pixels are refused (decompression bombs).
        provenance: Read each photo's provenance (C2PA, metadata) into its record.
        provenance_rule: A validly signed or embedded declaration of AI generation makes
            the verdict ``fake`` (``verdict_source="provenance"``); ``False`` reports it only
            (``--ignore-provenance``).

    """

    fps: float = 2.0
    max_frames: int = 64
    max_faces: int = 16
    batch_size: int = 16
    threshold: float | None = None
    top_frames: int = 3
    max_pixels: int = DEFAULT_MAX_PIXELS
    provenance: bool = True
    provenance_rule: bool = True


def make_face_detector(device=None, detect_side: int = DETECT_SIDE) -> FaceDetector:
    """MTCNN set up for scanning many files fast.

    Detection runs on a copy shrunk to ``detect_side`` (default 256) with a 20-px minimum
    face, so the smallest face found is about ``20 / detect_side`` of the photo's longer side
    (8% by default): portraits, selfies, ID photos and video close-ups. Raise
    ``detect_side`` for small faces in group photos. The image pyramid uses a 0.6 scale
    step and stricter first stages (0.7, 0.8, 0.9): far fewer candidate boxes, and faces
    below 0.9 are dropped anyway. Crops are always cut from the full-resolution photo.
    A small, face-shaped image in which no face is found (a face-filled crop under 160 px)
    gets one retry on an upscaled copy before the whole image is scored.
    """
    return FaceDetector(
        device=device,
        detect_side=detect_side,
        min_face_px=20,
        thresholds=(0.7, 0.8, 0.9),
        factor=0.6,
        channels_last=True,
        retry_small=True,
    )


def channels_last(detector: Detector) -> Detector:
    """Switch the detector's weights to channels-last memory format, in place.

    Same scores (up to float rounding); oneDNN's convolution and pooling kernels are
    faster in this layout on CPU. Returns ``detector`` for chaining.
    """
    import torch

    detector.model.to(memory_format=torch.channels_last)
    return detector


def top_k_mean(scores: Sequence[float], fraction: float = 0.25) -> float:
    """Mean of the ``max(1, ceil(fraction * n))`` highest scores (the video rule).

    Raises:
        ValueError: ``scores`` is empty.

    """
    if len(scores) == 0:
        raise ValueError("no scores to aggregate")
    k = max(1, math.ceil(fraction * len(scores)))
    return float(np.mean(sorted(scores, reverse=True)[:k]))


def collect_inputs(
    paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> list[Path]:
    """Expand files and folders into the files to scan (sorted per folder, symlink-loop safe).

    Args:
        paths: Files and folders (folders are walked recursively).
        exclude: A folder to leave out (the scan's own ``--out``).

    """
    skip = Path(exclude).resolve() if exclude is not None else None
    out = []
    for p in iter_inputs(paths):
        if skip is not None:
            try:
                if p.resolve().is_relative_to(skip):
                    continue
            except (OSError, RuntimeError):  # loops cannot be resolved: keep and report them
                pass
        out.append(p)
    return out


class Scanner:
    """Scores files through an :class:`~forensics.analysis.Analyzer` and builds records.

    Args:
        analyzer: Face finding and calibrated scoring (shared with eval and verify-ids).
        config: Sampling, batching and threshold settings.
        out_dir: When given, ``results.jsonl``, heatmaps, thumbnails and timelines are
            written there (the HTML report is :func:`forensics.report.write_report`).
            Without it nothing is written anywhere.

    """

    def __init__(
        self,
        analyzer: Analyzer,
        config: ScanConfig | None = None,
        out_dir: str | os.PathLike | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.config = config or ScanConfig()
        self.artifacts = Artifacts(out_dir) if out_dir is not None else None
        det = analyzer.detector
        self.model = {"name": det.name, "sha256": det.sha256}
        self.calibration = det.calibration
        self.threshold = (
            self.calibration.threshold if self.config.threshold is None else self.config.threshold
        )

    # ----------------------------------------------------------------- driving the scan
    def scan(
        self,
        files: Sequence[Path],
        on_record: RecordFn | None = None,
        seqs: Sequence[int] | None = None,
        append: bool = False,
        write_results: bool = True,
    ) -> Iterator[ScanRecord]:
        """Yield one record per file, in order; ``results.jsonl`` is streamed when writing.

        Photos are decoded a few files ahead in a background thread while a batch is
        scored; at most ``batch_size`` photos (and ~10^8 pixels) are held at once. Each
        record is written whole and flushed before it is yielded.

        Args:
            files: The files to scan.
            on_record: Called after each file with ``(done, total, record)``.
            seqs: Number of each file in its artifact names (default: its position).
            append: Add to ``results.jsonl`` (resuming) instead of clearing the folder first.
            write_results: ``False``: only the pictures go to the output folder; the caller
                owns ``results.jsonl`` (a Ray worker, whose driver writes the records).

        """
        results = None
        if self.artifacts is not None and write_results:
            if not append:
                clear_outputs(self.artifacts.root)
            path = self.artifacts.root / RESULTS_NAME
            results = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        stats: deque[tuple[int, float] | None] = deque()
        try:
            for done, rec in enumerate(self._records(files, seqs, stats), start=1):
                rec.model = rec.model or dict(self.model)
                st, prov = stats.popleft()
                if st is not None:
                    rec.size, rec.mtime = st
                if prov is not None:
                    self._add_provenance(rec, prov)
                if results is not None:
                    results.write(rec.to_json() + "\n")
                    results.flush()
                if on_record is not None:
                    on_record(done, len(files), rec)
                yield rec
        finally:
            if results is not None:
                results.close()

    def _records(
        self, files: Sequence[Path], seqs: Sequence[int] | None, stats: deque
    ) -> Iterator[ScanRecord]:
        """Records in file order; each file's ``((size, mtime), provenance)`` goes to ``stats``."""
        bs = max(1, self.config.batch_size)
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            pending: list[tuple[int, Path, np.ndarray]] = []
            pixels = 0
            load = lambda p: (file_stat(p), *self._read(p))  # noqa: E731 - stat, then read
            for i, path, (st, loaded, prov) in _prefetch(files, load, pool, PREFETCH):
                seq = i if seqs is None else seqs[i]
                stats.append((st, prov))
                if i % bs == 0:  # batches never span a multiple of batch_size, so a Ray
                    yield from self._score_photos(pending)  # chunk of it batches the same
                    pending, pixels = [], 0
                if isinstance(loaded, np.ndarray):
                    pending.append((seq, path, loaded))
                    pixels += loaded.shape[0] * loaded.shape[1]
                    if len(pending) >= bs or pixels >= BATCH_PIXELS:
                        yield from self._score_photos(pending)
                        pending, pixels = [], 0
                    continue
                yield from self._score_photos(pending)  # keep input order
                pending, pixels = [], 0
                if isinstance(loaded, ScanRecord):
                    yield loaded
                else:
                    yield self._guard(path, "video", lambda p=path, s=seq: self._video(s, p))
            yield from self._score_photos(pending)
        finally:  # on Ctrl-C, do not decode the files read ahead
            pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, path: Path) -> tuple[np.ndarray | ScanRecord | None, dict | None]:
        """:meth:`_load` and, for photos, the provenance, from one read of the file."""
        kind = media_kind(path) if self.config.provenance else "other"
        if kind == "video":
            loaded = self._load(path)
            return loaded, (read_video_provenance(path) if loaded is None else None)
        if kind != "image":
            return self._load(path), None
        try:
            if not path.is_file() or path.stat().st_size > MAX_PROVENANCE_BYTES:
                return self._load(path), None
            data = path.read_bytes()
        except OSError:  # _load says what is wrong with the file
            return self._load(path), None
        return self._load(path, data), (read_provenance(data) if data else None)

    def _load(self, path: Path, data: bytes | None = None) -> np.ndarray | ScanRecord | None:
        """Photo pixels, a finished (error/skipped) record, or ``None`` for a video.

        ``data``: the file's bytes when already read (decoded from memory, not read again).
        """
        kind = media_kind(path)
        shown = display_path(path)
        if kind == "other":
            if path.is_symlink() and path.is_dir():
                return ScanRecord(shown, kind, "skipped", note="symlinked folder, not followed")
            if path.is_file():
                return ScanRecord(shown, kind, "skipped", note=f"not a photo or video "
                                  f"({path.suffix.lower() or 'no extension'})")  # fmt: skip
        try:
            check_readable_file(path)
            if kind == "other":
                return ScanRecord(shown, kind, "skipped", note="not a regular file")
            if kind == "image":
                return load_image(path if data is None else data, max_pixels=self.config.max_pixels)
        except MediaError as exc:
            return ScanRecord(shown, kind, "error", error=str(exc))
        except Exception as exc:  # never let one file stop the scan
            return ScanRecord(shown, kind, "error", error=f"{type(exc).__name__}: {exc}")
        return None

    def _guard(self, path: Path, kind: str, fn: Callable[[], ScanRecord]) -> ScanRecord:
        try:
            return fn()
        except MediaError as exc:
            return ScanRecord(display_path(path), kind, "error", error=str(exc))
        except Exception as exc:  # an unexpected failure on one file is that file's error
            return ScanRecord(
                display_path(path), kind, "error", error=f"{type(exc).__name__}: {exc}"
            )

    # ----------------------------------------------------------------------- photos
    def _score_photos(self, batch: list[tuple[int, Path, np.ndarray]]) -> Iterator[ScanRecord]:
        if not batch:
            return
        scores: list[ImageScore | None]
        try:
            scores = list(self._analyze([rgb for _, _, rgb in batch]))
        except Exception:  # one odd photo must not sink its batch: retry one by one
            scores = [None] * len(batch)
        for (s, p, r), sc in zip(batch, scores, strict=True):  # yielded one by one
            yield self._guard(p, "image", lambda s=s, p=p, r=r, sc=sc: self._photo(s, p, r, sc))

    def _photo(
        self, seq: int, path: Path, rgb: np.ndarray, scored: ImageScore | None
    ) -> ScanRecord:
        if scored is None:
            scored = self._analyze([rgb])[0]
        score = scored.score
        h, w = rgb.shape[:2]
        rec = self._ok(path, "image", score, IMAGE_RULE, w, h)
        rec.whole_image = scored.whole_image
        rec.n_faces = 0 if scored.whole_image else len(scored.faces)
        stem = artifact_stem(seq, path)
        rec.faces = [
            self._face(f"{stem}_face{j}", rgb, face) for j, face in enumerate(scored.faces)
        ]
        if self.artifacts is not None:
            rec.thumbnail = self.artifacts.thumbnail(stem, rgb)
        return rec

    def _face(self, stem: str, rgb: np.ndarray, face, frame_index: int | None = None) -> FaceResult:
        result = FaceResult(
            box=[round(float(v), 1) for v in face.box],
            score=float(face.score),
            face_prob=None if face.face is None else round(face.face.prob, 4),
            frame_index=frame_index,
            branches=None
            if face.prediction.branches is None
            else {k: round(v, 4) for k, v in face.prediction.branches.items()},
            heatmap_source=describe_heatmap(self.analyzer.detector, face),
        )
        if self.artifacts is not None:
            h, w = rgb.shape[:2]
            crop_box = (
                (0, 0, w, h)
                if face.face is None
                else square_box(face.box, self.analyzer.detector.preprocess.crop_margin, w, h)
            )
            fake = self._verdict(face.score) == "fake"
            evidence, cal = face.prediction.evidence, self.calibration
            result.heatmap, result.heatmap_raw = self.artifacts.face_heatmap(
                stem, rgb, face.box, crop_box, evidence, fake, cal
            )
            result.crop, result.heatmap_crop = self.artifacts.face_crop(
                stem, rgb, crop_box, evidence, cal
            )
        return result

    # ----------------------------------------------------------------------- videos
    def _video(self, seq: int, path: Path) -> ScanRecord:
        cfg = self.config
        info = probe_video(path)
        timeline: list[FrameResult] = []
        top: list[tuple[float, int, np.ndarray, ImageScore]] = []  # min-heap of best frames
        frames = iter_video_frames(path, per_second=cfg.fps, max_frames=cfg.max_frames)
        for batch in _chunks(frames, max(1, cfg.batch_size)):
            scores = self._analyze([f.rgb for f in batch])
            for f, sc in zip(batch, scores, strict=True):
                n = 0 if sc.whole_image else len(sc.faces)
                timeline.append(FrameResult(f.index, round(f.time_s, 3), float(sc.score), n))
                item = (float(sc.score), -f.index, f.rgb, sc)
                if len(top) < cfg.top_frames:
                    heapq.heappush(top, item)
                elif cfg.top_frames > 0 and item[:2] > top[0][:2]:
                    heapq.heapreplace(top, item)
        score = top_k_mean([fr.score for fr in timeline])
        h, w = (top[0][2].shape[:2]) if top else (info.height, info.width)
        rec = self._ok(path, "video", score, VIDEO_RULE, w, h)
        rec.frames = timeline
        rec.duration_s = round(info.duration_s, 3)
        rec.n_faces = max(fr.n_faces for fr in timeline)
        rec.whole_image = rec.n_faces == 0
        stem = artifact_stem(seq, path)
        best = sorted(top, key=lambda t: (-t[0], -t[1]))
        for _score, neg_index, rgb, sc in best:
            for j, face in enumerate(sc.faces):
                rec.faces.append(self._face(f"{stem}_f{-neg_index}_face{j}", rgb, face, -neg_index))
        if self.artifacts is not None:
            if best:
                rec.thumbnail = self.artifacts.thumbnail(stem, best[0][2])
            rec.timeline = self.artifacts.timeline(
                stem,
                [fr.time_s for fr in timeline],
                [fr.score for fr in timeline],
                self.threshold,
                rec.path,
                [fr.time_s for fr in timeline if fr.index in {-t[1] for t in best}],
            )
        return rec

    # ---------------------------------------------------------------------- helpers
    def _analyze(self, images: list[np.ndarray]) -> list[ImageScore]:
        """Find and score faces; images too small to hold a findable face skip MTCNN."""
        fd = self.analyzer.face_detector
        big = [i for i, im in enumerate(images) if min(im.shape[:2]) >= fd.min_face_px]
        found = fd.detect_many([images[i] for i in big]) if big else []
        detections: list[list] = [[] for _ in images]
        for i, faces in zip(big, found, strict=True):
            detections[i] = faces
        return self.analyzer.score_detections(images, detections)

    def _add_provenance(self, rec: ScanRecord, prov: dict) -> None:
        """Attach the provenance; a declaration of AI generation makes an ok verdict fake."""
        rec.provenance = prov
        if rec.status == "ok" and prov.get("declared") and self.config.provenance_rule:
            rec.verdict, rec.verdict_source = "fake", "provenance"

    def _verdict(self, score: float) -> str:
        return self.calibration.verdict(score, self.config.threshold)

    def _ok(
        self, path: Path, kind: str, score: float, rule: str, width: int, height: int
    ) -> ScanRecord:
        return ScanRecord(
            path=display_path(path),
            kind=kind,
            status="ok",
            score=float(score),
            verdict=self._verdict(score),
            model=dict(self.model),
            threshold=float(self.threshold),
            aggregate=rule,
            verdict_source="pixels",
            band=None
            if self.config.threshold is not None or self.calibration.band is None
            else [float(v) for v in self.calibration.band],
            width=int(width),
            height=int(height),
        )


def _prefetch(
    files: Sequence[Path], load: Callable[[Path], object], pool: ThreadPoolExecutor, ahead: int
) -> Iterator[tuple[int, Path, object]]:
    """Yield ``(seq, path, load(path))`` in order, running up to ``ahead`` loads in advance."""
    queue: deque[tuple[int, Path, Future]] = deque()
    it = iter(enumerate(files))
    for seq, path in it:
        queue.append((seq, path, pool.submit(load, path)))
        if len(queue) >= ahead:
            break
    while queue:
        seq, path, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt[0], nxt[1], pool.submit(load, nxt[1])))
        yield seq, path, fut.result()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

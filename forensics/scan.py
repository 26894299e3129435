"""Scan photos, videos and folders: one :class:`~forensics.records.ScanRecord` per input file.

Rules:

* **Photo**: every face found by MTCNN (at most ``max_faces``) is cropped with the model's
  margin and scored; the photo's score is the **highest face score**. With no face, the
  whole image is scored and the record says so (``whole_image=True``, ``n_faces=0``).
* **Video**: frames are sampled at ``fps`` per second (evenly thinned to ``max_frames``);
  faces are linked into tracks, each scored over time by the **mean of its top k face
  scores, k = max(1, ceil(25% of its faces))**: robust to one noisy frame, yet a swap in a
  quarter of the clip flags it. The video's score is its **most suspicious track's**
  (``top_track``; short tracks cannot decide alone: :mod:`forensics.tracks`). Without a
  deciding track, the mean of the top 25% frame scores (``top25_mean``; a frame's score is
  its highest face score, or the whole frame's). One face per frame: both give the same
  score. The timeline is kept; heatmaps are written for the ``top_frames`` best frames.
* **Verdict**: :meth:`forensics.scoring.Calibration.verdict` with the checkpoint's threshold
  and uncertainty band, or ``threshold`` when given (then no band).

A bad file never stops a scan: it gets an ``error`` record with a clear message. Files that
are neither photos nor videos get a ``skipped`` record. Records are produced one at a time
(photos in batches of ``batch_size``), so memory stays bounded whatever the number of files.
The settings (:class:`~forensics.scan_setup.ScanConfig`) and the scan-tuned models are set up
in :mod:`forensics.scan_setup`.
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from forensics.analysis import Analyzer, ImageScore
from forensics.faces import square_box
from forensics.media import MediaError
from forensics.records import (
    IMAGE_RULE,
    TRACK_RULE,
    VIDEO_RULE,
    FaceResult,
    FrameResult,
    ScanRecord,
    display_path,
)
from forensics.report import RESULTS_NAME, Artifacts, artifact_stem
from forensics.report_faces import describe_heatmap
from forensics.scan_inputs import prefetch, read_input
from forensics.scan_resume import clear_outputs, file_stat
from forensics.scan_setup import ScanConfig
from forensics.scan_tracks import strip_crops, write_track_views
from forensics.tracks import Observation, appearance, track_faces, track_results
from forensics.tracks import top_k_mean as top_k_mean  # re-exported: the video rule
from forensics.video import iter_video_frames, probe_video, sample_frame_indices

PREFETCH = 4
"""Photos decoded ahead of the one being batched (in a background thread)."""
BATCH_PIXELS = 100_000_000
"""A photo batch is also cut when its pixels reach this, so memory stays bounded."""

RecordFn = Callable[[int, int, ScanRecord], None]
"""Progress callback: ``(done, total, record)`` after each input file."""
FrameFn = Callable[[Path, int, int], None]
"""Video progress callback: ``(path, frames done, frames to sample)``; 0 done when it starts."""


class Scanner:
    """Scores files through an :class:`~forensics.analysis.Analyzer` and builds records.

    Args:
        analyzer: Face finding and calibrated scoring (shared with eval and verify-ids).
        config: Sampling, batching and threshold settings.
        out_dir: When given, ``results.jsonl``, heatmaps, thumbnails and timelines are
            written there (the HTML report is :func:`forensics.report.write_report`).
            Without it nothing is written anywhere.

    Attributes:
        on_frames: Set it to follow long videos: called as frames are scored (see
            :data:`FrameFn`); ``None`` (the default) reports nothing.

    """

    def __init__(
        self,
        analyzer: Analyzer,
        config: ScanConfig | None = None,
        out_dir: str | os.PathLike | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.on_frames: FrameFn | None = None
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
            cfg = self.config

            def load(p: Path) -> tuple:  # stat, then read (in the prefetch thread)
                return (file_stat(p), *read_input(p, cfg.max_pixels, cfg.provenance))

            for i, path, (st, loaded, prov) in prefetch(files, load, pool, PREFETCH):
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
        cfg, report = self.config, self.on_frames or (lambda *_: None)
        info = probe_video(path)
        timeline: list[FrameResult] = []
        top: list[tuple[float, int, np.ndarray, ImageScore]] = []  # min-heap of best frames
        seen: list[list[Observation]] = []  # each sampled frame's faces, to track
        crops: list[list[np.ndarray]] = []  # and their zoomed copies, for the face strips
        margin = self.analyzer.detector.preprocess.crop_margin
        todo = len(sample_frame_indices(info.frame_count, info.fps, cfg.fps, cfg.max_frames))
        todo = todo or cfg.max_frames  # unknown length: the first max_frames frames
        report(path, 0, todo)
        frames = iter_video_frames(path, per_second=cfg.fps, max_frames=cfg.max_frames)
        for batch in _chunks(frames, max(1, cfg.batch_size)):
            scores = self._analyze([f.rgb for f in batch])
            for f, sc in zip(batch, scores, strict=True):
                found = [] if sc.whole_image else sc.faces
                t_s, n = round(f.time_s, 3), len(found)
                timeline.append(FrameResult(f.index, t_s, float(sc.score), n))
                seen.append([Observation(x.box, appearance(f.rgb, x.box), x.score) for x in found])
                if self.artifacts is not None:
                    crops.append(strip_crops(f.rgb, [x.box for x in found], margin))
                item = (float(sc.score), -f.index, f.rgb, sc)
                if len(top) < cfg.top_frames:
                    heapq.heappush(top, item)
                elif cfg.top_frames > 0 and item[:2] > top[0][:2]:
                    heapq.heapreplace(top, item)
            report(path, len(timeline), max(todo, len(timeline)))
        ids, tracks, decider = track_faces(seen)
        frame_rule = top_k_mean([fr.score for fr in timeline])  # no face, or only short tracks
        score, rule = (frame_rule, VIDEO_RULE) if decider is None else (decider.score, TRACK_RULE)
        h, w = (top[0][2].shape[:2]) if top else (info.height, info.width)
        rec = self._ok(path, "video", score, rule, w, h)
        rec.frames = timeline
        rec.sampling = self.sampling
        rec.duration_s = round(info.duration_s, 3)
        rec.n_faces = max(fr.n_faces for fr in timeline)
        rec.whole_image = rec.n_faces == 0
        rec.tracks = track_results(tracks, [fr.index for fr in timeline], self._verdict)
        track_ids = {fr.index: fids for fr, fids in zip(timeline, ids, strict=True)}
        stem = artifact_stem(seq, path)
        best = sorted(top, key=lambda t: (-t[0], -t[1]))
        for _score, neg_index, rgb, sc in best:
            for j, face in enumerate(sc.faces):
                result = self._face(f"{stem}_f{-neg_index}_face{j}", rgb, face, -neg_index)
                result.track = None if sc.whole_image else track_ids[-neg_index][j]
                rec.faces.append(result)
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
            band_low = rec.band[0] if rec.band else None
            write_track_views(
                self.artifacts, stem, rec.tracks, timeline, ids, crops, self.threshold, band_low
            )
        return rec

    # ---------------------------------------------------------------------- helpers
    @property
    def sampling(self) -> dict[str, float]:
        """How videos are sampled: ``{"fps", "max_frames"}`` (stored in their records)."""
        return {"fps": float(self.config.fps), "max_frames": int(self.config.max_frames)}

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


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

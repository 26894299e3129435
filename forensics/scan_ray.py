"""``forensics scan --engine ray``: the same records, scored by a pool of Ray actors.

The driver (the ``forensics`` process) lists the files, plans a resume and owns
``results.jsonl``; the scoring runs in ``workers`` actors, each holding its own detector and
MTCNN (loaded once) and scoring chunks of files with a local :class:`~forensics.scan.Scanner`.
Records come back as JSON lines and are appended and flushed by the driver as they arrive, so
the file, the progress bar, ``--resume`` and the exit codes behave exactly as with the local
engine; only the order of the records differs (``--sort path`` sorts what is printed).
Pictures (heatmaps, thumbnails, timelines) are written by the actors straight into ``--out``,
which on a multi-node cluster must be shared storage at the same path on every node, like the
inputs and the ``--model`` file.

A plain actor pool rather than Ray Data keeps the extra to ``ray`` alone (no pyarrow or pandas)
and keeps the scanner's own batching, prefetching and per-file error handling. An actor that
dies (``RayActorError``: killed, out of memory, a crashed node) is replaced and its chunk sent
again once; if that fails too, the chunk's files get ``error`` records. Other files never wait
for or lose anything to one crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.media import media_kind
from forensics.records import ScanRecord, display_path
from forensics.report import RESULTS_NAME
from forensics.scan import RecordFn, Scanner
from forensics.scan_resume import clear_outputs, file_stat
from forensics.scan_setup import ScanConfig

INSTALL_HINT = "--engine ray needs Ray: pip install 'forensics[ray]'"
OBJECT_STORE_BYTES = 128 * 2**20
"""Object store of a local Ray instance: records are small, so a small store is enough."""
IN_FLIGHT = 2
"""Chunks queued per actor, so an actor never waits for the driver between chunks."""


class EngineError(RuntimeError):
    """The Ray engine cannot run (not enough CPUs, workers that cannot start)."""


def import_ray() -> Any:
    """Import and return ``ray``.

    Raises:
        ImportError: Ray is not installed (the message says how to install it).

    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address``, or start a quiet local Ray instance without it.

    Nothing happens when Ray is already initialised in this process (e.g. by a test).

    Returns:
        Whether this call connected (the caller then calls ``ray.shutdown()``).

    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is not None:
        ray.init(address=address, **quiet)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            **quiet,
        )
    return True


@dataclass(frozen=True)
class WorkerSpec:
    """Everything an actor needs to build the scanner a local scan would use.

    Attributes:
        model: Absolute path of the detector checkpoint (``None``: the shipped default).
        device: ``cpu`` or ``cuda[:N]`` (``auto`` means CPU on Ray workers).
        precision: ``fp32`` or ``bf16``.
        detect_side: MTCNN's working side (see :func:`forensics.scan_setup.make_face_detector`).
        config: Sampling, batching and threshold settings.
        out: Absolute ``--out`` folder for the pictures, or ``None``.
        cwd: The driver's working folder, so relative inputs mean the same files.

    """

    model: str | None
    device: str
    precision: str
    detect_side: int
    config: ScanConfig
    out: str | None
    cwd: str


class ScanWorker:
    """One actor: builds its scanner once, then scores chunks of ``(seq, path, abs_path)``."""

    def __init__(self, spec: WorkerSpec, threads: int) -> None:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        import torch

        from forensics.analysis import Analyzer
        from forensics.scan_setup import channels_last, make_face_detector
        from forensics.scoring import Detector

        torch.set_num_threads(max(1, threads))
        try:
            os.chdir(spec.cwd)
            self.same_cwd = True
        except OSError:  # another node without the driver's folder: use absolute paths
            self.same_cwd = False
        device = spec.device if spec.device.startswith("cuda") else "cpu"
        detector = channels_last(Detector.load(spec.model, device=device, precision=spec.precision))
        faces = make_face_detector(detector.device, detect_side=spec.detect_side)
        analyzer = Analyzer(detector, faces, max_faces=spec.config.max_faces)
        self.scanner = Scanner(analyzer, spec.config, out_dir=spec.out)

    def ready(self) -> int:
        """The actor's process id, once its models are loaded."""
        return os.getpid()

    def scan(self, chunk: list[tuple[int, str, str]]) -> list[str]:
        """Score a chunk; one JSON record line per file, in chunk order."""
        files = [Path(rel if self.same_cwd else absolute) for _, rel, absolute in chunk]
        seqs = [seq for seq, _, _ in chunk]
        lines = []
        for (_, rel, _), rec in zip(
            chunk, self.scanner.scan(files, seqs=seqs, write_results=False), strict=True
        ):
            rec.path = display_path(rel)
            lines.append(rec.to_json())
        return lines


class RayScanner:
    """Stands in for :class:`~forensics.scan.Scanner` and scores on Ray, in arrival order.

    It has the attributes :class:`~forensics.scan_resume.ScanRun` and the CLI read
    (``analyzer``, ``config``, ``artifacts``, ``model``, ``threshold``, ``sampling``), taken from
    ``template``, the local scanner the driver built (which checked the checkpoint). Ray is
    started by the first :meth:`scan` and stopped when it ends.

    Args:
        template: The driver's scanner (same model, config and output folder).
        spec: How each actor builds its scanner.
        address: A running cluster (``ray://`` or ``host:port``); ``None`` starts a local one.
        workers: Actors; default one per CPU of the cluster (per GPU with ``--device cuda``).
        chunk_size: Files per call to an actor (default: ``batch_size``). A multiple of
            ``batch_size`` makes the same photo batches as a local scan, hence the same
            MTCNN results (its boxes depend slightly on what else is in the batch).

    """

    def __init__(
        self,
        template: Scanner,
        spec: WorkerSpec,
        address: str | None = None,
        workers: int | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.analyzer = template.analyzer
        self.config = template.config
        self.artifacts = template.artifacts
        self.model = template.model
        self.threshold = template.threshold
        self.sampling = template.sampling
        self.spec = spec
        self.address = address
        self.workers = workers
        self.chunk_size = chunk_size
        self.actors: list[Any] = []
        self.replaced = 0
        self._options: dict[str, Any] = {}
        self._threads = 1

    def scan(
        self,
        files: Sequence[Path],
        on_record: RecordFn | None = None,
        seqs: Sequence[int] | None = None,
        append: bool = False,
    ) -> Iterator[ScanRecord]:
        """Yield one record per file as actors finish them; ``results.jsonl`` is streamed.

        Same arguments as :meth:`forensics.scan.Scanner.scan`. Each record is written whole
        and flushed before it is yielded.

        Raises:
            EngineError: Not enough CPUs for ``workers``, or an actor could not start.

        """
        results = None
        if self.artifacts is not None:
            if not append:
                clear_outputs(self.artifacts.root)
            path = self.artifacts.root / RESULTS_NAME
            results = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        started = False
        try:
            if not files:
                return
            started = connect(self.address)
            done = 0
            for line in self._lines(files, seqs):
                rec = ScanRecord.from_dict(json.loads(line))
                if results is not None:
                    results.write(line + "\n")
                    results.flush()
                done += 1
                if on_record is not None:
                    on_record(done, len(files), rec)
                yield rec
        finally:
            if results is not None:
                results.close()
            self._stop(started)

    # ------------------------------------------------------------------------- actors
    def _start_actors(self) -> None:
        ray = import_ray()
        gpu = self.spec.device.startswith("cuda")
        have = ray.cluster_resources()
        cpus, gpus = int(have.get("CPU", 0)), int(have.get("GPU", 0))
        n = self.workers or max(1, gpus if gpu else cpus)
        if (n > cpus) or (gpu and n > gpus):
            what = f"{gpus} GPUs" if gpu else f"{cpus} CPUs"
            raise EngineError(f"--workers {n} needs one CPU{' and GPU' if gpu else ''} each; "
                              f"the Ray cluster has {what}")  # fmt: skip
        threads = max(1, cpus // n)
        self._options = {"num_cpus": threads, "num_gpus": 1 if gpu else 0, "max_restarts": 0}
        self._threads = threads
        self.actors = [self._new_actor() for _ in range(n)]
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            raise EngineError(f"a Ray worker could not load the models: {exc}") from exc

    def _new_actor(self) -> Any:
        ray = import_ray()
        cls = ray.remote(ScanWorker).options(**self._options)
        return cls.remote(self.spec, self._threads)

    def _stop(self, started: bool) -> None:
        if not (started or self.actors):
            return
        ray = import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if started:
            ray.shutdown()

    def _lines(self, files: Sequence[Path], seqs: Sequence[int] | None) -> Iterator[str]:
        """Record lines in arrival order; a chunk whose actor died is retried once."""
        ray = import_ray()
        self._start_actors()
        cwd = os.getcwd()
        size = max(1, self.chunk_size or self.config.batch_size)

        def chunk(c: int) -> list[tuple[int, str, str]]:  # built when sent: memory stays flat
            span = range(c * size, min(len(files), (c + 1) * size))
            return [(i if seqs is None else seqs[i], os.fspath(files[i]),
                     os.path.join(cwd, files[i])) for i in span]  # fmt: skip

        todo = deque(range(math.ceil(len(files) / size)))
        tries: dict[int, int] = {}
        inflight: dict[Any, tuple[int, int, Any]] = {}  # ref -> (slot, chunk, actor)
        load = [0] * len(self.actors)

        def fill(slot: int) -> None:
            while todo and load[slot] < IN_FLIGHT:
                c = todo.popleft()
                tries[c] = tries.get(c, 0) + 1
                actor = self.actors[slot]
                inflight[actor.scan.remote(chunk(c))] = (slot, c, actor)
                load[slot] += 1

        for slot in range(len(self.actors)):
            fill(slot)
        while inflight:
            refs = list(inflight)
            first, _ = ray.wait(refs, num_returns=1)  # then take every finished chunk: one
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)  # O(workers) wait each
            for ref in ready or first:
                slot, c, actor = inflight.pop(ref)
                load[slot] -= 1
                try:
                    lines = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if isinstance(exc, ray.exceptions.RayActorError) and self.actors[slot] is actor:
                        ray.kill(actor)
                        self.actors[slot] = self._new_actor()
                        self.replaced += 1
                    if tries[c] < 2:
                        todo.appendleft(c)
                        fill(slot)
                        continue
                    lines = [_crash_record(self, path, str(exc)) for _, path, _ in chunk(c)]
                tries.pop(c, None)
                fill(slot)
                yield from lines


def _crash_record(scanner: RayScanner, path: str, why: str) -> str:
    """The ``error`` record of a file whose chunk failed twice."""
    first = why.strip().splitlines()[0] if why.strip() else "unknown error"
    rec = ScanRecord(
        display_path(path),
        media_kind(Path(path)),
        "error",
        error=f"the Ray worker scanning it failed twice: {first}",
        model=dict(scanner.model),
    )
    st = file_stat(path)
    if st is not None:
        rec.size, rec.mtime = st
    return rec.to_json()

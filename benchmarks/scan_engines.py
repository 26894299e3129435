"""Local engine against Ray with 1 and 2 workers, in-process, with Ray's own overheads apart.

Usage:
    python benchmarks/scan_engines.py [--photos 200] [--photos-from DIR] [--model CKPT]
        [--workers 1,2] [--local-threads 2,1] [--repeat 2] [--batch-size 16]

Prints, for the same photos (the generated 512-px crops of ``scan_speed.py``, or the first
``--photos`` of ``--photos-from``, copied to a temporary folder):

* **local**: the scanner's steady throughput after its models are loaded (model load apart),
  with each of ``--local-threads`` torch threads (the CLI uses torch's default, one per core);
* **Ray start-up**: ``ray.init`` of a local instance, then starting N actors that each load
  the detector and MTCNN (until all answer);
* **ray N**: the whole :class:`forensics.scan_ray.RayScanner` scan (actors started inside),
  its time to the first record, and its steady throughput after the first record;
* **per-call overhead**: the round trip of an empty actor call, and the driver's cost per
  record (parsing and appending one ``results.jsonl`` line).

Runs are interleaved ``--repeat`` times and the best kept. The machine may be shared: the load
average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from scan_speed import copy_photos, make_photos


def best(values: list[float]) -> float:
    return min(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--photos-from", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None, help="detector (default: shipped)")
    ap.add_argument("--workers", default="1,2", help="comma list of Ray worker counts")
    ap.add_argument("--local-threads", default="2,1", help="comma list of torch thread counts")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    load = os.getloadavg()[0]

    t0 = time.perf_counter()
    from forensics.analysis import Analyzer
    from forensics.device import torch_threads
    from forensics.scan import Scanner
    from forensics.scan_inputs import collect_inputs
    from forensics.scan_ray import RayScanner, WorkerSpec, connect, import_ray
    from forensics.scan_setup import ScanConfig, channels_last, make_face_detector
    from forensics.scoring import Detector

    imports_s = time.perf_counter() - t0
    ray = import_ray()
    config = ScanConfig(batch_size=args.batch_size)
    t0 = time.perf_counter()
    detector = channels_last(Detector.load(args.model, device="cpu"))
    local = Scanner(Analyzer(detector, make_face_detector("cpu")), config)
    load_s = time.perf_counter() - t0
    counts = [int(w) for w in args.workers.split(",")]
    threads = [int(t) for t in args.local_threads.split(",")]

    with tempfile.TemporaryDirectory(prefix="scan_engines_") as tmp:
        folder = Path(tmp) / "photos"
        if args.photos_from is None:
            make_photos(folder, args.photos)
        else:
            copy_photos(args.photos_from, folder, args.photos)
        files = collect_inputs([folder])
        n = len(files)
        t0 = time.perf_counter()
        connect(num_cpus=os.cpu_count())
        init_s = time.perf_counter() - t0
        model = None if args.model is None else str(args.model.resolve())
        spec = WorkerSpec(model, "cpu", "fp32", 256, config, None, os.getcwd())
        local_s: dict[int, list[float]] = {t: [] for t in threads}
        ray_runs: dict[int, list[tuple[float, float, float]]] = {w: [] for w in counts}
        starts: dict[int, list[float]] = {w: [] for w in counts}
        for _ in range(args.repeat):  # interleaved, so a burst of load hits all alike
            for t in threads:
                with torch_threads(t):
                    t0 = time.perf_counter()
                    for _rec in local.scan(files):
                        pass
                    local_s[t].append(time.perf_counter() - t0)
            for w in counts:
                rs = RayScanner(local, spec, workers=w)
                t0 = time.perf_counter()
                rs._start_actors()  # start-up alone: actors loading their models
                starts[w].append(time.perf_counter() - t0)
                rs._stop(False)
                rs = RayScanner(local, spec, workers=w)
                first = None
                t0 = time.perf_counter()
                for i, _rec in enumerate(rs.scan(files)):
                    if i == 0:
                        first = time.perf_counter() - t0
                total = time.perf_counter() - t0
                ray_runs[w].append((total, first or 0.0, (n - 1) / max(total - (first or 0), 1e-9)))
        probe = ray.remote(_Probe).remote()
        ray.get(probe.ping.remote())
        t0 = time.perf_counter()
        for _ in range(200):
            ray.get(probe.ping.remote())
        call_ms = (time.perf_counter() - t0) / 200 * 1000
        ray.kill(probe)
        ray.shutdown()
        record_us = _driver_cost(local, files[0])

    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start; {n} photos "
          f"({args.photos_from or 'generated 512-px crops'}), batch {args.batch_size}, "
          f"best of {args.repeat}")  # fmt: skip
    print(f"model: {detector.name}; driver start-up: imports {imports_s:.2f} s, "
          f"model + MTCNN load {load_s:.2f} s")  # fmt: skip
    for t in threads:
        ls = best(local_s[t])
        print(f"local engine, {t} torch thread(s), after start-up: {n} photos in {ls:.2f} s = "
              f"{n / ls:.1f} photos/s")  # fmt: skip
    print(f"ray.init (local instance): {init_s:.2f} s")
    for w in counts:
        total, first, steady = min(ray_runs[w])
        print(f"ray {w} worker(s): actors ready in {best(starts[w]):.2f} s; scan {total:.2f} s "
              f"= {n / total:.1f} photos/s (first record after {first:.2f} s, then "
              f"{steady:.1f} photos/s)")  # fmt: skip
    print(f"empty actor call round trip: {call_ms:.2f} ms; driver per record: {record_us:.0f} us")


class _Probe:
    def ping(self) -> int:
        return 0


def _driver_cost(scanner, path: Path) -> float:
    """Microseconds the driver spends per record: parse the actor's line, append, flush."""
    from forensics.records import ScanRecord

    line = next(iter(scanner.scan([path]))).to_json()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as fh:
        t0 = time.perf_counter()
        for _ in range(2000):
            ScanRecord.from_dict(json.loads(line))
            fh.write(line + "\n")
            fh.flush()
        return (time.perf_counter() - t0) / 2000 * 1e6


if __name__ == "__main__":
    main()

"""How fast ``forensics scan`` reads a video, against the video's own length (× real time).

Usage:
    python benchmarks/video_speed.py [--seconds 10] [--fps 25] [--model CKPT] [--repeat 2]

A 1280x720 clip of ``--seconds`` at ``--fps`` is made at run time from the public-domain
portrait in ``samples/`` (a slow pan-and-zoom of one face on a grey background, mp4v) in a
temporary folder. It is scanned at the default sampling (2 frames per second, at most 64):

* **whole process**: ``forensics scan clip.mp4 --format jsonl --device cpu``, start-up
  (imports, model loading) included, the median of ``--repeat`` fresh processes (each is
  printed: the first after other work can be slower, with Python's files not yet cached);
* **in-process**: the scanner's own objects, built once, scanning the clip (best of
  ``--repeat``), which is what each further video of a folder costs.

Both are printed in seconds and as × real time (clip length / scan time; above 1 is faster
than playback). The machine may be shared: numbers are noisy (the load is printed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_clip(path: Path, seconds: float, fps: float) -> Path:
    """A 1280x720 clip: the sample portrait (one face) panning slowly on grey."""
    from forensics.media import load_image, resize_rgb
    from forensics.video import write_video

    face = resize_rgb(load_image(REPO / "samples" / "real_grace_hopper.jpg"), (520, 600))
    n = int(round(seconds * fps))

    def frames():
        for i in range(n):
            canvas = np.full((720, 1280, 3), 110, np.uint8)
            x = int(200 + 500 * i / max(1, n - 1))
            canvas[60:660, x : x + 520] = face
            yield canvas

    return write_video(path, frames(), fps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--model", type=Path, default=None, help="detector (default: shipped)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="video_speed_") as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.fps)
        exe = Path(sys.executable).with_name("forensics")
        cmd = [str(exe) if exe.exists() else "forensics", "scan", str(clip)]
        cmd += ["--format", "jsonl", "--device", "cpu"]
        cmd += ["--model", str(args.model)] if args.model else []
        wholes = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wholes.append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                sys.exit(f"scan failed ({proc.returncode}):\n{proc.stderr}")
        whole = sorted(wholes)[len(wholes) // 2]

        from forensics.analysis import Analyzer
        from forensics.scan import Scanner
        from forensics.scan_setup import ScanConfig, channels_last, make_face_detector
        from forensics.scoring import Detector

        det = channels_last(Detector.load(args.model, device="cpu"))
        scanner = Scanner(Analyzer(det, make_face_detector("cpu")), ScanConfig())
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            rec = next(scanner.scan([clip]))
            runs.append(time.perf_counter() - start)
        inproc = min(runs)
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start")
    print(f"clip: 1280x720, {args.seconds:g} s at {args.fps:g} fps, one face; sampled "
          f"{len(rec.frames or [])} frames (default --fps 2), score {rec.score:.3f}")  # fmt: skip
    runs_text = ", ".join(f"{w:.2f}" for w in wholes)
    print(f"whole process (start-up included), median of {len(wholes)} ({runs_text} s): "
          f"{whole:.2f} s = {args.seconds / whole:.1f}x real time")  # fmt: skip
    print(f"in-process (after start-up, best of {args.repeat}): {inproc:.2f} s = "
          f"{args.seconds / inproc:.1f}x real time")  # fmt: skip


if __name__ == "__main__":
    main()

"""Where the scan's time goes: decoding, face detection, cropping + preprocessing, the model.

Usage:
    python benchmarks/scan_breakdown.py [--photos 200] [--model CKPT] [--batch 16]
        [--precision fp32|bf16] [--photos-from DIR]

The same 512-px single-face photos as ``benchmarks/scan_speed.py`` are processed in-process in
batches, each stage timed on its own with the scanner's own objects
(:func:`forensics.scan_setup.make_face_detector`, :func:`forensics.scan_setup.channels_last`,
:meth:`forensics.scoring.Detector.predict`). Start-up (imports, model load) is printed apart.
The machine may be shared: numbers are noisy (the load is printed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from scan_speed import copy_photos, make_photos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--model", type=Path, default=None, help="detector (default: shipped)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", default="fp32", help="fp32 or bf16 (the detector only)")
    ap.add_argument("--photos-from", type=Path, default=None, help="time these photos instead")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    from forensics.faces import crop_face
    from forensics.media import load_image
    from forensics.scan_setup import channels_last, make_face_detector
    from forensics.scoring import Detector

    imports_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    detector = channels_last(Detector.load(args.model, device="cpu", precision=args.precision))
    faces = make_face_detector("cpu")
    load_s = time.perf_counter() - t0
    times = {"decode": 0.0, "detect": 0.0, "crop+preprocess": 0.0, "model": 0.0}
    n_faces = 0
    with tempfile.TemporaryDirectory(prefix="scan_breakdown_") as tmp:
        if args.photos_from is None:
            paths = make_photos(Path(tmp), args.photos)
        else:
            paths = copy_photos(args.photos_from, Path(tmp) / "photos", args.photos)
        for start in range(0, len(paths), args.batch):
            t = time.perf_counter()
            images = [load_image(p) for p in paths[start : start + args.batch]]
            times["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            found = faces.detect_many(images)
            times["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            margin = detector.preprocess.crop_margin
            crops = [
                crop_face(im, f.box, margin)
                for im, fs in zip(images, found, strict=True)
                for f in fs
            ]
            tensors = list(detector.preprocess.batches(crops)) if crops else []
            times["crop+preprocess"] += time.perf_counter() - t
            t = time.perf_counter()
            if crops:
                detector.predict(crops)
            times["model"] += time.perf_counter() - t
            n_faces += len(crops)
            del tensors
    # predict() preprocesses again: subtract that share so "model" is the network alone.
    times["model"] = max(0.0, times["model"] - times["crop+preprocess"])
    total = sum(times.values())
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start")
    print(f"model: {detector.name} ({detector.spec.arch}, {args.precision}), "
          f"{n_faces} faces in {args.photos} photos")  # fmt: skip
    print(f"start-up: imports {imports_s:.2f} s, model + MTCNN load {load_s:.2f} s")
    for name, sec in times.items():
        print(f"{name:>16}: {sec:6.2f} s  {100 * sec / total:5.1f}%  "
              f"{1000 * sec / args.photos:6.1f} ms/photo")  # fmt: skip
    print(f"{'total':>16}: {total:6.2f} s  = {args.photos / total:.1f} photos/s after start-up")


if __name__ == "__main__":
    main()

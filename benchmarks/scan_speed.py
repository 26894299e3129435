"""Throughput of ``forensics scan`` against a naive reference pipeline, on 512-px photos.

Usage:
    python benchmarks/scan_speed.py [--photos 500] [--ref-photos 40] [--model CKPT]
        [--engine local|ray] [--workers N] [--photos-from DIR]

Photos are made at run time from the public-domain portraits in ``samples/`` (random square
crops, flips and colour shifts), 512x512 JPEG, one face each, in a temporary folder that is
deleted afterwards.

* **scan**: ``forensics scan DIR --model M --format jsonl --device cpu`` timed as a whole
  subprocess, start-up (imports, model loading) included. Without ``--model`` the shipped
  default detector is used when present, otherwise a randomly initialised ``patch_resnet``
  checkpoint with the default preprocessing: the same architecture and cost as a trained
  one, but its scores mean nothing (this is only a timing).
* **reference**: in-process, after its models are built (its start-up is *not* counted):
  facenet-pytorch MTCNN on the whole photo, the face crop resized to 224, torchvision
  ResNet-50 (``weights=None``), one photo at a time, on ``--ref-photos`` of the photos.

Then the provenance A/B of ``benchmarks/provenance_overhead.py`` runs on
``--provenance-photos`` of them (what reading C2PA and metadata adds to the scan).

* ``--engine ray [--workers N]`` times ``forensics scan --engine ray`` instead (the scan starts
  its own local Ray instance, so Ray's start-up is included). ``--ref-photos 0`` skips the
  reference, ``--provenance-photos 0`` the provenance A/B.
* ``--photos-from DIR`` scans the first ``--photos`` photos of DIR (copied into the temporary
  folder) instead of the generated ones, e.g. real face photos.

Both are printed in photos/s, with the ratio; with ``--repeat R`` the best of R interleaved
runs of each is kept. The machine may be shared: numbers are noisy (the load is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance_overhead import provenance_overhead, report

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct 512x512 single-face JPEGs from the sample portraits."""
    from forensics.media import load_image, resize_rgb, save_image

    sources = [
        load_image(REPO / "samples" / "real_grace_hopper.jpg"),
        load_image(REPO / "samples" / "real_astronaut_eileen_collins.png"),
    ]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        s = int(min(h, w) * rng.uniform(0.8, 1.0))
        dy, dx = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        img = resize_rgb(src[dy : dy + s, dx : dx + s], (512, 512)).astype(np.float32)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = img * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-12, 12)
        rgb = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
        paths.append(save_image(folder / f"photo_{i:04d}.jpg", rgb, quality=90))
    return paths


def copy_photos(source: Path, folder: Path, n: int) -> list[Path]:
    """The first ``n`` photos of ``source`` (sorted), copied into the temporary ``folder``."""
    import shutil

    from forensics.media import media_kind

    folder.mkdir(parents=True)
    found = sorted(p for p in source.rglob("*") if p.is_file() and media_kind(p) == "image")
    if len(found) < n:
        sys.exit(f"{source} has {len(found)} photos, fewer than --photos {n}")
    return [
        Path(shutil.copyfile(src, folder / f"{i:05d}{src.suffix.lower()}"))
        for i, src in enumerate(found[:n])
    ]


def random_checkpoint(path: Path) -> Path:
    """A randomly initialised ``patch_resnet`` detector (default kwargs and preprocessing)."""
    import torch

    from forensics.models import create_model
    from forensics.scoring import Detector, DetectorSpec

    torch.manual_seed(0)
    spec = DetectorSpec(arch="patch_resnet", info={"note": "random weights, timing only"})
    return Detector(create_model(spec.arch, **spec.arch_kwargs), spec, "cpu").save(path)


def time_scan(folder: Path, model: Path, extra: list[str]) -> tuple[float, int, int]:
    """Seconds for the whole ``forensics scan`` process, records printed, faces found."""
    exe = Path(sys.executable).with_name("forensics")
    cmd = [str(exe) if exe.exists() else "forensics", "scan", str(folder), "--model", str(model),
           "--format", "jsonl", "--device", "cpu", *extra]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"scan failed ({proc.returncode}):\n{proc.stderr}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return elapsed, len(records), sum(r["n_faces"] for r in records)


def time_reference(paths: list[Path]) -> tuple[float, int]:
    """Seconds for the naive pipeline on ``paths`` (models built beforehand), faces found."""
    import torch
    import torchvision
    from facenet_pytorch import MTCNN
    from PIL import Image

    mtcnn = MTCNN(image_size=224, margin=0, keep_all=False, device="cpu")
    net = torchvision.models.resnet50(weights=None).eval()

    def one(path: Path) -> bool:
        img = Image.open(path).convert("RGB")
        face = mtcnn(img)  # (3, 224, 224) crop of the most likely face, or None
        if face is None:
            face = torch.nn.functional.interpolate(
                torch.from_numpy(np.asarray(img)).permute(2, 0, 1)[None].float() / 255,
                size=(224, 224),
            )[0]
        with torch.no_grad():
            net(face[None])
        return face is not None

    one(paths[0])  # warm-up, not timed
    start = time.perf_counter()
    found = sum(one(p) for p in paths)
    return time.perf_counter() - start, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=500, help="photos for the scan")
    ap.add_argument("--ref-photos", type=int, default=40, help="photos for the reference")
    ap.add_argument("--model", type=Path, default=None, help="detector checkpoint")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    ap.add_argument("--scan-args", default="", help="extra scan options, e.g. '--batch-size 32'")
    ap.add_argument("--provenance-photos", type=int, default=200,
                    help="photos for the provenance A/B (0: skip it)")  # fmt: skip
    ap.add_argument("--engine", choices=("local", "ray"), default="local", help="scan engine")
    ap.add_argument("--workers", type=int, default=None, help="--engine ray: actors")
    ap.add_argument("--photos-from", type=Path, default=None, help="scan photos from this folder")
    args = ap.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="scan_speed_") as tmp:
        tmp_path = Path(tmp)
        if args.photos_from is None:
            paths = make_photos(tmp_path / "photos", args.photos)
        else:
            paths = copy_photos(args.photos_from, tmp_path / "photos", args.photos)
        model = args.model
        kind = "given checkpoint"
        if model is None:
            from forensics.scoring import default_model_path

            if default_model_path().is_file():
                model, kind = default_model_path(), "shipped default"
            else:
                model, kind = random_checkpoint(tmp_path / "random.safetensors"), "random init"
        extra = args.scan_args.split()
        if args.engine == "ray":
            extra += ["--engine", "ray"]
            extra += [] if args.workers is None else ["--workers", str(args.workers)]
        refs, scans = [], []
        for _ in range(args.repeat):  # interleaved, so a burst of load hits both alike
            if args.ref_photos > 0:
                refs.append(time_reference(paths[: args.ref_photos]))
            scans.append(time_scan(tmp_path / "photos", model, extra))
        ref_s, ref_found = min(refs) if refs else (float("nan"), 0)
        scan_s, n_rec, n_faces = min(scans)
        one = tmp_path / "one"
        one.mkdir()
        os.link(paths[0], one / paths[0].name)
        startup_s = min(time_scan(one, model, extra)[0] for _ in range(args.repeat))
        prov_paths = paths[: args.provenance_photos]
        prov = provenance_overhead(prov_paths, model, max(2, args.repeat)) if prov_paths else None
    n_ref = min(args.ref_photos, args.photos)
    ref_rate, scan_rate = n_ref / ref_s, n_rec / scan_s
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start")
    workers = f", {args.workers or 'default'} workers" if args.engine == "ray" else ""
    print(f"engine: {args.engine}{workers}; photos: "
          f"{args.photos_from or 'generated 512-px crops'}")  # fmt: skip
    print(f"model: {model.name} ({kind}, patch_resnet timing)" if kind == "random init"
          else f"model: {model} ({kind})")  # fmt: skip
    print(
        f"reference (MTCNN + ResNet-50 @224, one at a time, start-up excluded): "
        f"{n_ref} photos in {ref_s:.2f} s = {ref_rate:.2f} photos/s, faces {ref_found}/{n_ref}"
    )
    print(f"forensics scan (whole process, start-up included): {n_rec} photos in {scan_s:.2f} s "
          f"= {scan_rate:.2f} photos/s, faces {n_faces}/{n_rec}")  # fmt: skip
    if scan_s > startup_s:
        steady = (n_rec - 1) / (scan_s - startup_s)
        print(f"forensics scan start-up (a 1-photo scan): {startup_s:.2f} s; after start-up: "
              f"{steady:.1f} photos/s = {steady / ref_rate:.1f}x the reference")  # fmt: skip
    else:  # e.g. Ray's start-up varies by more than the whole scan took
        print(
            f"forensics scan start-up (a 1-photo scan): {startup_s:.2f} s, longer than the "
            "whole scan: no after-start-up rate (scan more photos)"
        )
    print(f"speed-up: {scan_rate / ref_rate:.1f}x")
    if prov is not None:
        print(report(prov, len(prov_paths)))


if __name__ == "__main__":
    main()

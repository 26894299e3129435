"""What reading provenance (C2PA, EXIF, XMP, text chunks, JPEG tables) adds to a scan.

Usage:
    python benchmarks/provenance_overhead.py [--photos 200] [--model CKPT] [--repeat 3]

In-process A/B on the same photos as ``benchmarks/scan_speed.py``: the scanner's own objects
(detector and MTCNN loaded once) scan the folder with ``ScanConfig(provenance=False)`` and
with ``provenance=True``, interleaved, the best of ``--repeat`` runs of each kept.
``read_provenance`` alone is also timed per photo, on these plain JPEGs and on one with a
signed C2PA manifest (the SDK then validates the signature and hashes the pixels). Printed
by ``scan_speed.py`` too. The machine may be shared: numbers are noisy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def provenance_overhead(paths: list[Path], model: Path | None, repeat: int = 3) -> dict:
    """Seconds to scan ``paths`` without and with provenance, and ms per ``read_provenance``."""
    import gc

    from forensics.analysis import Analyzer
    from forensics.media import encode_jpeg, load_image
    from forensics.provenance import read_provenance
    from forensics.provenance.signing import sign_image, throwaway_credentials
    from forensics.scan import Scanner
    from forensics.scan_setup import ScanConfig, channels_last, make_face_detector
    from forensics.scoring import Detector

    detector = channels_last(Detector.load(model, device="cpu"))
    analyzer = Analyzer(detector, make_face_detector("cpu"), max_faces=16)
    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeat):
        for on in (False, True):
            scanner = Scanner(analyzer, ScanConfig(provenance=on))
            gc.collect()
            start = time.perf_counter()
            n = sum(1 for _ in scanner.scan(paths))
            runs[on].append(time.perf_counter() - start)
            assert n == len(paths)
    start = time.perf_counter()
    for p in paths:
        read_provenance(p)
    plain_ms = 1000 * (time.perf_counter() - start) / len(paths)
    signed = sign_image(encode_jpeg(load_image(paths[0]), 90), "image/jpeg",
                        throwaway_credentials())  # fmt: skip
    start = time.perf_counter()
    for _ in range(20):
        assert read_provenance(signed)["c2pa"]["valid"]
    signed_ms = 1000 * (time.perf_counter() - start) / 20
    return {"without_s": min(runs[False]), "with_s": min(runs[True]),
            "read_ms": plain_ms, "signed_read_ms": signed_ms}  # fmt: skip


def report(result: dict, n: int) -> str:
    """One printable paragraph for :func:`provenance_overhead`'s result on ``n`` photos."""
    extra = result["with_s"] / result["without_s"] - 1.0
    return (
        f"provenance (in-process A/B on {n} photos, best runs): scan without "
        f"{n / result['without_s']:.2f} photos/s, with {n / result['with_s']:.2f} photos/s = "
        f"{100 * extra:+.1f}% time; read_provenance alone {result['read_ms']:.2f} ms/photo "
        f"(plain JPEG), {result['signed_read_ms']:.2f} ms with a signed C2PA manifest"
    )


def main() -> None:
    from scan_speed import make_photos

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--model", type=Path, default=None, help="detector (default: shipped)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="prov_overhead_") as tmp:
        paths = make_photos(Path(tmp), args.photos)
        print(report(provenance_overhead(paths, args.model, args.repeat), len(paths)))


if __name__ == "__main__":
    main()

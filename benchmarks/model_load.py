"""Time loading the shipped default detector (issue 5 asks for under 2 s), in a fresh process.

Prints the import time of the scoring stack and the load time of the checkpoint separately.
Usage: ``python benchmarks/model_load.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CODE = """
import time
t0 = time.perf_counter()
from forensics.scoring import Detector, default_model_path
t1 = time.perf_counter()
det = Detector.load(None, device="cpu")
t2 = time.perf_counter()
size = default_model_path().stat().st_size / 2**20
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {size:.1f}")
"""


def main() -> None:
    """Run the timing in fresh interpreters and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for i in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        imp, load, size = out.stdout.split()
        print(f"run {i + 1}: import {imp} s, load {load} s, file {size} MB")


if __name__ == "__main__":
    main()

"""The measured effect of each GAN stabiliser: one short run with it removed (or changed) each.

Usage:
    python benchmarks/gan_stabilisers.py --data ../shared/data/train/real/utkface \\
        --features ../shared/weights/mobilenetv2_100_in1k.safetensors --minutes 10 --jobs 2

Every variant is a real ``forensics gan train`` run of ``--family`` (default ``resize_conv``,
64 px, width 16, batch 32, seed 0, one thread) in ``--out/<variant>``, for the same wall-clock
budget: ``all`` keeps every stabiliser on (the defaults; ``all_seed1`` is the same with seed 1,
the noise floor), each ``no_*`` variant turns one off, and ``ttur``, ``batch64`` and
``beta1_0`` change the learning rates, the batch size or Adam's beta1. ``--jobs`` runs go side
by side. The table printed at the end is each run's last
periodic evaluation (``--eval-n`` samples of the EMA generator, or of G when the EMA is off,
against the run's held-back real photos): face rate, pixel diversity and pixel coverage
(16x16 RGB), and in MobileNetV2 feature space coverage, density and CrossLID (with
``--features``). A run that stopped on NaN or exploding losses says so.

One seed and a short budget: differences of a few hundredths are noise. Re-running a finished
variant reuses its folder (delete it to start over).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "all": ("every stabiliser on (the defaults)", []),
    "all_seed1": ("the same, seed 1 (how far one seed moves the figures)", ["--seed", "1"]),
    "no_spectral_norm": ("no spectral norm in D", ["--no-spectral-norm"]),
    "no_mbstd": ("no minibatch standard deviation", ["--no-mbstd"]),
    "no_r1": ("no R1 penalty", ["--r1-gamma", "0"]),
    "no_diffaug": ("no DiffAugment", ["--diffaug", ""]),
    "no_ema": ("no EMA of G (samples from G)", ["--ema-decay", "0"]),
    "ttur": ("two time-scale: lr G 1e-4, D 4e-4", ["--lr-g", "1e-4", "--lr-d", "4e-4"]),
    "batch64": ("batch 64 (half the steps)", ["--batch", "64"]),
    "beta1_0": ("Adam beta1 0 (not 0.5)", ["--beta1", "0"]),
}


def command(args: argparse.Namespace, name: str) -> list[str]:
    """The ``forensics gan train`` command line of one variant."""
    exe = Path(sys.executable).with_name("forensics")
    cmd = [str(exe) if exe.exists() else "forensics", "gan", "train"]
    cmd += ["--family", args.family, "--out", str(args.out / name), "--minutes", str(args.minutes)]
    cmd += ["--threads", "1", "--seed", "0", "--eval-every", str(args.eval_every)]
    cmd += ["--eval-n", str(args.eval_n), "--format", "json"]
    for folder in args.data:
        cmd += ["--data", str(folder)]
    if args.features:
        cmd += ["--features", str(args.features)]
    return cmd + VARIANTS[name][1]


def last_eval(run: Path) -> dict:
    """The last ``eval`` row and the ``stop`` row of a run's ``metrics.jsonl``."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    evals = [r for r in rows if r.get("event") == "eval"]
    stops = [r for r in rows if r.get("event") == "stop"]
    out = dict(evals[-1]) if evals else {}
    out["stopped"] = stops[-1].get("stopped") if stops else "unfinished"
    out["last_step"] = max((r.get("step", 0) for r in rows), default=0)
    return out


def main() -> None:
    """Run the variants (``--jobs`` at a time) and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--family", default="resize_conv")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-n", type=int, default=128)
    ap.add_argument("--only", default="", help="comma-separated variants (default: all)")
    ap.add_argument("--out", type=Path, default=Path("runs/stabilisers"))
    args = ap.parse_args()
    names = [n for n in (args.only.split(",") if args.only else VARIANTS) if n]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        sys.exit(f"unknown variant(s) {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    todo = [n for n in names if not (args.out / n / "metrics.jsonl").is_file()]
    running: list[subprocess.Popen] = []
    args.out.mkdir(parents=True, exist_ok=True)
    while todo or running:
        running = [p for p in running if p.poll() is None]
        while todo and len(running) < args.jobs:
            name = todo.pop(0)
            log = (args.out / f"{name}.log").open("w")
            running.append(subprocess.Popen(command(args, name), stdout=log, stderr=log))
            print(f"started {name}", file=sys.stderr, flush=True)
        time.sleep(5)
    print(f"{args.family}, 64 px, {args.minutes:g} min each on one thread, seed 0; last evaluation "
          f"({args.eval_n} samples against the held-back reals)\n")  # fmt: skip
    print("| variant | steps | stopped | face rate | diversity | pixel coverage | feature coverage "
          "| feature density | CrossLID |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        r = last_eval(args.out / name)

        def f(key: str, r: dict = r) -> str:
            return f"{r[key]:.2f}" if isinstance(r.get(key), (int, float)) else "n/a"

        print(f"| `{name}`: {VARIANTS[name][0]} | {r['last_step']} | {r['stopped']} | "
              f"{f('face_rate')} | {f('diversity')} | {f('coverage')} | {f('feat_coverage')} | "
              f"{f('feat_density')} | {f('cross_lid')} |")  # fmt: skip


if __name__ == "__main__":
    main()

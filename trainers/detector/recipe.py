"""The shipped detector's data recipe: which training photos it uses and which reals it holds back.

``python -m trainers.detector.recipe OUT --data ../shared/data`` writes, deterministically
from ``--seed``:

- ``OUT/train.csv``: the training manifest (``path,label,source,group,twin``) for
  ``forensics detector train --manifest``. Per source it keeps at most the recipe's count,
  so each class is a balanced mix of sources rather than mostly UTKFace.
- ``OUT/resynth_from/SOURCE/``: links to the training reals that are re-synthesised into twins
  (``forensics gan sample forensics/weights/generator_resynth.safetensors --from ...``).
- ``OUT/heldback/threshold/SOURCE/`` and ``OUT/heldback/check/SOURCE/``: links to real photos
  of the training sources that no training step uses, in two halves: the shipped threshold is
  raised on the first (``forensics detector threshold --max-fpr 0.01``) and its false-positive
  rate is checked on the second, which nothing has seen.
- ``OUT/recipe.json``: the counts and the seed.

Nothing from ``dev/`` is ever listed: it is for checking only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np

from forensics.media import iter_inputs, media_kind

# source folder (relative to the data root) -> (label, photos used for training at most)
SOURCES: dict[str, tuple[int, int]] = {
    "train/real/utkface": (0, 1200),
    "train/real/facemask": (0, 1000),
    "train/real/ffhq_140k": (0, 400),
    "train/fake/stylegan1_140k": (1, 1100),
    "train/fake/sd21_sdfd": (1, 600),
}
HELD_BACK = 400  # real photos per source kept for the false-positive check (at most)
RESYNTH_FROM = ("train/real/utkface", 400)  # training reals given re-synthesised twins


def images_of(folder: Path) -> list[Path]:
    """Image files under ``folder``, sorted by path."""
    return sorted(p for p in iter_inputs([folder]) if media_kind(p) == "image")


def choose(files: list[Path], n: int, seed: int, salt: str) -> tuple[list[Path], list[Path]]:
    """A seeded choice of ``n`` files and the rest, both in path order."""
    rng = np.random.default_rng([seed, sum(salt.encode())])
    order = rng.permutation(len(files))
    keep = sorted(files[i] for i in order[:n])
    rest = sorted(files[i] for i in order[n:])
    return keep, rest


def _link(target: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / target.name
    if not dst.exists():
        os.symlink(target.resolve(), dst)


def write_recipe(out: Path, data: Path, seed: int = 0) -> dict:
    """Write the manifest, the re-synthesis inputs and the held-back reals; return the counts.

    Raises:
        FileNotFoundError: A recipe folder is missing under ``data``.

    """
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    counts: dict[str, dict[str, int]] = {}
    for rel, (label, n) in SOURCES.items():
        folder = data / rel
        if not folder.is_dir():
            raise FileNotFoundError(f"recipe folder missing: {folder}")
        files = images_of(folder)
        train, rest = choose(files, n, seed, rel)
        source = folder.name
        rows += [{"path": str(p.resolve()), "label": str(label), "source": source} for p in train]
        held = rest[:HELD_BACK] if label == 0 else []
        for i, p in enumerate(held):
            _link(p, out / "heldback" / ("threshold" if i % 2 == 0 else "check") / source)
        counts[source] = {"label": label, "train": len(train), "held_back": len(held)}
        if rel == RESYNTH_FROM[0]:
            for p in train[: RESYNTH_FROM[1]]:
                _link(p, out / "resynth_from" / source)  # twins share the real's group
    with open(out / "train.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "source"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {"seed": seed, "data": str(data), "sources": counts}
    (out / "recipe.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(write_recipe(args.out, args.data, args.seed), indent=2))


if __name__ == "__main__":
    main()

"""A fixed, documented split of the external dev material into a training part and a held-out part.

Issue 5 allows training on *part* of ``../shared/data/dev`` as long as the rest is kept for
checking and the files used are named. This module makes that split reproducible from file
names alone (a SHA-1 of ``source/name``), so the model card's list can be re-derived and checked:

- ``stylegan3r256`` fakes with ``ffhq256`` reals, and the ForenSynths ``stargan`` and
  ``deepfake`` pairs: half of each folder is for training, half is held out;
- ``dfdc_crops`` (its reals all come from one video, so no fair split exists) and every video
  stay wholly out of training: they are the never-seen sources.

``python -m trainers.detector.devsplit DEV_DIR OUT_DIR`` writes ``OUT_DIR/train.csv`` (a
``path,label,source`` manifest for ``forensics detector train --manifest``), copies of the
held-out photos under ``OUT_DIR/heldout/{real,fake}/SOURCE/`` for ``forensics detector eval``,
their half-size JPEG-70 copies under ``OUT_DIR/heldout_half_q70/``, and ``files.json`` naming
every file on each side.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from forensics.media import iter_inputs, media_kind

from .degrade import degrade_folder

#: Folders (relative to the dev root) split half for training, half held out.
SPLIT_FOLDERS: tuple[str, ...] = (
    "real/ffhq256",
    "fake/stylegan3r256",
    "real/forensynths_stargan",
    "fake/forensynths_stargan",
    "real/forensynths_deepfake",
    "fake/forensynths_deepfake",
)
#: Folders never trained on.
UNSEEN_FOLDERS: tuple[str, ...] = ("real/dfdc_crops", "fake/dfdc_crops")
TRAIN_SHARE = 0.5


@dataclass(frozen=True)
class DevSplit:
    """Which dev files are for training and which are held out.

    Attributes:
        train: ``(path, label, source)`` of the training half.
        heldout: ``(path, label, source)`` of everything kept for checking.

    """

    train: list[tuple[str, int, str]]
    heldout: list[tuple[str, int, str]]


def in_train_half(folder: str, name: str, share: float = TRAIN_SHARE) -> bool:
    """Whether ``folder/name`` belongs to the training half (a stable hash of the name)."""
    digest = hashlib.sha1(f"devsplit:{folder}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_dev(dev_root: str | Path, share: float = TRAIN_SHARE) -> DevSplit:
    """Split the photo folders of ``dev_root`` (see the module docstring).

    Raises:
        ValueError: ``dev_root`` has none of the expected folders.

    """
    root = Path(dev_root)
    train: list[tuple[str, int, str]] = []
    heldout: list[tuple[str, int, str]] = []
    found = 0
    for folder in (*SPLIT_FOLDERS, *UNSEEN_FOLDERS):
        path = root / folder
        if not path.is_dir():
            continue
        found += 1
        label = 1 if folder.startswith("fake/") else 0
        source = Path(folder).name
        for file in sorted(iter_inputs([path])):
            if media_kind(file) != "image":
                continue
            row = (str(file.resolve()), label, source)
            if folder in SPLIT_FOLDERS and in_train_half(folder, file.name, share):
                train.append(row)
            else:
                heldout.append(row)
    if not found:
        raise ValueError(f"{root}: none of the dev folders {SPLIT_FOLDERS + UNSEEN_FOLDERS}")
    return DevSplit(train, heldout)


def write_split(split: DevSplit, out: str | Path, degraded: bool = True) -> dict[str, int]:
    """Write the training manifest, held-out copies (and degraded copies) and ``files.json``.

    Returns:
        Counts: ``{"train": n, "heldout": n}``.

    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "source"])
        writer.writerows(split.train)
    held = out / "heldout"
    for path, label, source in split.heldout:
        dst = held / ("fake" if label else "real") / source
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst / Path(path).name)
    if degraded:
        for folder in sorted(p for p in held.glob("*/*") if p.is_dir()):
            degrade_folder(folder, out / "heldout_half_q70" / folder.parent.name / folder.name)
    listing = {
        side: [Path(p).relative_to(Path(p).parents[2]).as_posix() for p, _, _ in rows]
        for side, rows in (("train", split.train), ("heldout", split.heldout))
    }
    (out / "files.json").write_text(json.dumps(listing, indent=1), encoding="utf-8")
    return {"train": len(split.train), "heldout": len(split.heldout)}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dev", type=Path, help="the dev folder, e.g. ../shared/data/dev")
    parser.add_argument("out", type=Path, help="where train.csv and heldout/ are written")
    parser.add_argument("--no-degraded", action="store_true", help="skip the half/q70 copies")
    args = parser.parse_args(argv)
    counts = write_split(split_dev(args.dev), args.out, degraded=not args.no_degraded)
    print(f"{counts['train']} dev photos for training, {counts['heldout']} held out -> {args.out}")


if __name__ == "__main__":
    main()

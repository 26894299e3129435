"""The documented split of ../shared/data/dev: stable, disjoint, DFDC never trained on."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from forensics.media import save_image
from trainers.detector.devsplit import in_train_half, split_dev, write_split


@pytest.fixture()
def dev_tree(tmp_path):
    rng = np.random.default_rng(0)
    folders = {"real/ffhq256": 12, "fake/stylegan3r256": 12, "real/dfdc_crops": 4,
               "fake/dfdc_crops": 4, "real/forensynths_stargan": 6}  # fmt: skip
    for folder, n in folders.items():
        for i in range(n):
            rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            save_image(tmp_path / "dev" / folder / f"{i}.png", rgb)
    (tmp_path / "dev" / "fake" / "stylegan3r256" / "notes.txt").write_text("not an image")
    return tmp_path / "dev"


def test_split_is_stable_disjoint_and_keeps_dfdc_out(dev_tree):
    a, b = split_dev(dev_tree), split_dev(dev_tree)
    assert a == b
    train = {p for p, _, _ in a.train}
    held = {p for p, _, _ in a.heldout}
    assert not train & held and len(train) + len(held) == 38
    assert all("dfdc" not in p for p in train)
    assert {s for _, _, s in a.heldout} >= {"dfdc_crops", "ffhq256", "stylegan3r256"}
    for path, label, source in a.train:
        folder = ("fake/" if label else "real/") + source
        assert in_train_half(folder, path.rsplit("/", 1)[1])


def test_write_split_outputs(dev_tree, tmp_path):
    split = split_dev(dev_tree)
    counts = write_split(split, tmp_path / "out", degraded=True)
    assert counts == {"train": len(split.train), "heldout": len(split.heldout)}
    with open(tmp_path / "out" / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], int(r["label"]), r["source"]) for r in rows] == split.train
    copied = sorted(p.name for p in (tmp_path / "out" / "heldout").rglob("*.png"))
    assert len(copied) == len(split.heldout)
    degraded = list((tmp_path / "out" / "heldout_half_q70").rglob("*.jpg"))
    assert len(degraded) == len(split.heldout)
    listing = json.loads((tmp_path / "out" / "files.json").read_text())
    assert all(p.startswith(("real/", "fake/")) for p in listing["train"] + listing["heldout"])


def test_missing_dev_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="none of the dev folders"):
        split_dev(tmp_path)

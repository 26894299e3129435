"""The model-card table tool: pairs, copies, JPEG copies and real checks on a tiny split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forensics.media import resize_rgb, save_image
from forensics.scoring import Detector
from trainers.detector.card import card_rows, main, pairs, real_checks, summarize, to_markdown

FOLDERS = [("real", "ffhq256"), ("fake", "stylegan3r256"), ("real", "people"),
           ("fake", "people"), ("fake", "unpaired")]  # fmt: skip


@pytest.fixture(scope="module")
def split(tmp_path_factory, portrait_rgb) -> Path:
    """heldout/{real,fake} with a renamed pair (stylegan3r256/ffhq256) and a same-name pair."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    h, w = portrait_rgb.shape[:2]
    for copy in ("heldout", "heldout_half_q70"):
        for side, source in FOLDERS:
            d = root / copy / side / source
            d.mkdir(parents=True)
            for i in range(3):
                s = int(min(h, w) * rng.uniform(0.8, 0.95))
                rgb = resize_rgb(portrait_rgb[:s, :s], (96, 96))
                if side == "fake":
                    rgb = np.repeat(np.repeat(rgb[::2, ::2], 2, axis=0), 2, axis=1)
                save_image(d / f"{source}_{i}.png", rgb)
    return root


def test_pairs_use_the_renamed_real_folder_and_skip_unpaired(split):
    found = [(n, f.name, r.name) for n, f, r in pairs(split / "heldout")]
    assert found == [("people", "people", "people"), ("stylegan3r256", "stylegan3r256", "ffhq256")]


def test_card_rows_cover_every_copy_and_write_jpeg_copies(split, tiny_checkpoint):
    det = Detector.from_checkpoint(tiny_checkpoint, device="cpu")
    rows = card_rows(det, split, jpeg=(80,))
    assert [(r.copy, r.fake) for r in rows] == [
        ("heldout", "people"), ("heldout", "stylegan3r256"),
        ("heldout_half_q70", "people"), ("heldout_half_q70", "stylegan3r256"),
        ("jpeg80", "stylegan3r256"),
    ]  # fmt: skip
    assert all(r.n_fake == 3 and r.n_real == 3 and 0.0 <= r.auc <= 1.0 for r in rows)
    assert sorted(p.name for p in (split / "heldout_jpeg80" / "real" / "ffhq256").iterdir()) == [
        f"ffhq256_{i}.jpg" for i in range(3)
    ]
    summary = summarize(rows)
    assert summary["heldout"]["n"] == 2 and summary["jpeg80"]["n"] == 1
    assert summary["heldout"]["worst_auc"] == min(r.auc for r in rows if r.copy == "heldout")
    table = to_markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "`stylegan3r256` vs `ffhq256`" in table


def test_real_checks_and_main_json(split, tiny_checkpoint, tmp_path, capsys):
    det = Detector.from_checkpoint(tiny_checkpoint, device="cpu")
    people = split / "heldout" / "real" / "people"
    twin = tmp_path / "copy" / "people"  # same folder name, other photos: reported apart
    twin.mkdir(parents=True)
    first = next(p for p in sorted(people.iterdir()) if p.is_file())
    (twin / first.name).write_bytes(first.read_bytes())
    checks = real_checks(det, [people, twin])
    assert checks[str(people)]["n"] == 3 and 0.0 <= checks[str(people)]["fpr"] <= 1.0
    assert checks[str(twin)]["n"] == 1
    out = tmp_path / "card.json"
    main([str(tiny_checkpoint), str(split), "--jpeg", "80", "--json", str(out),
          "--real-check", str(split / "heldout" / "real" / "people")])  # fmt: skip
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 5 and data["real_checks"][str(people)]["n"] == 3
    assert "mean AUC" in capsys.readouterr().out


def test_split_without_pairs_is_an_error(tmp_path, tiny_checkpoint):
    (tmp_path / "heldout" / "fake" / "x").mkdir(parents=True)
    with pytest.raises(ValueError, match="no fake/SOURCE folder"):
        card_rows(Detector.from_checkpoint(tiny_checkpoint, device="cpu"), tmp_path)

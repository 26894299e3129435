"""``forensics scan`` through the CLI: exit codes, formats, --out, HTML escaping, help."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_checkpoint
from test_scan_lib import CONTRACT, make_bad_inputs
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.media import save_image
from forensics.video import write_video

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory, portrait_rgb) -> Path:
    d = tmp_path_factory.mktemp("good")
    save_image(d / "portrait one.jpg", portrait_rgb, quality=90)
    write_video(d / "clip.mp4", [portrait_rgb[::4, ::4]] * 4, fps=4)
    (d / "readme.txt").write_text("not media")
    return d


def run(*args: str, ckpt: Path | None = None):
    argv = ["scan", *args] + (["--model", str(ckpt), "--device", "cpu"] if ckpt else [])
    return runner.invoke(app, argv)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_help_is_fast_and_complete():
    res = runner.invoke(app, ["scan", "--help"])
    assert res.exit_code == 0
    for opt in ("--model", "--threshold", "--format", "--out", "--fps", "--max-frames",
                "--device", "--max-faces", "--batch-size", "Exit code"):  # fmt: skip
        assert opt in res.output


def test_exit_codes_0_1_from_threshold(good_dir, ckpt):
    fake = run(str(good_dir), "--threshold", "0", "--format", "jsonl", ckpt=ckpt)
    assert fake.exit_code == 1, fake.output
    real = run(str(good_dir), "--threshold", "1", "--format", "jsonl", ckpt=ckpt)
    assert real.exit_code == 0, real.output
    verdicts = {json.loads(x)["verdict"] for x in fake.stdout.splitlines()}
    assert verdicts == {"fake", None}  # None: the skipped .txt


def test_exit_code_3_wins_over_1(tmp_path, good_dir, ckpt, portrait_rgb):
    make_bad_inputs(tmp_path / "bad", portrait_rgb)
    res = run(str(good_dir), str(tmp_path / "bad"), "--threshold", "0", "-f", "jsonl", ckpt=ckpt)
    assert res.exit_code == 3
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(recs) == 3 + 8 and sum(r["status"] == "error" for r in recs) == 8
    assert "Traceback" not in res.output


def test_usage_errors_exit_2(tmp_path, good_dir, ckpt):
    assert run(str(good_dir), "--format", "xml", ckpt=ckpt).exit_code == 2
    assert run(str(good_dir), "--threshold", "1.5", ckpt=ckpt).exit_code == 2
    res = runner.invoke(app, ["scan", str(good_dir), "--model", str(ckpt), "--device", "tpu"])
    assert res.exit_code == 2 and "tpu" in res.stderr
    bad_model = tmp_path / "model.safetensors"
    bad_model.write_bytes(b"not a checkpoint")
    res = run(str(good_dir), "--model", str(bad_model))
    assert res.exit_code == 2 and "cannot load the detector" in res.stderr
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    assert run(str(empty), ckpt=ckpt).exit_code == 2


def test_no_default_model_says_pass_model(good_dir, tmp_path, monkeypatch):
    import forensics.scoring

    monkeypatch.setattr(forensics.scoring, "default_model_path", lambda: tmp_path / "none")
    res = run(str(good_dir))
    assert res.exit_code == 2 and "--model" in res.stderr


def test_formats_parse(good_dir, ckpt):
    lines = run(str(good_dir), "-f", "jsonl", ckpt=ckpt).stdout.splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == 3 and all(CONTRACT <= set(r) for r in recs)
    kinds = {Path(r["path"]).name: r["kind"] for r in recs}
    assert kinds == {"portrait one.jpg": "image", "clip.mp4": "video", "readme.txt": "other"}
    as_json = json.loads(run(str(good_dir), "-f", "json", ckpt=ckpt).stdout)
    assert [r["path"] for r in as_json] == [r["path"] for r in recs]
    rows = list(csv.DictReader(io.StringIO(run(str(good_dir), "-f", "csv", ckpt=ckpt).stdout)))
    assert [r["path"] for r in rows] == [r["path"] for r in recs]
    assert int(rows[0]["n_frames"]) >= 1  # clip.mp4 comes first
    table = run(str(good_dir), ckpt=ckpt)
    assert table.exit_code in (0, 1) and "file" in table.stdout and "verdict" in table.stdout
    for word in ("image", "video", "other", "skipped"):  # long paths fold in an 80-col table
        assert word in table.stdout


def test_nothing_written_without_out(tmp_path, good_dir, ckpt, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before, inputs_before = tree(tmp_path), tree(good_dir)
    assert run(str(good_dir), "-f", "json", ckpt=ckpt).exit_code in (0, 1)
    assert tree(tmp_path) == before and tree(good_dir) == inputs_before


def test_out_dir_report_escapes_hostile_names(tmp_path, ckpt, portrait_rgb):
    inputs = tmp_path / "in"
    hostile = "<script>alert(1)<"
    save_image(inputs / f"{hostile}.jpg", portrait_rgb[::2, ::2], quality=90)
    (inputs / "<b>junk.png").write_bytes(b"<img src=x onerror=alert(2)>")
    out = inputs / "results"  # inside the scanned folder: must not be scanned itself
    res = run(str(inputs), "--out", str(out), "-f", "jsonl", ckpt=ckpt)
    assert res.exit_code == 3
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(recs) == 2
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;" in html
    assert "<b>junk" not in html and "onerror=alert(2)>" not in html
    saved = [json.loads(x) for x in (out / "results.jsonl").read_text("utf-8").splitlines()]
    assert saved == recs
    ok = next(r for r in recs if r["status"] == "ok")
    assert all((out / f["heatmap"]).is_file() for f in ok["faces"])
    assert all(os.sep not in Path(f["heatmap"]).name for f in ok["faces"])
    again = run(str(inputs), "--out", str(out), "-f", "jsonl", ckpt=ckpt)
    assert len(again.stdout.splitlines()) == 2  # results/ is never scanned


def test_inputs_are_not_modified(tmp_path, good_dir, ckpt):
    sums = {p: p.read_bytes() for p in good_dir.iterdir()}
    run(str(good_dir), "--out", str(tmp_path / "o"), "-f", "jsonl", ckpt=ckpt)
    assert {p: p.read_bytes() for p in good_dir.iterdir()} == sums
    assert np.asarray([1]).size == 1

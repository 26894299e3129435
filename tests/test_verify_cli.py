"""``forensics verify-ids`` through the CLI: help, usage errors, manifests, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_checkpoint, shared_data_or_skip
from test_verify_data import utk_paths
from typer.testing import CliRunner

from forensics.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("p") / "policy.toml"
    p.write_text("synthetic_threshold = 1.01  # the tiny test model detects nothing\n")
    return p


def test_help_and_usage_errors(tmp_path, ckpt):
    res = runner.invoke(app, ["verify-ids", "--help"])
    assert res.exit_code == 0 and "applicant_id" in res.output and "--no-thumbnails" in res.output
    assert runner.invoke(app, ["verify-ids"]).exit_code in (0, 2)  # no_args_is_help
    res = runner.invoke(app, ["verify-ids", str(tmp_path / "missing"), "--model", str(ckpt)])
    assert res.exit_code == 2 and "does not exist" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("max_yaw = 1\nfoo = 2\n")
    res = runner.invoke(app, ["verify-ids", str(tmp_path), "--policy", str(bad)])
    assert res.exit_code == 2 and "unknown policy key(s): foo" in res.output
    res = runner.invoke(app, ["verify-ids", str(tmp_path), "--format", "xml"])
    assert res.exit_code == 2
    (tmp_path / "x.jpg").write_bytes(b"")
    res = runner.invoke(app, ["verify-ids", str(tmp_path), "--model", str(tmp_path / "no.st")])
    assert res.exit_code == 2 and "cannot load the detector" in res.output


def test_missing_default_model_is_a_clear_error(tmp_path, monkeypatch):
    import forensics.scoring

    monkeypatch.setattr(forensics.scoring, "default_model_path", lambda: tmp_path / "none")
    (tmp_path / "x.jpg").write_bytes(b"")
    res = runner.invoke(app, ["verify-ids", str(tmp_path)])
    assert res.exit_code == 2 and "no default detector" in res.output


def test_csv_manifest_formats_and_exit_codes(tmp_path, ckpt, policy_file, portrait_rgb):
    from forensics.media import save_image

    save_image(tmp_path / "photos" / "p1.jpg", portrait_rgb, quality=92)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,applicant_id\nphotos/p1.jpg,APP-7\n")
    base = ["verify-ids", "--model", str(ckpt), "--policy", str(policy_file)]
    res = runner.invoke(app, [*base, str(manifest), "--format", "json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert recs[0]["applicant_id"] == "APP-7" and recs[0]["decision"] == "accept"
    manifest.write_text("photos/p1.jpg,APP-7\nphotos/broken.jpg,APP-8\n")
    res = runner.invoke(app, [*base, str(manifest), "--format", "csv"])
    assert res.exit_code == 1
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("path,applicant_id,decision,reasons")
    assert ",APP-8,reject,unreadable," in lines[2]
    res = runner.invoke(app, [*base, str(manifest), "--format", "jsonl"])
    assert [json.loads(x)["decision"] for x in res.stdout.splitlines()] == ["accept", "reject"]


def test_no_thumbnails_and_nothing_written_outside_out(tmp_path, ckpt, policy_file):
    from forensics.media import save_image

    photos = tmp_path / "photos"
    save_image(photos / "noface.png", np.full((120, 160, 3), 90, np.uint8))
    before = sorted(p for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    args = ["verify-ids", str(photos), "--model", str(ckpt), "--policy", str(policy_file)]
    res = runner.invoke(app, [*args, "--out", str(out), "--no-thumbnails"])
    assert res.exit_code == 1 and "no_face" in res.stdout
    rec = json.loads((out / "results.jsonl").read_text())
    assert rec["synthetic_score"] is None and 0.0 <= rec["scores"]["whole_image_score"] <= 1.0
    after = sorted(p for p in tmp_path.rglob("*") if out not in p.parents and p != out)
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.jsonl", "summary.json"]
    assert "<img" not in (out / "report.html").read_text()
    res = runner.invoke(app, [*args, "--out", str(out)])  # re-run: already recorded
    assert res.exit_code == 1 and "1 already recorded" in res.output
    assert len((out / "results.jsonl").read_text().splitlines()) == 1


def _resume_batch(root: Path) -> Path:
    from forensics.media import encode_jpeg, load_image, resize_rgb, save_image

    photos = root / "photos"
    for i, p in enumerate(utk_paths(shared_data_or_skip(), 18, stride=53)):
        save_image(photos / f"p{i:02d}.jpg", resize_rgb(load_image(p), (480, 480)), quality=90)
    first = load_image(photos / "p00.jpg")
    (photos / "p99_resubmit.jpg").write_bytes(encode_jpeg(resize_rgb(first, (300, 300)), 70))
    (photos / "p50_empty.jpg").write_bytes(b"")
    return photos


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from forensics.cli.main import main; main()", *args]


def _decisions(out: Path) -> dict[str, tuple]:
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    paths = [r["path"] for r in recs]
    assert len(paths) == len(set(paths)), "a photo was recorded twice"
    return {r["path"]: (r["decision"], r["reasons"], r["synthetic_score"]) for r in recs}


def test_kill_and_resume_records_each_photo_once(tmp_path, ckpt, policy_file):
    photos = _resume_batch(tmp_path)
    n = len(list(photos.iterdir()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["verify-ids", str(photos), "--model", str(ckpt), "--policy", str(policy_file),
              "--batch-size", "2", "--format", "jsonl"]  # fmt: skip
    ref = tmp_path / "ref"
    subprocess.run(_cli(*common, "--out", str(ref)), env=env, capture_output=True, timeout=300)
    expected = _decisions(ref)
    assert len(expected) == n

    out = tmp_path / "out"
    results = out / "results.jsonl"
    proc = subprocess.Popen(
        _cli(*common, "--out", str(out)), env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_file() and results.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = results.read_bytes().count(b"\n")
    assert 3 <= killed_at < n
    with open(results, "ab") as f:  # as if the kill had torn a line in half
        f.write(b'{"path": "torn')
    res = subprocess.run(
        _cli(*common, "--out", str(out)), env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 1, res.stderr  # the batch holds rejects
    assert _decisions(out) == expected
    assert f"({killed_at} already recorded)" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["photos"] == n
    assert summary["decisions"] == json.loads((ref / "summary.json").read_text())["decisions"]

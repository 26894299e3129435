"""``forensics scan`` interrupted, re-run and resumed: exit 130, stale pictures, ``--resume``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import make_tiny_checkpoint
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.media import save_image
from forensics.scan import Scanner

runner = CliRunner()

NAMES = ("a.png", "b.png", "c.png")


@pytest.fixture(scope="module")
def photos(tmp_path_factory, portrait_rgb) -> Path:
    """Three small, different crops of the portrait."""
    d = tmp_path_factory.mktemp("photos")
    for i, name in enumerate(NAMES):
        save_image(d / name, portrait_rgb[40 + 30 * i : 296 + 30 * i, 120:376])
    return d


@pytest.fixture
def scored(monkeypatch) -> list[str]:
    """Names of the photos the scanner scores, in order (the real scoring still runs)."""
    calls: list[str] = []
    original = Scanner._photo

    def counting(self, seq, path, rgb, score):
        calls.append(path.name)
        return original(self, seq, path, rgb, score)

    monkeypatch.setattr(Scanner, "_photo", counting)
    return calls


def scan(*args: str, ckpt: Path):
    return runner.invoke(app, ["scan", *args, "--model", str(ckpt), "--device", "cpu"])


def lines(out: Path) -> list[bytes]:
    return (out / "results.jsonl").read_bytes().splitlines()


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in lines(out)]


def pictures(rec: dict) -> list[str]:
    keys = ("heatmap", "heatmap_raw", "crop", "heatmap_crop")
    faces = [f[k] for f in rec["faces"] for k in keys]
    return [p for p in [rec["thumbnail"], rec["timeline"], *faces] if p]


def files_in(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_records_carry_size_and_mtime(tmp_path, photos, tiny_checkpoint):
    res = scan(str(photos), "-f", "jsonl", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    for rec in map(json.loads, res.stdout.splitlines()):
        st = os.stat(rec["path"])
        assert rec["size"] == st.st_size and rec["mtime"] == st.st_mtime


def test_resume_skips_done_files_and_keeps_their_records(tmp_path, photos, tiny_checkpoint,
                                                         scored):  # fmt: skip
    out = tmp_path / "out"
    first = scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint)
    assert first.exit_code in (0, 1), first.output
    assert scored == list(NAMES)
    full = lines(out)
    kept = [json.loads(x) for x in full[:2]]
    stamps = {p: (out / p).stat().st_mtime_ns for rec in kept for p in pictures(rec)}
    assert stamps and all(rec["faces"] for rec in kept)
    (out / "results.jsonl").write_bytes(b"\n".join(full[:2]) + b"\n")  # killed after 2 files

    scored.clear()
    res = scan(str(photos), "--out", str(out), "--resume", "-f", "jsonl", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    assert scored == ["c.png"]  # only the file without a record was scored
    assert "(2 already recorded)" in res.stderr
    now = lines(out)
    assert now[:2] == full[:2] and len(now) == 3  # old records kept byte for byte, one appended
    assert [Path(r["path"]).name for r in records(out)] == list(NAMES)
    assert {p: (out / p).stat().st_mtime_ns for p in stamps} == stamps  # not rewritten
    printed = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["path"] for r in printed] == [r["path"] for r in records(out)]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert all(name in html for name in NAMES)
    assert files_in(out) == {"results.jsonl", "report.html"} | {
        p for r in records(out) for p in pictures(r)
    }

    scored.clear()  # all done: nothing is scored again
    again = scan(str(photos), "--out", str(out), "--resume", ckpt=tiny_checkpoint)
    assert again.exit_code in (0, 1) and scored == [] and lines(out) == now


def test_resume_rescans_a_changed_file(tmp_path, photos, tiny_checkpoint, scored, portrait_rgb):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in NAMES:
        (inputs / name).write_bytes((photos / name).read_bytes())
    out = tmp_path / "out"
    assert scan(str(inputs), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    st = (inputs / "b.png").stat()
    os.utime(inputs / "b.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    scored.clear()
    res = scan(str(inputs), "--out", str(out), "--resume", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    assert scored == ["b.png"]
    recs = records(out)
    assert sorted(Path(r["path"]).name for r in recs) == list(NAMES)  # no stale duplicate
    b = next(r for r in recs if r["path"].endswith("b.png"))
    assert b["mtime"] == (inputs / "b.png").stat().st_mtime


def test_torn_last_line_is_cut_and_its_file_rescanned(tmp_path, photos, tiny_checkpoint, scored):
    out = tmp_path / "out"
    assert scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    full = lines(out)
    torn = b"\n".join(full[:2]) + b"\n" + full[2][: len(full[2]) // 2]  # SIGKILL mid-write
    (out / "results.jsonl").write_bytes(torn)
    orphan = out / "heatmaps" / "00007_gone_face0.png"  # written before a kill, never recorded
    orphan.write_bytes(b"stale")
    scored.clear()
    res = scan(str(photos), "--out", str(out), "--resume", "-f", "jsonl", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    assert scored == ["c.png"]
    recs = records(out)  # every line parses
    assert [Path(r["path"]).name for r in recs] == list(NAMES)
    assert lines(out)[:2] == full[:2]
    assert not orphan.exists()
    assert all((out / p).is_file() for r in recs for p in pictures(r))


def test_damaged_middle_line_is_a_usage_error(tmp_path, photos, tiny_checkpoint):
    out = tmp_path / "out"
    assert scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    full = lines(out)
    (out / "results.jsonl").write_bytes(b"\n".join([full[0], b"{oops", full[2]]) + b"\n")
    res = scan(str(photos), "--out", str(out), "--resume", ckpt=tiny_checkpoint)
    assert res.exit_code == 2 and "line 2" in res.stderr


def test_fresh_run_removes_stale_pictures_only(tmp_path, photos, tiny_checkpoint):
    out = tmp_path / "out"
    assert scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    old = {p for r in records(out) for p in pictures(r)}
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "keep.png").write_bytes(b"mine")
    res = scan(str(photos / "b.png"), "--out", str(out), ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    (rec,) = records(out)
    assert rec["path"].endswith("b.png")
    new = set(pictures(rec))
    assert new and old - new
    assert files_in(out) == {"results.jsonl", "report.html", "notes.txt", "mine/keep.png"} | new


def test_other_model_forces_a_rescan(tmp_path, photos, tiny_checkpoint, scored):
    out = tmp_path / "out"
    assert scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    before = {r["model"]["sha256"] for r in records(out)}
    other = make_tiny_checkpoint(tmp_path / "other.safetensors", seed=1)
    scored.clear()
    res = scan(str(photos), "--out", str(out), "--resume", ckpt=other)
    assert res.exit_code in (0, 1), res.output
    assert scored == list(NAMES) and "(0 already recorded)" in res.stderr
    after = {r["model"]["sha256"] for r in records(out)}
    assert len(records(out)) == 3 and len(after) == 1 and after.isdisjoint(before)


def test_resume_without_out_is_a_usage_error(photos, tiny_checkpoint):
    res = scan(str(photos), "--resume", ckpt=tiny_checkpoint)
    assert res.exit_code == 2 and "--resume" in res.stderr and "--out" in res.stderr


@pytest.fixture
def interrupt_on_second(monkeypatch) -> list[str]:
    """Ctrl-C while the scanner scores the second photo."""
    calls: list[str] = []
    original = Scanner._photo

    def interrupted(self, seq, path, rgb, score):
        calls.append(path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, seq, path, rgb, score)

    monkeypatch.setattr(Scanner, "_photo", interrupted)
    return calls


def test_ctrl_c_keeps_partial_results_and_exits_130(tmp_path, photos, tiny_checkpoint,
                                                    interrupt_on_second, monkeypatch):  # fmt: skip
    out = tmp_path / "out"
    res = scan(str(photos), "--out", str(out), "-f", "json", ckpt=tiny_checkpoint)
    assert res.exit_code == 130, res.output
    assert f"interrupted: 1 of 3 files scanned, partial results in {out}" in res.stderr
    assert "Traceback" not in res.output
    (rec,) = records(out)  # valid JSONL: the finished record only
    assert rec["path"].endswith("a.png")
    assert json.loads(res.stdout) == [rec]  # stdout stays a valid JSON array
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "a.png" in html and "b.png" not in html

    monkeypatch.undo()  # no more Ctrl-C: --resume finishes the scan
    done = scan(str(photos), "--out", str(out), "--resume", ckpt=tiny_checkpoint)
    assert done.exit_code in (0, 1), done.output
    assert "(1 already recorded)" in done.stderr
    assert [Path(r["path"]).name for r in records(out)] == list(NAMES)


def test_ctrl_c_without_out(photos, tiny_checkpoint, interrupt_on_second):
    res = scan(str(photos), "-f", "jsonl", ckpt=tiny_checkpoint)
    assert res.exit_code == 130
    assert "interrupted: 1 of 3 files scanned" in res.stderr
    assert "partial results" not in res.stderr
    assert len(res.stdout.splitlines()) == 1


def test_other_threshold_forces_a_rescan(tmp_path, photos, tiny_checkpoint, scored):
    out = tmp_path / "out"
    assert scan(str(photos), "--out", str(out), ckpt=tiny_checkpoint).exit_code in (0, 1)
    scored.clear()
    res = scan(str(photos), "--out", str(out), "--resume", "--threshold", "0.99",
               ckpt=tiny_checkpoint)  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    assert scored == list(NAMES) and "(0 already recorded)" in res.stderr
    assert {r["threshold"] for r in records(out)} == {0.99}
    scored.clear()
    res = scan(str(photos), "--out", str(out), "--resume", "--threshold", "0.99",
               ckpt=tiny_checkpoint)  # fmt: skip
    assert scored == [] and "(3 already recorded)" in res.stderr


def test_resume_rescans_a_video_sampled_otherwise(tmp_path, portrait_rgb, tiny_checkpoint):
    from forensics.video import write_video

    inputs = tmp_path / "in"
    inputs.mkdir()
    save_image(inputs / "a.png", portrait_rgb[40:296, 120:376])
    write_video(inputs / "clip.mp4", [portrait_rgb[::4, ::4]] * 8, fps=4)
    out = tmp_path / "out"
    assert scan(str(inputs), "--out", str(out), "--fps", "1", ckpt=tiny_checkpoint).exit_code < 2
    clip = next(r for r in records(out) if r["kind"] == "video")
    assert clip["sampling"] == {"fps": 1.0, "max_frames": 64} and len(clip["frames"]) == 2
    res = scan(str(inputs), "--out", str(out), "--resume", "--fps", "1", ckpt=tiny_checkpoint)
    assert "2 already recorded" in res.output  # same sampling: both kept
    res = scan(str(inputs), "--out", str(out), "--resume", "--fps", "4", ckpt=tiny_checkpoint)
    assert "1 already recorded" in res.output, res.output  # the photo only
    recs = records(out)
    assert len(recs) == 2
    clip = next(r for r in recs if r["kind"] == "video")
    assert clip["sampling"]["fps"] == 4.0 and len(clip["frames"]) == 8
    photo = next(r for r in recs if r["kind"] == "image")
    assert photo["sampling"] is None

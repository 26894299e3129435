"""``forensics scan`` output: flat CSV (per file or per face), a table that never wraps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.cli.common import console
from forensics.cli.main import app
from forensics.media import save_image
from forensics.record_views import (
    CSV_FIELDS,
    ELLIPSIS,
    cell_width,
    csv_cell,
    csv_fields,
    csv_row,
    csv_rows,
    fit_table,
    printable,
    relative_path,
    table_row,
    truncate,
)
from forensics.records import FaceResult, FrameResult, ScanRecord
from forensics.video import write_video

runner = CliRunner()
LONG = "a_very_long_file_name_from_a_camera_export_" * 3 + "end.jpg"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, portrait_rgb) -> Path:
    d = tmp_path_factory.mktemp("out")
    save_image(d / "portrait.jpg", portrait_rgb, quality=90)
    save_image(d / "grey.png", np.full((96, 96, 3), 128, np.uint8))  # no face
    save_image(d / LONG, portrait_rgb[::2, ::2], quality=90)
    write_video(d / "clip.mp4", [portrait_rgb[::2, ::2]] * 3, fps=2)
    (d / "readme.txt").write_text("not media")
    return d


def scan(*args: str, ckpt: Path):
    return runner.invoke(app, ["scan", *args, "--model", str(ckpt), "--device", "cpu"])


def parse(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


@pytest.fixture(scope="module")
def per_file(folder, tiny_checkpoint) -> list[dict[str, str]]:
    res = scan(str(folder), "-f", "csv", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    return parse(res.stdout)


@pytest.fixture(scope="module")
def per_face(folder, tiny_checkpoint) -> list[dict[str, str]]:
    res = scan(str(folder), "-f", "csv", "--per-face", ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    return parse(res.stdout)


def assert_flat(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for key, cell in row.items():
            assert "{" not in cell and "[" not in cell, (key, cell)
            assert cell not in ("None", "null", "False", "True", "nan"), (key, cell)


def by_name(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        out.setdefault(Path(row["path"]).name, []).append(row)
    return out


# ------------------------------------------------------------------------------- CSV (CLI)
def test_csv_is_flat_one_row_per_file(per_file):
    assert list(per_file[0]) == CSV_FIELDS  # the tiny model has no branches
    assert "faces" not in per_file[0] and "frames" not in per_file[0]
    assert_flat(per_file)
    rows = {name: rows[0] for name, rows in by_name(per_file).items()}
    assert set(rows) == {"portrait.jpg", "grey.png", LONG, "clip.mp4", "readme.txt"}
    assert len(per_file) == 5

    face = rows["portrait.jpg"]
    assert face["status"] == "ok" and face["whole_image"] == "false" and int(face["n_faces"]) >= 1
    x1, y1, x2, y2 = (float(face[k]) for k in ("x1", "y1", "x2", "y2"))
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 600
    assert face["face_score"] == face["score"]  # a photo's score is its top face's
    assert face["frame_index"] == "" == face["track"] and face["n_frames"] == ""

    grey = rows["grey.png"]  # whole image scored: no face columns
    assert grey["whole_image"] == "true" and grey["n_faces"] == "0" and grey["score"] != ""
    assert all(grey[k] == "" for k in ("x1", "y1", "x2", "y2", "face_score", "face_prob"))

    clip = rows["clip.mp4"]
    assert clip["kind"] == "video" and clip["n_frames"] == "3" and clip["duration_s"] != ""
    if clip["whole_image"] == "false":
        assert clip["frame_index"] != "" and clip["x1"] != ""

    skipped = rows["readme.txt"]
    assert skipped["status"] == "skipped" and skipped["note"]
    empty = ("verdict", "score", "n_faces", "whole_image", "n_frames", "x1", "face_score")
    assert all(skipped[k] == "" for k in empty)


def test_csv_per_face_rows(per_face, per_file):
    assert list(per_face[0]) == csv_fields(per_face=True)
    assert_flat(per_face)
    rows = by_name(per_face)
    files = {name: r[0] for name, r in by_name(per_file).items()}
    assert set(rows) == set(files)
    for name, face_rows in rows.items():
        n = int(files[name]["n_faces"] or 0)
        if files[name]["whole_image"] == "true" or n == 0:  # still one row, face columns empty
            assert len(face_rows) == 1 and face_rows[0]["face"] == "" == face_rows[0]["x1"]
            continue
        assert [r["face"] for r in face_rows] == [str(i) for i in range(len(face_rows))]
        for r in face_rows:  # the file's columns repeat on every row
            assert {k: r[k] for k in ("path", "score", "verdict")} == {
                k: files[name][k] for k in ("path", "score", "verdict")
            }
            assert r["x1"] and r["face_score"]
            assert (r["frame_index"] != "") == (files[name]["kind"] == "video")
            assert (r["track"] != "") == (files[name]["kind"] == "video")  # video faces: a track
        top = max(face_rows, key=lambda r: float(r["face_score"]))
        assert top["face_score"] == files[name]["face_score"]


def test_per_face_needs_csv(folder, tiny_checkpoint):
    for fmt in ("table", "jsonl", "json"):
        res = scan(str(folder), "-f", fmt, "--per-face", ckpt=tiny_checkpoint)
        assert res.exit_code == 2 and "--per-face" in res.stderr and res.stdout == ""


def test_csv_branch_columns_from_a_fused_model(tmp_path, portrait_rgb, tiny_checkpoint):
    import torch

    from forensics.models import create_model
    from forensics.preprocess import Preprocess
    from forensics.scoring import Calibration, Detector, DetectorSpec
    from trainers.detector.fusion import fuse_detectors

    torch.manual_seed(1)
    pre = Preprocess(input_size=64, fit="center", min_size=48)
    spec = DetectorSpec("spectral_patch", {}, pre, Calibration(), info={})
    spectral = Detector(create_model("spectral_patch"), spec, device="cpu")
    swap = Detector.from_checkpoint(tiny_checkpoint, device="cpu")
    fused = fuse_detectors([spectral, swap], names=["spectral", "face_swap"])
    model = fused.save(tmp_path / "fused.safetensors")
    save_image(tmp_path / "in" / "portrait.jpg", portrait_rgb, quality=90)
    save_image(tmp_path / "in" / "grey.png", np.full((96, 96, 3), 128, np.uint8))
    res = scan(str(tmp_path / "in"), "-f", "csv", "--per-face", ckpt=model)
    assert res.exit_code in (0, 1), res.output
    rows = parse(res.stdout)
    assert list(rows[0]) == csv_fields(["spectral", "face_swap"], per_face=True)
    assert_flat(rows)
    photo = by_name(rows)["portrait.jpg"]
    for r in photo:
        assert 0.0 <= float(r["branch_spectral"]) <= 1.0
        assert 0.0 <= float(r["branch_face_swap"]) <= 1.0
    (grey,) = by_name(rows)["grey.png"]
    assert grey["branch_spectral"] == "" == grey["branch_face_swap"]


# ----------------------------------------------------------------------------- table (CLI)
def test_table_is_relative_unwrapped_and_middle_truncated(folder, tiny_checkpoint):
    res = scan(str(folder), ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 4 + 5  # borders, header and one line per file: nothing wraps
    assert all(cell_width(line) <= console.width for line in lines)
    assert str(folder) not in res.stdout  # relative to the one folder scanned
    (long_row,) = [line for line in lines if "a_very_long" in line]
    assert ELLIPSIS in long_row.split("│")[1] and "end.jpg │" in long_row
    assert LONG not in res.stdout
    for name in ("portrait.jpg", "grey.png", "clip.mp4", "readme.txt"):
        assert sum(name in line for line in lines) == 1


def test_table_paths_as_given_for_several_inputs(folder, tiny_checkpoint):
    res = scan(str(folder / "grey.png"), str(folder / "readme.txt"), ckpt=tiny_checkpoint)
    assert res.exit_code in (0, 1), res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 4 + 2 and all(cell_width(line) <= console.width for line in lines)
    shown = [line.split("│")[1].strip() for line in lines if "│" in line]
    for cell, name in zip(shown, ("grey.png", "readme.txt"), strict=True):
        assert cell.endswith(name) and len(cell) > len(name)  # not made relative


# -------------------------------------------------------------------------- pure functions
def fused_record() -> dict:
    faces = [
        FaceResult([1.0, 2.0, 30.0, 40.0], 0.2, face_prob=0.99,
                   branches={"spectral": 0.2, "face_swap": 0.1}),
        FaceResult([50.0, 60.0, 90.0, 99.5], 0.7, face_prob=0.98,
                   branches={"spectral": 0.05, "face_swap": 0.7}),
    ]  # fmt: skip
    rec = ScanRecord("d/group.jpg", "image", "ok", score=0.7, verdict="fake", faces=faces)
    rec.n_faces, rec.threshold, rec.aggregate = 2, 0.5, "max_face"
    return rec.to_dict()


def test_csv_row_takes_the_top_face_and_its_branches():
    row = csv_row(fused_record(), ["spectral", "face_swap"])
    assert list(row) == csv_fields(["spectral", "face_swap"])
    assert [row[k] for k in ("x1", "y1", "x2", "y2")] == ["50.0", "60.0", "90.0", "99.5"]
    assert row["face_score"] == "0.7" and row["face_prob"] == "0.98"
    assert row["branch_spectral"] == "0.05" and row["branch_face_swap"] == "0.7"
    assert row["whole_image"] == "false" and row["frame_index"] == "" and row["error"] == ""
    assert csv_row(fused_record(), ["other"])["branch_other"] == ""  # not in the record


def test_csv_rows_per_face():
    rows = csv_rows(fused_record(), ["spectral", "face_swap"], per_face=True)
    assert [r["face"] for r in rows] == ["0", "1"]
    assert [r["branch_face_swap"] for r in rows] == ["0.1", "0.7"]
    assert all(r["score"] == "0.7" and r["path"] == "d/group.jpg" for r in rows)


def test_csv_rows_without_faces():
    whole = ScanRecord("g.png", "image", "ok", score=0.3, verdict="real", whole_image=True,
                       faces=[FaceResult([0, 0, 9, 9], 0.3)]).to_dict()  # fmt: skip
    (row,) = csv_rows(whole, ["spectral"], per_face=True)
    assert row["whole_image"] == "true" and row["score"] == "0.3"
    assert all(row[k] == "" for k in ("face", "x1", "face_score", "branch_spectral"))
    err = ScanRecord("x.jpg", "image", "error", error="truncated").to_dict()
    (row,) = csv_rows(err)
    assert row["error"] == "truncated"
    assert all(row[k] == "" for k in ("score", "verdict", "n_faces", "whole_image", "x1"))


def test_csv_rows_video_skips_whole_frame_scores():
    faces = [
        FaceResult([0, 0, 64, 64], 0.9, face_prob=None, frame_index=4),  # a faceless frame
        FaceResult([5, 5, 20, 20], 0.4, face_prob=0.97, frame_index=2),
    ]
    frames = [FrameResult(i, i / 2, 0.5, 1) for i in range(6)]
    rec = ScanRecord("v.mp4", "video", "ok", score=0.6, verdict="fake", faces=faces,
                     frames=frames, n_faces=1).to_dict()  # fmt: skip
    row = csv_row(rec)
    assert row["n_frames"] == "6" and row["frame_index"] == "2" and row["face_score"] == "0.4"
    assert [r["face"] for r in csv_rows(rec, per_face=True)] == ["1"]


def test_csv_cell():
    assert [csv_cell(v) for v in (None, True, False, 0, 0.25, "a")] == [
        "", "true", "false", "0", "0.25", "a"
    ]  # fmt: skip


def test_truncate_keeps_both_ends_in_the_middle_mode():
    assert truncate("short.jpg", 20, middle=True) == "short.jpg"
    cut = truncate(LONG, 20, middle=True)
    assert cell_width(cut) == 20 and ELLIPSIS in cut
    assert cut.startswith("a_very") and cut.endswith("end.jpg")
    assert truncate("abcdef", 4) == "abc" + ELLIPSIS
    wide = truncate("写真" * 10 + ".jpg", 11, middle=True)  # two cells per character
    assert cell_width(wide) <= 11 and wide.endswith(".jpg")
    assert truncate("abc", 0) == "" and truncate("abc", 1) == ELLIPSIS


def test_relative_path_and_printable():
    assert relative_path("photos/a/b.jpg", Path("photos")) == str(Path("a/b.jpg"))
    assert relative_path("photos/a/b.jpg", Path("photos/")) == str(Path("a/b.jpg"))
    assert relative_path("other/b.jpg", Path("photos")) == "other/b.jpg"
    assert relative_path("photos/b.jpg", None) == "photos/b.jpg"
    assert printable("line\nbreak\u202e.jpg") == "line\\nbreak\\u202e.jpg"
    assert printable("café.jpg") == "café.jpg"


def test_table_row_and_fit():
    rec = ScanRecord("scan/dir/" + LONG, "image", "ok", score=0.71, verdict="fake", n_faces=2)
    row = table_row(rec.to_dict(), Path("scan"))
    assert row == [f"dir/{LONG}", "image", "fake", "0.710", "2", ""]
    header = ["file", "kind", "verdict", "score", "faces", "note"]
    for width in (60, 80, 120):
        fitted = fit_table([header, row], width)
        total = sum(cell_width(c) for c in fitted[1]) + 3 * len(header) + 1
        assert total <= width and fitted[1][0].endswith("end.jpg") and fitted[1][1:] == row[1:]
    assert fit_table([header, row], 400) == [header, row]  # room enough: untouched

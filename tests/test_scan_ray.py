"""``--engine ray``: the same records as a local scan, resumable across engines, crash-safe.

One in-process Ray instance on loopback (2 CPUs, no dashboard) serves the whole module and is
stopped at the end; every scan starts its own actors.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.media import save_image

ray = pytest.importorskip("ray")

runner = CliRunner()
N_PHOTOS = 20
BAD = ("empty.jpg", "garbage.png", "truncated.jpg")


@pytest.fixture(scope="module")
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=100 * 2**20, logging_level=logging.ERROR)  # fmt: skip
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, portrait_rgb) -> Path:
    """20 crops of the public-domain portrait (JPEG and PNG, 3 sizes) and 3 bad files."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for i in range(N_PHOTOS):
        side = (160, 224, 288)[i % 3]
        y, x = rng.integers(0, portrait_rgb.shape[0] - side), rng.integers(0, 200)
        crop = portrait_rgb[y : y + side, x : x + side]
        save_image(d / f"p{i:02d}.{'jpg' if i % 2 else 'png'}", crop)
    (d / "empty.jpg").write_bytes(b"")
    (d / "garbage.png").write_bytes(b"this is not a png")
    (d / "truncated.jpg").write_bytes((d / "p01.jpg").read_bytes()[:600])
    return d


def scan(*args: str, ckpt: Path):
    return runner.invoke(app, ["scan", *args, "--model", str(ckpt), "--device", "cpu"])


def results(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def by_path(records: list[dict]) -> dict[str, dict]:
    out = {r["path"]: r for r in records}
    assert len(out) == len(records), "a file was recorded twice"
    return out


def assert_same(local: list[dict], other: list[dict]) -> None:
    a, b = by_path(local), by_path(other)
    assert a.keys() == b.keys()
    for path, ra in a.items():
        rb = b[path]
        for key in ("status", "verdict", "error", "kind", "n_faces", "size", "mtime", "model"):
            assert ra[key] == rb[key], (path, key)
        if ra["score"] is None:
            assert rb["score"] is None
        else:
            assert abs(ra["score"] - rb["score"]) <= 1e-5, path
        assert len(ra["faces"]) == len(rb["faces"])
        for fa, fb in zip(ra["faces"], rb["faces"], strict=True):
            assert abs(fa["score"] - fb["score"]) <= 1e-5
            assert np.allclose(fa["box"], fb["box"], atol=0.11)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, folder, tiny_checkpoint) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    res = scan(str(folder), "--out", str(out), "-f", "jsonl", ckpt=tiny_checkpoint)
    assert res.exit_code == 3, res.output  # the bad files
    return out


def test_ray_scan_gives_the_local_records(ray_cluster, tmp_path, folder, tiny_checkpoint,
                                          local_run):  # fmt: skip
    out = tmp_path / "out"
    res = scan(str(folder), "--out", str(out), "-f", "jsonl", "--engine", "ray",
               "--workers", "2", "--sort", "path", ckpt=tiny_checkpoint)  # fmt: skip
    assert res.exit_code == 3, res.output
    printed = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["path"] for r in printed] == sorted(r["path"] for r in printed)
    assert_same(results(local_run), results(out))
    assert_same(printed, results(out))
    errors = {Path(r["path"]).name: r["error"] for r in results(out) if r["status"] == "error"}
    assert sorted(errors) == sorted(BAD) and all(errors.values())
    for rec in results(out):  # pictures were written by the actors into --out
        pics = [rec["thumbnail"], *(f["heatmap"] for f in rec["faces"])]
        assert all((out / p).is_file() for p in pics if p)
    assert "30 files" not in res.stderr and f"{N_PHOTOS + 3} files" in res.stderr
    assert (out / "report.html").is_file()


def test_resume_across_engines(ray_cluster, tmp_path, folder, tiny_checkpoint, local_run):
    out = tmp_path / "out"
    out.mkdir()
    full = (local_run / "results.jsonl").read_bytes().splitlines(keepends=True)
    ok = [line for line in full if b'"status": "ok"' in line][:8]
    (out / "results.jsonl").write_bytes(b"".join(ok))  # a local scan killed after 8 files
    for name in ("thumbs", "heatmaps"):
        (out / name).mkdir()
        for f in (local_run / name).iterdir():
            (out / name / f.name).write_bytes(f.read_bytes())
    res = scan(str(folder), "--out", str(out), "--resume", "--engine", "ray",
               ckpt=tiny_checkpoint)  # fmt: skip
    assert res.exit_code == 3, res.output
    assert "(8 already recorded)" in res.stderr
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[:8] == ok and len(lines) == len(full)  # 15 scanned, each once
    assert_same(results(local_run), results(out))


def _library_scanner(checkpoint: Path, out: Path, workers: int = 2):
    from forensics.analysis import Analyzer
    from forensics.scan import Scanner
    from forensics.scan_ray import RayScanner, WorkerSpec
    from forensics.scan_setup import ScanConfig, make_face_detector
    from forensics.scoring import Detector

    config = ScanConfig(batch_size=4)
    detector = Detector.load(checkpoint, device="cpu")
    local = Scanner(Analyzer(detector, make_face_detector("cpu")), config, out_dir=out)
    spec = WorkerSpec(str(checkpoint), "cpu", "fp32", 256, config, str(out), str(Path.cwd()))
    return RayScanner(local, spec, workers=workers)


def _files(folder: Path) -> list[Path]:
    from forensics.scan_inputs import collect_inputs

    return collect_inputs([folder])


def test_a_dead_worker_loses_no_file(ray_cluster, tmp_path, folder, tiny_checkpoint, local_run):
    rs = _library_scanner(tiny_checkpoint, tmp_path / "out")
    killed = []

    def kill_first(done, total, rec):
        if not killed:
            killed.append(rs.actors[0])
            ray.kill(rs.actors[0])  # as if its node went away mid-scan

    recs = [r.to_dict() for r in rs.scan(_files(folder), on_record=kill_first)]
    assert killed and rs.replaced >= 1
    assert_same(results(local_run), recs)
    assert_same(recs, results(tmp_path / "out"))
    assert not rs.actors  # stopped at the end


def test_a_chunk_failing_twice_gets_error_records(ray_cluster, tmp_path, folder,
                                                  tiny_checkpoint):  # fmt: skip
    rs = _library_scanner(tiny_checkpoint, tmp_path / "out")
    new_actor = rs._new_actor

    def dead_actor():
        actor = new_actor()
        ray.kill(actor)
        return actor

    def kill_all(done, total, rec):
        if done == 1:
            rs._new_actor = dead_actor  # every replacement dies too
            for actor in rs.actors:
                ray.kill(actor)

    files = _files(folder)
    recs = [r.to_dict() for r in rs.scan(files, on_record=kill_all)]
    assert len(by_path(recs)) == len(files)  # every file has exactly one record
    crashed = [r for r in recs if "Ray worker" in (r["error"] or "")]
    assert crashed and all(r["status"] == "error" and r["size"] is not None for r in crashed)
    assert len(results(tmp_path / "out")) == len(files)


def test_too_many_workers_is_a_usage_error(ray_cluster, tmp_path, folder, tiny_checkpoint):
    res = scan(str(folder), "--engine", "ray", "--workers", "64", ckpt=tiny_checkpoint)
    assert res.exit_code == 2 and "--workers 64" in res.stderr


def test_gan_sample_same_files_for_any_worker_count(ray_cluster, tmp_path):
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        res = runner.invoke(app, ["gan", "sample", "--n", "7", "--batch", "2", "--seed", "3",
                                  "--out", str(out), "--engine", "ray", "--workers", workers,
                                  "--format", "json"])  # fmt: skip
        assert res.exit_code == 0, res.output
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert len(names) == 8 and names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    manifest = [json.loads(x) for x in (outs[0] / "manifest.jsonl").read_text().splitlines()]
    assert [r["index"] for r in manifest] == list(range(7))

"""A scan killed with SIGKILL and resumed equals an uninterrupted one; engine options.

The scans run as real ``forensics scan`` processes, killed with ``kill -9`` once
``results.jsonl`` holds a few records, then resumed with ``--resume``.
"""

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
from typer.testing import CliRunner

from forensics.cli.main import app
from forensics.media import save_image

runner = CliRunner()
N_FILES = 23
KILL_AFTER = 5
FORENSICS = [sys.executable, "-c", "import sys; sys.argv[0] = 'forensics'; "
             "from forensics.cli.main import main; main()"]  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory, portrait_rgb) -> Path:
    """20 crops of the public-domain portrait plus 3 bad files."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(1)
    for i in range(N_FILES - 3):
        side = (192, 256)[i % 2]
        y, x = rng.integers(0, portrait_rgb.shape[0] - side), rng.integers(0, 200)
        save_image(d / f"p{i:02d}.jpg", portrait_rgb[y : y + side, x : x + side])
    (d / "empty.jpg").write_bytes(b"")
    (d / "garbage.png").write_bytes(b"not a png")
    (d / "truncated.jpg").write_bytes((d / "p00.jpg").read_bytes()[:500])
    return d


def scan_cmd(folder: Path, out: Path, ckpt: Path, *extra: str) -> list[str]:
    return [*FORENSICS, "scan", str(folder), "--out", str(out), "--model", str(ckpt),
            "--device", "cpu", "--batch-size", "1", "-f", "jsonl", *extra]  # fmt: skip


def whole_lines(path: Path) -> list[bytes]:
    """The complete (newline-terminated) lines of a file."""
    data = path.read_bytes() if path.is_file() else b""
    return data.split(b"\n")[:-1]


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_after(cmd: list[str], results: Path, n: int, timeout: float = 120.0) -> int:
    """Run ``cmd``; SIGKILL it once ``results`` holds ``n`` records; return how many it held.

    Processes it started (a local Ray instance's daemons) are killed too, by id, as they
    would otherwise linger for a minute after their driver's death.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + timeout
    tree: list[int] = []
    try:
        while len(whole_lines(results)) < n:
            assert proc.poll() is None, "the scan ended before it could be killed"
            assert time.monotonic() < deadline, "the scan wrote nothing in time"
            time.sleep(0.002)
        tree = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        time.sleep(0.5 if tree else 0)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    assert proc.returncode == -signal.SIGKILL
    return len(whole_lines(results))


def canonical(out: Path) -> list[str]:
    recs = [json.loads(x) for x in whole_lines(out / "results.jsonl")]
    return sorted(json.dumps(r, sort_keys=True) for r in recs)


def test_sigkill_then_resume_equals_an_uninterrupted_scan(tmp_path, folder, tiny_checkpoint):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    done = subprocess.run(scan_cmd(folder, full, tiny_checkpoint), env=env, capture_output=True)
    assert done.returncode == 3, done.stderr  # the 3 bad files

    out = tmp_path / "killed"
    held = kill_after(scan_cmd(folder, out, tiny_checkpoint), out / "results.jsonl", KILL_AFTER)
    assert KILL_AFTER <= held < N_FILES
    before = whole_lines(out / "results.jsonl")
    resumed = subprocess.run(scan_cmd(folder, out, tiny_checkpoint, "--resume"), env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 3, resumed.stderr
    kept = [x for x in before if json.loads(x)["status"] != "error"]  # errors are retried
    assert f"({len(kept)} already recorded)" in resumed.stderr
    after = whole_lines(out / "results.jsonl")
    assert after[: len(kept)] == kept  # the records written before the kill, as they were
    assert len(after) == N_FILES  # the rest were scanned once each
    assert len(resumed.stdout.splitlines()) == N_FILES
    assert canonical(out) == canonical(full)
    pictures = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file()}
    assert pictures == expected  # no orphan heatmap of the file being scored at the kill


@pytest.mark.slow  # 25-45 s on 2 cores: its own Ray instance, started twice
def test_sigkill_of_a_ray_scan_then_resume(tmp_path, folder, tiny_checkpoint):
    pytest.importorskip("ray")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    done = subprocess.run(scan_cmd(folder, full, tiny_checkpoint), env=env, capture_output=True)
    assert done.returncode == 3, done.stderr
    out = tmp_path / "killed"
    ray_args = ("--engine", "ray", "--workers", "1")
    cmd = scan_cmd(folder, out, tiny_checkpoint, *ray_args)
    held = kill_after(cmd, out / "results.jsonl", KILL_AFTER)  # its own local Ray instance
    assert KILL_AFTER <= held < N_FILES
    before = whole_lines(out / "results.jsonl")
    resumed = subprocess.run(scan_cmd(folder, out, tiny_checkpoint, "--resume", *ray_args),
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 3, resumed.stderr
    kept = [x for x in before if json.loads(x)["status"] != "error"]
    assert f"({len(kept)} already recorded)" in resumed.stderr
    after = whole_lines(out / "results.jsonl")
    assert after[: len(kept)] == kept and len(after) == N_FILES
    assert canonical(out) == canonical(full)


def test_sort_path_and_engine_options(folder, tiny_checkpoint, monkeypatch):
    args = ["scan", str(folder), "--model", str(tiny_checkpoint), "--device", "cpu"]
    res = runner.invoke(app, [*args, "-f", "jsonl", "--sort", "path"])
    assert res.exit_code == 3, res.output
    paths = [json.loads(x)["path"] for x in res.stdout.splitlines()]
    assert len(paths) == N_FILES and paths == sorted(paths)
    res = runner.invoke(app, [*args, "--workers", "2"])
    assert res.exit_code == 2 and "--engine ray" in res.stderr
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    res = runner.invoke(app, [*args, "--engine", "ray"])
    assert res.exit_code == 2 and "pip install 'forensics[ray]'" in res.stderr
    res = runner.invoke(app, ["gan", "sample", "--n", "2", "--engine", "ray"])
    assert res.exit_code == 2 and "pip install 'forensics[ray]'" in res.stderr


def test_scan_help_mentions_the_engines():
    res = runner.invoke(app, ["scan", "--help"])
    assert res.exit_code == 0
    assert "--engine" in res.output and "--sort" in res.output and "--resume" in res.output

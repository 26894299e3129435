"""Issue 19: upscaled retry for small face crops, and help texts that fit 80 columns."""

from __future__ import annotations

import re

import numpy as np
import pytest

from forensics.faces import FaceDetector
from forensics.media import resize_rgb
from forensics.scan_setup import make_face_detector


@pytest.fixture(scope="module")
def scan_fd() -> FaceDetector:
    return make_face_detector("cpu")


def small_face_crop(portrait: np.ndarray, fd: FaceDetector) -> np.ndarray:
    """A tight grey face crop of the portrait shrunk to 92x112 (a face-filled ID crop)."""
    x1, y1, x2, y2 = fd.detect(portrait)[0].box
    w, h = x2 - x1, y2 - y1
    crop = portrait[int(y1 - 0.1 * h) : int(y2 + 0.1 * h), int(x1 - 0.1 * w) : int(x2 + 0.1 * w)]
    small = resize_rgb(crop, (92, 112))
    return np.ascontiguousarray(small.mean(axis=2, keepdims=True).repeat(3, axis=2), np.uint8)


def test_small_crop_found_only_with_retry(portrait_rgb, scan_fd) -> None:
    small = small_face_crop(portrait_rgb, scan_fd)
    scan_fd.retry_small = False
    try:
        without = scan_fd.detect(small)
    finally:
        scan_fd.retry_small = True
    faces = scan_fd.detect(small)
    assert without == []  # the plain pass misses this face-filled crop
    assert faces, "the upscaled retry should find the face"
    x1, y1, x2, y2 = faces[0].box
    assert 0 <= x1 < x2 <= 92 and 0 <= y1 < y2 <= 112
    assert (x2 - x1) > 30  # a face-sized box in original pixels
    for x, y in faces[0].landmarks:
        assert 0 <= x <= 92 and 0 <= y <= 112


def test_no_retry_for_found_faces_or_big_images(portrait_rgb, scan_fd, monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = FaceDetector._detect_scaled

    def spy(self, small, scales):
        calls.extend(im.shape for im in small)
        return real(self, small, scales)

    monkeypatch.setattr(FaceDetector, "_detect_scaled", spy)
    scan_fd.retry_small = True
    big_blank = np.full((400, 400, 3), 128, np.uint8)
    found = scan_fd.detect_many([portrait_rgb, big_blank])
    assert found[0] and found[1] == []
    assert len(calls) == 2  # one pass each, no retry
    assert scan_fd._upscale_factor(big_blank) <= 1.0
    assert scan_fd._upscale_factor(np.zeros((100, 300, 3), np.uint8)) <= 1.0  # not face-shaped


COMMANDS = [
    [],
    ["scan"],
    ["verify-ids"],
    ["gan"],
    ["gan", "train"],
    ["gan", "sample"],
    ["gan", "eval"],
    ["detector"],
    ["detector", "train"],
    ["detector", "eval"],
    ["detector", "ensemble"],
    ["detector", "fuse"],
    ["detector", "branch"],
    ["detector", "threshold"],
]

# Rich may shorten a long option *name* in its narrow name column ("--holdout-gene…"); that
# is layout, not help text. Any other "…" means a help text or example was cut off.
NAME_CUT = re.compile(r"--[\w,-]*…")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "root")
def test_help_fits_80_columns(args: list[str]) -> None:
    from typer.testing import CliRunner

    from forensics.cli.main import app

    try:
        runner = CliRunner(env={"COLUMNS": "80"}, terminal_width=80)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner(env={"COLUMNS": "80"})
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    text = NAME_CUT.sub("", result.output)
    assert "…" not in text, result.output
    assert "../shared" not in result.output


def test_reflow_joins_prose_and_keeps_examples() -> None:
    from forensics.cli.common import reflow_help

    doc = """Do a thing.

        First line of prose
        goes on here.

        Examples:
          tool do --this \\
              --that
          # a comment
        """
    assert reflow_help(doc) == (
        "Do a thing.\n\nFirst line of prose goes on here.\n\n"
        "Examples:\n  tool do --this \\\n      --that\n  # a comment"
    )


def test_every_command_help_is_reflowed_and_examples_stay_indented() -> None:
    from typer.testing import CliRunner

    from forensics.cli.main import app

    def infos(a):
        yield from a.registered_commands
        for g in a.registered_groups:
            yield from infos(g.typer_instance)

    for info in infos(app):
        for par in info.help.split("\n\n"):
            if "\n" in par:  # only example or list paragraphs keep their line breaks
                assert par.startswith("Examples:") or par.startswith(" "), par
    out = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["detector", "train", "--help"]).output
    lines = out.splitlines()
    first = "forensics detector train -o runs/det --real"
    i = next(k for k, line in enumerate(lines) if first in line)
    assert lines[i].rstrip().endswith("\\")  # a copyable continuation ...
    assert lines[i + 1].startswith(" " * 5) and "--fake fakes/resynth" in lines[i + 1]  # indented


def test_scan_detector_retries_small_crops_by_default(portrait_rgb) -> None:
    # On since 2026-12-06: re-measured, the dev DFDC crops' AUC did not change with it.
    fd = make_face_detector("cpu")
    assert fd.retry_small is True
    assert fd.detect(small_face_crop(portrait_rgb, fd)), "a 92x112 face crop is found"

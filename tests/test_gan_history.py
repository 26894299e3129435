"""Collapse caught while training: the rule, the history plot, --stop-on-collapse, gan eval."""

from __future__ import annotations

import json

import pytest
from test_gan_metrics import SHARED_WEIGHTS
from test_gan_train import _cfg
from typer.testing import CliRunner

from forensics.cli.main import app
from trainers.gan.evaluate import Evaluator
from trainers.gan.history import collapse_figure, collapsed, history_table, read_history
from trainers.gan.train import train

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_collapse_rule_needs_a_fall_that_stays():
    assert collapsed([0.5, 0.6, 0.7, 0.2, 0.2, 0.2], drop=0.5, patience=3)
    assert not collapsed([0.5, 0.6, 0.7, 0.2, 0.5, 0.2], drop=0.5, patience=3)  # it recovered
    assert not collapsed([0.7, 0.2, 0.2], drop=0.5, patience=3)  # nothing before the fall
    assert not collapsed([0.6, 0.5, 0.45, 0.4], drop=0.5, patience=3)  # slow drift, not halved


def test_stop_on_collapse_ends_the_run_and_history_shows_why(tmp_path, tiny_faces, monkeypatch):
    coverage = iter([0.8, 0.9, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1])
    original = Evaluator.__call__

    def falling(self, generator):
        out = original(self, generator)
        out["coverage"] = next(coverage)  # a run whose samples stop covering the reals
        out["diversity"] = 0.5  # held steady: only coverage falls
        return out

    monkeypatch.setattr(Evaluator, "__call__", falling)
    cfg = _cfg(tiny_faces, steps=20, eval_every=2, stop_on_collapse=True)
    result = train(cfg, tmp_path / "run")
    assert result.stopped == "collapse" and result.step == 10  # evals at 2..10: 0.3, 0.2, 0.1
    assert (tmp_path / "run" / "history.png").stat().st_size > 1000
    rows = history_table(read_history(tmp_path / "run")["eval"])
    assert [r["coverage"] for r in rows] == [0.8, 0.9, 0.3, 0.2, 0.1]
    stop = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert stop[-1] == {**stop[-1], "event": "stop", "stopped": "collapse"}
    assert stop[-2] == {**stop[-2], "event": "collapse", "figure": "coverage"}


def test_collapse_figure_catches_a_run_that_never_covered_in_feature_space():
    # The README's stylegan_lite run: feature coverage 0 throughout, so it never *fell*;
    # its diversity did (0.48 -> 0.08) while pixel coverage only dipped.
    history = [(0.13, 0.31), (0.30, 0.39), (0.45, 0.48), (0.41, 0.33), (0.25, 0.17), (0.18, 0.10)]
    history.append((0.19, 0.08))
    rows = [{"feat_coverage": 0.0, "coverage": c, "diversity": d} for c, d in history]
    assert collapse_figure(rows[:6]) is None  # two low evaluations are not yet three
    assert collapse_figure(rows) == "diversity"
    feats = (0.3, 0.5, 0.6, 0.6, 0.5)
    healthy = [{"feat_coverage": f, "coverage": 0.5, "diversity": 0.6} for f in feats]
    assert collapse_figure(healthy) is None


def test_without_the_flag_a_falling_run_goes_on(tmp_path, tiny_faces, monkeypatch):
    original = Evaluator.__call__
    monkeypatch.setattr(Evaluator, "__call__", lambda s, g: {**original(s, g), "coverage": 0.0})
    assert train(_cfg(tiny_faces, steps=6, eval_every=1), tmp_path / "run").stopped == "steps"


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="no ../shared/weights")
def test_feature_space_figures_during_training_and_in_gan_eval(tmp_path, tiny_faces):
    cfg = _cfg(tiny_faces, steps=4, eval_every=2, features=str(SHARED_WEIGHTS))
    train(cfg, tmp_path / "run")
    evals = read_history(tmp_path / "run")["eval"]
    assert len(evals) == 2
    for row in evals:
        assert 0 <= row["feat_coverage"] <= 1 and row["feat_density"] >= 0
        assert row["cross_lid"] > 0
    res = runner.invoke(app, ["gan", "eval", str(tmp_path / "run"), "--real", str(tiny_faces),
                              "--n", "8", "--device", "cpu", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    history = json.loads(res.stdout)["history"]
    assert [r["step"] for r in history] == [2, 4] and "feat_coverage" in history[0]
    table = runner.invoke(app, ["gan", "eval", str(tmp_path / "run"), "--real", str(tiny_faces),
                                "--n", "8", "--device", "cpu"])  # fmt: skip
    assert "training history" in table.stdout


def test_bad_features_path_is_a_usage_error(tmp_path, tiny_faces):
    args = ["gan", "train", "--data", str(tiny_faces), "--out", str(tmp_path / "r")]
    res = runner.invoke(app, [*args, "--features", str(tmp_path / "none.safetensors")])
    assert res.exit_code == 2

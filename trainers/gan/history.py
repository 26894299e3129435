"""A GAN run's history: its evaluations and losses over time, the collapse rule, the plot.

The pure functions read ``metrics.jsonl`` rows (``event: train`` and ``event: eval``) and
return lists and flags; :func:`plot_history` renders them to ``history.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

EVAL_KEYS = ("face_rate", "coverage", "precision", "diversity", "feat_coverage",
             "feat_density", "cross_lid")  # fmt: skip
"""Evaluation figures shown in the history, when a run has them."""
LOSS_KEYS = ("d_loss", "g_loss")


def read_history(run_dir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """``{"eval": [...], "train": [...]}`` rows of a run's ``metrics.jsonl`` (torn lines skipped).

    Raises:
        FileNotFoundError: The folder has no ``metrics.jsonl``.

    """
    path = Path(run_dir) / "metrics.jsonl"
    rows: dict[str, list[dict[str, Any]]] = {"eval": [], "train": []}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("event") in rows:
                rows[row["event"]].append(row)
    return rows


COLLAPSE_KEYS = ("feat_coverage", "coverage", "diversity")
"""Figures the collapse rule watches: a fall of any one of them counts."""


def collapsed(values: list[float], drop: float = 0.5, patience: int = 3) -> bool:
    """Whether coverage fell below ``drop`` times its earlier best and stayed there.

    Args:
        values: Coverage at each evaluation so far, oldest first.
        drop: Fraction of the best value that counts as fallen.
        patience: The last this many values must all be below ``drop * best``.

    """
    if len(values) <= patience:
        return False
    best = max(values[:-patience])
    return best > 0 and all(v < drop * best for v in values[-patience:])


def collapse_figure(
    evals: list[dict[str, Any]], drop: float = 0.5, patience: int = 3
) -> str | None:
    """The first figure of :data:`COLLAPSE_KEYS` that :func:`collapsed` says fell, or ``None``.

    Feature-space coverage is the sharpest sign, but a run whose samples cover no real photo's
    feature neighbourhood from its first evaluation never *falls* on it; pixel coverage and
    diversity still fall when such a run narrows to one face (the ``stylegan_lite`` run of the
    README's family table: diversity 0.48 at step 750, 0.08 at step 1,600).

    Args:
        evals: The run's evaluation rows, oldest first.
        drop: Fraction of a figure's earlier best that counts as fallen.
        patience: Evaluations in a row the figure must stay down.

    """
    for key in COLLAPSE_KEYS:
        values = [float(r[key]) for r in evals if r.get(key) is not None]
        if collapsed(values, drop, patience):
            return key
    return None


def history_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per evaluation: ``step`` and the figures of :data:`EVAL_KEYS` it has."""
    keys = [k for k in EVAL_KEYS if any(r.get(k) is not None for r in rows)]
    return [{"step": r.get("step"), **{k: r.get(k) for k in keys}} for r in rows]


def plot_history(history: dict[str, list[dict[str, Any]]], path: str | os.PathLike) -> Path:
    """Losses (top) and evaluation figures (bottom) against steps, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = history["eval"]
    lids = [(r["step"], r["cross_lid"]) for r in evals if r.get("cross_lid") is not None]
    rows = 3 if lids else 2
    fig, axes = plt.subplots(rows, 1, figsize=(7.5, 2.4 * rows), sharex=True)
    top, middle = axes[0], axes[1]
    for key in LOSS_KEYS:
        pts = [(r["step"], r[key]) for r in history["train"] if r.get(key) is not None]
        if pts:
            top.plot(*zip(*pts, strict=True), label=key, lw=1)
    top.set_ylabel("loss")
    for key in EVAL_KEYS[:-1]:  # all but CrossLID: shares in 0..1
        pts = [(r["step"], r[key]) for r in evals if r.get(key) is not None]
        if pts:
            middle.plot(*zip(*pts, strict=True), marker=".", label=key, lw=1)
    middle.set_ylabel("higher is better")
    if lids:
        axes[2].plot(*zip(*lids, strict=True), marker=".", color="grey", label="cross_lid", lw=1)
        axes[2].set_ylabel("lower is better")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
    return out

"""Plots for scan results, drawn off-screen with matplotlib's Agg backend (imported lazily)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def video_timeline_png(
    path: str | os.PathLike,
    times_s: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    title: str = "",
    marked: Sequence[float] = (),
) -> Path:
    """Draw a video's per-frame scores over time and save them as a PNG.

    Args:
        path: Destination PNG; parent folders are created.
        times_s: Frame times in seconds.
        scores: Frame scores (calibrated probabilities), one per time.
        threshold: Decision threshold, drawn as a dashed line.
        title: Plot title (plain text, e.g. the file name).
        marked: Times of the frames whose heatmaps were written (drawn as red dots).

    Returns:
        The written path.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.0, 2.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(list(times_s), list(scores), marker="o", markersize=3, linewidth=1.2, color="#1565c0")
    ax.axhline(threshold, linestyle="--", linewidth=1.0, color="#b00020", label="threshold")
    marks = [(t, s) for t, s in zip(times_s, scores, strict=True) if t in set(marked)]
    if marks:
        ax.scatter(*zip(*marks, strict=True), color="#b00020", zorder=3, s=18, label="heatmaps")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(synthetic)")
    if title:
        ax.set_title(title.replace("$", r"\$"), fontsize=9)  # no mathtext from file names
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path

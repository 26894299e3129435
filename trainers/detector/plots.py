"""ROC curves and reliability diagrams as PNG (matplotlib's Agg backend, imported lazily)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .metrics import reliability, roc_auc, roc_points


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _plain(text: str) -> str:
    return text.replace("$", r"\$")  # no mathtext from file names


def roc_png(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str = "",
) -> Path:
    """Draw one ROC curve per ``name -> (labels, scores)`` (log-scaled FPR axis) to a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = _figure((5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for name, (labels, scores) in curves.items():
        fpr, tpr = roc_points(labels, scores)
        auc = roc_auc(labels, scores)
        ax.plot(np.maximum(fpr, 1e-4), tpr, linewidth=1.5, label=_plain(f"{name} (AUC {auc:.3f})"))
    ax.axvline(0.01, linestyle=":", color="grey", linewidth=1.0)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false-positive rate (real called fake)")
    ax.set_ylabel("true-positive rate (fake caught)")
    return _finish(fig, ax, path, title, "lower right")


def reliability_png(
    path: str | os.PathLike,
    labels: np.ndarray,
    probs: np.ndarray,
    n_bins: int = 10,
    title: str = "",
) -> Path:
    """Draw a reliability diagram (predicted probability vs observed fake rate) to a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conf, freq, count = reliability(labels, probs, n_bins)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    ok = count > 0
    fig = _figure((4.8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1.0, label="perfect")
    ax.bar(
        centers[ok],
        freq[ok],
        width=1.0 / n_bins,
        alpha=0.6,
        edgecolor="black",
        label="observed fake rate",
    )
    ax.plot(conf[ok], freq[ok], marker="o", color="#b00020", linewidth=1.2, label="mean prob")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(synthetic)")
    ax.set_ylabel("observed share of fakes")
    return _finish(fig, ax, path, title, "upper left")


def _finish(fig, ax, path: Path, title: str, legend_loc: str) -> Path:
    """Title, grid and legend, then save the figure as PNG to ``path``."""
    if title:
        ax.set_title(_plain(title), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend_loc, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path

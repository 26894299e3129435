"""Plots for scan results, drawn off-screen with matplotlib's Agg backend (imported lazily).

The figures are built by functions that return them (:func:`video_timeline_figure`,
:func:`track_curve_figure`), and only the ``*_png`` functions write files; which frames to
mark is a pure function (:func:`shown_frames`, :func:`forensics.tracks.peak_step`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LINE = "#1565c0"
HOT = "#b00020"
BAND = "#e65100"


def shown_frames(
    times_s: Sequence[float], scores: Sequence[float], marked: Sequence[float]
) -> list[tuple[int, float, float]]:
    """The marked frames as ``(rank, time, score)``, most suspicious first.

    The rank (1 = highest score; earlier frame first on ties) is the ``#n`` the scan report
    gives each shown frame, since the scan lists them in that order.

    Args:
        times_s: Frame times in seconds.
        scores: Frame scores, one per time.
        marked: Times of the frames shown in the report (others are ignored).

    """
    wanted = set(marked)
    picked = [(t, s) for t, s in zip(times_s, scores, strict=True) if t in wanted]
    picked.sort(key=lambda ts: (-ts[1], ts[0]))
    return [(i, t, s) for i, (t, s) in enumerate(picked, start=1)]


def video_timeline_figure(
    times_s: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    title: str = "",
    marked: Sequence[float] = (),
) -> Figure:
    """A video's per-frame scores over time, with the threshold and the frames shown.

    The threshold is a dashed line labelled with its value, the region above it (a fake
    verdict) is shaded, and each frame shown in the report gets a ring, a dotted vertical
    line and its ``#n`` above the plot. The legend sits to the right of the axes, off the
    data.

    Args:
        times_s: Frame times in seconds.
        scores: Frame scores (calibrated probabilities), one per time.
        threshold: Decision threshold.
        title: Plot title (plain text, e.g. the file name).
        marked: Times of the frames whose faces the report shows.

    Returns:
        The figure (not saved).

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 2.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.axhspan(threshold, 1.02, color=HOT, alpha=0.07, linewidth=0, label="above threshold")
    ax.plot(list(times_s), list(scores), marker="o", markersize=3, linewidth=1.2, color=LINE,
            label="frame score")  # fmt: skip
    ax.axhline(threshold, linestyle="--", linewidth=1.0, color=HOT,
               label=f"threshold {threshold:.3f}")  # fmt: skip
    shown = shown_frames(times_s, scores, marked)
    if shown:
        _, ts, ss = zip(*shown, strict=True)
        ax.scatter(ts, ss, s=70, facecolors="none", edgecolors=HOT, linewidths=1.5, zorder=3,
                   label="frames shown (#n)")  # fmt: skip
        top = ax.get_xaxis_transform()  # x in data, y in axes fraction
        for rank, t, _ in shown:
            ax.axvline(t, color=HOT, linestyle=":", linewidth=0.9, zorder=1)
            ax.text(t, 1.02, f"#{rank}", transform=top, ha="center", va="bottom", fontsize=8,
                    color=HOT)  # fmt: skip
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(synthetic)")
    if title:  # no mathtext from file names
        ax.set_title(title.replace("$", r"\$"), fontsize=9, loc="left", pad=14)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8,
              frameon=False)  # fmt: skip
    return fig


def video_timeline_png(
    path: str | os.PathLike,
    times_s: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    title: str = "",
    marked: Sequence[float] = (),
) -> Path:
    """Draw :func:`video_timeline_figure` and save it as a PNG.

    Args:
        path: Destination PNG; parent folders are created.
        times_s: Frame times in seconds.
        scores: Frame scores (calibrated probabilities), one per time.
        threshold: Decision threshold.
        title: Plot title (plain text, e.g. the file name).
        marked: Times of the frames whose faces the report shows.

    Returns:
        The written path.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video_timeline_figure(times_s, scores, threshold, title, marked).savefig(path, format="png")
    return path


def track_curve_figure(
    times_s: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    band_low: float | None = None,
    title: str = "",
) -> tuple[Figure, int]:
    """One face track's scores over time, with the threshold, the band and its peak.

    The threshold is a dashed line, the region above it shaded; the uncertainty band
    ``[band_low, threshold)``, when the file has one, is shaded amber; the peak (highest
    score, earliest on ties: :func:`forensics.tracks.peak_step`) gets a star (artist id
    ``"peak"``) and its score and time as a label.

    Args:
        times_s: Times (seconds) of the track's faces, in order.
        scores: The track's face scores, one per time (at least one).
        threshold: Decision threshold.
        band_low: Start of the uncertainty band, or ``None`` without one.
        title: Plot title (plain text, e.g. ``"track 0"``).

    Returns:
        ``(figure, peak)``: the figure (not saved) and the peak's position in ``scores``.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from forensics.tracks import peak_step

    ts, ss = [float(t) for t in times_s], [float(s) for s in scores]
    peak = peak_step(ss)
    fig = Figure(figsize=(4.2, 1.9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.axhspan(threshold, 1.02, color=HOT, alpha=0.07, linewidth=0)
    if band_low is not None and band_low < threshold:
        ax.axhspan(band_low, threshold, color=BAND, alpha=0.12, linewidth=0)
    ax.plot(ts, ss, marker="o", markersize=3, linewidth=1.2, color=LINE)
    ax.axhline(threshold, linestyle="--", linewidth=1.0, color=HOT)
    ax.scatter([ts[peak]], [ss[peak]], s=110, marker="*", color=HOT, zorder=3, gid="peak")
    left = peak > 0 and ts[peak] > (ts[0] + ts[-1]) / 2  # the label goes towards the middle
    ax.annotate(f"peak {ss[peak]:.3f} @ {ts[peak]:.1f} s", (ts[peak], ss[peak]),
                xytext=(-9 if left else 9, -9 if ss[peak] > 0.5 else 9),
                textcoords="offset points", ha="right" if left else "left", va="center",
                fontsize=7, color=HOT, bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                             "ec": "none", "alpha": 0.8})  # fmt: skip
    ax.set_ylim(-0.02, 1.02)
    if len(ts) == 1 or ts[0] == ts[-1]:
        ax.set_xlim(ts[0] - 0.5, ts[0] + 0.5)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("P(synthetic)", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:  # no mathtext from file names
        ax.set_title(title.replace("$", r"\$"), fontsize=8, loc="left")
    ax.grid(alpha=0.3)
    return fig, peak


def track_curve_png(
    path: str | os.PathLike,
    times_s: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    band_low: float | None = None,
    title: str = "",
) -> Path:
    """Draw :func:`track_curve_figure` and save it as a PNG (parent folders created).

    Returns:
        The written path.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, _ = track_curve_figure(times_s, scores, threshold, band_low, title)
    fig.savefig(path, format="png")
    return path

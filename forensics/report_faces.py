"""The faces in the scan report: what drew each heatmap, the colour legend and each face's HTML.

Every face is shown side by side as the scored crop, the same crop under its evidence
overlay, and a small bar chart of its probabilities (the face score and, for a fused
detector, every branch's). A caption names the frame (videos) and says which model or
branch drew the map and how it read the crop (:func:`describe_heatmap`, stored in the
record as ``heatmap_source`` when the face is scored). Functions here return strings;
nothing is written to disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from forensics.html import css_gradient, esc, fmt3, prob_bar

if TYPE_CHECKING:
    from forensics.analysis import ScoredFace
    from forensics.preprocess import Preprocess
    from forensics.scoring import Detector

LEGEND_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)

FACE_STYLE = """
.faces{display:flex;flex-wrap:wrap;gap:.8rem 1.5rem;margin-bottom:.4rem}
.face{margin:0;display:flex;gap:.6rem;align-items:flex-start;max-width:46rem}
.face-views{display:flex;gap:.3rem;flex:none}.face-views figure{margin:0}
.face-views img{width:128px;height:128px;object-fit:contain;background:#eee;border-radius:3px}
.face-views figcaption{font-size:.75em;color:#555}
.face>figcaption{font-size:.85em;min-width:14rem;max-width:22rem}
.face .head{font-size:.85em;color:#555}.face .source{color:#555;font-size:.9em;margin-top:.2rem}
.frames-head{font-size:.85em;color:#555;margin:.2rem 0}tr.file>td:nth-child(2){min-width:12rem}
"""
"""CSS for :func:`face_figure` (with :data:`forensics.html.BAR_STYLE`)."""


def img_link(src: str | None, alt: str) -> str:
    """An image (relative ``src``) linked to itself; empty without ``src``. Both escaped."""
    if not src:
        return ""
    return f"<a href='{esc(src)}'><img src='{esc(src)}' alt='{esc(alt)}' loading='lazy'></a>"


# --------------------------------------------------------------------- what drew the map
def _px(h: int, w: int) -> str:
    return f"{w}-px" if h == w else f"{w}×{h}-px"


def describe_model(arch: str, arch_kwargs: Mapping[str, Any]) -> str:
    """A short name for a detector architecture, e.g. ``patch_resnet (resnet18)``."""
    if arch == "ensemble":
        members = [str(m.get("arch", "?")) for m in arch_kwargs.get("members") or []]
        if members and len(set(members)) == 1:
            return f"{len(members)} {members[0]} models averaged"
        return " + ".join(members) + " averaged" if members else "an ensemble"
    backbone = arch_kwargs.get("backbone")
    return f"{arch} ({backbone})" if backbone else arch


def describe_region(pre: Preprocess, shape: Sequence[int], noun: str = "crop") -> str:
    """How ``pre`` turns a crop of ``shape`` into the model's input, in words.

    Args:
        pre: The model's (or branch's) preprocessing.
        shape: The crop's ``(height, width, ...)``.
        noun: What the crop is (``"crop"``, or ``"image"`` when no face was found).

    Returns:
        E.g. ``"the whole 180-px crop resized to 128 px"`` or ``"the central 256-px window
        of the 412-px crop, at native resolution (the rest is not scored)"``.

    """
    from forensics.media import shrunk_shape

    h, w = int(shape[0]), int(shape[1])
    if pre.fit == "resize":
        steps = []
        if pre.score_resize and min(h, w) > pre.score_resize:
            steps.append(f"shrunk to {pre.score_resize} px")
        if pre.score_jpeg:
            steps.append(f"JPEG-compressed at quality {pre.score_jpeg}")
        s = pre.input_size
        steps.append("taken as it is" if (h, w) == (s, s) and not steps else f"resized to {s} px")
        return f"the whole {_px(h, w)} {noun} " + ", then ".join(steps)
    sh, sw = shrunk_shape((h, w), pre.max_side)
    lead = f"the {_px(h, w)} {noun}"
    if (sh, sw) != (h, w):
        lead += f" shrunk to {_px(sh, sw)}"
    s = pre.side((sh, sw))
    if (sh, sw) == (s, s):
        return f"{lead}, whole, at native resolution"
    if min(sh, sw) >= s:
        return f"the central {s}-px window of {lead}, at native resolution (the rest is not scored)"
    if max(sh, sw) <= s:
        return f"{lead} mirror-padded to {s} px, at native resolution"
    return f"a central {s}-px window of {lead}, cut and mirror-padded, at native resolution"


def describe_heatmap(detector: Detector, scored: ScoredFace) -> str:
    """Which model or branch drew a face's evidence map, why, and how it read the crop.

    A plain (or ensemble) detector draws every map itself. A fused detector
    (:mod:`forensics.fusion`) shows the map of the branch that scored the face highest,
    whatever its combine rule; when branches tie (saturated probabilities), all tied ones are
    named, since the map is that of the one with the larger logit.

    Args:
        detector: The detector that scored the face.
        scored: The scored face (its crop's shape and its prediction are used).

    Returns:
        One line, e.g. ``"spectral branch, which scored the face highest (0.998): patch logits of
        3 spectral_multiscale models averaged on the 64-px crop mirror-padded to 128 px, at
        native resolution"``.

    """
    noun = "image (no face found)" if scored.face is None else "crop"
    shape = scored.crop.shape
    specs = getattr(detector.model, "specs", None)
    branches = scored.prediction.branches
    if not specs or not branches:
        spec = detector.spec
        region = describe_region(detector.preprocess, shape, noun)
        return f"patch logits of {describe_model(spec.arch, spec.arch_kwargs)} on {region}"
    names = [str(m["name"]) for m in specs]
    top = max(branches.get(n, float("-inf")) for n in names)
    tied = [n for n in names if branches.get(n) == top]
    if len(tied) > 1:
        return (
            f"{' or '.join(tied)} branch (they tie as the face's highest branch score, "
            f"{fmt3(top)}; the map is the one with the larger logit)"
        )
    b = names.index(tied[0])
    region = describe_region(detector.model.preprocesses[b], shape, noun)
    model = describe_model(specs[b]["arch"], specs[b]["arch_kwargs"])
    return (
        f"{tied[0]} branch, which scored the face highest ({fmt3(top)}): "
        f"patch logits of {model} on {region}"
    )


# ------------------------------------------------------------------------------- HTML
def legend_html() -> str:
    """The heatmap colour legend: the absolute inferno scale and how to read it."""
    from forensics.heatmaps import colorize

    gradient = css_gradient(colorize(np.linspace(0.0, 1.0, 17)))
    ticks = "".join(f"<span style='left:{100 * t:.0f}%'>{t:g}</span>" for t in LEGEND_TICKS)
    return (
        "<details class='legend' id='legend' open><summary>Heatmap colours</summary>"
        f"<div class='scale' style='background:{gradient}' role='img' "
        "aria-label='colour scale: 0 black, 0.5 deep red, 1 pale yellow'></div>"
        f"<div class='ticks'>{ticks}</div>"
        "<p>Each face: the crop the model scored, the same crop under its evidence overlay, "
        "and its probabilities as bars (the face score and, for a fused detector, each "
        "branch; the tick is the threshold). The overlay colours each patch by the model's "
        "fake-logit there, calibrated like the face score (the checkpoint's temperature and "
        "bias; a fused detector shows the map of the branch that scored the face highest, "
        "with that branch's calibration), through a sigmoid, 1/(1+e<sup>&minus;logit</sup>), "
        "on the inferno scale above. The scale is absolute: fixed from 0 to 1 and shared by "
        "every face and file, not stretched per face, so a face that scores low stays dark "
        "and colours compare across faces. Black and purple (below 0.5) lean real; deep "
        "red, around 0.5, is no evidence either way; orange (0.7) to pale yellow (1) is "
        "increasingly strong evidence of synthesis (0.25 and 0.75 are logits of &minus;1.1 "
        "and +1.1). The face score is about the sigmoid of the mean of its cells' logits, so "
        "one cell's colour is not the face score: a real face may show a few hot cells that "
        "cool ones outweigh. Each caption says which model or branch drew the map and how it "
        "read the crop. Overlays are blended half and half with the photo; uncoloured parts "
        "were not scored. Click an overlay for the whole photo or frame, with the face box "
        "red when that face's own score is a fake verdict, "
        "green otherwise.</p></details>\n"
    )


def face_figure(
    face: Mapping[str, Any], threshold: Any, time_s: float | None = None, rank: int | None = None
) -> str:
    """One face: its crop and overlay side by side, then its probability bars and caption.

    Args:
        face: The face as stored in the record (``FaceResult`` fields).
        threshold: The file's decision threshold (the tick on each bar).
        time_s: For a video frame, its time (shown with the frame number).
        rank: For a video frame, its place among the frames shown (``#1`` is the most
            suspicious; the timeline plot numbers its marks the same way).

    Returns:
        A ``<figure>``; records without ``crop`` (older scans) show the whole overlay.

    """
    score = fmt3(face.get("score"))
    where = []
    if rank is not None:
        where.append(f"#{rank}")
    if face.get("frame_index") is not None:
        where.append(f"frame {face['frame_index']}")
    if face.get("track") is not None:
        where.append(f"track {face['track']}")
    if time_s is not None:
        where.append(f"{float(time_s):.1f} s")
    at = "".join(f" · {esc(w)}" for w in where)
    alt = f"face {score}{' · '.join([''] + where)}"
    if face.get("crop") and face.get("heatmap_crop"):
        full = esc(face.get("heatmap") or face["heatmap_crop"])
        views = (
            f"<figure>{img_link(face['crop'], f'crop, {alt}')}<figcaption>crop</figcaption>"
            f"</figure><figure><a href='{full}'><img src='{esc(face['heatmap_crop'])}' "
            f"alt='{esc(f'overlay, {alt}')}' loading='lazy'></a>"
            "<figcaption>evidence</figcaption></figure>"
        )
    else:
        views = img_link(face.get("heatmap"), alt)
    mark = float(threshold) if fmt3(threshold) else None
    value = face.get("score")
    bars = prob_bar("face", value if isinstance(value, int | float) else float("nan"), mark)
    if face.get("branches"):
        bars += "".join(prob_bar(str(k), v, mark) for k, v in face["branches"].items())
    source = face.get("heatmap_source")
    line = f"<div class='source'>map: {esc(str(source))}</div>" if source else ""
    return (
        f"<figure class='face'><div class='face-views'>{views}</div><figcaption>"
        f"<div class='head'>P(synthetic)</div><div class='face-bars'>{bars}</div>"
        f"<div>face score <b>{score}</b>{at}</div>{line}</figcaption></figure>"
    )


def faces_html(rec: Mapping[str, Any]) -> str:
    """All faces of a record; a video's are grouped by frame, most suspicious frame first."""
    faces = [f for f in rec.get("faces") or [] if isinstance(f, Mapping)]
    threshold = rec.get("threshold")
    if rec.get("kind") != "video":
        return f"<div class='faces'>{''.join(face_figure(f, threshold) for f in faces)}</div>"
    times = {fr.get("index"): fr.get("time_s") for fr in rec.get("frames") or []}
    ranks: dict[Any, int] = {}
    for f in faces:
        ranks.setdefault(f.get("frame_index"), len(ranks) + 1)
    shown = "".join(
        face_figure(f, threshold, times.get(f.get("frame_index")), ranks[f.get("frame_index")])
        for f in faces
    )
    head = (
        f"<div class='frames-head'>the {len(ranks)} most suspicious frame"
        f"{'' if len(ranks) == 1 else 's'}, faces zoomed (#n marks them on the timeline)</div>"
        if faces
        else ""
    )
    return f"{head}<div class='faces'>{shown}</div>"

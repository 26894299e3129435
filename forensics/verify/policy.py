"""The verify-ids policy: every threshold and which failed check leads to which decision.

A policy is a flat TOML file (see ``docs/policy.example.toml``): top-level keys are the
fields of :class:`Policy`, and an ``[actions]`` table maps reason codes to ``"reject"``,
``"review"`` or ``"hint"``. Keys left out keep their defaults; unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASONS: tuple[str, ...] = (
    "unreadable",
    "no_face",
    "multiple_faces",
    "face_too_small",
    "blurry",
    "bad_exposure",
    "pose",
    "synthetic",
    "declared_synthetic",
    "duplicate",
    "metadata",
)
"""Every reason code, in the order they are reported."""

ACTIONS: tuple[str, ...] = ("reject", "review", "hint")
"""``hint`` reasons are recorded (in ``hints``) but never change the decision."""

DECISIONS: tuple[str, ...] = ("accept", "review", "reject")
"""From best to worst."""

DEFAULT_ACTIONS: dict[str, str] = {
    "unreadable": "reject",
    "no_face": "reject",
    "multiple_faces": "reject",
    "face_too_small": "reject",
    "synthetic": "reject",
    "declared_synthetic": "reject",
    "blurry": "review",
    "bad_exposure": "review",
    "pose": "review",
    "duplicate": "review",
    "metadata": "hint",
}

DEFAULT_METADATA_KEYWORDS: tuple[str, ...] = (
    "stable diffusion",
    "stablediffusion",
    "midjourney",
    "dall-e",
    "dall·e",
    "comfyui",
    "automatic1111",
    "novelai",
    "invokeai",
    "firefly",
    "stylegan",
    "generative",
    "ai generated",
    "photoshop",
    "gimp",
    "facetune",
    "faceapp",
)


class PolicyError(ValueError):
    """A policy file or value is invalid; the message says which key and why."""


@dataclass(frozen=True)
class Policy:
    """Thresholds of every check and the action of every reason code.

    Attributes:
        min_face_share: ``face_too_small`` when the face box's longer side is below this share
            of the photo's shorter side...
        min_face_px: ...or when the face box's shorter side is below this many pixels.
            Where no face is found at the detector's usual working size, the photo is
            searched again for faces down to half this size, so a tiny face is
            ``face_too_small``, not ``no_face``.
        secondary_face_ratio: Other faces count for ``multiple_faces`` only when their box
            side is at least this share of the main (largest) face's side.
        min_sharpness: ``blurry`` when :func:`forensics.verify.checks.sharpness` (the
            face crop's Laplacian variance at 48x48 over its Laplacian standard deviation at
            16x16, box without margin) is below this. Measured on real portraits at face
            heights 80-400 px (README, "Checking identity photos"): sharp faces median 12-20,
            a Gaussian blur of 1.5 % of the face height about 2.5-5, of 3 % about 0.7-1.8.
        min_luma: ``bad_exposure`` when the face centre's mean luminance (0-255) is below...
        max_luma: ...or above this...
        max_clipped: ...or when more than this share of its pixels is crushed (<= 5) or
            blown out (>= 250).
        max_yaw: ``pose`` when the nose is off the eyes' midline by more than this share of
            half the eye distance (0 = frontal, about 1 = profile)...
        max_roll_deg: ...or when the eye line is tilted by more than this many degrees.
        synthetic_threshold: ``synthetic`` when the detector's calibrated score is at or above
            this; ``None`` uses the threshold stored with the model.
        max_face_hash_distance: ``duplicate`` when the aligned face's 63-bit perceptual hash
            is within this Hamming distance of an earlier photo's...
        max_image_hash_distance: ...or the whole photo's hash is within this distance
            while the face hash is within ``max_face_hash_distance_with_image`` (a plain
            background alone must not make two people's photos match).
        max_face_hash_distance_with_image: See ``max_image_hash_distance``.
        metadata_keywords: ``metadata`` when an EXIF/PNG text tag contains one of these
            (case-insensitive).
        actions: Reason code -> ``"reject"``, ``"review"`` or ``"hint"``.

    """

    min_face_share: float = 0.15
    min_face_px: int = 64
    secondary_face_ratio: float = 0.30
    min_sharpness: float = 7.0
    min_luma: float = 50.0
    max_luma: float = 215.0
    max_clipped: float = 0.30
    max_yaw: float = 0.75
    max_roll_deg: float = 25.0
    synthetic_threshold: float | None = None
    max_face_hash_distance: int = 6
    max_image_hash_distance: int = 4
    max_face_hash_distance_with_image: int = 16
    metadata_keywords: tuple[str, ...] = DEFAULT_METADATA_KEYWORDS
    actions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))

    def __post_init__(self) -> None:
        """Validate values, so a bad policy fails before any photo is read."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("actions", "metadata_keywords", "synthetic_threshold"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PolicyError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise PolicyError(f"{f.name} must be a finite number >= 0, got {value!r}")
        t = self.synthetic_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
            raise PolicyError(f"synthetic_threshold must be a number, got {t!r}")
        if not all(isinstance(k, str) for k in self.metadata_keywords):
            raise PolicyError("metadata_keywords must be a list of strings")
        unknown = set(self.actions) - set(REASONS)
        if unknown:
            raise PolicyError(
                f"unknown reason(s) in [actions]: {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(REASONS)}"
            )
        for reason, action in self.actions.items():
            if action not in ACTIONS:
                raise PolicyError(
                    f"[actions] {reason} = {action!r}; choose one of {', '.join(ACTIONS)}"
                )
        if self.actions.get("metadata") == "reject":
            raise PolicyError("metadata is a hint only: its action may be 'review' or 'hint'")

    def action(self, reason: str) -> str:
        """The action for a reason code (defaults fill reasons the policy leaves out)."""
        return self.actions.get(reason, DEFAULT_ACTIONS[reason])

    def decide(self, reasons: list[str]) -> str:
        """The worst action among ``reasons``; ``accept`` when none rejects or reviews."""
        acts = {self.action(r) for r in reasons}
        if "reject" in acts:
            return "reject"
        return "review" if "review" in acts else "accept"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in ``summary.json``)."""
        d = dataclasses.asdict(self)
        d["metadata_keywords"] = list(self.metadata_keywords)
        d["actions"] = {r: self.action(r) for r in REASONS}
        return d


def policy_from_dict(data: dict[str, Any]) -> Policy:
    """Build a :class:`Policy` from parsed TOML, refusing unknown keys.

    Raises:
        PolicyError: Unknown key, wrong type or invalid value.

    """
    names = {f.name for f in dataclasses.fields(Policy)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PolicyError(
            f"unknown policy key(s): {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = dict(data)
    if "actions" in kwargs:
        if not isinstance(kwargs["actions"], dict):
            raise PolicyError("actions must be a table, e.g. [actions] blurry = 'review'")
        kwargs["actions"] = {**DEFAULT_ACTIONS, **kwargs["actions"]}
    if "metadata_keywords" in kwargs:
        if not isinstance(kwargs["metadata_keywords"], list):
            raise PolicyError("metadata_keywords must be a list of strings")
        kwargs["metadata_keywords"] = tuple(str(k).lower() for k in kwargs["metadata_keywords"])
    return Policy(**kwargs)


def load_policy(path: str | os.PathLike | None) -> Policy:
    """Read a TOML policy file; ``None`` gives the default policy.

    Raises:
        PolicyError: Missing file, TOML syntax error, unknown key or invalid value.

    """
    if path is None:
        return Policy()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"policy {p} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy {p} is not valid TOML: {exc}") from None
    try:
        return policy_from_dict(data)
    except PolicyError as exc:
        raise PolicyError(f"policy {p}: {exc}") from None
